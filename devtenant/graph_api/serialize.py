"""devtenant's records -> Graph's JSON for directory objects (users, groups, roles, the tenant).

`user_json(user)` (or the lazy `UserView(user)`, for filtering many) and `group_json(group)` give
every property devtenant serves, in Graph's names and formats; handlers narrow them with
`odata.select` and Graph's default property sets, and `render_user` / `render_directory_object`
also apply what the caller's permissions let it see:

* User.ReadBasic.All alone shows only the basic profile (`USER_BASIC`); other properties are null.
* In a collection of directory objects (members, memberOf...), an object of a type the app may
  not read comes back with only `@odata.type` and `id`, its other properties null (Graph's
  "limited information").

The model's `is_service_account` is ground truth for tests and is never served: a service account
is a user like any other here, as in Entra.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from devtenant.graph_api.odata import iso, project, select, selected
from devtenant.graph_api.router import GraphRequest
from devtenant.graph_api.wire import GRAPH_APP_ID
from devtenant.model import Domain, Group, GroupKind, Org, RoleDefinition, User
from devtenant.state import DevTenantState

# --- permissions that let an app read each type (application permissions) -----------------------
DIRECTORY_READ = ("Directory.Read.All", "Directory.ReadWrite.All")
USER_READ_FULL = ("User.Read.All", "User.ReadWrite.All", *DIRECTORY_READ)
USER_READ = ("User.ReadBasic.All", *USER_READ_FULL)
GROUP_READ = ("Group.Read.All", "Group.ReadWrite.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All",
              *DIRECTORY_READ)
ROLE_READ = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory",
             *DIRECTORY_READ)

# --- users ---------------------------------------------------------------------------------------
USER_TYPE = "microsoft.graph.user"
# What GET /users returns without $select (Graph's default set).
USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
# What User.ReadBasic.All may read.
USER_BASIC = frozenset({"id", "displayName", "givenName", "surname", "mail", "userPrincipalName"})


def security_identifier(object_id: str) -> str:
    """Entra's SID for a cloud object: S-1-12-1- and the object id's four little-endian words."""
    words = struct.unpack("<IIII", uuid.UUID(object_id).bytes_le)
    return "S-1-12-1-" + "-".join(str(w) for w in words)


def _sid(object_id: str) -> str | None:
    try:
        return security_identifier(object_id)
    except ValueError:  # hand-made ids that are not GUIDs
        return None


def _local(user: User) -> str:
    return user.user_principal_name.partition("@")[0]


def _domain(user: User) -> str:
    return user.user_principal_name.partition("@")[2]


def _if_synced(value: Callable[[User], Any]) -> Callable[[User], Any]:
    return lambda u: value(u) if u.on_premises_sync_enabled else None


def _none(user: User) -> None:
    return None


def _empty(user: User) -> list[Any]:
    return []


# Every property of a user devtenant serves, in Graph's names (passwordProfile is always null, as in Graph).
_USER_FIELDS: dict[str, Callable[[User], Any]] = {
    "id": lambda u: u.id,
    "deletedDateTime": _none,
    "accountEnabled": lambda u: u.account_enabled,
    "ageGroup": _none,
    "assignedLicenses": _empty,
    "businessPhones": lambda u: list(u.business_phones),
    "city": lambda u: u.city,
    "companyName": _none,
    "consentProvidedForMinor": _none,
    "country": lambda u: u.country,
    "createdDateTime": lambda u: iso(u.created_date_time),
    "creationType": _none,
    "department": lambda u: u.department,
    "displayName": lambda u: u.display_name,
    "employeeHireDate": _none,
    "employeeId": lambda u: u.employee_id,
    "employeeType": _none,
    "externalUserState": _none,
    "externalUserStateChangeDateTime": _none,
    "faxNumber": _none,
    "givenName": lambda u: u.given_name,
    "identities": lambda u: [{"signInType": "userPrincipalName", "issuer": _domain(u),
                              "issuerAssignedId": u.user_principal_name}],
    "imAddresses": _empty,
    "isResourceAccount": _none,
    "jobTitle": lambda u: u.job_title,
    "lastPasswordChangeDateTime": lambda u: iso(u.last_password_change_date_time),
    "legalAgeGroupClassification": _none,
    "mail": lambda u: u.mail,
    "mailNickname": _local,
    "mobilePhone": lambda u: u.mobile_phone,
    "officeLocation": lambda u: u.office_location,
    "onPremisesDistinguishedName": _none,
    "onPremisesDomainName": _if_synced(_domain),
    "onPremisesImmutableId": lambda u: u.on_premises_immutable_id,
    "onPremisesLastSyncDateTime": _none,
    "onPremisesSamAccountName": _if_synced(_local),
    "onPremisesSecurityIdentifier": _none,
    "onPremisesSyncEnabled": lambda u: u.on_premises_sync_enabled,
    "onPremisesUserPrincipalName": _if_synced(lambda u: u.user_principal_name),
    "otherMails": _empty,
    "passwordPolicies": _none,
    "passwordProfile": _none,
    "postalCode": _none,
    "preferredDataLocation": _none,
    "preferredLanguage": _none,
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.mail else [],
    "securityIdentifier": lambda u: _sid(u.id),
    "showInAddressList": _none,
    "signInSessionsValidFromDateTime": lambda u: iso(u.last_password_change_date_time),
    "state": _none,
    "streetAddress": _none,
    "surname": lambda u: u.surname,
    "usageLocation": lambda u: u.usage_location,
    "userPrincipalName": lambda u: u.user_principal_name,
    "userType": lambda u: u.user_type,
}
USER_PROPERTIES = tuple(_USER_FIELDS)


class UserView(Mapping[str, Any]):
    """A user's Graph JSON, each property computed when read: $filter, $search, $orderby and $select
    over thousands of users touch only the properties they name."""

    __slots__ = ("user", "typed")

    def __init__(self, user: User, *, typed: bool = False) -> None:
        self.user = user
        self.typed = typed

    def __getitem__(self, key: str) -> Any:
        if key == "@odata.type" and self.typed:
            return f"#{USER_TYPE}"
        return _USER_FIELDS[key](self.user)

    def __iter__(self) -> Iterator[str]:
        if self.typed:
            yield "@odata.type"
        yield from _USER_FIELDS

    def __len__(self) -> int:
        return len(_USER_FIELDS) + self.typed

    def key_names(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """{name.lower(): name} over this view's keys and its annotations, in their order (for odata.project)."""
        return _USER_KEY_NAMES[self.typed]


