"""Reading everything a verification needs, in as few sequential round trips as the data allows.

Round 1 is one $batch of everything keyed by the target's id: the profile with its manager expanded, direct
reports, calendar, groups, chats, contacts, mail senders, roles (active and PIM-eligible) (plus, in a
tenant's first verification, the tenant-wide facts of graph/tenant_facts.py). Sign-in logs are not in it: the
reports API takes seconds (and times out often), so they are read beside it, in a task of their own with its
own deadline, and `LoadedContext.sign_ins_later` hands them over when they arrive; the first question never
waits for them. Round 2 holds what round 1 made possible: peers and the skip-level (the manager's reports
and manager), the department, the sizes (and small groups' members) of the target's groups the background
refresh has not read yet, roles held through role-assignable groups, and the directory users behind addresses
round 1 named. The profile travels in a batch of its own, with a short attempt timeout, so round 2 leaves while
the rest of round 1 is still on its way and a hung batch beside it cannot cost it half the budget; once nothing
waits for it (the directory cached, below) it shares round 1's batch and is asked again alone only if that batch
hangs (`_Load.run`). With the tenant's
directory snapshot cached (and complete) and its groups sized, peers, skip-level, department and group sizes are
read locally and one round suffices; so are the target's direct reports (the snapshot names everyone's manager) and
which of their groups hold them directly (the groups delta holds every group's direct members), as fresh as the
peers and the group sizes beside them: two fewer reads per start.
Next pages (`@odata.nextLink`, only when present) follow their page as soon as it arrives.

Every request is a $batch item, so a failing source fails alone: it is named in `UserContext.unavailable`
with a plain reason and everything else still arrives. All of it runs within one `Deadline`.

Tenant-wide facts are cached per tenant and refreshed in the background; group sizes and small groups' members
per group (the refresh reads every group's); sign-ins
per (tenant, user) for a few minutes, and a per-tenant window keeps Watchword under the reports API's
5 requests per 10 s: sign-in reads queue for it first come first served (one read per person: the signIn
resource documents only `eq` on userId, so no documented filter reads several people at once), and a read that
cannot get a slot within its budget says so at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import quote

import httpx

from graph import mapping
from graph.batch import (
    CONNECTION_FAILED,
    POOL_BUSY,
    QUICK_ATTEMPT_S,
    RETRYABLE,
    TIMED_OUT,
    BatchError,
    BatchItem,
    BatchResult,
    BatchStats,
    Deadline,
    GraphCalls,
    retry_after,
    send_batch,
)
from graph.directory import (
    SIGN_INS_PENDING,
    GraphUnavailable,
    LoadedContext,
    SignInRead,
    Unavailability,
    UserNotFound,
    cause_of_status,
    no_token,
)
from graph.limits import SlidingWindowLimiter, TtlCache
from graph.mapping import Json
from graph.permissions import PERMISSIONS
from graph.roles import ROLE_ASSIGNMENTS, ROLE_ELIGIBILITIES, no_pim_licence
from graph.tenant_facts import FACTS, GROUP_MEMBERS_PAGE, DirectorySnapshot, TenantFacts, group_read, read_group
from graph.tokens import TokenError, TokenSource
from graph.urls import EVENTUAL, odata_string, relative_link, relative_url
from verification.clock import Clock
from verification.context import (
    Group,
    OrgKnowledge,
    Party,
    Person,
    RoleUsage,
    SignIn,
    SignInDigest,
    Source,
    UserContext,
)
from verification.department import DepartmentIndex

log = logging.getLogger(__name__)

MEETINGS_BACK = timedelta(days=14)
MEETINGS_AHEAD = timedelta(days=3)
MAIL_BACK = timedelta(days=7)
SIGN_INS_BACK = timedelta(days=30)
OUTLOOK_MAX_PAGE = 1000
DIRECTORY_MAX_PAGE = 999
MAX_PAGES = 10  # per source and load: enough for any real mailbox's window, bounded for a pathological one
IN_CLAUSE_MAX = 15  # values per `in (...)` in a directory $filter
MAX_RESOLVE_ITEMS = 10  # address/id lookups per round
OTHERS_SAMPLE = 100
# The sign-in read's own budget: its turn in the tenant's reports queue, the request and one retry. As long as the
# session's wait for it (dialogs/session_keeper.py RISK_DEADLINE): nothing waits for the read while the caller
# answers, so under a burst of starts a read can queue that long, and at 5 reads per 10 s a tenant serves 30 people's
# sign-ins a minute, whatever Watchword does (one read per person: Microsoft documents no filter that reads several).
SIGN_IN_DEADLINE_S = 60.0
MAX_ATTEMPTS = 3  # a page-1 request that stayed throttled/unavailable through send_batch's retries, asked again
RETRY_MIN_LEFT_S = 1.0
SIGN_IN_TTL_S = 300.0
# A tenant whose PIM read was refused for want of Entra ID P2 has no eligibilities: not asked again for this long (one
# read fewer per start there). A licence bought meanwhile shows within it; a reset never relies on this, it reads the
# person's eligibilities itself (graph_directory._reset_precheck).
NO_PIM_TTL_S = 900.0
# Cached sign-ins are bounded by bytes, not people: a person has ten sign-ins in 30 days or, for a robot, a thousand.
# They are kept as a SignInDigest (verification/context.py): each distinct place, device and outcome once
# (SIGN_IN_KIND_BYTES: the SignIn and its own address string), each sign-in 12 bytes, and the entry itself
# (SIGN_IN_ENTRY_BYTES): a person's 80 sign-ins from a few places ~3.7 KB, where the mapped sign-ins held ~17 KB
# (a robot's 1000: 14 KB, not 208 KB).
# What the cache serves is bounded too: a tenant's reports budget reads at most 150 people's sign-ins in
# SIGN_IN_TTL_S, so 2 MB keeps the last five minutes' of several tenants at their busiest.
SIGN_IN_KIND_BYTES = 320
SIGN_IN_MOMENT_BYTES = 12
SIGN_IN_ENTRY_BYTES = 512
SIGN_IN_CACHE_BYTES = 2 * 1024 * 1024

UTC_CALENDAR = {"Prefer": 'outlook.timezone="UTC"'}
_PERMISSION_OF = {p.source: p.name for p in PERMISSIONS if p.source}
_NO_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
RATE_LIMITED = "rate limited, try again shortly"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Req:
    kind: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    arg: Any = None
    page: int = 1
    retry: bool = True
    attempt: int = 1


@dataclass
class _Facts:
    """Tenant-wide facts, each None until read (from the cache or this load)."""

    population: int | None = None
    domains: tuple[tuple[str, str], ...] | None = None  # (verified name, authenticationType)
    role_usage: tuple[RoleUsage, ...] | None = None
    group_count: int | None = None
    catalogue: tuple[Json, ...] | None = None
    users: DirectorySnapshot | None = None


def sign_ins_bytes(digest: SignInDigest) -> int:
    """About what a person's cached sign-ins hold in memory (at least what tracemalloc sees: tests/graph)."""
    return SIGN_IN_ENTRY_BYTES + SIGN_IN_KIND_BYTES * len(digest.kinds) + SIGN_IN_MOMENT_BYTES * len(digest)


