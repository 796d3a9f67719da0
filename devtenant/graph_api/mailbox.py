"""Outlook's part of Graph: a user's calendar view, received mail and contacts.

Behaviour copied from Exchange Online's Graph surface:
* `calendarView` needs both `startDateTime` and `endDateTime` (an offset-less value is UTC) and
  returns the occurrences overlapping the window, start first unless `$orderby` says otherwise;
  `$filter` on `start`/`end` is refused (use the window). Times come back as
  {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"}, or in the zone named by
  `Prefer: outlook.timezone="..."` (Windows or IANA names), echoed in `Preference-Applied`.
* Each mailbox holds its own copy of a meeting: its own `id` (the shared one is `iCalUId`), its own
  `responseStatus`; an attendee's copy knows only their own response (others show "none").
  A cancelled meeting disappears from the organiser's calendar and stays in attendees' calendars
  as "Canceled: <subject>" with `isCancelled` true. With application permissions a private
  event keeps its real subject; only `sensitivity` says "private".
* `messages` with Mail.ReadBasic.All omit `body`/`bodyPreview`/`uniqueBody`; asking for them, or
  using `$search`, is refused with 403. `$orderby` properties must lead the `$filter`
  (Exchange's "InefficientFilter" rule).
* Errors use Exchange's codes: ErrorAccessDenied, ErrorInvalidUser, MailboxNotEnabledForRESTAPI,
  ErrorInvalidParameter; at most 4 concurrent requests per app per mailbox (ApplicationThrottled).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devtenant.graph_api import odata
from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router
from devtenant.graph_api.throttling import mailbox_slot
from devtenant.graph_api.wire import header_lookup
from devtenant.model import Contact, EmailAddress, Event, MailMessage, User

CALENDAR_FULL = {"Calendars.Read", "Calendars.ReadWrite"}
CALENDAR_READERS = CALENDAR_FULL | {"Calendars.ReadBasic.All"}
MAIL_FULL = {"Mail.Read", "Mail.ReadWrite"}
MAIL_READERS = MAIL_FULL | {"Mail.ReadBasic.All", "Mail.ReadBasic"}
CONTACT_READERS = {"Contacts.Read", "Contacts.ReadWrite"}

NO_WINDOW = ("This request requires a time window specified by the query string parameters StartDateTime "
             "and EndDateTime.")
_BODY_FIELDS = {"body", "bodyPreview", "uniqueBody"}
_ZERO_TIME = "0001-01-01T00:00:00Z"

# Windows time zone names Outlook accepts in `Prefer: outlook.timezone`, mapped to IANA (a few).
_WINDOWS_ZONES = {
    "UTC": "UTC", "Coordinated Universal Time": "UTC", "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik", "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris", "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw", "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev", "GTB Standard Time": "Europe/Bucharest",
    "Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver", "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata", "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo", "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney", "W. Australia Standard Time": "Australia/Perth",
    "South Africa Standard Time": "Africa/Johannesburg", "E. South America Standard Time": "America/Sao_Paulo",
}


def register(router: Router) -> None:
    # Permissions are checked in the handlers: Exchange answers 403 ErrorAccessDenied, not the
    # directory's Authorization_RequestDenied the router would give.
    router.route("GET", "/users/{id}/calendarView", permissions=())(calendar_view)
    router.route("GET", "/users/{id}/calendar/calendarView", permissions=())(calendar_view)
    router.route("GET", "/users/{id}/messages", permissions=())(list_messages)
    router.route("GET", "/users/{id}/mailFolders/inbox/messages", permissions=())(list_messages)
    router.route("GET", "/users/{id}/contacts", permissions=())(list_contacts)


# --- shared Exchange behaviour ---------------------------------------------------------------------
def access_denied() -> GraphError:
    return GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _require(req: GraphRequest, alternatives: set[str]) -> None:
    if not req.roles & alternatives:
        raise access_denied()
    if req.state.config.mail_access_policy_blocks:
        raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled: Blocked by tenant configured "
                         "AppOnly AccessPolicy settings.")


def _mailbox_owner(req: GraphRequest) -> User:
    ident = req.params["id"]
    user = req.state.org.user(ident)
    if user is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ident}' is invalid.")
    if not user.mail:
        raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                         "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
    return user


def _item_id(kind: str, owner_id: str, item_id: str) -> str:
    """Exchange ids are opaque, long and per mailbox: the same meeting differs in each calendar."""
    raw = f"{kind}:{owner_id}:{item_id}".encode()
    return "AAMkA" + base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def _etag(*parts: Any) -> str:
    digest = hashlib.sha1(repr(parts).encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest[:12]).decode()


def _address(addr: EmailAddress) -> dict[str, Any]:
    return {"emailAddress": {"name": addr.name, "address": addr.address}}


def _user_address(user: User) -> dict[str, Any]:
    return {"emailAddress": {"name": user.display_name, "address": user.mail or user.user_principal_name}}


def _outlook_select(obj: dict[str, Any], req: GraphRequest, type_name: str) -> dict[str, Any]:
    """$select as Exchange applies it: `id` (and the etag) come back whatever was selected."""
    names = odata.selected(req)
    if names is not None and "id" not in {n.lower() for n in names}:
        names = [*names, "id"]
    return odata.project(obj, names, type_name=type_name)


def _page(req: GraphRequest, items: list[dict[str, Any]], type_name: str, context: str) -> GraphResponse:
    """Outlook pages: 10 by default, $top up to 1000, next pages by `$skip` as Exchange writes them."""
    return odata.page(req, items, default_size=10, max_size=1000, context=context, directory=False,
                      skip_links=True, render=lambda item: _outlook_select(item, req, type_name))


# --- calendarView ----------------------------------------------------------------------------------
def _parse_bound(req: GraphRequest, name: str) -> datetime:
    value = next((v for k, v in req.query.items() if k.lower() == name.lower()), None)
    if not value:
        raise GraphError(400, "ErrorInvalidParameter", NO_WINDOW)
    text = value.strip().replace(" ", "+")  # a "+01:00" offset arrives as " 01:00" when not escaped
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Outlook sends 7 fractional digits
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter",
                         f"The value '{value}' of parameter '{name}' is invalid.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _preferred_zone(req: GraphRequest) -> tuple[str, tzinfo] | None:
    prefer = header_lookup(req.headers, "Prefer") or ""
    m = re.search(r'outlook\.timezone\s*=\s*"([^"]+)"', prefer, re.IGNORECASE)
    if not m:
        return None
    name = m.group(1).strip()
    iana = _WINDOWS_ZONES.get(name, name)
    try:
        return name, ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # Outlook ignores a zone it does not know and answers in UTC


def _event_time(moment: datetime, zone: tuple[str, tzinfo] | None) -> dict[str, str]:
    if zone is None:
        return odata.date_time_time_zone(moment)
    name, tz = zone
    return {"dateTime": moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": name}


INVITE_RECIPIENT_LIMIT = 500  # Exchange Online's default recipient limit per message


def event_json(req: GraphRequest, event: Event, owner: User, zone: tuple[str, tzinfo] | None) -> dict[str, Any]:
    """One event as it sits in `owner`'s calendar."""
    org = req.state.org
    organizer = org.users.get(event.organizer_id)
    is_organizer = owner.id == event.organizer_id
    created = event.start - timedelta(days=7)

    def response_of(uid: str) -> str:
        return "declined" if uid in event.declined_ids else "accepted"

    attendees = []
    invited = event.attendee_ids
    if len(invited) > INVITE_RECIPIENT_LIMIT:
        # Exchange Online sends a message to at most 500 recipients: an all-hands is sent to a distribution list,
        # which is what its attendees show (the owner keeps their own entry).
        invited = tuple(uid for uid in invited if uid == owner.id)
        everyone = next((g for g in org.groups.values() if g.is_tenant_wide and g.mail), None)
        if everyone is not None:
            attendees.append({"type": "required", "status": {"response": "none", "time": _ZERO_TIME},
                              "emailAddress": {"name": everyone.display_name, "address": everyone.mail}})
    for uid in invited:
        attendee = org.users.get(uid)
        if attendee is None:
            continue
        known = is_organizer or uid == owner.id
        attendees.append({
            "type": "required",
            "status": {"response": response_of(uid) if known else "none",
                       "time": odata.iso(created + timedelta(hours=1)) if known else _ZERO_TIME},
            **_user_address(attendee),
        })
    for ext in event.external_attendees:
        attendees.append({"type": "required",
                          "status": {"response": "accepted" if is_organizer else "none",
                                     "time": odata.iso(created + timedelta(hours=2)) if is_organizer
                                     else _ZERO_TIME},
                          **_address(ext)})

    if is_organizer:
        my_response = {"response": "organizer", "time": _ZERO_TIME}
    else:
        my_response = {"response": response_of(owner.id), "time": odata.iso(created + timedelta(hours=1))}
    subject = f"Canceled: {event.subject}" if event.is_cancelled else event.subject
    show_as = "free" if event.is_cancelled or owner.id in event.declined_ids else "busy"
    location = {"displayName": event.location or "", "locationType": "default",
                "uniqueIdType": "unknown", "address": {}, "coordinates": {}}
    join_url = (f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{event.id.replace('-', '')}%40thread.v2/0"
                if event.is_online_meeting else None)
    item_id = _item_id("event", owner.id, event.id)
    return {
        "@odata.etag": f'W/"{_etag(event.id, owner.id)}"',
        "id": item_id,
        "createdDateTime": odata.iso(created),
        "lastModifiedDateTime": odata.iso(created),
        "changeKey": _etag(event.id, owner.id),
        "categories": [],
        "transactionId": None,
        "originalStartTimeZone": "UTC",
        "originalEndTimeZone": "UTC",
        "iCalUId": "040000008200E00074C5B7101A82E00800000000" + uuid.UUID(_uuidish(event.id)).hex.upper(),
        "uid": "040000008200E00074C5B7101A82E00800000000" + uuid.UUID(_uuidish(event.id)).hex.upper(),
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": not event.is_all_day,
        "hasAttachments": False,
        "subject": subject,
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": event.sensitivity,
        "isAllDay": event.is_all_day,
        "isCancelled": event.is_cancelled,
        "isOrganizer": is_organizer,
        "responseRequested": True,
        "seriesMasterId": None,
        "showAs": show_as,
        "type": "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid={item_id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": event.is_online_meeting,
        "onlineMeetingProvider": "teamsForBusiness" if event.is_online_meeting else "unknown",
        "allowNewTimeProposals": True,
        "occurrenceId": None,
        "isDraft": False,
        "hideAttendees": False,
        "responseStatus": my_response,
        "body": {"contentType": "html", "content": ""},
        "start": _event_time(event.start, zone),
        "end": _event_time(event.end, zone),
        "location": location,
        "locations": [{"displayName": event.location, "locationType": "default", "uniqueIdType": "unknown"}]
        if event.location else [],
        "recurrence": None,
        "attendees": attendees,
        "organizer": _user_address(organizer) if organizer else {"emailAddress": {"name": "", "address": ""}},
        "onlineMeeting": {"joinUrl": join_url} if join_url else None,
    }


