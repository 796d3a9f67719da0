"""Sign-in logs: `GET /auditLogs/signIns`, the most throttled API Watchword calls.

* Needs AuditLog.Read.All AND Directory.Read.All (403 Authentication_MSGraphPermissionMissing).
* Reports throttle: 5 requests per 10 s per app per tenant; the sixth gets 429 with Retry-After.
  Checked here, in the handler, so `$batch` items count too.
* Newest first (or `$orderby=createdDateTime [asc|desc]`); default and maximum page 1000; 30 days kept.
* `$filter` only with the operators Microsoft documents for each property of the signIn resource ("Supports
  $filter (eq)" for userId; `eq, le, ge` for createdDateTime; `eq, startsWith` for userPrincipalName...: see
  SIGN_IN_OPERATORS), joined with `and`. Anything else is 400 Request_UnsupportedQuery: `userId in (...)`,
  `userId eq 'a' or userId eq 'b'`, `ne`, `not`, `createdDateTime gt`. Microsoft may accept some of these in
  practice, but a client that relied on what is not documented would break silently when it changes, so the
  stand-in refuses it. A `userId eq` or `userPrincipalName eq` conjunct narrows the scan to that user; without
  one every user's log is merged, newest first (slow on big orgs, but right).
* The generator's ground truth (`SignIn.anomaly`) is never served.
"""

from __future__ import annotations

import heapq
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from devtenant.graph_api import odata
from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router
from devtenant.graph_api.throttling import check_reports_limit
from devtenant.model import Org, SignIn, User

REQUIRED = ("AuditLog.Read.All", "Directory.Read.All")
RETENTION = timedelta(days=30)
# learn.microsoft.com/graph/api/resources/signin (v1.0), each property's "Supports $filter (...)"; the same text is
# in msgraph-sdk's generated model (msgraph/generated/models/sign_in.py).
SIGN_IN_OPERATORS: dict[str, tuple[str, ...]] = {
    "appDisplayName": ("eq", "startswith"), "appId": ("eq",), "clientAppUsed": ("eq",),
    "conditionalAccessStatus": ("eq",), "correlationId": ("eq",), "createdDateTime": ("eq", "le", "ge"),
    "deviceDetail/browser": ("eq", "startswith"), "deviceDetail/operatingSystem": ("eq", "startswith"),
    "ipAddress": ("eq", "startswith"), "location/city": ("eq", "startswith"), "location/state": ("eq", "startswith"),
    "location/countryOrRegion": ("eq", "startswith"), "resourceDisplayName": ("eq",), "resourceId": ("eq",),
    "riskDetail": ("eq",), "riskLevelAggregated": ("eq",), "riskLevelDuringSignIn": ("eq",), "riskState": ("eq",),
    "status/errorCode": ("eq",), "userDisplayName": ("eq", "startswith"), "userId": ("eq",),
    "userPrincipalName": ("eq", "startswith"),
}
SIGN_IN_RULES = odata.FilterRules(properties={p.split("/")[0] for p in SIGN_IN_OPERATORS}, resource="signIn",
                                  functions=("startswith",), operators=SIGN_IN_OPERATORS, logical=("and",))

# Well-known first-party application ids, so appId looks like the real thing.
_APP_IDS = {
    "Microsoft Teams": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    "Microsoft Teams Web Client": "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",
    "Office 365": "4765445b-32c6-49b0-83e6-1d93765276ca",
    "OfficeHome": "4765445b-32c6-49b0-83e6-1d93765276ca",
    "Microsoft Office": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
    "Office 365 Exchange Online": "00000002-0000-0ff1-ce00-000000000000",
    "Outlook Mobile": "27922004-5251-4030-b22d-91ecd9a37ea4",
    "Microsoft Outlook": "5d661950-3475-41cd-a2c3-d671a3162bc1",
    "Azure Portal": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "My Signins": "19db86c3-b2b9-44cc-b339-36da233a3be2",
    "Microsoft Authenticator App": "4813382a-8fa7-425e-ab75-3b753aab3abb",
    "OneDrive SyncEngine": "ab9b8c07-8f02-4f72-87fa-80105867a763",
    "SharePoint Online Web Client Extensibility": "08e18876-6177-487e-b8b5-cf950c1e598c",
}
_RESOURCES = {
    "Microsoft Teams": "Microsoft Teams Services",
    "Office 365": "Office 365 SharePoint Online",
    "Microsoft Outlook": "Office 365 Exchange Online",
    "Outlook Mobile": "Office 365 Exchange Online",
}
_FAILURE_DETAILS = {
    50126: "The user didn't enter the right credentials. It's expected to see some number of these errors in "
           "your logs due to users making mistakes.",
    50053: "The account is locked, you've tried to sign in too many times with an incorrect user ID or "
           "password.",
    50074: "The user didn't complete the MFA prompt. They may have decided not to authenticate, timed out "
           "while doing other work, or has an issue with their authenticator app.",
    53003: "Access has been blocked by Conditional Access policies. The access policy does not allow token "
           "issuance.",
}
# Approximate coordinates for cities the generator uses; others come back without coordinates.
_CITY_COORDINATES = {
    "London": (51.5072, -0.1276), "Manchester": (53.4808, -2.2426), "Edinburgh": (55.9533, -3.1883),
    "Dublin": (53.3498, -6.2603), "Paris": (48.8566, 2.3522), "Berlin": (52.52, 13.405),
    "Amsterdam": (52.3676, 4.9041), "Madrid": (40.4168, -3.7038), "New York": (40.7128, -74.006),
    "Seattle": (47.6062, -122.3321), "San Francisco": (37.7749, -122.4194), "Toronto": (43.6532, -79.3832),
    "Sydney": (-33.8688, 151.2093), "Singapore": (1.3521, 103.8198), "Tokyo": (35.6762, 139.6503),
    "Mumbai": (19.076, 72.8777), "Bangalore": (12.9716, 77.5946), "Lagos": (6.5244, 3.3792),
    "Moscow": (55.7558, 37.6173), "Beijing": (39.9042, 116.4074), "São Paulo": (-23.5558, -46.6396),
}


