"""Graph's answers -> Watchword's own dataclasses. The only module that knows both shapes.

Reads map from Graph's JSON (the wire contract: camelCase properties, ISO datetimes), not from
msgraph-sdk models: kiota builds a model at about 7-10 ms per object on these machines
(`Entity.get_field_deserializers` runs some thousand import statements on every call), so the 1,500
objects of one busy verification would cost over ten seconds of CPU. The few places that keep the SDK
(the password PATCH, membership checks, the service principal's roles) map their models here too.
Missing values stay None (or the dataclass default); nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graph.directory import DirectoryUser
from graph.roles import is_privileged_role
from verification.context import (
    Attendee,
    Chat,
    ChatType,
    Contact,
    Group,
    GroupKind,
    MailMessage,
    Meeting,
    Party,
    Person,
    ResponseStatus,
    Role,
    RoleUsage,
    Sensitivity,
    SignIn,
)

Json = Mapping[str, Any]

# $select lists, next to the mapping that reads them.
PERSON_FIELDS = ("id", "displayName", "givenName", "surname", "userPrincipalName", "mail", "jobTitle", "department",
                 "officeLocation")
PROFILE_FIELDS = (*PERSON_FIELDS, "onPremisesSyncEnabled", "lastPasswordChangeDateTime", "accountEnabled",
                  "userType")
DIRECTORY_USER_FIELDS = ("id", "displayName", "givenName", "surname", "userPrincipalName", "mail", "jobTitle",
                         "department", "accountEnabled", "onPremisesSyncEnabled", "userType")
GROUP_FIELDS = ("id", "displayName", "groupTypes", "mailEnabled", "securityEnabled", "isAssignableToRole")
EVENT_FIELDS = ("subject", "organizer", "attendees", "start", "end", "sensitivity", "isCancelled", "isAllDay",
                "responseStatus")
CONTACT_FIELDS = ("displayName", "givenName", "surname", "emailAddresses")
MAIL_FIELDS = ("from", "receivedDateTime")
SIGN_IN_FIELDS = ("createdDateTime", "ipAddress", "location", "deviceDetail", "status", "riskLevelDuringSignIn",
                  "riskState", "isInteractive")

# A group holding this share of the tenant's members is "everyone" (All Company, dynamic all-users groups).
TENANT_WIDE_SHARE = 0.9
USER_TYPE = "#microsoft.graph.user"
AAD_MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"

PartyOf = Callable[[str | None, str | None], Party]  # (name, address) -> Party, resolving tenant users
# What a JSON object is: json gives dicts, and a dict is told at once; any other Mapping goes through the ABC's slower
# check (thousands of times per verification: every attendee, sender and address).
OBJECT = (dict, Mapping)


def _str(d: Json, key: str) -> str | None:
    value = d.get(key)
    return str(value) if value is not None else None


def _obj(d: Json | None, key: str) -> Json:
    value = d.get(key) if d else None
    return value if isinstance(value, OBJECT) else {}


def values(body: Any) -> list[Json]:
    """The `value` array of a collection answer (items that are not objects are dropped)."""
    items = body.get("value") if isinstance(body, OBJECT) else None
    return [i for i in items or [] if isinstance(i, OBJECT)]


def timestamp(text: Any) -> datetime | None:
    """Graph's ISO datetimes ("2026-11-25T12:00:00Z", up to 7 fractional digits) -> aware UTC."""
    if not isinstance(text, str) or not text:
        return None
    try:  # Python 3.11 reads Graph's own forms ("Z", 7 fractional digits) at once: ~20x faster than the below
        moment = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        zone = moment.tzinfo
        return moment if zone is UTC else moment.replace(tzinfo=UTC) if zone is None else moment.astimezone(UTC)
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- people ----------------------------------------------------------------------------------------------
def person(d: Json) -> Person:
    uid = str(d.get("id"))
    return Person(id=uid, display_name=_str(d, "displayName") or _str(d, "userPrincipalName") or uid,
                  given_name=_str(d, "givenName"), surname=_str(d, "surname"), upn=_str(d, "userPrincipalName"),
                  mail=_str(d, "mail"), job_title=_str(d, "jobTitle"), department=_str(d, "department"),
                  office_location=_str(d, "officeLocation"))