def _uuidish(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, text))


def _in_calendar(event: Event, owner_id: str) -> bool:
    # Cancelling a meeting deletes it from the organiser's calendar; attendees keep a "Canceled:" copy.
    return not (event.is_cancelled and event.organizer_id == owner_id)


EVENT_ORDER = ("start/dateTime", "end/dateTime", "subject", "createdDateTime", "lastModifiedDateTime")
EVENT_FILTER = ("subject", "sensitivity", "isCancelled", "isAllDay", "isOnlineMeeting", "isOrganizer", "showAs",
                "type", "importance", "organizer", "attendees", "responseStatus", "categories", "iCalUId")


async def calendar_view(req: GraphRequest) -> GraphResponse:
    _require(req, CALENDAR_READERS)
    owner = _mailbox_owner(req)
    start = _parse_bound(req, "startDateTime")
    end = _parse_bound(req, "endDateTime")
    if end < start:
        raise GraphError(400, "ErrorInvalidParameter", "The parameter 'EndDateTime' must be later than "
                         "'StartDateTime'.")
    flt = req.query.get("$filter")
    if flt and re.search(r"\b(start|end)\s*/", flt, re.IGNORECASE):
        raise GraphError(400, "ErrorInvalidUrlQueryFilter", "Filtering on start or end is not supported by "
                         "calendarView: use the startDateTime and endDateTime parameters.")
    async with mailbox_slot(req, owner.id):
        zone = _preferred_zone(req)
        events = [
            event_json(req, e, owner, zone)
            for e in req.state.org.calendar(owner.id)
            if e.start < end and e.end > start and _in_calendar(e, owner.id)
        ]
        if not req.roles & CALENDAR_FULL:  # Calendars.ReadBasic.All: no body
            for event in events:
                event.pop("body")
                event.pop("bodyPreview")
        events = _outlook_filter(req, events, EVENT_FILTER, "event")
        events = odata.order_by(events, req, EVENT_ORDER)
        response = _page(req, events, "microsoft.graph.event", f"users('{owner.id}')/calendarView")
    if zone is not None:
        response.headers["Preference-Applied"] = f'outlook.timezone="{zone[0]}"'
    return response


