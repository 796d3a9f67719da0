"""What Watchword knows about the person being verified, and what an informed impostor knows.

graph/ fills these frozen dataclasses from Microsoft Graph (v1.0, application permissions); nothing in
this module talks to Graph. Two objects matter:

* `UserContext` — the target's private Microsoft 365 footprint (meetings, chats, mail, groups...). The
  questions' accepted answers come from here.
* `OrgKnowledge` — what the *public* directory reveals about the people around the target: the org
  chart, the department's members with titles and offices, big groups, how common each first name is.
  The guessability model assumes an informed impostor knows all of it, and multiple-choice decoys are
  drawn from it.

Times are timezone-aware UTC `datetime`s. Text fields hold what Graph returns, unnormalised.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # department.py builds on this module
    from verification.department import DepartmentIndex


class Source(StrEnum):
    """Where a question's facts come from; also the keys of `UserContext.unavailable`."""

    MEETINGS = "meetings"
    GROUPS = "groups"
    HIERARCHY = "hierarchy"
    CHATS = "chats"
    CONTACTS = "contacts"
    MAIL = "mail"
    ROLES = "roles"
    SIGN_INS = "sign_ins"  # never a question source; risk only


class GroupKind(StrEnum):
    """Graph tells the kinds apart by groupTypes / mailEnabled / securityEnabled."""

    MICROSOFT_365 = "microsoft365"  # groupTypes ["Unified"]
    SECURITY = "security"  # [], mailEnabled false, securityEnabled true
    MAIL_ENABLED_SECURITY = "mailEnabledSecurity"  # [], true, true
    DISTRIBUTION = "distribution"  # [], true, false


class Sensitivity(StrEnum):
    NORMAL = "normal"
    PERSONAL = "personal"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


class ResponseStatus(StrEnum):
    """event.attendees[].status.response and event.responseStatus.response."""

    NONE = "none"
    ORGANIZER = "organizer"
    TENTATIVE = "tentativelyAccepted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_RESPONDED = "notResponded"


class ChatType(StrEnum):
    ONE_ON_ONE = "oneOnOne"
    GROUP = "group"
    MEETING = "meeting"


@dataclass(frozen=True, slots=True)
class Person:
    """A directory user (`GET /users/{id}?$select=id,displayName,givenName,surname,userPrincipalName,
    mail,jobTitle,department,officeLocation`). Service accounts, rooms and bots are Persons too: the
    generators recognise them (no given name/surname, no title, "svc-" names) and skip them."""

    id: str
    display_name: str
    given_name: str | None = None
    surname: str | None = None
    upn: str | None = None
    mail: str | None = None
    job_title: str | None = None
    department: str | None = None
    office_location: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """Someone named by a meeting, chat, mail or contact: the name and address Graph shows, plus the
    directory `Person` when graph/ could resolve the address to a user of the tenant (None for
    external people, rooms and unresolved addresses)."""

    name: str
    address: str | None = None
    person: Person | None = None


@dataclass(frozen=True, slots=True)
class Attendee:
    """event.attendees[]: `type` is required/optional/resource (rooms and equipment are resources)."""

    who: Party
    response: ResponseStatus = ResponseStatus.NONE
    type: str = "required"


@dataclass(frozen=True, slots=True)
class Meeting:
    """An event from `GET /users/{id}/calendarView` (about 14 days back and a few days ahead).

    `my_response` is the target's own answer (event.responseStatus). `subject` may be filled but is
    shown to the caller only when the policy allows it (private content)."""

    id: str
    start: datetime
    end: datetime
    organizer: Party
    attendees: tuple[Attendee, ...] = ()  # as Graph lists them: may include the target, not the organizer
    sensitivity: Sensitivity = Sensitivity.NORMAL
    is_cancelled: bool = False
    is_all_day: bool = False
    my_response: ResponseStatus = ResponseStatus.NONE
    subject: str | None = None

    @property
    def attendee_count(self) -> int:
        """Everyone invited, organizer and external guests included, rooms excluded."""
        people = {(a.who.address or a.who.name).lower() for a in self.attendees if a.type != "resource"}
        people.add((self.organizer.address or self.organizer.name).lower())
        return len(people)


@dataclass(frozen=True, slots=True)
class Group:
    """A group the target belongs to (`GET /users/{id}/transitiveMemberOf/microsoft.graph.group`), or
    a group the directory shows (OrgKnowledge). `member_count` from `GET /groups/{id}/transitiveMembers
    /$count` (None when not fetched). `is_direct` False when membership is only through nesting (the
    person may not know). `is_tenant_wide` for dynamic all-users groups and "All Company"."""

    id: str
    name: str
    kind: GroupKind = GroupKind.SECURITY
    member_count: int | None = None
    is_role_assignable: bool = False
    is_direct: bool = True
    is_tenant_wide: bool = False
    # The users in it, when it is small enough to list (`GET /groups/{id}/transitiveMembers/microsoft.graph.user
    # ?$select=id`, first page): tells which groups the target's team shares. None when not read.
    member_ids: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Chat:
    """`GET /users/{id}/chats?$expand=members,lastMessagePreview` (members capped at 25 by Graph)."""

    id: str
    chat_type: ChatType
    members: tuple[Party, ...]
    last_message_at: datetime | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """`GET /users/{id}/contacts`. v1.0 has no starred/favourite flag."""

    display_name: str
    emails: tuple[str, ...] = ()
    given_name: str | None = None
    surname: str | None = None
    person: Person | None = None  # when an address belongs to a user of the tenant


