"""The directory as the rest of Watchword sees it: one `Directory` protocol, its results and its errors.

dialogs/ and admin/ depend on this module only; `graph.graph_directory.GraphDirectory` implements it over
Microsoft Graph (and so over devtenant in demo mode and tests). Results are the project's own frozen
dataclasses (`verification.context` for what a verification needs); never msgraph-sdk models.

Errors form one small hierarchy: `DirectoryError` and below. Their messages are safe to log and to show an
agent: they never hold tokens, secrets or temporary passwords.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from graph.batch import Deadline
from graph.passwords import TemporaryPassword
from verification.context import OrgKnowledge, Person, SignIn, Source, UserContext

__all__ = [
    "SIGN_INS_PENDING", "ConnectionCheck", "Deadline", "SignInRead",
    "Directory", "DirectoryError", "DirectoryUser", "GraphUnavailable",
    "GroupNotFound", "GroupTooLarge", "LoadedContext", "PermissionStatus", "ResetOutcomeUnknown", "ResetRefusal",
    "ResetRefused",
    "SyncPage",
    "TemporaryPassword", "Unavailability", "UserNotFound",
]


# --- errors ----------------------------------------------------------------------------------------------
class DirectoryError(Exception):
    """Something about the directory went wrong; the message is plain and safe to show."""


class UserNotFound(DirectoryError):
    def __init__(self, user_id: str):
        super().__init__(f"No user {user_id} in the directory.")
        self.user_id = user_id


class GroupNotFound(DirectoryError):
    def __init__(self, group_id: str):
        super().__init__(f"No group {group_id} in the directory.")
        self.group_id = group_id


class GroupTooLarge(DirectoryError):
    """The group has more users than the caller was willing to read (`at_most`)."""

    def __init__(self, group_id: str, at_most: int):
        super().__init__(f"Group {group_id} has more than {at_most} users.")
        self.group_id = group_id
        self.at_most = at_most


class Unavailability(StrEnum):
    """Why Graph did not answer, as a type callers can branch on (never an English sentence)."""

    UNREACHABLE = "unreachable"  # no connection to Graph or the identity platform
    TIMED_OUT = "timed_out"  # no answer within the budget (the request may still be running)
    THROTTLED = "throttled"  # 429 (or 503) through every retry the budget allowed
    REFUSED = "refused"  # 401/403, or the identity platform refused a token: a configuration problem
    FAILED = "failed"  # any other error answer
    BUSY = "busy"  # Watchword's own connections to Graph were all in use (its load, not Graph's): try again soon


class GraphUnavailable(DirectoryError):
    """Graph (or the identity platform) could not answer: `reason` says why in words ("throttled", "timed out",
    "403: User.Read.All not granted", "no token: invalid_client"), `cause` as an `Unavailability`."""

    def __init__(self, reason: str, cause: Unavailability = Unavailability.FAILED):
        super().__init__(f"Microsoft Graph is unavailable: {reason}")
        self.reason = reason
        self.cause = cause

    @property
    def outage(self) -> bool:
        """Graph could not be asked or did not answer in time: a retry later may well succeed."""
        return self.cause in (Unavailability.UNREACHABLE, Unavailability.TIMED_OUT, Unavailability.THROTTLED,
                              Unavailability.BUSY)


class GraphHttpError(GraphUnavailable):
    """A Graph error answer to a direct request; `status` and `code` let callers react to specific ones."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason, cause_of_status(status))
        self.status = status
        self.code = code


def cause_of_status(status: int) -> Unavailability:
    """The kind of unavailability an HTTP error status from Graph means."""
    if status in (401, 403):
        return Unavailability.REFUSED
    if status in (429, 503):
        return Unavailability.THROTTLED
    if status == 504:
        return Unavailability.TIMED_OUT
    return Unavailability.FAILED


def no_token(code: str) -> GraphUnavailable:
    """No token: the identity platform could not be reached ("unreachable"), or it refused one (consent,
    secret, tenant): `code` is the identity platform's error code (graph.tokens.TokenError.code)."""
    return GraphUnavailable(f"no token: {code}",
                            Unavailability.UNREACHABLE if code == "unreachable" else Unavailability.REFUSED)


class ResetRefusal(StrEnum):
    PRIVILEGED = "privileged_admin"  # holds a privileged directory role: never reset through the helpdesk
    ROLE_ASSIGNABLE_GROUP = "role_assignable_group"  # member of a role-assignable group
    FEDERATED = "federated"  # the password lives on-premises (synced / federated domain)
    NOT_FOUND = "not_found"
    APP_LACKS_ROLE = "app_lacks_directory_role"  # Watchword's service principal holds no reset role
    APP_LACKS_PERMISSION = "app_lacks_permission"  # User-PasswordProfile.ReadWrite.All not consented
    GUEST = "guest"  # a B2B guest: their password belongs to their home organisation
    DISABLED = "account_disabled"  # a disabled account: nobody should be signing in with it