# --- messages --------------------------------------------------------------------------------------
def _message_id(msg: MailMessage) -> str:
    return _item_id("message", msg.owner_id, msg.id)


def _received(msg: MailMessage) -> str | None:
    return odata.iso(msg.received_date_time)


# Every property of a message, in the order Graph sends them; the body's two only with Mail.Read.
_MESSAGE_FIELDS: dict[str, Any] = {
    "@odata.etag": lambda m: f'W/"{_etag(m.id)}"',
    "id": _message_id,
    "createdDateTime": _received,
    "lastModifiedDateTime": _received,
    "changeKey": lambda m: _etag(m.id),
    "categories": lambda m: [],
    "receivedDateTime": _received,
    "sentDateTime": lambda m: odata.iso(m.received_date_time - timedelta(seconds=3)),
    "hasAttachments": lambda m: m.has_attachments,
    "internetMessageId": lambda m: f"<{uuid.uuid5(uuid.NAMESPACE_URL, m.id).hex}@{m.sender.address.split('@')[-1]}>",
    "subject": lambda m: m.subject,
    "importance": lambda m: m.importance,
    "parentFolderId": lambda m: "AQMkAGI2TAAAAgEMAAAA",
    "conversationId": lambda m: "AAQkA" + hashlib.sha1(m.subject.encode(), usedforsecurity=False).hexdigest()[:24],
    "conversationIndex": lambda m: base64.b64encode(hashlib.sha1(m.id.encode(), usedforsecurity=False)
                                                    .digest()[:22]).decode(),
    "isDeliveryReceiptRequested": lambda m: False,
    "isReadReceiptRequested": lambda m: False,
    "isRead": lambda m: m.is_read,
    "isDraft": lambda m: False,
    "webLink": lambda m: f"https://outlook.office365.com/owa/?ItemID={_message_id(m)}&exvsurl=1"
                         "&viewmodel=ReadMessageItem",
    "inferenceClassification": lambda m: "focused" if m.sender.user_id else "other",
    "sender": lambda m: _address(m.sender),
    "from": lambda m: _address(m.sender),
    "toRecipients": lambda m: [_address(a) for a in m.to_recipients],
    "ccRecipients": lambda m: [_address(a) for a in m.cc_recipients],
    "bccRecipients": lambda m: [],
    "replyTo": lambda m: [],
    "flag": lambda m: {"flagStatus": "notFlagged"},
}
_BODY_JSON: dict[str, Any] = {
    "bodyPreview": lambda m: m.subject,
    "body": lambda m: {"contentType": "html", "content": f"<html><body><p>{m.subject}</p></body></html>"},
}