@dataclass(frozen=True, slots=True)
class MailMessage:
    """Received-mail metadata (`GET /users/{id}/messages?$select=from,receivedDateTime`, Mail.ReadBasic).
    Subjects are not fetched by default; when they are, questions show them only if policy allows."""

    sender: Party
    received_at: datetime
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Role:
    """A directory role assignment (`GET /roleManagement/directory/roleAssignments?$filter=principalId
    eq '{id}'&$expand=roleDefinition`). `via_group` names the role-assignable group it comes through.
    `eligible`: not active but eligible through Privileged Identity Management
    (`/roleManagement/directory/roleEligibilityScheduleInstances`): the person can activate it at will, so a
    privileged one refuses like an active one, but it is never a question's answer."""

    id: str
    display_name: str
    is_privileged: bool
    via_group: str | None = None
    eligible: bool = False


@dataclass(frozen=True, slots=True)
class SignIn:
    """One entry of `GET /auditLogs/signIns?$filter=userId eq '{id}'` (newest first from Graph; the
    risk code sorts anyway). `latitude`/`longitude` from location.geoCoordinates when present."""

    at: datetime
    ip: str | None = None
    city: str | None = None
    country_code: str | None = None  # location.countryOrRegion, two letters
    os: str | None = None
    browser: str | None = None
    error_code: int = 0  # status.errorCode, 0 = success; 50126 = wrong password
    failure_reason: str | None = None
    risk_level: str = "none"  # riskLevelDuringSignIn: none/low/medium/high/hidden
    risk_state: str = "none"  # none/atRisk/confirmedCompromised/remediated/dismissed
    compliant: bool | None = None
    managed: bool | None = None
    interactive: bool = True
    latitude: float | None = None
    longitude: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.error_code == 0


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every field of a SignIn but its moment (its first), in their order, in one C call (SignInDigest).
_KIND = attrgetter(*(f.name for f in fields(SignIn)[1:]))