_REFUSAL_TEXT = {
    ResetRefusal.PRIVILEGED: "the account holds an administrator role; privileged accounts are never reset "
                             "through the helpdesk",
    ResetRefusal.ROLE_ASSIGNABLE_GROUP: "the account is in a role-assignable group; only privileged "
                                        "administrators may reset it",
    ResetRefusal.FEDERATED: "the account's password is managed on-premises (synced or federated); reset it "
                            "in Active Directory",
    ResetRefusal.NOT_FOUND: "the account does not exist in the directory",
    ResetRefusal.APP_LACKS_ROLE: "Watchword's app holds no directory role that may reset passwords; an "
                                 "administrator must assign it one (e.g. Helpdesk Administrator)",
    ResetRefusal.APP_LACKS_PERMISSION: "the tenant has not granted Watchword User-PasswordProfile.ReadWrite.All",
    ResetRefusal.GUEST: "the account is a guest from another organisation; its password is managed there",
    ResetRefusal.DISABLED: "the account is disabled; an administrator must decide whether to enable it first",
}


class ResetOutcomeUnknown(GraphUnavailable):
    """The password change was sent and no answer says whether Entra applied it (timed out, the connection
    dropped mid-request, a server error): the password may have changed, and nobody has it."""


class ResetRefused(DirectoryError):
    def __init__(self, reason: ResetRefusal, detail: str = ""):
        text = _REFUSAL_TEXT[reason] + (f" ({detail})" if detail else "")
        super().__init__(f"Password reset refused: {text}.")
        self.reason = reason
        self.detail = detail