class ContextLoader:
    """Owns the per-tenant caches (graph/tenant_facts.py), the sign-in cache and the reports window;
    `load()` reads one target's context. `aclose()` stops the background refresh."""

    def __init__(self, *, tokens: TokenSource, http: httpx.AsyncClient, graph_url: str,
                 clock: Clock, with_mail_subjects: bool = False,
                 monotonic: Callable[[], float] = time.monotonic, calls: GraphCalls | None = None) -> None:
        self.tokens = tokens
        self.http = http
        self.calls = calls
        self.graph_url = graph_url.rstrip("/")
        self.clock = clock
        self.with_mail_subjects = with_mail_subjects
        self.tenant_facts = TenantFacts(tokens=tokens, http=http, graph_url=self.graph_url, monotonic=monotonic,
                                        calls=calls)
        self.sign_ins: TtlCache[SignInDigest] = TtlCache(SIGN_IN_TTL_S, clock=monotonic,
                                                               max_bytes=SIGN_IN_CACHE_BYTES, sizeof=sign_ins_bytes)
        self.reports_window = SlidingWindowLimiter(clock=monotonic)
        self.no_pim: TtlCache[bool] = TtlCache(NO_PIM_TTL_S, max_entries=1_000, clock=monotonic)  # per tenant
        self._reports_queue: dict[str, deque[_Waiter]] = {}  # per tenant: sign-in reads waiting (see _reports_slot)
        self._reports_turn: dict[str, asyncio.Event] = {}  # set when the head of that queue changes
        self._sign_in_reads: dict[tuple[str, str], asyncio.Task[SignInRead]] = {}

    async def load(self, tenant_id: str, user_id: str, deadline: Deadline) -> LoadedContext:
        started = time.perf_counter()
        run = _Load(self, tenant_id, user_id, deadline)
        try:
            await run.run()
        except TokenError as err:
            raise no_token(err.code) from None
        except BatchError as err:
            raise GraphUnavailable(str(err)) from None
        self.tenant_facts.refresh_soon(tenant_id)
        return run.result((time.perf_counter() - started) * 1000)

    async def settle(self) -> None:
        await self.tenant_facts.settle()
        await asyncio.gather(*self._sign_in_reads.values(), return_exceptions=True)

    async def aclose(self) -> None:
        await self.tenant_facts.aclose()
        for task in list(self._sign_in_reads.values()):
            task.cancel()
        await asyncio.gather(*self._sign_in_reads.values(), return_exceptions=True)

    def hurry_sign_ins(self, tenant_id: str, user_id: str) -> None:
        """A decision waits for this person's sign-in read: it goes ahead of the reads no decision waits for yet
        (after those already hurried). Nothing when it is not waiting for the reports budget."""
        queue = self._reports_queue.get(tenant_id)
        waiter = next((w for w in queue or () if w.user_id == user_id), None)
        if queue is None or waiter is None or waiter.urgent:
            return
        queue.remove(waiter)
        waiter.urgent = True
        at = next((i for i, w in enumerate(queue) if not w.urgent), len(queue))
        queue.insert(at, waiter)
        self._reports_turn[tenant_id].set()  # every waiter looks at its place again

    def drop_sign_ins(self, tenant_id: str, user_id: str) -> None:
        """Nobody needs this person's sign-in read any more (the verification ended without it): give it up while it
        still waits for the reports budget, leaving the slot to someone else's."""
        queue = self._reports_queue.get(tenant_id)
        task = self._sign_in_reads.get((tenant_id, user_id))
        if task is not None and queue is not None and any(w.user_id == user_id for w in queue):
            task.cancel()

    def read_sign_ins(self, tenant_id: str, user_id: str, now: datetime) -> asyncio.Task[SignInRead]:
        """The background read of a target's sign-ins: the one already in flight for them, or a new one."""
        key = (tenant_id, user_id)
        task = self._sign_in_reads.get(key)
        if task is None:
            task = asyncio.ensure_future(self._read_sign_ins(tenant_id, user_id, now))
            self._sign_in_reads[key] = task
            task.add_done_callback(lambda _t: self._sign_in_reads.pop(key, None))
        return task

    async def _read_sign_ins(self, tenant_id: str, user_id: str, now: datetime) -> SignInRead:
        """Sign-ins of the last 30 days, newest first (one page of up to 1000 covers them for anyone but a robot,
        and a second page would spend another of the tenant's five reports requests per 10 s). Within
        SIGN_IN_DEADLINE_S: waits for the reports window, retries a 503/504 or a hang once, and a 429 once after its
        Retry-After (Graph counts every Watchword process's reads, and as they arrive: another instance, or a
        request that reached it late, may have spent the window our own count still thought open)."""
        deadline = Deadline.after(SIGN_IN_DEADLINE_S)
        item = BatchItem("sign_ins", relative_url("/auditLogs/signIns", {
            "$filter": f"userId eq {odata_string(user_id)} and createdDateTime ge {_iso(now - SIGN_INS_BACK)}",
            "$select": ",".join(mapping.SIGN_IN_FIELDS), "$top": "1000"}), retry=False)
        tokens = self.tokens.for_tenant(tenant_id, self.graph_url)
        try:
            for attempt in (1, 2):
                if not await self._reports_slot(tenant_id, deadline, user_id):
                    return SignInRead((), RATE_LIMITED)
                res = (await send_batch(self.http, self.graph_url, tokens, [item], deadline,
                                         calls=self.calls))["sign_ins"]
                if res.ok:
                    found = tuple(s for s in (mapping.sign_in(x) for x in mapping.values(res.body)) if s)
                    self.sign_ins.put((tenant_id, user_id), SignInDigest.of(found))
                    return SignInRead(found)
                if res.status == 429:  # the tenant's reports budget is spent: again only once Graph says so
                    wait = retry_after(res)
                    if attempt == 2 or wait >= deadline.remaining() - RETRY_MIN_LEFT_S:
                        return SignInRead((), RATE_LIMITED)
                    self.reports_window.hold(tenant_id, wait)  # and this process's other reads wait as well
                    continue
                if attempt == 2 or res.status not in RETRYABLE or deadline.remaining() <= RETRY_MIN_LEFT_S:
                    return SignInRead((), reason(res, _PERMISSION_OF.get(Source.SIGN_INS.value)))
        except TokenError as err:
            return SignInRead((), f"no token: {err.code}")
        except BatchError as err:
            return SignInRead((), str(err))
        return SignInRead((), "timed out")

    async def _reports_slot(self, tenant_id: str, deadline: Deadline, user_id: str = "") -> bool:
        """Wait for a slot in the tenant's reports window while the deadline allows: first come first served, except
        that reads a decision waits for (`hurry_sign_ins`) go first. False at once when the reads queued ahead of this
        one leave it no slot within its deadline (the window frees one slot per window_s / limit seconds), so a read
        that cannot be served says so early instead of holding its verification to the end of its budget."""
        queue = self._reports_queue.setdefault(tenant_id, deque())
        turn = self._reports_turn.setdefault(tenant_id, asyncio.Event())
        me = _Waiter(user_id)
        queue.append(me)
        per_slot = self.reports_window.window_s / self.reports_window.limit
        try:
            while True:
                ahead = queue.index(me)
                if ahead * per_slot >= deadline.remaining() - RETRY_MIN_LEFT_S:
                    return False
                wait = self.reports_window.try_acquire(tenant_id) if ahead == 0 else per_slot
                if wait == 0:
                    return True
                if wait >= deadline.remaining() - RETRY_MIN_LEFT_S:
                    return False
                turn.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(turn.wait(), wait)
        finally:
            head = queue[0] is me
            queue.remove(me)
            if head:
                turn.set()
            if not queue:
                self._reports_queue.pop(tenant_id, None)
                self._reports_turn.pop(tenant_id, None)