@dataclass(frozen=True, slots=True)
class SignInDigest:
    """A person's sign-ins as kept between verifications (graph/'s sign-in cache, for minutes): the same facts in a
    fifth of the memory (a robot's thousand in a fifteenth). A person signs in dozens of times a month from a few
    places, on a few devices, with a few outcomes, so each distinct sign-in but for its moment (`kinds`, the moment
    left at the epoch) is held once, and each sign-in is two numbers: which kind (`kind_of`, 4 bytes) and when
    (`moments`, 8 bytes: microseconds since the epoch), in Graph's order. `sign_ins()` gives back exactly the
    sign-ins it was made from, so the risk weighed on them is the same (tests/verification/test_risk.py)."""

    kinds: tuple[SignIn, ...] = ()
    kind_of: bytes = b""  # array("I"): per sign-in, its index in `kinds`
    moments: bytes = b""  # array("q"): per sign-in, microseconds since the epoch (UTC)

    @classmethod
    def of(cls, sign_ins: Iterable[SignIn]) -> SignInDigest:
        """Timezone-aware moments (as graph/mapping.py reads them); each comes back in UTC."""
        # A sign-in's kind is told by its fields but `at`, read as one tuple (what SignIn's own == and hash compare):
        # a SignIn is built only for each new kind, not copied for every sign-in (~4 us each, most of a read's digest).
        index: dict[tuple[object, ...], int] = {}
        kinds: list[SignIn] = []
        kind_of, moments, us = array("I"), array("q"), timedelta(microseconds=1)
        for s in sign_ins:
            key = _KIND(s)
            kind = index.get(key)
            if kind is None:
                kind = index[key] = len(kinds)
                kinds.append(replace(s, at=_EPOCH))
            kind_of.append(kind)
            moments.append((s.at - _EPOCH) // us)
        return cls(tuple(kinds), kind_of.tobytes(), moments.tobytes())

    def sign_ins(self) -> tuple[SignIn, ...]:
        # Each sign-in built from its kind's other fields, positionally (`at` is SignIn's first field): a third of
        # what replace() costs, which reads every field again and calls __init__ by keyword.
        rest, us = [_KIND(k) for k in self.kinds], timedelta(microseconds=1)
        return tuple(SignIn(_EPOCH + m * us, *rest[k])
                     for k, m in zip(array("I", self.kind_of), array("q", self.moments), strict=True))

    def __len__(self) -> int:
        return len(self.moments) // 8


@dataclass(frozen=True, slots=True)
class UserContext:
    """The target's Microsoft 365 footprint, read by graph/ when a verification starts.

    `unavailable` maps a `Source` value to why it could not be read (e.g. "meetings" -> "403 missing
    Calendars.Read", "sign_ins" -> "tenant has no Entra ID P1"): generators for those sources are
    skipped and the risk assessment reports missing sign-in data. `fetched_at` is the reference "now"
    for every window (this week, the last 24 hours)."""

    profile: Person
    fetched_at: datetime
    is_federated: bool = False
    is_guest: bool = False  # a B2B guest from another organisation (userType Guest): not the helpdesk's to verify
    account_enabled: bool = True  # False: a disabled account (e.g. a former employee): nobody to verify
    last_password_change: datetime | None = None
    manager: Person | None = None
    peers: tuple[Person, ...] = ()  # the manager's other direct reports
    direct_reports: tuple[Person, ...] = ()
    meetings: tuple[Meeting, ...] = ()
    groups: tuple[Group, ...] = ()
    chats: tuple[Chat, ...] = ()
    contacts: tuple[Contact, ...] = ()
    mail: tuple[MailMessage, ...] = ()
    roles: tuple[Role, ...] = ()
    sign_ins: tuple[SignIn, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def is_available(self, source: Source) -> bool:
        return source.value not in self.unavailable


@dataclass(frozen=True, slots=True)
class RoleUsage:
    """How many principals hold a directory role in the tenant (count of roleAssignments by
    roleDefinitionId): an impostor guesses the commonest roles first."""

    name: str
    holders: int
    is_privileged: bool = False


@dataclass(frozen=True, slots=True)
class OrgKnowledge:
    """What an INFORMED IMPOSTOR knows about the target's surroundings, and the pool decoys come from.

    Anyone with a mailbox in the tenant (or a leaked org chart, or LinkedIn) can learn this, so it is
    worth nothing as proof. graph/ fills it with a handful of directory reads, cacheable per tenant:

    * manager / skip_level — `GET /users/{id}/manager`, then `GET /users/{manager}/manager`.
    * peers / direct_reports — `GET /users/{manager}/directReports`, `GET /users/{id}/directReports`
      (the same as in UserContext; either copy is enough, the model merges both).
    * department_members — `GET /users?$filter=department eq '{dept}'&$select=id,displayName,givenName,
      surname,jobTitle,department,officeLocation&$count=true&$top=999` (ConsistencyLevel: eventual).
    * others — a sample of people from OTHER departments (e.g. `GET /users?$top=100&$select=...` with a
      random filter on a name initial): only multiple-choice decoys for partners outside the department,
      never a guess list (the model treats the rest of the tenant as one uniform tier).
    * population — `GET /users/$count?$filter=accountEnabled eq true and userType eq 'Member'`.
    * groups — the directory's groups with sizes: `GET /groups?$select=id,displayName,groupTypes,
      mailEnabled,securityEnabled,isAssignableToRole` plus `/groups/{id}/transitiveMembers/$count` for
      the larger ones; group_count from `GET /groups/$count`.
    * roles — `GET /roleManagement/directory/roleAssignments?$expand=roleDefinition`, counted by role.
    * given_name_counts / surname_counts — how many members share each (lower-cased) given name and
      surname, from the users store/ already syncs via `/users/delta`. Empty means unknown; then a bare
      first name is judged only against the people listed here.
    * internal_domains — `GET /domains` (verified domains): addresses elsewhere are external.
    * department_index — `department_members` indexed once per directory snapshot and shared by every
      verification in the department (verification/department.py); None: indexed per verification.
    """

    population: int
    manager: Person | None = None
    skip_level: Person | None = None
    peers: tuple[Person, ...] = ()
    direct_reports: tuple[Person, ...] = ()
    department_members: tuple[Person, ...] = ()
    others: tuple[Person, ...] = ()
    groups: tuple[Group, ...] = ()
    group_count: int = 0
    roles: tuple[RoleUsage, ...] = ()
    role_definition_count: int = 100  # Entra has roughly 100 built-in roles
    given_name_counts: Mapping[str, int] = field(default_factory=dict)
    surname_counts: Mapping[str, int] = field(default_factory=dict)
    internal_domains: tuple[str, ...] = ()
    department_index: DepartmentIndex | None = field(default=None, repr=False)
    # Not knowledge: the tenant's secret key for multiple-choice draws (dialogs/ derives it from the verification
    # state key). Decoys must be the same on every call (comparing two calls' options would single out the answer)
    # and unpredictable without it (drawn from ids and names alone, anyone with our code could test which option,
    # taken as the answer, yields the other options). Empty in benches and tests: stable, but not secret.
    choice_key: bytes = field(default=b"", repr=False)
