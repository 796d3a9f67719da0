"""Tenant-wide facts a verification needs but no verification should fetch: read once, cached for minutes.

Population, verified domains, who holds which directory role, the group catalogue, the size of every group
(and the members of every small one), and a snapshot of the directory (people, their departments and managers).
Every verification in a tenant needs them and they change slowly, so `ContextLoader` keeps them per tenant and
refreshes them in the background before they expire. With a complete snapshot, a verification finds the
target's peers, skip-level and department locally, and its person's groups come sized: it needs a single
round trip.

Each fact is one request (plus pages) described here once; the first verification in a tenant reads what
is missing inside its own round 1, the background refresh reads the rest.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

import httpx

from graph import mapping
from graph.batch import MAX_BATCH, BatchError, BatchItem, Deadline, GraphCalls, send_batch
from graph.limits import TtlCache
from graph.mapping import Json
from graph.tokens import GraphTokenProvider, TokenError, TokenSource
from graph.urls import EVENTUAL, relative_link, relative_url
from verification import outsider_names
from verification.context import Group, Person
from verification.department import DepartmentIndex, NameNeighbours, name_words
from verification.names import normalize  # the same keys the question generators look names up by

log = logging.getLogger(__name__)

# The snapshot expands each user's manager, and Graph caps a page of directory objects with $expand at 100,
# whatever $top says: 600 pages give tenants of up to 60,000 people a complete snapshot.
SNAPSHOT_PAGE = 100
SNAPSHOT_MAX_PAGES = 600
TTL_S = 900.0  # tenant-wide facts and group sizes...
REFRESH_AFTER_S = 420.0  # ...refreshed in the background once older than this
REFRESH_BUDGET_S = 300.0  # a 50,000-person snapshot is 500 sequential pages


@dataclass(frozen=True, eq=False)
class DirectorySnapshot:
    """Enabled member accounts with their managers. `complete` when every page was read."""

    people: tuple[Person, ...]
    manager_of: Mapping[str, str] = field(default_factory=dict)
    complete: bool = False

    @cached_property
    def by_id(self) -> dict[str, Person]:
        return {p.id: p for p in self.people}

    @cached_property
    def by_address(self) -> dict[str, Person]:
        out: dict[str, Person] = {}
        for p in self.people:
            for a in (p.mail, p.upn):
                if a:
                    out.setdefault(a.lower(), p)
        return out

    @cached_property
    def reports(self) -> dict[str, list[Person]]:
        out: dict[str, list[Person]] = {}
        for p in self.people:
            manager = self.manager_of.get(p.id)
            if manager:
                out.setdefault(manager, []).append(p)
        return out

    @cached_property
    def departments(self) -> dict[str, list[Person]]:
        out: dict[str, list[Person]] = {}
        for p in self.people:
            if p.department:
                out.setdefault(p.department.casefold(), []).append(p)
        return out

    @cached_property
    def stable_order(self) -> tuple[Person, ...]:
        """Everyone in an order fixed by their ids (not the directory's): decoy pools drawn from it are the same
        for the same tenant. Computed once per snapshot, not per verification (50,000 hashes)."""
        return tuple(sorted(self.people, key=lambda p: hashlib.sha256(p.id.encode()).hexdigest()))

    @cached_property
    def name_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """How many people have each given name and each surname (normalised), once per snapshot."""
        given: Counter[str] = Counter(normalize(p.given_name) for p in self.people if p.given_name)
        surnames: Counter[str] = Counter(normalize(p.surname) for p in self.people if p.surname)
        return dict(given), dict(surnames)

    @cached_property
    def _department_indexes(self) -> dict[str, DepartmentIndex]:
        return {}

    @cached_property
    def _worked_out(self) -> dict[str, NameNeighbours]:
        return {}

    @property
    def name_neighbours(self) -> NameNeighbours | None:
        """The typo neighbours of every name word in the directory (verification/department.py), once `prepare` has
        worked them out (seconds of CPU at 50,000 people, far less when the previous snapshot's carry over); None
        before: a verification never does that work itself."""
        return self._worked_out.get("name_neighbours")

    def department_index(self, department: str | None) -> DepartmentIndex | None:
        """The department's people indexed for the question generators (verification/department.py): built once per
        snapshot and department, then shared, unchanged, by every verification in it. None when nobody is in it."""
        key = department.casefold() if department else ""
        found = self._department_indexes.get(key)
        if found is None:
            members = self.departments.get(key)
            if not members:
                return None
            found = self._department_indexes.setdefault(key, DepartmentIndex.build(
                members, neighbours=self.name_neighbours))
        return found

    def prepare(self, previous: DirectorySnapshot | None = None) -> None:
        """Work out now (the background refresh calls this off the event loop) what the first verifications would
        otherwise each work out on first use: the lookups, the name counts, the name words' typo neighbours, every
        department's index (carrying over from the `previous` snapshot's what still holds); and, once per process, the
        lists outsiders' multiple-choice decoys are drawn from."""
        outsider_names.lexicon()
        for prop in ("by_id", "by_address", "reports", "stable_order", "name_counts"):
            getattr(self, prop)
        words = {w for p in self.people for w in name_words(p)}
        neighbours = NameNeighbours.build(words, previous.name_neighbours if previous is not None else None)
        self._worked_out["name_neighbours"] = neighbours
        before = previous._department_indexes if previous is not None else {}
        for key, members in self.departments.items():
            if key not in self._department_indexes:
                self._department_indexes[key] = DepartmentIndex.build(members, before.get(key), neighbours)


def snapshot(items: Sequence[Json], complete: bool) -> DirectorySnapshot:
    members = [u for u in items if u.get("id") and u.get("accountEnabled") is not False
               and u.get("userType", "Member") == "Member"]
    managers = {str(u["id"]): str(u["manager"]["id"]) for u in members
                if isinstance(u.get("manager"), dict) and u["manager"].get("id")}
    return DirectorySnapshot(tuple(mapping.person(u) for u in members), managers, complete)


@dataclass(frozen=True)
class Fact:
    """One tenant-wide fact: its request, and how its answer (a count, or the items of its pages) becomes the
    cached value. `pages`: how many pages a verification reads; the background refresh reads `all_pages`."""

    url: str
    headers: Mapping[str, str]
    build: Callable[[Any, bool], Any]  # (count or items, complete) -> value
    count: bool = False
    pages: int = 1
    all_pages: int = 1


def _domains(items: Sequence[Json], complete: bool) -> tuple[tuple[str, str], ...]:
    return tuple((str(d["id"]), str(d.get("authenticationType") or "Managed")) for d in items
                 if d.get("id") and d.get("isVerified") is not False)


def _catalogue(items: Sequence[Json], complete: bool) -> tuple[Json, ...]:
    # The first page (up to 999 groups) is the catalogue decoys and rankings draw from.
    return tuple(g for g in items if g.get("id"))


def _role_usage(items: Sequence[Json], complete: bool) -> Any:
    return mapping.role_usage(items)


def _count(n: int, complete: bool) -> int:
    return n


FACTS: dict[str, Fact] = {
    "population": Fact(relative_url("/users/$count", {"$filter": "accountEnabled eq true and userType eq 'Member'"}),
                       EVENTUAL, _count, count=True),
    "group_count": Fact("/groups/$count", EVENTUAL, _count, count=True),
    "domains": Fact(relative_url("/domains", {"$select": "id,isVerified,authenticationType"}), {}, _domains),
    "role_usage": Fact(relative_url("/roleManagement/directory/roleAssignments", {
        "$expand": "roleDefinition", "$top": "999"}), {}, _role_usage, pages=5, all_pages=20),
    "catalogue": Fact(relative_url("/groups", {"$select": ",".join(mapping.GROUP_FIELDS), "$top": "999"}), {},
                      _catalogue),
    "users": Fact(relative_url("/users", {
        "$select": ",".join((*mapping.PERSON_FIELDS, "accountEnabled", "userType")),
        "$expand": "manager($select=id)", "$top": str(SNAPSHOT_PAGE)}), {}, snapshot, all_pages=SNAPSHOT_MAX_PAGES),
}


# Users listed per small group (one page): more than any group a question names (Policy.max_group_members).
GROUP_MEMBERS_PAGE = 100
# Every group of the tenant, ids only, for the background refresh to size them all (not only the catalogue's).
GROUP_IDS_URL = relative_url("/groups", {"$select": "id", "$top": "999"})
GROUP_IDS_MAX_PAGES = 100
# The background refresh's group reads (4 resource units each) stay at a quarter of a large tenant's directory
# budget (8,000 units per 10 s), leaving the rest to verifications: 12,000 groups take about four minutes.
GROUP_READS_PER_S = 50.0
GROUP_BATCH_BUDGET_S = 30.0  # one batch of them, retries of throttled items included


def group_read(group_id: str) -> tuple[str, dict[str, str]]:
    """One request for a group's size and, when it fits one page, its members: `$count=true` (an advanced query,
    so with ConsistencyLevel: eventual) puts the size beside the first page. No cast to users: the size counts
    nested groups as `transitiveMembers/$count` does, and their ids match no person."""
    return relative_url(f"/groups/{quote(group_id, safe='')}/transitiveMembers",
                        {"$select": "id", "$top": str(GROUP_MEMBERS_PAGE), "$count": "true"}), dict(EVENTUAL)


def read_group(body: Any) -> tuple[int | None, frozenset[str] | None]:
    """A `group_read` answer: the group's size (None if Graph left it out) and its members' ids when the page holds
    them all (None for a bigger group)."""
    if not isinstance(body, dict):
        return None, None
    raw = body.get("@odata.count")
    count = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if body.get("@odata.nextLink"):
        return count, None
    return count, frozenset(str(u["id"]) for u in mapping.values(body) if u.get("id"))


@dataclass(frozen=True)
class _MappedCatalogue:
    key: tuple[int, int, int]  # population, sizes put, age bucket
    catalogue: tuple[Json, ...]
    groups: tuple[Group, ...]
    ids: frozenset[str]


def _prepared(fact: Fact, items: list[Json], complete: bool, previous: Any) -> Any:
    value = fact.build(items, complete)
    if isinstance(value, DirectorySnapshot):
        value.prepare(previous if isinstance(previous, DirectorySnapshot) else None)
        _out_of_collections()
    return value


def _out_of_collections() -> None:
    """Keep the collector from walking a new directory snapshot again and again. It lives for minutes, never changes
    and holds no cycles (the last one goes with its last reference), yet each full collection walked all of it: ~50-90
    ms at 50,000 people, every few dozen verifications, and a pause for every turn then in flight. So, as app.py does
    with what it made at start, everything alive is frozen once the snapshot is ready. What the last freeze held comes
    back into one full collection first (a pause of that size, once per snapshot; in demo mode devtenant's organisation
    is walked too): a turn in flight then, frozen with the rest, may have ended in cycles that only a collection frees,
    and they are not kept beyond one snapshot."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class TenantFacts:
    """The per-tenant cache of FACTS (`cache`, keyed (tenant, part)) and group sizes (`group_counts`, keyed
    (tenant, group id)), refreshed in the background after a verification once older than REFRESH_AFTER_S."""

    def __init__(self, *, tokens: TokenSource, http: httpx.AsyncClient, graph_url: str,
                 monotonic: Callable[[], float] = time.monotonic, calls: GraphCalls | None = None) -> None:
        self.tokens = tokens
        self.http = http
        self.calls = calls
        self.graph_url = graph_url.rstrip("/")
        self.monotonic = monotonic
        self.cache: TtlCache[Any] = TtlCache(TTL_S, clock=monotonic)
        self.group_counts: TtlCache[int] = TtlCache(TTL_S, max_entries=200_000, clock=monotonic)
        # The users of small groups verified people are in (keyed as group_counts): which groups a team shares.
        self.group_members: TtlCache[frozenset[str]] = TtlCache(TTL_S, max_entries=50_000, clock=monotonic)
        self._refreshed: dict[str, float] = {}
        self._counted: dict[str, int] = {}  # per tenant: bumped whenever a catalogue group's size is put
        self._catalogue_groups: dict[str, _MappedCatalogue] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}

    def put_count(self, tenant_id: str, group_id: str, count: int) -> None:
        self.group_counts.put((tenant_id, group_id), count)
        held = self._catalogue_groups.get(tenant_id)
        if held is None or group_id in held.ids:  # a catalogue group's size: the mapped catalogue is out of date
            self._counted[tenant_id] = self._counted.get(tenant_id, 0) + 1

    def catalogue_groups(self, tenant_id: str, catalogue: tuple[Json, ...], population: int) -> tuple[Group, ...]:
        """The group catalogue as Groups with the sizes counted so far, mapped once and shared by every verification
        until the catalogue, the population or a size changes (or REFRESH_AFTER_S passes: sizes expire)."""
        key = (population, self._counted.get(tenant_id, 0), int(self.monotonic() // REFRESH_AFTER_S))
        held = self._catalogue_groups.get(tenant_id)
        if held is not None and held.key == key and held.catalogue is catalogue:
            return held.groups
        groups = tuple(mapping.group(g, member_count=self.group_counts.get((tenant_id, str(g["id"]))), is_direct=False,
                                     population=population) for g in catalogue)
        self._catalogue_groups[tenant_id] = _MappedCatalogue(key, catalogue, groups, frozenset(g.id for g in groups))
        return groups

    def refresh_soon(self, tenant_id: str) -> None:
        last = self._refreshed.get(tenant_id)
        if last is not None and self.monotonic() - last < REFRESH_AFTER_S:
            return
        if tenant_id in self._running:  # a big tenant's refresh can outlast REFRESH_AFTER_S: never two at once
            return
        self._refreshed[tenant_id] = self.monotonic()
        task = asyncio.ensure_future(self._refresh(tenant_id))
        self._running[tenant_id] = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _t: self._running.pop(tenant_id, None))

    async def settle(self) -> None:
        """Wait for the refreshes under way (tests and benchmarks want a steady state)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def _fresh(self, cache: TtlCache[Any], key: tuple[str, str]) -> bool:
        age = cache.age(key)
        return age is not None and age < REFRESH_AFTER_S

    async def _refresh(self, tenant_id: str) -> None:
        """Read again what is getting old (or was never read whole): facts, the snapshot, group sizes."""
        deadline = Deadline.after(REFRESH_BUDGET_S)
        tokens = self.tokens.for_tenant(tenant_id, self.graph_url)
        try:
            for part, fact in FACTS.items():
                current = self.cache.get((tenant_id, part))
                if self._fresh(self.cache, (tenant_id, part)) and getattr(current, "complete", True):
                    continue
                value = await self._read(tokens, fact, deadline, current)
                if value is not None:
                    self.cache.put((tenant_id, part), value)
            catalogue = tuple(str(g["id"]) for g in self.cache.get((tenant_id, "catalogue")) or ())
            others = await self._group_ids(tokens, deadline)
            await self._refresh_groups(tenant_id, tokens, list(dict.fromkeys((*catalogue, *others))))
        except (TokenError, BatchError, httpx.HTTPError) as err:
            log.info("graph: background refresh for tenant %s stopped: %s", tenant_id, type(err).__name__)
            self._refreshed.pop(tenant_id, None)  # try again with the next verification
        except Exception:  # a background task has nobody to raise to: say it, and try again later
            log.exception("graph: background refresh for tenant %s failed", tenant_id)
            self._refreshed.pop(tenant_id, None)

    async def _group_ids(self, tokens: GraphTokenProvider, deadline: Deadline) -> list[str]:
        """Every group's id (the catalogue holds the first page only; a person's own team and project groups are
        often beyond it). Empty when Graph will not list them: the catalogue's groups are still sized."""
        url: str | None = GROUP_IDS_URL
        ids: list[str] = []
        for _page in range(GROUP_IDS_MAX_PAGES):
            if url is None:
                break
            res = (await send_batch(self.http, self.graph_url, tokens, [BatchItem("ids", url)], deadline,
                                    calls=self.calls))["ids"]
            if not res.ok:
                break
            ids += [str(g["id"]) for g in mapping.values(res.body) if g.get("id")]
            url = relative_link(self.graph_url, res.next_link) if res.next_link else None
        return ids

    async def _refresh_groups(self, tenant_id: str, tokens: GraphTokenProvider, group_ids: list[str]) -> None:
        """The size of every group and the users of every small one (at most GROUP_MEMBERS_PAGE), so that a
        verification finds its person's groups sized, and knows which of them the team shares, without a second
        round trip. Paced at GROUP_READS_PER_S; stops when the next refresh is due."""
        stale = [gid for gid in group_ids if not self._fresh(self.group_counts, (tenant_id, gid))
                 or ((self.group_counts.get((tenant_id, gid)) or 0) <= GROUP_MEMBERS_PAGE
                     and not self._fresh(self.group_members, (tenant_id, gid)))]
        began = time.monotonic()
        for i in range(0, len(stale), MAX_BATCH):
            sent = time.monotonic()
            if sent - began > REFRESH_AFTER_S:
                break
            chunk = [BatchItem(gid, *group_read(gid)) for gid in stale[i:i + MAX_BATCH]]
            results = await send_batch(self.http, self.graph_url, tokens, chunk, Deadline.after(GROUP_BATCH_BUDGET_S),
                                       calls=self.calls)
            for gid, res in results.items():
                if res.ok:
                    self.put_group(tenant_id, gid, *read_group(res.body))
            await asyncio.sleep(max(0.0, len(chunk) / GROUP_READS_PER_S - (time.monotonic() - sent)))

    def put_group(self, tenant_id: str, group_id: str, count: int | None, members: frozenset[str] | None) -> None:
        if count is not None:
            self.put_count(tenant_id, group_id, count)
        if members is not None:
            self.group_members.put((tenant_id, group_id), members)

    async def _read(self, tokens: GraphTokenProvider, fact: Fact, deadline: Deadline, previous: Any = None) -> Any:
        url: str | None = fact.url
        items: list[Json] = []
        pages = 0
        while url and pages < fact.all_pages:
            item = BatchItem("fact", url, dict(fact.headers))
            res = (await send_batch(self.http, self.graph_url, tokens, [item], deadline, calls=self.calls))["fact"]
            if not res.ok:
                return None
            if fact.count:
                n = mapping.count_value(res.body)
                return None if n is None else fact.build(n, True)
            items += mapping.values(res.body)
            pages += 1
            url = relative_link(self.graph_url, res.next_link) if res.next_link else None
        # A whole directory is tens of thousands of users to map and index: off the event loop.
        return await asyncio.to_thread(_prepared, fact, items, url is None, previous)