@dataclass(eq=False)
class _Waiter:
    """A sign-in read waiting for the tenant's reports budget."""

    user_id: str
    urgent: bool = False


class _Load:
    """One load_context: the requests in flight, what came back, and how it maps to the context."""

    def __init__(self, loader: ContextLoader, tenant_id: str, user_id: str, deadline: Deadline) -> None:
        self.loader = loader
        self.tenant = tenant_id
        self.uid = user_id
        self.deadline = deadline
        self.now = loader.clock()
        self.stats = BatchStats()
        self.cached: list[str] = []
        self.unavailable: dict[str, str] = {}
        self.facts = _Facts()
        self.profile: Json | None = None
        self.manager: Person | None = None
        self.skip: Person | None = None
        self.reports: list[Person] = []
        self.peers: list[Person] = []
        self.department: list[Person] = []
        self.department_index: DepartmentIndex | None = None  # the snapshot's, shared: see _on_profile
        self.events: list[Json] = []
        self.groups: dict[str, Json] = {}
        self.direct: set[str] | None = set()
        self.direct_from_facts = False  # the groups delta says which groups hold the target directly (_first_round)
        self.chats: list[Json] = []
        self.contacts: list[Json] = []
        self.messages: list[Json] = []
        self.assignments: list[Json] = []
        self.group_assignments: list[Json] = []
        self.eligibilities: list[Json] = []
        self.sign_in_list: tuple[SignIn, ...] = ()
        self.sign_in_task: asyncio.Task[SignInRead] | None = None
        self.counts: dict[str, int] = {}
        self.members: dict[str, frozenset[str]] = {}  # group id -> its users, for the target's small groups
        self.resolved: list[Person] = []
        self.asked_addresses: set[str] = set()
        self.asked_ids: set[str] = set()
        self.new_addresses: set[str] = set()
        self.new_ids: set[str] = set()
        self.incomplete: set[str] = set()
        self._n = 0

    # --- the rounds --------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Send requests as soon as what they depend on has arrived. `stats.rounds` is the longest chain of
        sequential batches.

        Without the whole directory cached, the profile travels in a $batch of its own, so the requests it enables
        (peers, skip-level, department) leave while the rest of round 1 is still on its way. With it (a warm
        tenant), nothing waits for the profile but the end of the load: it travels in the one $batch with the rest,
        one HTTP request fewer per start (~1 ms of Watchword's CPU: msgraph-core's middleware, httpx, TLS, the
        envelope). Either way a hang cannot cost the profile, without which the verification ends, half the budget
        (issue 9): alone it has a short attempt (QUICK_ATTEMPT_S); in the shared batch, should that batch still be
        silent after QUICK_ATTEMPT_S, the profile is asked again alone beside it (`_profile_if_late`)."""
        first = self._first_round()
        tasks: set[asyncio.Task[tuple[list[_Req], int]]] = set()

        def launch(reqs: list[_Req], depth: int) -> None:
            if reqs:
                tasks.add(asyncio.ensure_future(self._batch(reqs, depth)))

        profile = [r for r in first if r.kind == "profile"]
        hedge: asyncio.Task[tuple[list[_Req], int]] | None = None
        if self._local_org_chart():
            launch(first, 0)
            hedge = asyncio.ensure_future(self._profile_if_late(profile))
            tasks.add(hedge)
        else:
            launch(profile, 0)
            launch([r for r in first if r.kind != "profile"], 0)
        try:
            while tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    tasks.discard(task)
                    follow, depth = task.result()
                    follow += self._lookups()
                    if follow and self.deadline.remaining() <= 0:
                        self._out_of_time(follow)
                        continue
                    launch(follow, depth)
                if hedge is not None and self.profile is not None and not hedge.done():
                    hedge.cancel()  # the profile came with the rest: nothing to ask again
                    tasks.discard(hedge)
        finally:
            for task in tasks:
                task.cancel()
        if self.profile is None:
            raise GraphUnavailable("profile: timed out", Unavailability.TIMED_OUT)

    async def _profile_if_late(self, profile: list[_Req]) -> tuple[list[_Req], int]:
        """The profile asked again alone, with a short attempt, if the batch it travels in has not brought it within
        QUICK_ATTEMPT_S (a hung batch); nothing when it has."""
        await asyncio.sleep(min(QUICK_ATTEMPT_S, self.deadline.remaining()))
        if self.profile is not None or self.deadline.remaining() <= 0:
            return [], 0
        return await self._batch(profile, 0)

    async def _batch(self, reqs: list[_Req], depth: int) -> tuple[list[_Req], int]:
        """One $batch (in parallel chunks of 20) and its answers handled; returns the follow-up requests and
        the depth reached (retries of throttled items inside send_batch add to it)."""
        ids = {}
        items = []
        for req in reqs:
            self._n += 1
            item_id = f"{req.kind}{self._n}"
            ids[item_id] = req
            items.append(BatchItem(item_id, req.url, req.headers, retry=req.retry))
        tokens = self.loader.tokens.for_tenant(self.tenant, self.loader.graph_url)
        stats = BatchStats()
        # The profile alone is one small read that everything waits on: a hung attempt is asked again early.
        quick = QUICK_ATTEMPT_S if all(r.kind == "profile" for r in reqs) else None
        results = await send_batch(self.loader.http, self.loader.graph_url, tokens, items, self.deadline, stats,
                                   self.loader.calls, attempt_s=quick)
        depth += stats.rounds
        self.stats.requests += stats.requests
        self.stats.rounds = max(self.stats.rounds, depth)
        follow: list[_Req] = []
        # Tenant facts first: later handlers rely on the domains and the directory snapshot.
        for item_id, req in sorted(ids.items(), key=lambda kv: kv[1].kind != "fact"):
            follow += self._handle(req, results[item_id])
        return follow, depth

    def _handle(self, req: _Req, res: BatchResult) -> list[_Req]:
        if req.kind == "profile" and self.profile is not None:
            return []  # asked twice (`_profile_if_late`): the first answer stands
        handler = getattr(self, f"_on_{req.kind}")
        if not res.ok:
            return self._failed(req, res)
        try:
            return list(handler(req, res) or [])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a body we cannot parse
            log.warning("graph: unreadable %s answer for tenant %s: %s", req.kind, self.tenant, type(exc).__name__)
            return self._failed(req, BatchResult(res.id, 502, {}, {"error": {"code": "UnreadableAnswer"}}))

    def _next_page(self, req: _Req, res: BatchResult) -> list[_Req]:
        link = res.next_link
        if not link or req.page >= MAX_PAGES:
            return []
        return [replace(req, url=relative_link(self.loader.graph_url, link), page=req.page + 1)]

    # --- round 1 -----------------------------------------------------------------------------------------
    def _first_round(self) -> list[_Req]:
        u = f"/users/{quote(self.uid, safe='')}"
        now = self.now
        person = ",".join(mapping.PERSON_FIELDS)
        facts = self._tenant_requests()  # first: what the tenant's caches already hold is not asked again
        reqs = [
            _Req("profile", relative_url(u, {"$select": ",".join(mapping.PROFILE_FIELDS),
                                             "$expand": f"manager($select={person})"})),
            _Req("meetings", relative_url(f"{u}/calendarView", {
                "startDateTime": _iso(now - MEETINGS_BACK), "endDateTime": _iso(now + MEETINGS_AHEAD),
                "$select": ",".join(mapping.EVENT_FIELDS), "$top": str(OUTLOOK_MAX_PAGE)}), dict(UTC_CALENDAR)),
            _Req("groups", relative_url(f"{u}/transitiveMemberOf/microsoft.graph.group", {
                "$select": ",".join(mapping.GROUP_FIELDS), "$top": str(DIRECTORY_MAX_PAGE), "$count": "true"}),
                 dict(EVENTUAL)),
            # No $select on chats and role assignments: their answers are small, and devtenant drops expanded
            # navigation properties when $select is present (Graph keeps them).
            _Req("chats", relative_url(f"{u}/chats", {
                "$expand": "members,lastMessagePreview", "$orderby": "lastMessagePreview/createdDateTime desc",
                "$top": "50"})),
            _Req("contacts", relative_url(f"{u}/contacts", {"$select": ",".join(mapping.CONTACT_FIELDS),
                                                            "$top": str(OUTLOOK_MAX_PAGE)})),
            _Req("mail", relative_url(f"{u}/messages", {
                "$select": ",".join((*mapping.MAIL_FIELDS, *(("subject",) if self.loader.with_mail_subjects else ()))),
                "$filter": f"receivedDateTime ge {_iso(now - MAIL_BACK)}", "$orderby": "receivedDateTime desc",
                "$top": str(OUTLOOK_MAX_PAGE)})),
            _Req("roles", relative_url(ROLE_ASSIGNMENTS, {
                "$filter": f"principalId eq {odata_string(self.uid)}", "$expand": "roleDefinition"})),
        ]
        if self.loader.no_pim.get(self.tenant) is None:
            reqs.append(_Req("eligible", relative_url(ROLE_ELIGIBILITIES, {
                "$filter": f"principalId eq {odata_string(self.uid)}", "$expand": "roleDefinition",
                "$select": "id,principalId,roleDefinitionId"})))
        else:
            self.cached.append("no_pim")
        snapshot = self.facts.users
        if snapshot is not None and snapshot.complete:
            # The whole directory is cached with everyone's manager, as for the peers (_on_profile): the target's
            # reports are the people it names them manager of (enabled members only, as the snapshot holds).
            self.reports = list(snapshot.reports.get(self.uid, ()))
            self.cached.append("reports")
        else:
            reqs.append(_Req("reports", relative_url(f"{u}/directReports", {"$select": person,
                                                                            "$top": str(DIRECTORY_MAX_PAGE)})))
        if self.loader.tenant_facts.knows_memberships(self.tenant):
            # Every group's direct members are held from the groups delta (as their sizes are): which of the target's
            # groups they are in directly is worked out there when the groups arrive (_on_groups).
            self.direct_from_facts = True
            self.cached.append("direct_memberships")
        else:
            reqs.append(_Req("direct", relative_url(f"{u}/memberOf/microsoft.graph.group", {
                "$select": "id", "$top": str(DIRECTORY_MAX_PAGE), "$count": "true"}), dict(EVENTUAL)))
        cached = self.loader.sign_ins.get((self.tenant, self.uid))
        if cached is not None:
            self.sign_in_list = cached.sign_ins()
            self.cached.append("sign_ins")
        else:  # off the critical path: read beside this load, handed over through LoadedContext.sign_ins_later
            self.sign_in_task = self.loader.read_sign_ins(self.tenant, self.uid, self.now)
        return reqs + facts

    def _tenant_requests(self) -> list[_Req]:
        """Tenant-wide facts the cache lacks (a tenant's first verification, or after a long pause)."""
        reqs = []
        for part, fact in FACTS.items():
            value = self.loader.tenant_facts.cache.get((self.tenant, part))
            if value is None:
                reqs.append(_Req("fact", fact.url, dict(fact.headers), arg=(part, [])))
            else:
                setattr(self.facts, part, value)
                self.cached.append(part)
        return reqs

    def _local_org_chart(self) -> bool:
        return self.facts.users is not None and self.facts.users.complete

    # --- handlers (each reads Graph's JSON; graph/mapping.py turns it into our dataclasses) ----------------
    def _on_profile(self, req: _Req, res: BatchResult) -> list[_Req]:
        if not isinstance(res.body, dict) or not res.body.get("id"):
            raise ValueError("profile without an id")
        self.profile = res.body
        follow: list[_Req] = []
        manager = res.body.get("manager")
        department = res.body.get("department")
        snapshot = self.facts.users
        if isinstance(manager, dict) and manager.get("id"):
            self.manager = mapping.person(manager)
        if snapshot is not None and snapshot.complete:
            # The whole directory is cached: the org chart around the target needs no request.
            if self.manager is not None:
                self.peers = list(snapshot.reports.get(self.manager.id, []))
                skip = snapshot.manager_of.get(self.manager.id)
                self.skip = snapshot.by_id.get(skip) if skip else None
            # The department's people come indexed, once per snapshot, for the question generators.
            self.department_index = snapshot.department_index(str(department) if department else None)
            self.department = list(self.department_index.members) if self.department_index else []
            self.cached.append("org_chart")
            return follow
        if self.manager is not None:
            m = f"/users/{quote(self.manager.id, safe='')}"
            person = ",".join(mapping.PERSON_FIELDS)
            follow += [
                _Req("peers", relative_url(f"{m}/directReports", {"$select": person,
                                                                 "$top": str(DIRECTORY_MAX_PAGE)})),
                _Req("skip", relative_url(f"{m}/manager", {"$select": person})),
            ]
        if department:
            follow.append(_Req("department", relative_url("/users", {
                "$filter": f"department eq {odata_string(str(department))}", "$count": "true",
                "$select": ",".join(mapping.PERSON_FIELDS), "$top": str(DIRECTORY_MAX_PAGE)}), dict(EVENTUAL)))
        return follow

    def _on_reports(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.reports += mapping.people(mapping.values(res.body))
        return self._next_page(req, res)

    def _on_peers(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.peers += mapping.people(mapping.values(res.body))
        return self._next_page(req, res)

    def _on_skip(self, req: _Req, res: BatchResult) -> list[_Req]:
        if isinstance(res.body, dict) and res.body.get("id"):
            self.skip = mapping.person(res.body)
        return []

    def _on_department(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.department += mapping.people(mapping.values(res.body))
        return self._next_page(req, res)

    def _on_meetings(self, req: _Req, res: BatchResult) -> list[_Req]:
        events = mapping.values(res.body)
        self.events += events
        if self._resolving():
            for e in events:
                self._saw(*mapping.meeting_addresses(e))
        return self._next_page(req, res)

    def _on_groups(self, req: _Req, res: BatchResult) -> list[_Req]:
        groups = [g for g in mapping.values(res.body) if g.get("id")]
        follow = self._next_page(req, res)
        for g in groups:
            self.groups[str(g["id"])] = g
        if self.direct_from_facts and self.direct is not None:
            self.direct |= self.loader.tenant_facts.direct_groups(self.tenant, self.uid, [str(g["id"]) for g in groups])
        follow += self._group_requests([str(g["id"]) for g in groups])
        assignable = [str(g["id"]) for g in groups if g.get("isAssignableToRole")]
        for i in range(0, len(assignable), IN_CLAUSE_MAX):
            chunk = ",".join(odata_string(gid) for gid in assignable[i:i + IN_CLAUSE_MAX])
            follow.append(_Req("group_roles", relative_url(ROLE_ASSIGNMENTS, {
                "$filter": f"principalId in ({chunk})", "$expand": "roleDefinition"})))
        return follow

    def _group_requests(self, group_ids: Iterable[str]) -> list[_Req]:
        """Each of the target's groups' size and, for a small group, its users: which groups the target's team
        shares is what a teammate knows (verification/questions/team.py). The background refresh keeps both for
        every group of the tenant; a group it has not sized yet (new, or the tenant's first minutes) is read here,
        size and first page in one request. Only small groups are ever asked about, and one page holds them."""
        out = []
        facts = self.loader.tenant_facts
        for gid in group_ids:
            if gid in self.counts:
                continue
            count = facts.count(self.tenant, gid)
            members = facts.members(self.tenant, gid)
            if count is not None and (count > GROUP_MEMBERS_PAGE or members is not None):
                self.counts[gid] = count
                if members is not None:
                    self.members[gid] = members
                continue
            self.counts[gid] = -1  # asked
            out.append(_Req("group", *group_read(gid), arg=gid))
        return out

    def _on_group(self, req: _Req, res: BatchResult) -> list[_Req]:
        count, members = read_group(res.body)
        if count is not None:
            self.counts[req.arg] = count
        if members is not None:
            self.members[req.arg] = members
        self.loader.tenant_facts.put_group(self.tenant, req.arg, count, members)
        return []

    def _on_direct(self, req: _Req, res: BatchResult) -> list[_Req]:
        if self.direct is not None:
            self.direct |= {str(g["id"]) for g in mapping.values(res.body) if g.get("id")}
        return self._next_page(req, res)

    def _on_chats(self, req: _Req, res: BatchResult) -> list[_Req]:
        chats = mapping.values(res.body)
        self.chats += chats
        if self._resolving():
            for c in chats:
                self.new_ids.update(mapping.chat_member_ids(c))
        return []  # the 50 most recent chats are enough: no paging

    def _on_contacts(self, req: _Req, res: BatchResult) -> list[_Req]:
        contacts = mapping.values(res.body)
        self.contacts += contacts
        if self._resolving():
            for c in contacts:
                self._saw(*mapping.contact_addresses(c))
        return self._next_page(req, res)

    def _on_mail(self, req: _Req, res: BatchResult) -> list[_Req]:
        messages = mapping.values(res.body)
        self.messages += messages
        if self._resolving():
            self._saw(*(mapping.sender_address(m) for m in messages))
        return self._next_page(req, res)

    def _on_roles(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.assignments += mapping.values(res.body)
        return self._next_page(req, res)

    def _on_eligible(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.eligibilities += mapping.values(res.body)
        return self._next_page(req, res)

    def _on_group_roles(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.group_assignments += mapping.values(res.body)
        return self._next_page(req, res)

    def _on_resolve(self, req: _Req, res: BatchResult) -> list[_Req]:
        self.resolved += mapping.people(mapping.values(res.body))
        return []

    def _on_fact(self, req: _Req, res: BatchResult) -> list[_Req]:
        """A tenant-wide fact read in this verification (the cache lacked it); cached as it arrives."""
        part, items = req.arg
        fact = FACTS[part]
        if fact.count:
            n = mapping.count_value(res.body)
            value = None if n is None else fact.build(n, True)
        else:
            items = items + mapping.values(res.body)
            if res.next_link and req.page < fact.pages:
                return [replace(req, url=relative_link(self.loader.graph_url, res.next_link), page=req.page + 1,
                                arg=(part, items))]
            value = fact.build(items, res.next_link is None)
        if value is not None:
            setattr(self.facts, part, value)
            self.loader.tenant_facts.cache.put((self.tenant, part), value)
        return []

    # --- failures ----------------------------------------------------------------------------------------
    _SOURCE = {"reports": Source.HIERARCHY, "peers": Source.HIERARCHY, "meetings": Source.MEETINGS,
               "groups": Source.GROUPS, "chats": Source.CHATS, "contacts": Source.CONTACTS, "mail": Source.MAIL,
               "roles": Source.ROLES, "group_roles": Source.ROLES, "eligible": Source.ROLES}

    def _failed(self, req: _Req, res: BatchResult) -> list[_Req]:
        transient = res.status in RETRYABLE and self.deadline.remaining() > RETRY_MIN_LEFT_S
        if req.kind == "profile":
            if res.status == 404:
                raise UserNotFound(self.uid)
            if transient:  # nothing works without it: keep asking while the budget lasts
                return [replace(req, attempt=req.attempt + 1)]
            raise GraphUnavailable(f"profile: {reason(res, 'User.Read.All')}", _cause_of_item(res))
        if req.kind == "eligible" and no_pim_licence(res.status, res.error_code):
            self.loader.no_pim.put(self.tenant, True)
            return []  # no Entra ID P2: the tenant has no PIM, so no eligibilities (not an outage)
        if transient and req.retry and req.attempt < MAX_ATTEMPTS:
            return [replace(req, attempt=req.attempt + 1)]
        if req.kind == "skip" and res.status == 404:
            return []  # the manager has no manager
        if req.kind == "direct":
            self.direct = None  # membership kinds unknown: treat every group as direct
            return []
        source = self._SOURCE.get(req.kind)
        if source is None:
            log.info("graph: %s unavailable for tenant %s: %s", req.kind, self.tenant, reason(res, None))
            return []
        if req.page > 1:
            # Earlier pages arrived: keep them, the source is usable but incomplete.
            self.incomplete.add(source.value)
            log.info("graph: page %d of %s failed for tenant %s: %s", req.page, req.kind, self.tenant,
                     reason(res, None))
            return []
        self.unavailable.setdefault(source.value, reason(res, _PERMISSION_OF.get(source.value)))
        return []

    def _out_of_time(self, pending: list[_Req]) -> None:
        for req in pending:
            source = self._SOURCE.get(req.kind)
            if source is not None and req.page == 1:
                self.unavailable.setdefault(source.value, "timed out")

    # --- who is behind an address ------------------------------------------------------------------------
    def _saw(self, *addresses: str | None) -> None:
        self.new_addresses.update(a.lower() for a in addresses if a and "@" in a)

    def _resolving(self) -> bool:
        """Whether addresses and ids seen are worth noting for `_lookups`: not with the whole directory cached, where
        nobody is looked up (at 50,000 people, every attendee's address lower-cased for nothing)."""
        return not self._local_org_chart()

    def _known(self) -> tuple[Callable[[str], Person | None], Callable[[str], Person | None]]:
        """Lookups by (lower-cased) address and by id over every person this load knows: what it read, then
        the cached directory snapshot."""
        everyone: list[Person] = []
        if self.profile is not None:
            everyone.append(mapping.person(self.profile))
        everyone += [p for p in (self.manager, self.skip) if p]
        everyone += self.reports + self.resolved
        if not self._local_org_chart():  # else peers and the department are the snapshot's own people
            everyone += self.peers + self.department
        by_address: dict[str, Person] = {}
        by_id: dict[str, Person] = {}
        for p in everyone:
            by_id.setdefault(p.id, p)
            for a in (p.mail, p.upn):
                if a:
                    by_address.setdefault(a.lower(), p)
        snapshot = self.facts.users or DirectorySnapshot(())

        def address(a: str) -> Person | None:
            return by_address.get(a) or snapshot.by_address.get(a)

        def ident(i: str) -> Person | None:
            return by_id.get(i) or snapshot.by_id.get(i)

        return address, ident

    def _lookups(self) -> list[_Req]:
        """Users behind addresses and chat member ids seen so far, when the directory pages we already hold
        do not name them (internal addresses only, when the tenant's domains are known; none at all when the
        cached page of users is the whole directory: an address it lacks is a room or a service account)."""
        new_addresses, new_ids = self.new_addresses, self.new_ids
        self.new_addresses, self.new_ids = set(), set()
        if self._local_org_chart() or not (new_addresses or new_ids):
            return []
        by_address, by_id = self._known()
        domains = {d.lower() for d, _ in self.facts.domains or ()}
        addresses = sorted(a for a in new_addresses - self.asked_addresses
                           if by_address(a) is None and (not domains or a.rsplit("@", 1)[1] in domains))
        ids = sorted(i for i in new_ids - self.asked_ids if by_id(i) is None)
        reqs = []
        for values, prop, asked in ((ids, "id", self.asked_ids), (addresses, "mail", self.asked_addresses)):
            for i in range(0, len(values), IN_CLAUSE_MAX):
                if len(reqs) >= MAX_RESOLVE_ITEMS:
                    break
                chunk = values[i:i + IN_CLAUSE_MAX]
                asked.update(chunk)
                reqs.append(_Req("resolve", relative_url("/users", {
                    "$filter": f"{prop} in ({','.join(odata_string(v) for v in chunk)})",
                    "$select": ",".join(mapping.PERSON_FIELDS)})))
        return reqs

    # --- the result --------------------------------------------------------------------------------------
    def result(self, elapsed_ms: float) -> LoadedContext:
        assert self.profile is not None  # noqa: S101 - run() raised otherwise
        by_address, by_id = self._known()
        me = mapping.person(self.profile)

        parties: dict[tuple[str | None, str | None], Party] = {}

        def party_of(name: str | None, address: str | None) -> Any:
            # The same people come up in meeting after meeting and mail after mail: one (immutable) Party each.
            party = parties.get((name, address))
            if party is None:
                who = by_address(address.lower()) if address else None
                party = parties[name, address] = Party(name or (who.display_name if who else address or ""), address,
                                                       who)
            return party

        domains = self.facts.domains or ()
        federated_domains = {d.lower() for d, kind in domains if kind.lower() == "federated"}
        upn_domain = str(self.profile.get("userPrincipalName") or "").rsplit("@", 1)[-1].lower()
        population = self.facts.population or max(len(self.facts.users.people) if self.facts.users else 0,
                                                   len(self.department) + 1)
        direct = self.direct

        def group_of(g: Json) -> Group:
            n = self.counts.get(str(g.get("id")))
            return replace(mapping.group(g, member_count=n if n is not None and n >= 0 else None,
                                         is_direct=direct is None or str(g.get("id")) in direct,
                                         population=population),
                           member_ids=self.members.get(str(g.get("id"))))

        group_names = {gid: str(g.get("displayName") or gid) for gid, g in self.groups.items()}
        roles = [mapping.role(a) for a in self.assignments]
        roles += [mapping.role(a, via_group=group_names.get(str(a.get("principalId")), str(a.get("principalId"))))
                  for a in self.group_assignments]
        roles += [mapping.role(e, eligible=True) for e in self.eligibilities]
        meetings = sorted((m for m in (mapping.meeting(e, party_of) for e in self.events) if m), key=lambda m: m.start)
        mail = sorted((m for m in (mapping.mail_message(x, party_of, with_subject=self.loader.with_mail_subjects)
                                   for x in self.messages) if m), key=lambda m: m.received_at, reverse=True)
        peers = _unique(p for p in self.peers if p.id != me.id)
        context = UserContext(
            profile=me,
            fetched_at=self.now,
            is_federated=bool(self.profile.get("onPremisesSyncEnabled")) or upn_domain in federated_domains,
            is_guest=str(self.profile.get("userType") or "Member").lower() == "guest",
            account_enabled=self.profile.get("accountEnabled") is not False,
            last_password_change=mapping.timestamp(self.profile.get("lastPasswordChangeDateTime")),
            manager=self.manager,
            peers=peers,
            direct_reports=_unique(self.reports),
            meetings=tuple(meetings),
            groups=tuple(group_of(g) for g in self.groups.values()),
            chats=tuple(mapping.chat(c, by_id) for c in self.chats),
            contacts=tuple(mapping.contact(c, party_of) for c in self.contacts),
            mail=tuple(mail),
            roles=tuple(roles),
            sign_ins=self.sign_in_list,
            unavailable={**self.unavailable,
                         **({Source.SIGN_INS.value: SIGN_INS_PENDING} if self.sign_in_task else {})},
        )
        org = self._org(context, population)
        task = self.sign_in_task
        loader, tenant, uid = self.loader, self.tenant, self.uid
        return LoadedContext(context=context, org=org, round_trips=self.stats.rounds, requests=self.stats.requests,
                             elapsed_ms=elapsed_ms, cached=tuple(self.cached),
                             incomplete=tuple(sorted(self.incomplete)),
                             sign_ins_later=(lambda: _outcome(task)) if task is not None else None,
                             hurry_sign_ins=(lambda: loader.hurry_sign_ins(tenant, uid)) if task is not None else None,
                             drop_sign_ins=(lambda: loader.drop_sign_ins(tenant, uid)) if task is not None else None)

    def _org(self, context: UserContext, population: int) -> OrgKnowledge:
        me = context.profile
        team = {me.id, *(p.id for p in context.peers), *(p.id for p in context.direct_reports)}
        team |= {p.id for p in (self.manager, self.skip) if p}
        snapshot = self.facts.users or DirectorySnapshot(())
        complete = snapshot.complete
        # A stable sample: the same tenant gives the same decoy pool, whatever the directory's order.
        others = list(islice((p for p in snapshot.stable_order if p.id not in team and p.department != me.department),
                             OTHERS_SAMPLE))
        # Catalogue groups get the sizes the cache holds (the background refresh counts them all), mapped once.
        groups = dict(self.loader.tenant_facts.catalogue_groups(self.tenant, self.facts.catalogue or (), population))
        groups.update({g.id: g for g in context.groups})
        given, surnames = snapshot.name_counts if complete else ({}, {})  # the whole directory: exact counts
        index = self.department_index
        return OrgKnowledge(
            population=population,
            manager=self.manager,
            skip_level=self.skip,
            peers=context.peers,
            direct_reports=context.direct_reports,
            department_members=index.members if index is not None else _unique(self.department),
            department_index=index,
            others=tuple(others[:OTHERS_SAMPLE]),
            groups=tuple(groups.values()),
            group_count=self.facts.group_count or len(groups),
            roles=self.facts.role_usage or (),
            given_name_counts=given,
            surname_counts=surnames,
            internal_domains=tuple(d for d, _ in self.facts.domains or ()),
        )


async def _outcome(task: asyncio.Task[SignInRead]) -> SignInRead:
    """The sign-in read's outcome, shared by whoever awaits it (shielded: one waiter cancelled leaves it to the
    others); a read given up (`drop_sign_ins`) is an unavailable one."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            return SignInRead((), "given up")
        raise


def _unique(people: Iterable[Person]) -> tuple[Person, ...]:
    seen: dict[str, Person] = {}
    for p in people:
        seen.setdefault(p.id, p)
    return tuple(seen.values())


def _cause_of_item(res: BatchResult) -> Unavailability:
    if res.error_code == POOL_BUSY:
        return Unavailability.BUSY
    if res.error_code == CONNECTION_FAILED:
        return Unavailability.UNREACHABLE
    if res.error_code == TIMED_OUT:
        return Unavailability.TIMED_OUT
    return cause_of_status(res.status)


# Why a source is unavailable with its permission granted (Microsoft's 403s), and what fixes it.
PROTECTED_API = ("403: Teams chats are a protected API and Microsoft has not approved Watchword for it yet "
                 "(request access at https://aka.ms/teams-api-protected-apis)")
MAIL_POLICY = ("403: an Exchange Online application access policy leaves Watchword out of this mailbox (an Exchange "
               "admin adds Watchword's app to the policy's group, or removes the policy)")


def _error_message(res: BatchResult) -> str:
    if isinstance(res.body, dict) and isinstance(res.body.get("error"), dict):
        return str(res.body["error"].get("message", ""))
    return ""


def reason(res: BatchResult, permission: str | None) -> str:
    """A failed item in plain words, for `UserContext.unavailable` and logs."""
    code = res.error_code
    if res.status == 403:
        if code == _NO_PREMIUM:
            return "tenant has no Microsoft Entra ID P1 or P2 licence"
        message = _error_message(res)
        if "Protected API access" in message:
            return PROTECTED_API
        if "AccessPolicy" in message:
            return MAIL_POLICY
        return f"403: {permission} not granted" if permission else "403: access denied"
    if res.status == 429:
        return "throttled"
    if code == TIMED_OUT or res.status == 504:
        return "timed out"
    if code == CONNECTION_FAILED:
        return "connection failed"
    if code == POOL_BUSY:
        return "Watchword busy"
    if res.status == 503:
        return "service unavailable"
    if res.status == 404:
        if code in ("MailboxNotEnabledForRESTAPI", "ErrorInvalidUser", "ResourceNotFound"):
            return "no mailbox"
        return "404: not found"
    return f"{res.status}: {code or 'error'}"