def register(router: Router) -> None:
    # Permissions are checked in the handler: Graph's reports API has its own error code.
    router.route("GET", "/auditLogs/signIns", permissions=())(list_sign_ins)
    router.route("GET", "/auditLogs/signIns/{sign_in_id}", permissions=())(get_sign_in)


def _require(req: GraphRequest) -> None:
    missing = [p for p in REQUIRED if p not in req.roles]
    if missing:
        raise GraphError(403, "Authentication_MSGraphPermissionMissing",
                         f"Calling principal does not have required MSGraph permissions {','.join(missing)}")
    if not req.state.config.entra_id_p1:
        raise GraphError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                         "Neither tenant is B2C or tenant doesn't have premium license")


def _device_id(sign_in: SignIn, user: User) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{user.id}/{sign_in.operating_system}")) if sign_in.is_managed else ""


def _failed(sign_in: SignIn) -> bool:
    return sign_in.error_code != 0


def _risk_events(sign_in: SignIn, user: User) -> list[str]:
    return ["unfamiliarFeatures"] if sign_in.risk_level_during_sign_in not in ("none", "hidden") else []


def _device_detail(sign_in: SignIn, user: User) -> dict[str, Any]:
    managed, device_id = sign_in.is_managed, _device_id(sign_in, user)
    return {
        "deviceId": device_id,
        "displayName": f"{user.given_name or 'PC'}-{device_id[:6].upper()}" if managed else "",
        "operatingSystem": sign_in.operating_system,
        "browser": sign_in.browser,
        "isCompliant": sign_in.is_compliant,
        "isManaged": managed,
        "trustType": "Azure AD joined" if managed else "",
    }


def _location(sign_in: SignIn, user: User) -> dict[str, Any]:
    coords = _CITY_COORDINATES.get(sign_in.city)
    return {
        "city": sign_in.city,
        "state": sign_in.state,
        "countryOrRegion": sign_in.country_or_region,
        "geoCoordinates": {"altitude": None, "latitude": coords[0], "longitude": coords[1]}
        if coords else {"altitude": None, "latitude": None, "longitude": None},
    }


# Every property of a sign-in, in the order Graph sends them: (sign-in, its user) -> value.
_SIGN_IN_FIELDS: dict[str, Any] = {
    "id": lambda s, u: s.id,
    "createdDateTime": lambda s, u: odata.iso(s.created_date_time),
    "userDisplayName": lambda s, u: u.display_name,
    "userPrincipalName": lambda s, u: u.user_principal_name,
    "userId": lambda s, u: u.id,
    "appId": lambda s, u: _APP_IDS.get(s.app_display_name,
                                       str(uuid.uuid5(uuid.NAMESPACE_URL, f"app:{s.app_display_name}"))),
    "appDisplayName": lambda s, u: s.app_display_name,
    "ipAddress": lambda s, u: s.ip_address,
    "clientAppUsed": lambda s, u: s.client_app_used,
    "correlationId": lambda s, u: str(uuid.uuid5(uuid.NAMESPACE_URL, f"correlation:{s.id}")),
    "conditionalAccessStatus": lambda s, u: s.conditional_access_status,
    "isInteractive": lambda s, u: s.is_interactive,
    "riskDetail": lambda s, u: "none",
    "riskLevelAggregated": lambda s, u: s.risk_level_during_sign_in,
    "riskLevelDuringSignIn": lambda s, u: s.risk_level_during_sign_in,
    "riskState": lambda s, u: s.risk_state,
    "riskEventTypes": _risk_events,
    "riskEventTypes_v2": _risk_events,
    "resourceDisplayName": lambda s, u: _RESOURCES.get(s.app_display_name, "Microsoft Graph"),
    "resourceId": lambda s, u: "00000003-0000-0000-c000-000000000000",
    "status": lambda s, u: {
        "errorCode": s.error_code,
        "failureReason": s.failure_reason if _failed(s) else "Other.",
        "additionalDetails": _FAILURE_DETAILS.get(s.error_code) if _failed(s) else None,
    },
    "deviceDetail": _device_detail,
    "location": _location,
    "appliedConditionalAccessPolicies": lambda s, u: [],
}
_SIGN_IN_KEY_NAMES = ({k.lower(): k for k in _SIGN_IN_FIELDS}, ())