def people(items: Iterable[Json]) -> list[Person]:
    """Users from a collection; in a directoryObject collection, other types (groups, devices) are skipped."""
    return [person(d) for d in items if d.get("id") and d.get("@odata.type", USER_TYPE) == USER_TYPE]


def directory_user(d: Json) -> DirectoryUser:
    return DirectoryUser(
        id=str(d["id"]), display_name=_str(d, "displayName") or "", upn=_str(d, "userPrincipalName") or "",
        given_name=_str(d, "givenName"), surname=_str(d, "surname"), mail=_str(d, "mail"),
        job_title=_str(d, "jobTitle"), department=_str(d, "department"),
        account_enabled=d.get("accountEnabled") is not False,
        on_premises_sync_enabled=bool(d.get("onPremisesSyncEnabled")), user_type=_str(d, "userType") or "Member")


def is_removed(d: Json) -> bool:
    """A delta entry for a deleted object (`{"id": ..., "@removed": {"reason": ...}}`), or, in `members@delta` and
    `manager@delta`, a reference taken away."""
    return "@removed" in d


# --- groups ----------------------------------------------------------------------------------------------
def group_kind(d: Json) -> GroupKind:
    if "Unified" in (d.get("groupTypes") or []):
        return GroupKind.MICROSOFT_365
    if d.get("mailEnabled") and d.get("securityEnabled"):
        return GroupKind.MAIL_ENABLED_SECURITY
    if d.get("mailEnabled"):
        return GroupKind.DISTRIBUTION
    return GroupKind.SECURITY


def group(d: Json, *, member_count: int | None, is_direct: bool, population: int) -> Group:
    tenant_wide = bool(member_count and population and member_count >= TENANT_WIDE_SHARE * population)
    gid = str(d.get("id"))
    return Group(id=gid, name=_str(d, "displayName") or gid, kind=group_kind(d), member_count=member_count,
                 is_role_assignable=bool(d.get("isAssignableToRole")), is_direct=is_direct,
                 is_tenant_wide=tenant_wide)


