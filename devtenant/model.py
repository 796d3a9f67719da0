"""The generated organisation: plain Python records that devtenant's Graph serves as JSON.

These are devtenant's own shapes (snake_case, Python types). The Graph layer of devtenant
(`devtenant/graph_api/`) turns them into Graph's JSON; nothing in the product imports them
(benchmarks and tests may, to know the ground truth).

Two-sided facts (a meeting, a chat) are stored once and indexed for every participant, so
that "A met B" shows in both calendars. One-sided, high-volume facts (received mail, sign-ins)
may be materialised lazily per user from a per-user seeded RNG: the `Org` methods below are
the only way to read them, so callers never depend on how they are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class GroupKind(StrEnum):
    """The four kinds of Entra groups, as Graph tells them apart (groupTypes, mailEnabled, securityEnabled)."""

    MICROSOFT_365 = "microsoft365"  # groupTypes ["Unified"], mail true, security false
    SECURITY = "security"  # groupTypes [], mail false, security true
    MAIL_ENABLED_SECURITY = "mailEnabledSecurity"  # groupTypes [], mail true, security true
    DISTRIBUTION = "distribution"  # groupTypes [], mail true, security false


@dataclass(slots=True)
class User:
    id: str
    display_name: str
    given_name: str
    surname: str
    user_principal_name: str
    mail: str | None
    job_title: str | None
    department: str | None
    office_location: str | None
    city: str | None
    country: str | None  # ISO 3166 name as Entra stores it, e.g. "United Kingdom"
    usage_location: str | None  # two-letter code, e.g. "GB"
    manager_id: str | None
    employee_id: str | None
    business_phones: list[str]
    mobile_phone: str | None
    created_date_time: datetime
    last_password_change_date_time: datetime
    account_enabled: bool = True
    user_type: str = "Member"
    # Synced from on-premises AD through a federated domain: Graph refuses cloud password resets.
    on_premises_sync_enabled: bool | None = None
    on_premises_immutable_id: str | None = None
    # Not a person: shared mailboxes, service and bot accounts. Question generators must skip them.
    is_service_account: bool = False
    # Password state, written by PATCH /users/{id}; never served back (Graph returns passwordProfile null).
    password: str | None = None
    force_change_password_next_sign_in: bool = False
    force_change_password_next_sign_in_with_mfa: bool = False
    # When the password was last set (time.time()): it works for sign-in only once Entra replicated it.
    password_set_at: float | None = None
    # Change tracking for /users/delta: the org-wide sequence number of this user's last change.
    version: int = 0


@dataclass(slots=True)
class Group:
    id: str
    display_name: str
    description: str | None
    kind: GroupKind
    mail_nickname: str
    mail: str | None
    visibility: str | None  # "Public" / "Private" for Microsoft 365 groups
    is_assignable_to_role: bool
    created_date_time: datetime
    member_ids: list[str]  # direct members: user ids and group ids (nesting)
    # Dynamic "everyone" groups and other tenant-wide groups: an impostor knows these.
    is_tenant_wide: bool = False
    # Change tracking for /groups/delta: the org-wide sequence number of this group's last change (its properties
    # or its members), and for each member added or removed since the group was made, the number of that change.
    version: int = 0
    member_changes: dict[str, int] = field(default_factory=dict)

    @property
    def group_types(self) -> list[str]:
        return ["Unified"] if self.kind is GroupKind.MICROSOFT_365 else []

    @property
    def mail_enabled(self) -> bool:
        return self.kind is not GroupKind.SECURITY

    @property
    def security_enabled(self) -> bool:
        return self.kind in (GroupKind.SECURITY, GroupKind.MAIL_ENABLED_SECURITY)


@dataclass(slots=True, frozen=True)
class EmailAddress:
    name: str
    address: str
    user_id: str | None = None  # set when the address belongs to someone in the org


@dataclass(slots=True)
class Event:
    id: str
    subject: str
    organizer_id: str
    attendee_ids: tuple[str, ...]  # required and optional attendees, organizer excluded
    start: datetime  # UTC
    end: datetime  # UTC
    kind: str  # ground truth for benches: one_on_one, team, project, all_hands, cross_team, focus, external
    sensitivity: str = "normal"  # normal, personal, private, confidential
    is_cancelled: bool = False
    is_all_day: bool = False
    is_online_meeting: bool = True
    location: str | None = None
    declined_ids: frozenset[str] = frozenset()  # attendees who declined (they did not meet)
    external_attendees: tuple[EmailAddress, ...] = ()


@dataclass(slots=True)
class ChatMessage:
    id: str
    sender_id: str
    created_date_time: datetime
    content: str


@dataclass(slots=True)
class Chat:
    id: str
    chat_type: str  # oneOnOne, group, meeting
    topic: str | None
    member_ids: tuple[str, ...]
    created_date_time: datetime
    messages: list[ChatMessage]  # oldest first; the last one is Graph's lastMessagePreview

    @property
    def last_updated_date_time(self) -> datetime:
        return self.messages[-1].created_date_time if self.messages else self.created_date_time


@dataclass(slots=True)
class Contact:
    id: str
    owner_id: str
    display_name: str
    given_name: str | None
    surname: str | None
    email_addresses: tuple[EmailAddress, ...]
    company_name: str | None
    job_title: str | None
    mobile_phone: str | None
    created_date_time: datetime


@dataclass(slots=True)
class MailMessage:
    id: str
    owner_id: str  # the mailbox it sits in (received mail)
    sender: EmailAddress
    to_recipients: tuple[EmailAddress, ...]
    cc_recipients: tuple[EmailAddress, ...]
    subject: str
    received_date_time: datetime
    is_read: bool
    importance: str = "normal"
    has_attachments: bool = False


@dataclass(slots=True)
class SignIn:
    id: str
    user_id: str
    created_date_time: datetime
    app_display_name: str
    client_app_used: str
    ip_address: str
    city: str
    state: str | None
    country_or_region: str  # two-letter code, as Graph's location.countryOrRegion
    operating_system: str
    browser: str
    is_compliant: bool
    is_managed: bool
    error_code: int  # 0 = success
    failure_reason: str | None
    risk_level_during_sign_in: str  # none, low, medium, high
    risk_state: str  # none, atRisk, confirmedCompromised, remediated, dismissed
    conditional_access_status: str  # success, failure, notApplied
    is_interactive: bool
    # Ground truth for tests and benches (never served): which injected anomaly this belongs to.
    anomaly: str | None = None


@dataclass(slots=True, frozen=True)
class RoleDefinition:
    id: str  # Entra's well-known template id
    display_name: str
    description: str
    is_privileged: bool


@dataclass(slots=True)
class RoleAssignment:
    id: str
    role_definition_id: str
    principal_id: str  # a user, a role-assignable group or a service principal
    directory_scope_id: str = "/"


@dataclass(slots=True)
class RoleEligibility:
    """A Privileged Identity Management eligibility (`roleEligibilityScheduleInstances`): the principal holds
    no active role but may activate this one at will."""

    id: str
    role_definition_id: str
    principal_id: str  # a user or a role-assignable group
    start_date_time: datetime
    end_date_time: datetime | None = None  # None: permanently eligible
    directory_scope_id: str = "/"
    member_type: str = "Direct"


@dataclass(slots=True)
class Domain:
    id: str  # the domain name
    is_default: bool
    is_verified: bool
    authentication_type: str  # Managed or Federated


@dataclass
class Org:
    """A whole tenant's directory and Microsoft 365 footprint, generated for one seed."""

    tenant_id: str
    display_name: str
    domains: list[Domain]
    now: datetime  # the anchor every generated date is relative to
    users: dict[str, User]  # insertion order is the directory's stable order
    groups: dict[str, Group]
    role_definitions: dict[str, RoleDefinition]
    role_assignments: list[RoleAssignment]
    events: list[Event]
    chats: list[Chat]
    # Well-known objects the demo and tests need by name.
    helpdesk_group_id: str
    admins_group_id: str
    # Lazily materialised per-user facts (see module docstring). Each returns a fresh or cached list.
    contacts_of: Callable[[str], list[Contact]]
    messages_of: Callable[[str], list[MailMessage]]  # newest first
    sign_ins_of: Callable[[str], list[SignIn]]  # newest first
    # Indexes, built by `Org.index()`.
    users_by_upn: dict[str, User] = field(default_factory=dict)
    reports_of: dict[str, list[str]] = field(default_factory=dict)
    events_of: dict[str, list[Event]] = field(default_factory=dict)
    chats_of: dict[str, list[Chat]] = field(default_factory=dict)
    groups_of: dict[str, list[str]] = field(default_factory=dict)  # principal id -> direct parent group ids
    # PIM eligibilities; empty in a tenant without Microsoft Entra ID P2 (devtenant then answers 400).
    role_eligibilities: list[RoleEligibility] = field(default_factory=list)
    # Change tracking for /users/delta.
    version: int = 0
    removed_users: dict[str, int] = field(default_factory=dict)  # user id -> version when deleted
    removed_groups: dict[str, int] = field(default_factory=dict)  # group id -> version when deleted
    # graph_api/user_index.UserIndex over `users` (by property, prefix and $search token), built by `index()`.
    user_index: Any = field(default=None, repr=False)

    def index(self) -> Org:
        """(Re)build the lookup tables. Linear in the size of the org."""
        from devtenant.graph_api.user_index import UserIndex  # noqa: PLC0415 - graph_api imports this module

        self.users_by_upn = {u.user_principal_name.lower(): u for u in self.users.values()}
        self.user_index = UserIndex(self.users.values())
        self.reports_of = {}
        for u in self.users.values():
            if u.manager_id:
                self.reports_of.setdefault(u.manager_id, []).append(u.id)
        self.events_of = {}
        for e in self.events:
            for uid in (e.organizer_id, *e.attendee_ids):
                self.events_of.setdefault(uid, []).append(e)
        for evs in self.events_of.values():
            evs.sort(key=lambda e: e.start)
        self.chats_of = {}
        for c in self.chats:
            for uid in c.member_ids:
                self.chats_of.setdefault(uid, []).append(c)
        self.groups_of = {}
        for g in self.groups.values():
            for m in g.member_ids:
                self.groups_of.setdefault(m, []).append(g.id)
        return self

    # --- reads -------------------------------------------------------------------------------
    def user(self, id_or_upn: str) -> User | None:
        """Graph addresses users by object id or by userPrincipalName."""
        return self.users.get(id_or_upn) or self.users_by_upn.get(id_or_upn.lower())

    def direct_reports(self, user_id: str) -> list[User]:
        return [self.users[i] for i in self.reports_of.get(user_id, []) if i in self.users]

    def calendar(self, user_id: str) -> list[Event]:
        """Events in this user's calendar (organised or invited), oldest first."""
        return self.events_of.get(user_id, [])

    def chats_for(self, user_id: str) -> list[Chat]:
        return self.chats_of.get(user_id, [])

    def member_of(self, principal_id: str) -> list[Group]:
        return [self.groups[g] for g in self.groups_of.get(principal_id, [])]

    def transitive_member_of(self, principal_id: str) -> list[Group]:
        seen: dict[str, Group] = {}
        stack = list(self.groups_of.get(principal_id, []))
        while stack:
            gid = stack.pop()
            if gid in seen:
                continue
            seen[gid] = self.groups[gid]
            stack.extend(self.groups_of.get(gid, []))
        return list(seen.values())

    def transitive_user_members(self, group_id: str) -> list[str]:
        """User ids that are members of the group directly or through nested groups."""
        out: dict[str, None] = {}
        seen: set[str] = set()
        stack = [group_id]
        while stack:
            gid = stack.pop()
            if gid in seen:
                continue
            seen.add(gid)
            for m in self.groups[gid].member_ids:
                if m in self.groups:
                    stack.append(m)
                elif m in self.users:
                    out[m] = None
        return list(out)

    def roles_of(self, principal_id: str) -> list[RoleDefinition]:
        return [
            self.role_definitions[a.role_definition_id]
            for a in self.role_assignments
            if a.principal_id == principal_id
        ]

    # --- writes (devtenant's admin endpoints and PATCH /users) ---------------------------------
    def touch(self, user: User) -> None:
        """Record a change to a user so the next /users/delta round returns it."""
        self.version += 1
        user.version = self.version
        if self.user_index is not None:
            self.user_index.update(user)

    def add_users(self, users: Iterable[User]) -> None:
        for u in users:
            self.users[u.id] = u
            self.users_by_upn[u.user_principal_name.lower()] = u
            self.touch(u)

    def remove_user(self, user_id: str) -> None:
        user = self.users.pop(user_id)
        self.users_by_upn.pop(user.user_principal_name.lower(), None)
        if self.user_index is not None:
            self.user_index.remove(user_id)
        self.version += 1
        self.removed_users[user_id] = self.version

    def touch_group(self, group: Group) -> None:
        """Record a change to a group's properties so the next /groups/delta round returns it."""
        self.version += 1
        group.version = self.version

    def add_member(self, group_id: str, member_id: str) -> None:
        """Make a user or group a direct member of the group (a change /groups/delta reports in members@delta)."""
        group = self.groups[group_id]
        if member_id in group.member_ids:
            return
        group.member_ids.append(member_id)
        self.groups_of.setdefault(member_id, []).append(group_id)
        self.touch_group(group)
        group.member_changes[member_id] = self.version

    def remove_member(self, group_id: str, member_id: str) -> None:
        group = self.groups[group_id]
        if member_id not in group.member_ids:
            return
        group.member_ids.remove(member_id)
        parents = self.groups_of.get(member_id, [])
        if group_id in parents:
            parents.remove(group_id)
        self.touch_group(group)
        group.member_changes[member_id] = self.version

    def remove_group(self, group_id: str) -> None:
        group = self.groups.pop(group_id)
        for member_id in group.member_ids:
            parents = self.groups_of.get(member_id, [])
            if group_id in parents:
                parents.remove(group_id)
        for parent_id in self.groups_of.pop(group_id, []):
            parent = self.groups.get(parent_id)
            if parent is not None and group_id in parent.member_ids:
                parent.member_ids.remove(group_id)
                self.touch_group(parent)
                parent.member_changes[group_id] = self.version
        self.version += 1
        self.removed_groups[group_id] = self.version
