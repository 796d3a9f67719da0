"""A fake directory for bot and dialog tests: the verification fixture's Alan Turing and a few colleagues,
with Entra-style GUIDs, a helpdesk group, and a password reset that counts its calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from graph.directory import (
    SIGN_INS_PENDING,
    ConnectionCheck,
    GraphUnavailable,
    GroupNotFound,
    LoadedContext,
    OnPage,
    ResetRefusal,
    ResetRefused,
    SignInRead,
    TemporaryPassword,
    UserNotFound,
)
from tests.verification import builders as b
from verification import Person, Source, UserContext

TENANT = "11111111-1111-4111-8111-111111111111"
OTHER_TENANT = "99999999-9999-4999-8999-999999999999"
HELPDESK_GROUP = "bbbbbbbb-0000-4000-8000-000000000001"

ALAN = replace(b.ALAN, id="aaaaaaaa-0000-4000-8000-000000000003")
ALAN_TWIN = Person("aaaaaaaa-0000-4000-8000-000000000013", "Alan Turner", "Alan", "Turner",
                   "alan.turner@contoso.example", "alan.turner@contoso.example", "Accountant", "Finance")
ADA = replace(b.ADA, id="aaaaaaaa-0000-4000-8000-000000000001")  # a Global Administrator
MARGARET = Person("aaaaaaaa-0000-4000-8000-000000000005", "Margaret Hamilton", "Margaret", "Hamilton",
                  "margaret.hamilton@contoso.example", "margaret.hamilton@contoso.example", "IT Support Specialist",
                  "IT")  # the helpdesk agent
KEN = Person("aaaaaaaa-0000-4000-8000-000000000007", "Ken Thompson", "Ken", "Thompson",
             "ken.thompson@contoso.example", None, "IT Support Specialist", "IT")  # a second agent
JOSE = replace(b.TEAM[1], id="aaaaaaaa-0000-4000-8000-000000000006")  # federated
GRACE = replace(b.GRACE, id="aaaaaaaa-0000-4000-8000-000000000002")  # Alan's manager
SECURITY = Person("aaaaaaaa-0000-4000-8000-000000000009", "Sam Security", "Sam", "Security",
                  "sam.security@contoso.example", "sam.security@contoso.example", "Security Analyst", "IT")
PEOPLE = (ALAN, ALAN_TWIN, ADA, MARGARET, KEN, JOSE, GRACE, SECURITY)

TEMPORARY_PASSWORD = "Tq7v-W9pL-m3kR-zX4d"


def alan_context(now: datetime) -> UserContext:
    return replace(b.context(), profile=ALAN, fetched_at=now)


def thin(context: UserContext) -> UserContext:
    """Someone whose Microsoft 365 data is thin: a few meetings and the org chart, nothing else."""
    return replace(context, chats=(), contacts=(), mail=(), groups=())


@dataclass
class FakeDirectory:
    """The `Directory` protocol over a handful of people. `contexts` builds each person's footprint."""

    now: Callable[[], datetime]
    agents: set[str] = field(default_factory=lambda: {MARGARET.id, KEN.id})
    resets: list[str] = field(default_factory=list)
    membership_checks: int = 0
    member_list_reads: int = 0
    down: bool = False
    refuse_reset: ResetRefusal | None = None
    before_patch_hook: Callable[[], Awaitable[None]] | None = None  # awaited just before the fence and the PATCH
    thin: set[str] = field(default_factory=set)  # ids of people whose data is thin
    manager: Person | None = None  # everyone's manager as Graph reports it (the fixture's Grace has no GUID)
    # Sign-in logs that arrive after the rest (as from Graph's slow reports API): awaited by whoever needs them.
    late_sign_ins: Callable[[], Awaitable[SignInRead]] | None = None
    sign_in_reads: list[str] = field(default_factory=list)  # "hurry <user id>", "drop <user id>": LoadedContext's calls
    can_install: bool = False  # the tenant granted TeamsAppInstallation.ReadWriteSelfForUser.All
    installs: list[str] = field(default_factory=list)

    def context_of(self, person: Person) -> UserContext:
        base = alan_context(self.now())
        if person.id in self.thin:
            base = thin(base)
        if self.manager is not None:
            base = replace(base, manager=self.manager)
        if person.id == ADA.id:
            return replace(base, profile=ADA, roles=(b.GLOBAL_ADMIN,))
        if person.id == JOSE.id:
            return replace(base, profile=JOSE, is_federated=True)
        return replace(base, profile=person)

    async def find_people(self, tenant_id: str, text: str, limit: int = 10) -> list[Person]:
        if self.down:
            raise GraphUnavailable("throttled")
        words = text.casefold().split()
        found = [p for p in PEOPLE
                 if words and all(any(part.startswith(w) for part in (p.display_name + " " + (p.upn or ""))
                                      .casefold().replace("@", " ").replace(".", " ").split()) for w in words)]
        return found[:limit]

    async def load_context(self, tenant_id: str, user_id: str, deadline: object = None) -> LoadedContext:
        if self.down:
            raise GraphUnavailable("timed out")
        person = next((p for p in PEOPLE if p.id == user_id), None)
        if person is None:
            raise UserNotFound(user_id)
        context = self.context_of(person)
        if self.late_sign_ins is not None:
            context = replace(context, sign_ins=(), unavailable={**context.unavailable,
                                                                 Source.SIGN_INS.value: SIGN_INS_PENDING})
        return LoadedContext(context=context, org=b.org(), round_trips=2, requests=9, elapsed_ms=12.0,
                             sign_ins_later=self.late_sign_ins,
                             hurry_sign_ins=None if self.late_sign_ins is None else
                             lambda: self.sign_in_reads.append(f"hurry {user_id}"),
                             drop_sign_ins=None if self.late_sign_ins is None else
                             lambda: self.sign_in_reads.append(f"drop {user_id}"))

    async def reset_password(self, tenant_id: str, user_id: str, *,
                             before_patch: Callable[[], Awaitable[None]] | None = None) -> TemporaryPassword:
        if self.refuse_reset is not None:
            raise ResetRefused(self.refuse_reset)
        if self.before_patch_hook is not None:  # a test's stand-in for what happens just before the PATCH
            await self.before_patch_hook()
        if before_patch is not None:
            await before_patch()
        self.resets.append(user_id)
        return TemporaryPassword(TEMPORARY_PASSWORD, user_id, self.now())

    async def is_member_of(self, tenant_id: str, user_id: str, group_id: str) -> bool:
        self.membership_checks += 1
        return group_id == HELPDESK_GROUP and user_id in self.agents

    async def check_connection(self, tenant_id: str) -> ConnectionCheck:
        return ConnectionCheck(tenant_id=tenant_id, checked_at=self.now(), token_ok=True, tenant_matches=True)

    async def sync_users(self, tenant_id: str, resume_link: str | None, on_page: OnPage) -> str:
        return "delta"

    async def group_member_ids(self, tenant_id: str, group_id: str, *, at_most: int | None = None,
                               budget_s: float | None = None) -> frozenset[str]:
        self.member_list_reads += 1
        if group_id != HELPDESK_GROUP:
            raise GroupNotFound(group_id)
        return frozenset(self.agents)

    async def not_resettable_ids(self, tenant_id: str) -> Mapping[str, tuple[str, ...]]:
        return {ADA.id: (ResetRefusal.PRIVILEGED.value,)}

    async def count_users(self, tenant_id: str) -> int | None:
        return len(PEOPLE)

    async def may_install_app(self, tenant_id: str) -> bool:
        return self.can_install

    async def open_app_chat(self, tenant_id: str, user_id: str, *, via_user_id: str, manifest_id: str) -> str | None:
        """Installs the app when the tenant allows it (`can_install`), as Graph would: the new chat's id."""
        self.installs.append(user_id)
        return f"19:{user_id}_watchword@unq.gbl.spaces" if self.can_install else None

    async def group_names(self, tenant_id: str, group_ids: Iterable[str]) -> Mapping[str, str | None]:
        return {g: "Helpdesk Agents" if g == HELPDESK_GROUP else None for g in group_ids}