# --- results ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """One user as `/users/delta` reports it (what store/ keeps as a protected user)."""

    id: str
    display_name: str
    upn: str
    given_name: str | None = None
    surname: str | None = None
    mail: str | None = None
    job_title: str | None = None
    department: str | None = None
    account_enabled: bool = True
    on_premises_sync_enabled: bool = False
    user_type: str = "Member"


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One page of a `/users/delta` round. Exactly one of `next_link` (more pages follow) and `delta_link`
    (the round is complete: store it for the next one) is set. `restarted` is True on the first page after
    the stored link was refused (expired or invalid token): the round started over from scratch, so the
    caller should treat it as a full enumeration."""

    users: tuple[DirectoryUser, ...]
    removed_ids: tuple[str, ...]
    next_link: str | None
    delta_link: str | None
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class SignInRead:
    """A target's recent sign-ins as read in the background: `unavailable` says why they could not be (then
    `sign_ins` is empty), as `UserContext.unavailable` would."""

    sign_ins: tuple[SignIn, ...]
    unavailable: str | None = None


SIGN_INS_PENDING = "still being read"  # UserContext.unavailable["sign_ins"] while the logs are on their way


@dataclass(frozen=True, slots=True)
class LoadedContext:
    """What `load_context` read. `round_trips`: sequential rounds of Graph requests (parallel $batch chunks of
    one round count once); `requests`: HTTP requests sent; `cached`: tenant-wide or sign-in data reused;
    `incomplete`: sources whose later pages failed (the first ones arrived and are used)."""

    context: UserContext
    org: OrgKnowledge
    round_trips: int
    requests: int
    elapsed_ms: float
    cached: tuple[str, ...] = ()
    incomplete: tuple[str, ...] = ()
    # Sign-in logs are slow (seconds): they are read in the background, never on the way to the first question.
    # Set when they were not cached: `context.unavailable["sign_ins"]` is SIGN_INS_PENDING (so a risk weighed now
    # applies the "sign-ins unavailable" rule) and awaiting this gives the read's outcome, within its own deadline.
    sign_ins_later: Callable[[], Awaitable[SignInRead]] | None = field(default=None, compare=False)
    # While that read waits for the tenant's reports budget: `hurry_sign_ins()` puts it ahead of the reads no decision
    # waits for yet (this one's does now); `drop_sign_ins()` gives it up (its verification ended without it).
    hurry_sign_ins: Callable[[], None] | None = field(default=None, compare=False)
    drop_sign_ins: Callable[[], None] | None = field(default=None, compare=False)

    async def with_sign_ins(self) -> LoadedContext:
        """This context once its sign-ins arrived (or were given up on): what a complete read would have given."""
        if self.sign_ins_later is None:
            return self
        read = await self.sign_ins_later()
        unavailable = {k: v for k, v in self.context.unavailable.items() if k != Source.SIGN_INS.value}
        if read.unavailable is not None:
            unavailable[Source.SIGN_INS.value] = read.unavailable
        context = replace(self.context, sign_ins=read.sign_ins, unavailable=unavailable)
        return replace(self, context=context, sign_ins_later=None, hurry_sign_ins=None, drop_sign_ins=None)


@dataclass(frozen=True, slots=True)
class PermissionStatus:
    name: str
    purpose: str
    granted: bool
    optional: bool = False  # missing, it is reported but the connection still works


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """The state of a tenant's connection, for the admin console and the store's tenant row."""

    tenant_id: str
    checked_at: datetime
    token_ok: bool
    tenant_matches: bool
    permissions: tuple[PermissionStatus, ...] = ()
    sp_object_id: str | None = None
    sp_roles: tuple[str, ...] = ()  # directory role names the app's service principal holds
    can_reset: bool = False  # one of them is in RESET_ROLES
    token_error: str | None = None  # the identity platform's error code (e.g. invalid_client)
    problems: tuple[str, ...] = field(default_factory=tuple)  # plain sentences, empty when all is well

    @property
    def missing_permissions(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.permissions if not p.granted and not p.optional)

    @property
    def ok(self) -> bool:
        return self.token_ok and self.tenant_matches and not self.missing_permissions and self.can_reset


OnPage = Callable[[SyncPage], Awaitable[None]]


class Directory(Protocol):
    """Everything Watchword asks of a tenant's directory."""

    async def find_people(self, tenant_id: str, text: str, limit: int = 10) -> list[Person]:
        """People whose name, given name, surname, UPN or mail starts with `text` (every word of a multi-word
        text must match), best matches first; disabled accounts and guests too (the start refuses them). Empty text
        finds nobody."""
        ...

    async def load_context(self, tenant_id: str, user_id: str, deadline: Deadline | None = None) -> LoadedContext:
        """The target's footprint and what the directory reveals around them, in at most two sequential
        $batch rounds plus the paging the data needs (one round once the tenant's directory is cached), within
        `deadline` (default 8 s). A source that cannot be read is named in `UserContext.unavailable`.
        Raises UserNotFound, or GraphUnavailable when even the profile cannot be read."""
        ...

    async def check_connection(self, tenant_id: str) -> ConnectionCheck:
        """A fresh token for the tenant, its permissions and the service principal's directory roles.
        Never raises for a refused token: the result says what is wrong."""
        ...

    async def reset_password(self, tenant_id: str, user_id: str, *,
                             before_patch: Callable[[], Awaitable[None]] | None = None) -> TemporaryPassword:
        """Set a strong temporary password the user must change at next sign-in, and return it (once).
        Raises ResetRefused (checked before anything changes, or Graph's own refusal), or GraphUnavailable:
        fail closed when the account's roles or groups cannot be read; when the request timed out the reason
        says the password "may or may not have changed". `before_patch` is awaited after the checks, right before
        the PATCH is sent (nothing awaited between): it raises to stop the reset with nothing changed (the reset's
        fence, verification/reset.py)."""
        ...

    async def sync_users(self, tenant_id: str, resume_link: str | None, on_page: OnPage) -> str:
        """Walk `/users/delta` from `resume_link` (a stored next or delta link) or from scratch, awaiting
        `on_page` after each page; returns the new delta link."""
        ...

    async def answers(self, tenant_id: str) -> GraphUnavailable | None:
        """None when Graph answers a cheap read for the tenant right now, else why not (for /readyz)."""
        ...

    def warm_up(self, tenant_id: str) -> None:
        """Begin caching the tenant-wide facts verifications use (optional: a hint, never an error)."""
        ...

    async def is_member_of(self, tenant_id: str, user_id: str, group_id: str) -> bool:
        """Whether the user is a member of the group, directly or through nesting."""
        ...

    # --- tenant-wide reads (the directory sync and the console's policy page) ----------------------------
    async def group_member_ids(self, tenant_id: str, group_id: str, *, at_most: int | None = None,
                               budget_s: float | None = None) -> frozenset[str]:
        """The ids (lower case) of the group's users, directly or through nested groups; with `at_most`, paging
        stops as soon as the group is known to hold more (GroupTooLarge); with `budget_s`, the whole read (every
        page) has that long. Raises GroupNotFound, GroupTooLarge, or GraphUnavailable."""
        ...

    async def not_resettable_ids(self, tenant_id: str) -> Mapping[str, tuple[str, ...]]:
        """User id (lower case) -> why the helpdesk may never reset them (sorted ResetRefusal values), for every
        such user: a privileged role held directly or through a role-assignable group ("privileged_admin"), or
        membership of a role-assignable group ("role_assignable_group"). Federated users are not included: the
        sync tells them apart by `DirectoryUser.on_premises_sync_enabled`. Raises GraphUnavailable."""
        ...

    async def count_users(self, tenant_id: str) -> int | None:
        """How many users the tenant has, for a progress bar; None when Graph will not say (never raises)."""
        ...

    async def group_names(self, tenant_id: str, group_ids: Iterable[str]) -> Mapping[str, str | None]:
        """Each group's display name; None for a group that does not exist. Raises GraphUnavailable."""
        ...

    async def may_install_app(self, tenant_id: str) -> bool:
        """Whether the tenant granted TeamsAppInstallation.ReadWriteSelfForUser.All (the roles of Watchword's token),
        so `open_app_chat` can reach someone who has no chat with Watchword yet. Never raises (False)."""
        ...

    async def open_app_chat(self, tenant_id: str, user_id: str, *, via_user_id: str, manifest_id: str) -> str | None:
        """The id of the user's 1:1 chat with Watchword, installing the app for them first when they lack it (see
        graph/teams_apps.py); None when the tenant did not grant TeamsAppInstallation.ReadWriteSelfForUser.All or
        Watchword is not in its catalog. `via_user_id`: someone who has the app (the agent asking). Raises
        GraphUnavailable."""
        ...