def count_value(body: Any) -> int | None:
    """A `/$count` answer: text/plain "42" (a $batch item may carry it base64-encoded)."""
    if isinstance(body, bool):
        return None
    if isinstance(body, int):
        return body
    if isinstance(body, str):
        text = body.strip()
        if text.isdigit():
            return int(text)
        try:
            decoded = base64.b64decode(text, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return int(decoded) if decoded.isdigit() else None
    return None


# --- Outlook ---------------------------------------------------------------------------------------------
_OFFSET = re.compile(r"[+-]\d\d:\d\d$")


def event_time(d: Json) -> datetime | None:
    """{"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"} -> an aware UTC datetime."""
    text = d.get("dateTime")
    if not isinstance(text, str) or not text:
        return None
    moment = timestamp(text)
    zone_name = d.get("timeZone")
    if moment is None or zone_name == "UTC" or zone_name is None:
        # UTC is what we ask Outlook for (Prefer: outlook.timezone="UTC"), and timestamp() reads a time without an
        # offset as UTC: nothing more to do for nearly every event's start and end (2.6 -> 1.1 us each)
        return moment
    if text.rstrip().endswith(("Z", "z")) or _OFFSET.search(text.strip()):
        return moment
    zone_name = str(zone_name or "UTC").strip()
    try:
        zone = UTC if zone_name.upper() in ("UTC", "Z", "") else ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC  # we ask Outlook for UTC (Prefer: outlook.timezone="UTC"), so this is the expected case
    return moment.replace(tzinfo=zone).astimezone(UTC)


def address_of(recipient: Json) -> tuple[str | None, str | None]:
    """A recipient's {"emailAddress": {"name", "address"}} -> (name, address)."""
    email = _obj(recipient, "emailAddress")
    return _str(email, "name"), _str(email, "address")


# Enum values by their text: a dictionary lookup, not an Enum call and a caught ValueError (every attendee's answer).
_RESPONSES = {s.value: s for s in ResponseStatus}
_SENSITIVITIES = {s.value: s for s in Sensitivity}
_CHAT_TYPES = {t.value: t for t in ChatType}


def _response(value: Any) -> ResponseStatus:
    return _RESPONSES.get(value, ResponseStatus.NONE) if isinstance(value, str) else ResponseStatus.NONE


# A meeting with more attendees than this is a broadcast (an all-hands, a town hall): who else was there says
# nothing only the target knows, and mapping tens of thousands of attendees per verification would cost seconds.
# The first MAX_ATTENDEES are kept, so such a meeting still reads as the large one it was.
MAX_ATTENDEES = 250


def _attendees(d: Json) -> list[Any]:
    raw = d.get("attendees")
    return raw[:MAX_ATTENDEES] if isinstance(raw, list) else []


def meeting(d: Json, party_of: PartyOf) -> Meeting | None:
    start, end = event_time(_obj(d, "start")), event_time(_obj(d, "end"))
    if start is None or end is None:
        return None
    attendees = []
    for a in _attendees(d):  # a plain loop: ~20 attendees a meeting, a few hundred per verification
        email = a.get("emailAddress") if isinstance(a, OBJECT) else None
        if not email or not isinstance(email, OBJECT):
            continue
        status = a.get("status")
        attendees.append(Attendee(
            who=party_of(_str(email, "name"), _str(email, "address")),
            response=_response(status.get("response")) if isinstance(status, OBJECT) else ResponseStatus.NONE,
            type=str(a.get("type") or "required")))
    raw = d.get("sensitivity") or "normal"
    sensitivity = _SENSITIVITIES.get(raw, Sensitivity.NORMAL) if isinstance(raw, str) else Sensitivity.NORMAL
    return Meeting(id=str(d.get("id")), start=start, end=end, organizer=party_of(*address_of(_obj(d, "organizer"))),
                   attendees=tuple(attendees), sensitivity=sensitivity, is_cancelled=bool(d.get("isCancelled")),
                   is_all_day=bool(d.get("isAllDay")),
                   my_response=_response(_obj(d, "responseStatus").get("response")), subject=_str(d, "subject"))


def meeting_addresses(d: Json) -> list[str]:
    """Addresses of an event's people (rooms and equipment left out)."""
    out = [address_of(_obj(d, "organizer"))[1]]
    out += [address_of(a)[1] for a in _attendees(d) if isinstance(a, OBJECT) and a.get("type") != "resource"]
    return [a for a in out if a]


def contact(d: Json, party_of: PartyOf) -> Contact:
    emails = tuple(str(a["address"]) for a in d.get("emailAddresses") or []
                   if isinstance(a, OBJECT) and a.get("address"))
    resolved = next((p.person for p in (party_of(_str(d, "displayName"), a) for a in emails) if p.person), None)
    given, surname = _str(d, "givenName"), _str(d, "surname")
    return Contact(display_name=_str(d, "displayName") or " ".join(filter(None, (given, surname))), emails=emails,
                   given_name=given, surname=surname, person=resolved)


def contact_addresses(d: Json) -> list[str]:
    return [str(a["address"]) for a in d.get("emailAddresses") or [] if isinstance(a, OBJECT) and a.get("address")]


def mail_message(d: Json, party_of: PartyOf, *, with_subject: bool = False) -> MailMessage | None:
    received = timestamp(d.get("receivedDateTime"))
    name, address = address_of(_obj(d, "from"))
    if received is None or not (name or address):
        return None
    return MailMessage(sender=party_of(name, address), received_at=received,
                       subject=_str(d, "subject") if with_subject else None)


def sender_address(d: Json) -> str | None:
    return address_of(_obj(d, "from"))[1]


# --- Teams -----------------------------------------------------------------------------------------------
def chat(d: Json, person_by_id: Callable[[str], Person | None]) -> Chat:
    members = []
    for m in d.get("members") or []:
        if not isinstance(m, OBJECT):
            continue
        uid = _str(m, "userId")
        who = person_by_id(uid) if uid else None
        if m.get("@odata.type", AAD_MEMBER_TYPE) == AAD_MEMBER_TYPE and (uid or m.get("email")):
            members.append(Party(name=_str(m, "displayName") or (who.display_name if who else ""),
                                 address=_str(m, "email") or (who.mail if who else None), person=who))
        elif m.get("displayName"):
            members.append(Party(name=str(m["displayName"])))
    last = timestamp(_obj(d, "lastMessagePreview").get("createdDateTime"))
    kind = d.get("chatType") or "group"
    chat_type = _CHAT_TYPES.get(kind, ChatType.GROUP) if isinstance(kind, str) else ChatType.GROUP
    return Chat(id=str(d.get("id")), chat_type=chat_type, members=tuple(members),
                last_message_at=last or timestamp(d.get("lastUpdatedDateTime")), topic=_str(d, "topic"))


def chat_member_ids(d: Json) -> list[str]:
    return [str(m["userId"]) for m in d.get("members") or [] if isinstance(m, OBJECT) and m.get("userId")]


# --- roles -----------------------------------------------------------------------------------------------
def role_template(d: Json) -> str:
    definition = _obj(d, "roleDefinition")
    return str(definition.get("templateId") or definition.get("id") or d.get("roleDefinitionId") or "").lower()


def role_name(d: Json) -> str:
    return _str(_obj(d, "roleDefinition"), "displayName") or str(d.get("roleDefinitionId") or "unknown role")


def role(d: Json, via_group: str | None = None, *, eligible: bool = False) -> Role:
    """A role assignment, or with `eligible` a PIM eligibility (same shape: principalId, roleDefinition)."""
    return Role(id=str(d.get("roleDefinitionId") or role_template(d)), display_name=role_name(d),
                is_privileged=is_privileged_role(role_template(d)), via_group=via_group, eligible=eligible)


def role_usage(assignments: Iterable[Json]) -> tuple[RoleUsage, ...]:
    counts: Counter[str] = Counter()
    privileged: dict[str, bool] = {}
    for a in assignments:
        name = role_name(a)
        counts[name] += 1
        privileged[name] = is_privileged_role(role_template(a))
    return tuple(RoleUsage(name, n, privileged[name]) for name, n in counts.most_common())


# --- sign-ins --------------------------------------------------------------------------------------------
def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _shared(text: str | None) -> str | None:
    """A short, often repeated string (a city, a browser) interned: one copy however many objects name it."""
    return sys.intern(text) if text else text


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def sign_in(d: Json) -> SignIn | None:
    at = timestamp(d.get("createdDateTime"))
    if at is None:
        return None
    location, device, status = _obj(d, "location"), _obj(d, "deviceDetail"), _obj(d, "status")
    coords = _obj(location, "geoCoordinates")
    compliant, managed = device.get("isCompliant"), device.get("isManaged")
    # A person's sign-ins repeat the same few places, devices and reasons, and they are kept for minutes (the
    # sign-in cache, graph/context_loader.py): each such string once, not once per sign-in.
    return SignIn(
        at=at, ip=_str(d, "ipAddress"), city=_shared(_str(location, "city")) or None,
        country_code=_shared(_str(location, "countryOrRegion")) or None,
        os=_shared(_str(device, "operatingSystem")) or None, browser=_shared(_str(device, "browser")) or None,
        error_code=_int(status.get("errorCode")), failure_reason=_shared(_str(status, "failureReason")),
        risk_level=sys.intern(str(d.get("riskLevelDuringSignIn") or "none")),
        risk_state=sys.intern(str(d.get("riskState") or "none")),
        compliant=compliant if isinstance(compliant, bool) else None,
        managed=managed if isinstance(managed, bool) else None,
        interactive=d.get("isInteractive") is not False,
        latitude=_float(coords.get("latitude")), longitude=_float(coords.get("longitude")))