class MessageView(Mapping[str, Any]):
    """A message's Graph JSON, each property worked out when first read: a mailbox of hundreds of messages is
    filtered and sorted on one or two properties, and only the page is projected on $select, so the others
    (hashes, ids, links) are never computed for messages that do not come back. Read-only, as a request's."""

    __slots__ = ("msg", "fields", "values")

    def __init__(self, msg: MailMessage, with_body: bool) -> None:
        self.msg = msg
        self.fields = _MESSAGE_FIELDS_WITH_BODY if with_body else _MESSAGE_FIELDS
        self.values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            value = self.values[key] = self.fields[key](self.msg)  # KeyError for a name messages lack
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def key_names(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """{name.lower(): name} and the annotations, worked out once (for odata.project)."""
        return _MESSAGE_KEY_NAMES[self.fields is _MESSAGE_FIELDS_WITH_BODY]


_MESSAGE_FIELDS_WITH_BODY = {**_MESSAGE_FIELDS, **_BODY_JSON}
_MESSAGE_KEY_NAMES = {with_body: ({k.lower(): k for k in fields}, tuple(k for k in fields if k.startswith("@")))
                      for with_body, fields in ((False, _MESSAGE_FIELDS), (True, _MESSAGE_FIELDS_WITH_BODY))}


def message_json(msg: MailMessage, with_body: bool) -> dict[str, Any]:
    """Every property of a message (the body too when `with_body`), as a dict."""
    return dict(MessageView(msg, with_body))


MESSAGE_ORDER = ("receivedDateTime", "sentDateTime", "createdDateTime", "lastModifiedDateTime", "subject",
                 "from/emailAddress/address", "from/emailAddress/name", "importance", "isRead", "hasAttachments")
MESSAGE_FILTER = ("receivedDateTime", "sentDateTime", "createdDateTime", "lastModifiedDateTime", "subject",
                  "from", "sender", "toRecipients", "ccRecipients", "importance", "isRead", "hasAttachments",
                  "inferenceClassification", "isDraft", "conversationId", "internetMessageId", "categories",
                  "flag", "parentFolderId")


async def list_messages(req: GraphRequest) -> GraphResponse:
    _require(req, MAIL_READERS)
    full = bool(req.roles & MAIL_FULL)
    selected = {name.lower() for name in odata.selected(req) or ()}
    if not full and ({f.lower() for f in _BODY_FIELDS} & selected or "$search" in req.query):
        raise access_denied()
    owner = _mailbox_owner(req)
    _check_filter_leads_with_order(req)
    async with mailbox_slot(req, owner.id):
        messages: list[Any] = [MessageView(m, full) for m in req.state.org.messages_of(owner.id)]
        search = req.query.get("$search")
        if search is not None:
            if "$orderby" in req.query:
                raise GraphError(400, "ErrorInvalidUrlQuery",
                                 "The query parameter 'OrderBy' is invalid with a search request.")
            messages = [m for m in messages if _matches_search(m, search)]
        messages = _outlook_filter(req, messages, MESSAGE_FILTER, "message")
        if "$orderby" in req.query:
            messages = odata.order_by(messages, req, MESSAGE_ORDER)
        else:  # newest first, Exchange's default for messages
            messages.sort(key=lambda m: m["receivedDateTime"], reverse=True)
        return _page(req, messages, "microsoft.graph.message", f"users('{owner.id}')/messages")


def _matches_search(message: dict[str, Any], search: str) -> bool:
    terms = [t.lower() for t in re.findall(r"[\w@.\-']+", search.strip('"'))]
    haystack = " ".join([message["subject"], message["from"]["emailAddress"]["name"],
                         message["from"]["emailAddress"]["address"], message.get("bodyPreview", "")]).lower()
    return all(t in haystack for t in terms)


def _check_filter_leads_with_order(req: GraphRequest) -> None:
    """Exchange: with both $filter and $orderby, the sorted properties must come first in the filter,
    in the same order, or it answers 400 InefficientFilter."""
    flt, orderby = req.query.get("$filter"), req.query.get("$orderby")
    if not flt or not orderby:
        return
    ordered = [part.strip().split()[0].lower() for part in orderby.split(",") if part.strip()]
    without_strings = re.sub(r"'(?:[^']|'')*'", "''", flt)
    without_strings = re.sub(r"\b\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?", "0", without_strings)
    mentioned: list[str] = []
    for name in re.findall(r"[A-Za-z_][\w/]*", without_strings):
        lowered = name.lower()
        if lowered in {"and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "true", "false", "null", "any",
                       "all", "contains", "startswith", "endswith"} or re.fullmatch(r"\d.*", lowered):
            continue
        if lowered not in mentioned:
            mentioned.append(lowered)
    if mentioned[: len(ordered)] != ordered:
        raise GraphError(400, "InefficientFilter", "The restriction or sort order is too complex for this "
                         "operation.")


# --- contacts --------------------------------------------------------------------------------------
def contact_json(contact: Contact) -> dict[str, Any]:
    initials = "".join(p[0] for p in (contact.given_name, contact.surname) if p) or None
    return {
        "@odata.etag": f'W/"{_etag(contact.id)}"',
        "id": _item_id("contact", contact.owner_id, contact.id),
        "createdDateTime": odata.iso(contact.created_date_time),
        "lastModifiedDateTime": odata.iso(contact.created_date_time),
        "changeKey": _etag(contact.id),
        "categories": [],
        "parentFolderId": "AAMkAGI2TAAAAgEOAAAA",
        "birthday": None,
        "fileAs": "",
        "displayName": contact.display_name,
        "givenName": contact.given_name,
        "initials": f"{'.'.join(initials)}." if initials else None,
        "middleName": None,
        "nickName": None,
        "surname": contact.surname,
        "title": None,
        "yomiGivenName": None,
        "yomiSurname": None,
        "yomiCompanyName": None,
        "generation": None,
        "imAddresses": [],
        "jobTitle": contact.job_title,
        "companyName": contact.company_name,
        "department": None,
        "officeLocation": None,
        "profession": None,
        "businessHomePage": None,
        "assistantName": None,
        "manager": None,
        "homePhones": [],
        "mobilePhone": contact.mobile_phone,
        "businessPhones": [],
        "spouseName": None,
        "personalNotes": "",
        "children": [],
        "emailAddresses": [{"name": a.name, "address": a.address} for a in contact.email_addresses],
        "homeAddress": {},
        "businessAddress": {},
        "otherAddress": {},
    }


CONTACT_ORDER = ("displayName", "givenName", "surname", "createdDateTime", "lastModifiedDateTime",
                 "companyName", "jobTitle")
CONTACT_FILTER = ("displayName", "givenName", "surname", "emailAddresses", "companyName", "jobTitle",
                  "createdDateTime", "lastModifiedDateTime", "mobilePhone", "categories", "parentFolderId")


async def list_contacts(req: GraphRequest) -> GraphResponse:
    _require(req, CONTACT_READERS)
    owner = _mailbox_owner(req)
    async with mailbox_slot(req, owner.id):
        contacts = [contact_json(c) for c in req.state.org.contacts_of(owner.id)]
        contacts = _outlook_filter(req, contacts, CONTACT_FILTER, "contact")
        contacts = odata.order_by(contacts, req, CONTACT_ORDER)
        return _page(req, contacts, "microsoft.graph.contact", f"users('{owner.id}')/contacts")


def _outlook_filter(req: GraphRequest, items: list[dict[str, Any]], properties: tuple[str, ...],
                    resource: str) -> list[dict[str, Any]]:
    return odata.apply_filter(items, req, properties=properties, resource=resource,
                              functions=("startswith", "contains"), directory=False)