def _key_names_of(view: UserView) -> tuple[dict[str, str], tuple[str, ...]]:
    by_lower = {key.lower(): key for key in view}
    return by_lower, tuple(key for key in by_lower.values() if key.startswith("@"))


_USER_KEY_NAMES = {typed: _key_names_of(UserView(None, typed=typed)) for typed in (False, True)}  # type: ignore[arg-type]


def user_json(user: User, *, typed: bool = False) -> dict[str, Any]:
    """Every property of a user that devtenant serves, as a dict."""
    return dict(UserView(user, typed=typed))


_SAMPLE_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_NIL = "00000000-0000-0000-0000-000000000000"


def mask_user(obj: dict[str, Any], roles: Collection[str]) -> dict[str, Any]:
    """Null what the caller's permissions do not let it read (basic-only, or nothing: limited info)."""
    if any(r in roles for r in USER_READ_FULL):
        return obj
    visible = USER_BASIC if any(r in roles for r in USER_READ) else frozenset({"id"})
    return {k: (v if k.startswith("@") or k in visible else None) for k, v in obj.items()}


def render_user(user: User, req: GraphRequest, *, default: Sequence[str] | None = USER_DEFAULT,
                names: Sequence[str] | None = None, typed: bool = False) -> dict[str, Any]:
    """One user as the caller may see it: $select (or explicit `names`, e.g. from $expand's own
    $select), else `default` (None: every property); masked by the caller's permissions."""
    view = UserView(user, typed=typed)
    obj = (project(view, names, type_name=USER_TYPE) if names is not None
           else select(view, req, default, type_name=USER_TYPE))
    return mask_user(obj, req.roles)