class SignInView(Mapping[str, Any]):
    """A sign-in's Graph JSON, each property worked out when first read: a month of someone's sign-ins is
    filtered on userId and createdDateTime and projected on $select, so the rest (uuid5 ids...) is never built.
    Read-only, as a request's."""

    __slots__ = ("sign_in", "user", "values")

    def __init__(self, sign_in: SignIn, user: User) -> None:
        self.sign_in, self.user = sign_in, user
        self.values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            value = self.values[key] = _SIGN_IN_FIELDS[key](self.sign_in, self.user)  # KeyError: no such property
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(_SIGN_IN_FIELDS)

    def __len__(self) -> int:
        return len(_SIGN_IN_FIELDS)

    def key_names(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return _SIGN_IN_KEY_NAMES


def sign_in_json(sign_in: SignIn, user: User) -> dict[str, Any]:
    """Every property of a sign-in, as a dict."""
    return dict(SignInView(sign_in, user))


_USER_CLAUSE = re.compile(r"\b(userId|userPrincipalName)\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


def _users_in_scope(org: Org, flt: str | None) -> list[User]:
    """The users a filter can match: one when it pins userId/userPrincipalName in a pure conjunction."""
    if flt:
        unquoted = re.sub(r"'(?:[^']|'')*'", "''", flt)
        if not re.search(r"\bor\b|\bnot\b", unquoted, re.IGNORECASE):
            m = _USER_CLAUSE.search(flt)
            if m:
                user = org.user(m.group(2).replace("''", "'"))
                return [user] if user else []
    return list(org.users.values())


def _log_of(org: Org, user: User) -> Iterator[tuple[SignIn, User]]:
    """One user's retained sign-ins, newest first (sorted here: the merge must not trust the source)."""
    cutoff = org.now - RETENTION
    log = sorted(org.sign_ins_of(user.id), key=lambda s: s.created_date_time, reverse=True)
    for sign_in in log:
        if sign_in.created_date_time < cutoff:
            return
        yield sign_in, user


def _newest_first(org: Org, users: Iterable[User]) -> Iterator[tuple[SignIn, User]]:
    return heapq.merge(*(_log_of(org, u) for u in users), key=lambda pair: pair[0].created_date_time,
                       reverse=True)


async def list_sign_ins(req: GraphRequest) -> GraphResponse:
    _require(req)
    check_reports_limit(req)
    org = req.state.org
    flt = req.query.get("$filter")
    predicate = odata.parse_filter(flt, SIGN_IN_RULES) if flt else None
    items = []
    for sign_in, user in _newest_first(org, _users_in_scope(org, flt)):
        item = SignInView(sign_in, user)
        if predicate is None or predicate(item):
            items.append(item)
    orderby = " ".join(req.query.get("$orderby", "").split()).lower()
    if orderby in ("createddatetime", "createddatetime asc"):
        items.reverse()
    elif orderby not in ("", "createddatetime desc"):
        raise GraphError(400, "BadRequest", f"Invalid $orderby '{req.query['$orderby']}': sign-ins sort only by "
                         "createdDateTime.")
    return odata.page(req, items, default_size=1000, max_size=1000, context="auditLogs/signIns",
                      directory=False, render=lambda item: odata.select(item, req, type_name="microsoft.graph.signIn"))


async def get_sign_in(req: GraphRequest) -> GraphResponse:
    _require(req)
    check_reports_limit(req)
    org = req.state.org
    wanted = req.params["sign_in_id"]
    for user in org.users.values():
        for sign_in, owner in _log_of(org, user):
            if sign_in.id == wanted:
                body = {"@odata.context": f"{req.base_url}/$metadata#auditLogs/signIns/$entity",
                        **sign_in_json(sign_in, owner)}
                return GraphResponse(body=odata.select(body, req, type_name="microsoft.graph.signIn"))
    raise GraphError(404, "ResourceNotFound", f"Sign-in '{wanted}' was not found.")