# --- groups --------------------------------------------------------------------------------------
GROUP_TYPE = "microsoft.graph.group"


def group_json(group: Group, *, typed: bool = False) -> dict[str, Any]:
    created = iso(group.created_date_time)
    out: dict[str, Any] = {"@odata.type": f"#{GROUP_TYPE}"} if typed else {}
    out.update({
        "id": group.id,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": created,
        "creationOptions": [],
        "description": group.description,
        "displayName": group.display_name,
        "expirationDateTime": None,
        "groupTypes": list(group.group_types),
        "isAssignableToRole": group.is_assignable_to_role,
        "mail": group.mail,
        "mailEnabled": group.mail_enabled,
        "mailNickname": group.mail_nickname,
        "membershipRule": None,
        "membershipRuleProcessingState": None,
        "onPremisesDomainName": None,
        "onPremisesLastSyncDateTime": None,
        "onPremisesNetBiosName": None,
        "onPremisesSamAccountName": None,
        "onPremisesSecurityIdentifier": None,
        "onPremisesSyncEnabled": None,
        "preferredDataLocation": None,
        "preferredLanguage": None,
        "proxyAddresses": [f"SMTP:{group.mail}"] if group.mail else [],
        "renewedDateTime": created,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": group.security_enabled,
        "securityIdentifier": _sid(group.id),
        "theme": None,
        "visibility": group.visibility,
        "onPremisesProvisioningErrors": [],
        "serviceProvisioningErrors": [],
    })
    return out


GROUP_PROPERTIES = tuple(group_json(Group("00000000-0000-0000-0000-000000000000", "", None, GroupKind.SECURITY,
                                         "", None, None, False, datetime(2000, 1, 1, tzinfo=UTC), [])))


# --- directory roles -----------------------------------------------------------------------------
ROLE_TYPE = "microsoft.graph.directoryRole"
ROLE_PROPERTIES = ("id", "deletedDateTime", "description", "displayName", "roleTemplateId")


def directory_role_id(tenant_id: str, template_id: str) -> str:
    """An activated role's object id in this tenant (Entra gives each tenant its own), stable per tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/directoryRoles/{template_id}"))


def directory_role_json(org: Org, role: RoleDefinition) -> dict[str, Any]:
    return {
        "@odata.type": f"#{ROLE_TYPE}",
        "id": directory_role_id(org.tenant_id, role.id),
        "deletedDateTime": None,
        "description": role.description,
        "displayName": role.display_name,
        "roleTemplateId": role.id,
    }


# --- any directory object, as seen by the caller -------------------------------------------------
DIRECTORY_OBJECT_PROPERTIES = frozenset(USER_PROPERTIES) | frozenset(GROUP_PROPERTIES) | frozenset(ROLE_PROPERTIES)
_READERS = {USER_TYPE: USER_READ, GROUP_TYPE: GROUP_READ, ROLE_TYPE: ROLE_READ}


def limited(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Graph's "limited information": the type and id; every other property null."""
    return {k: (v if k.startswith("@") or k == "id" else None) for k, v in obj.items()}


def render_directory_object(obj: User | Group | RoleDefinition, req: GraphRequest, org: Org, *,
                            user_default: Sequence[str] | None = USER_DEFAULT,
                            names: Sequence[str] | None = None, strict: bool = False) -> dict[str, Any]:
    """A member of a directoryObject collection, typed, selected and masked for the caller.

    In such collections $select may name properties of any member type (`strict=False`: an object
    lacking one simply omits it); validate the names first with `odata.check_select`.
    """
    full: Mapping[str, Any]
    if isinstance(obj, User):
        full, type_name, default = UserView(obj, typed=True), USER_TYPE, user_default
    elif isinstance(obj, Group):
        full, type_name, default = group_json(obj, typed=True), GROUP_TYPE, None
    else:
        full, type_name, default = directory_role_json(org, obj), ROLE_TYPE, None
    wanted = names if names is not None else selected(req)
    out = project(full, wanted if wanted is not None else default, type_name=type_name, strict=strict)
    if not any(r in req.roles for r in _READERS[type_name]):
        return limited(out)
    return mask_user(out, req.roles) if type_name == USER_TYPE else out


# --- the tenant ----------------------------------------------------------------------------------
def _initial(domain: Domain) -> bool:
    return domain.id.lower().endswith(".onmicrosoft.com")


def organization_json(org: Org) -> dict[str, Any]:
    country = next((u.usage_location for u in org.users.values() if u.usage_location), None)
    return {
        "id": org.tenant_id,
        "deletedDateTime": None,
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": country,
        "createdDateTime": iso(min((u.created_date_time for u in org.users.values()), default=org.now)),
        "displayName": org.display_name,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": None,
        "onPremisesSyncEnabled": True if any(u.on_premises_sync_enabled for u in org.users.values()) else None,
        "postalCode": None,
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": None,
        "street": None,
        "technicalNotificationMails": [],
        "tenantType": "AAD",
        "assignedPlans": [],
        "privacyProfile": None,
        "provisionedPlans": [],
        "verifiedDomains": [
            {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": d.is_default,
             "isInitial": _initial(d), "name": d.id, "type": d.authentication_type}
            for d in org.domains if d.is_verified
        ],
    }


def domain_json(domain: Domain) -> dict[str, Any]:
    return {
        "id": domain.id,
        "authenticationType": domain.authentication_type,
        "availabilityStatus": None,
        "isAdminManaged": True,
        "isDefault": domain.is_default,
        "isInitial": _initial(domain),
        "isRoot": True,
        "isVerified": domain.is_verified,
        "passwordNotificationWindowInDays": 14,
        "passwordValidityPeriodInDays": 2147483647,
        "supportedServices": ["Email", "OfficeCommunicationsOnline"] if domain.is_verified else [],
        "state": None,
    }


# --- service principals --------------------------------------------------------------------------
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # the tenant Microsoft's own apps live in


def _service_principal(*, object_id: str, app_id: str, name: str, owner_tenant: str,
                       names: Sequence[str], audience: str) -> dict[str, Any]:
    return {
        "id": object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDescription": None,
        "appDisplayName": name,
        "appId": app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": owner_tenant,
        "appRoleAssignmentRequired": False,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "replyUrls": [],
        "servicePrincipalNames": list(names),
        "servicePrincipalType": "Application",
        "signInAudience": audience,
        "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
        "appRoles": [],
        "oauth2PermissionScopes": [],
        "keyCredentials": [],
        "passwordCredentials": [],
    }


def service_principals(state: DevTenantState) -> list[dict[str, Any]]:
    """The tenant's service principals devtenant knows: Watchword's (state.sp_object_id) and Graph's."""
    app = state.app
    return [
        _service_principal(object_id=state.sp_object_id, app_id=app.client_id, name=app.display_name,
                           owner_tenant=str(uuid.uuid5(uuid.NAMESPACE_URL, f"publisher/{app.client_id}")),
                           names=[app.client_id], audience="AzureADMultipleOrgs"),
        _service_principal(object_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{state.tenant_id}/sp/graph")),
                           app_id=GRAPH_APP_ID, name="Microsoft Graph", owner_tenant=MICROSOFT_TENANT_ID,
                           names=[GRAPH_APP_ID, "https://graph.microsoft.com", "https://graph.microsoft.com/",
                                  "https://canary.graph.microsoft.com", "https://dod-graph.microsoft.us"],
                           audience="AzureADMultipleOrgs"),
    ]
