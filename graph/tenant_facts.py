"""Tenant-wide facts a verification needs but no verification should fetch: read once, cached for minutes.

Population, verified domains, who holds which directory role, the group catalogue, the size of every group
(and the members of every small one), and a snapshot of the directory (people, their departments and managers).
Every verification in a tenant needs them and they change slowly, so `ContextLoader` keeps them per tenant and
refreshes them in the background before they expire. With a complete snapshot, a verification finds the
target's peers, skip-level and department locally, and its person's groups come sized: it needs a single
round trip.

Each fact is one request (plus pages) described here once; the first verification in a tenant reads what
is missing inside its own round 1, the background refresh reads the rest.

The two big ones are kept as a real Graph client keeps a directory: through delta queries (graph/delta.py). The
snapshot's people come from `/users/delta` (with `manager` selected: `manager@delta`), every group's members from
`/groups/delta` (with `members` selected: `members@delta`, nested groups included, whose sizes are worked out here
as `transitiveMembers/$count` counts them). The first refresh of a tenant reads everything (at 50,000 people about
500 pages of people and a thousand of groups with their members); each later one reads what changed since the
last delta link, so it costs what changed: a quiet tenant's refresh is two pages and keeps the same snapshot
object, its department indexes and typo neighbours included. A refused link (410 Gone, 400 syncStateNotFound
once it expired) starts a clean round.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import hashlib
import logging
import sys
import time
from array import array
from collections import ChainMap, Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import httpx

from graph import mapping
from graph.batch import BatchError, BatchItem, Deadline, GraphCalls, send_batch
from graph.delta import REFUSED_STATUSES, BrokenPage, DeltaPage, LinkRefused, walk_delta
from graph.limits import TtlCache
from graph.mapping import Json
from graph.people_search import PeopleIndex
from graph.tokens import GraphTokenProvider, TokenError, TokenSource
from graph.urls import EVENTUAL, relative_link, relative_url
from verification import outsider_names
from verification.context import Group, Person
from verification.department import DepartmentIndex, NameNeighbours, name_words
from verification.names import normalize  # the same keys the question generators look names up by

log = logging.getLogger(__name__)
T = TypeVar("T")

# The snapshot expands each user's manager, and Graph caps a page of directory objects with $expand at 100,
# whatever $top says: 600 pages give tenants of up to 60,000 people a complete snapshot.
SNAPSHOT_PAGE = 100
SNAPSHOT_MAX_PAGES = 600
TTL_S = 900.0  # tenant-wide facts and group sizes...
REFRESH_AFTER_S = 420.0  # ...refreshed in the background once older than this
REFRESH_BUDGET_S = 300.0  # the small facts' reads, all together
DELTA_PAGE_BUDGET_S = 60.0  # one page of a delta round, retries of a throttled page included


@dataclass(frozen=True, eq=False)
class DirectorySnapshot:
    """Enabled member accounts with their managers. `complete` when every page was read. `others`: the rest of the
    directory's accounts (disabled accounts, guests), which only the people search finds: nobody is verified or asked
    about from them, but the agent who types one's name sees them, as in Graph's answer, and the start refuses them."""

    people: tuple[Person, ...]
    manager_of: Mapping[str, str] = field(default_factory=dict)
    complete: bool = False
    others: tuple[Person, ...] = ()

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
        by_id = self.by_id
        return tuple(by_id[pid] for _, pid in self._order_keys)

    @cached_property
    def people_index(self) -> PeopleIndex:
        """Every account (people and others) indexed for the people search (graph/people_search.py), once per
        snapshot (or patched from the previous one's: `prepare`)."""
        return PeopleIndex(self._accounts())

    def _accounts(self) -> Mapping[str, Person]:
        """Every account by id: the people's lookup itself (no copy of 50,000 entries), then the others."""
        return ChainMap(self.by_id, {p.id: p for p in self.others})

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

    @cached_property
    def _order_keys(self) -> list[tuple[str, str]]:
        return sorted((hashlib.sha256(p.id.encode()).hexdigest(), p.id) for p in self.people)

    @cached_property
    def _word_counts(self) -> Counter[str]:
        """How many people have each name word (the vocabulary of the typo neighbours)."""
        return Counter(w for p in self.people for w in name_words(p))

    def prepare(self, previous: DirectorySnapshot | None = None, changed: frozenset[str] | None = None) -> None:
        """Work out now (the background refresh calls this off the event loop) what the first verifications would
        otherwise each work out on first use: the lookups, the people search's index, the name counts, the name words'
        typo neighbours, every department's index (carrying over from the `previous` snapshot's what still holds); and,
        once per process, the lists outsiders' multiple-choice decoys are drawn from. `changed`: the ids of the people
        added, changed or gone since `previous` (a delta round's), when known: then each of these is the previous one's
        patched for them, and the indexes of departments nobody joined, left or changed in are the previous ones, so a
        refresh costs what changed (None: worked out from everyone)."""
        outsider_names.warm()
        if previous is not None and changed is not None and "_order_keys" in vars(previous):
            self._patch(previous, changed)
        for prop in ("by_id", "by_address", "reports", "stable_order", "name_counts", "_word_counts", "people_index"):
            getattr(self, prop)
        like = previous.name_neighbours if previous is not None else None
        words = self._word_counts
        if like is not None and previous is not None and words.keys() == previous._word_counts.keys():
            neighbours = like  # the same name words: the same neighbours
        else:
            neighbours = NameNeighbours.build(words, like)
        self._worked_out["name_neighbours"] = neighbours
        before = previous._department_indexes if previous is not None else {}
        touched = self._touched_departments(previous, changed)
        for key, members in self.departments.items():
            if key in self._department_indexes:
                continue
            held = before.get(key)
            if held is not None and touched is not None and key not in touched and neighbours is like:
                self._department_indexes[key] = held
            else:
                self._department_indexes[key] = DepartmentIndex.build(members, held, neighbours)

    def _touched_departments(self, previous: DirectorySnapshot | None, changed: frozenset[str] | None
                             ) -> set[str] | None:
        if previous is None or changed is None:
            return None
        out = set()
        for pid in changed:
            for snap in (previous, self):
                person = snap.by_id.get(pid)
                if person is not None and person.department:
                    out.add(person.department.casefold())
        return out

    def _patch(self, previous: DirectorySnapshot, changed: frozenset[str]) -> None:
        """This snapshot's lookups as `previous`'s, patched for the people in `changed` (see `prepare`)."""
        mine, theirs = self.__dict__, previous
        ids = sorted(changed)  # the same order in every process
        by_id = mine.get("by_id")
        if by_id is None:
            now = {p.id: p for p in self.people if p.id in changed} if changed else {}
            by_id = dict(theirs.by_id)
            for pid in ids:
                by_id.pop(pid, None)
            by_id.update(now)
            mine["by_id"] = by_id
        found = [p for pid in ids if (p := by_id.get(pid)) is not None]
        old = [p for pid in ids if (p := theirs.by_id.get(pid)) is not None]

        by_address = dict(theirs.by_address)
        for p in old:
            for a in (p.mail, p.upn):
                if a and by_address.get(a.lower()) is p:
                    del by_address[a.lower()]
        for p in found:
            for a in (p.mail, p.upn):
                if a:
                    by_address.setdefault(a.lower(), p)
        mine["by_address"] = by_address
        if "people_index" in vars(theirs):
            mine["people_index"] = theirs.people_index.patched(self._accounts(), changed)

        mine["reports"] = _regroup(theirs.reports, changed, found,
                                   {m for pid in ids for m in (theirs.manager_of.get(pid), self.manager_of.get(pid))
                                    if m}, lambda p: self.manager_of.get(p.id))
        mine["departments"] = _regroup(theirs.departments, changed, found,
                                       {p.department.casefold() for p in (*old, *found) if p.department},
                                       lambda p: p.department.casefold() if p.department else None)

        keys = list(theirs._order_keys)
        for pid in ids:
            if pid in theirs.by_id and pid not in by_id:
                del keys[bisect.bisect_left(keys, (hashlib.sha256(pid.encode()).hexdigest(), pid))]
        for p in found:
            if p.id not in theirs.by_id:
                bisect.insort(keys, (hashlib.sha256(p.id.encode()).hexdigest(), p.id))
        mine["_order_keys"] = keys
        mine["stable_order"] = tuple(by_id[pid] for _, pid in keys)

        given, surnames = dict(theirs.name_counts[0]), dict(theirs.name_counts[1])
        words = Counter(theirs._word_counts)
        for people, step in ((old, -1), (found, 1)):
            for p in people:
                for counts, name in ((given, p.given_name), (surnames, p.surname)):
                    if name:
                        key = normalize(name)
                        counts[key] = counts.get(key, 0) + step
                        if counts[key] <= 0:
                            del counts[key]
                for w in name_words(p):
                    words[w] += step
        mine["name_counts"] = (given, surnames)
        mine["_word_counts"] = +words  # without the words nobody has any more


def _regroup(before: Mapping[str, list[Person]], changed: frozenset[str], found: list[Person], keys: set[str],
             key_of: Callable[[Person], str | None]) -> dict[str, list[Person]]:
    """`before`'s lists, those under `keys` without the `changed` people and with the `found` ones that belong."""
    out = dict(before)
    for key in keys:
        kept = [p for p in before.get(key, ()) if p.id not in changed]
        kept += [p for p in found if key_of(p) == key]
        if kept:
            out[key] = kept
        else:
            out.pop(key, None)
    return out


def snapshot(items: Sequence[Json], complete: bool) -> DirectorySnapshot:
    accounts = [u for u in items if u.get("id")]
    members = [u for u in accounts if _is_member(u)]
    managers = {str(u["id"]): str(u["manager"]["id"]) for u in members
                if isinstance(u.get("manager"), dict) and u["manager"].get("id")}
    return DirectorySnapshot(tuple(mapping.person(u) for u in members), managers, complete,
                             tuple(mapping.person(u) for u in accounts if not _is_member(u)))


def _is_member(d: Json) -> bool:
    """An enabled member account: someone Watchword may verify (not a disabled account, not a guest)."""
    return d.get("accountEnabled") is not False and d.get("userType", "Member") == "Member"


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
# The background refresh's delta rounds. Only the selected properties are tracked; `manager` and `members` are
# navigation properties Graph tracks when selected (`manager@delta`, `members@delta`).
USERS_DELTA_URL = relative_url("/users/delta", {
    "$select": ",".join((*mapping.PERSON_FIELDS, "accountEnabled", "userType", "manager"))})
GROUPS_DELTA_URL = relative_url("/groups/delta", {"$select": "id,members"})


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
    groups: dict[str, Group]  # by id, in the catalogue's order: never changed once made (callers copy it)


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


def _id(d: Json) -> str:
    """An object's id, interned: the same user id arrives in thousands of members@delta entries and in the people's
    pages, and one string each keeps a 50,000-person tenant's half a million memberships a few MB."""
    return sys.intern(str(d["id"]))


@dataclass(frozen=True)
class _People:
    """A tenant's people as its `/users/delta` rounds left them: enabled members, and their managers; and the other
    accounts (disabled, guests)."""

    link: str | None  # the last complete round's delta link (below the Graph version)
    people: dict[str, Person]
    managers: dict[str, str]
    others: dict[str, Person] = field(default_factory=dict)


class _Person(NamedTuple):
    """One entry of a users delta page, as kept until the round completes (not its JSON)."""

    id: str
    removed: bool
    person: Person | None  # None: removed
    manager: str | None  # the manager's id, or None for none
    manager_known: bool  # the entry said who the manager is (manager@delta present)
    member: bool = True  # an enabled member; else a disabled account or a guest


def _people_of(items: list[Json]) -> list[_Person]:
    out = []
    for d in items:
        uid = _id(d)
        if mapping.is_removed(d):
            out.append(_Person(uid, True, None, None, True))
            continue
        member = _is_member(d)
        d["id"] = uid
        refs = d.get("manager@delta")
        manager: str | None = None
        known = isinstance(refs, list)
        if known:  # present: the manager now (none left: no manager); absent: unchanged
            alive = [m for m in refs if isinstance(m, dict) and m.get("id") and not mapping.is_removed(m)]
            manager = _id(alive[-1]) if alive else None
        elif isinstance(d.get("manager"), dict) and d["manager"].get("id"):
            manager, known = _id(d["manager"]), True
        out.append(_Person(uid, False, mapping.person(d), manager, known, member))
    return out


def _apply_people(held: _People | None, pages: list[tuple[bool, list[_Person]]], link: str
                  ) -> tuple[_People, frozenset[str] | None, frozenset[str]]:
    """The people after a round's pages: (state, the ids of the people and other accounts added, changed or gone (None:
    a round that restarted, or the first, which read everyone), the ids of people deleted). An entry that changes
    nothing the snapshot keeps (Graph also reports changes to properties not selected) keeps the same Person."""
    full = held is None or any(restarted for restarted, _ in pages)
    people = {} if full or held is None else dict(held.people)
    managers = {} if full or held is None else dict(held.managers)
    others = {} if full or held is None else dict(held.others)
    removed: set[str] = set()
    changed: set[str] = set()
    for _, entries in pages:
        for e in entries:
            if e.person is None or not e.member:
                if people.pop(e.id, None) is not None:
                    changed.add(e.id)
                managers.pop(e.id, None)
                if e.person is None:
                    if others.pop(e.id, None) is not None:
                        changed.add(e.id)
                elif others.get(e.id) != e.person:
                    others[e.id] = e.person
                    changed.add(e.id)
                if e.removed:
                    removed.add(e.id)
                continue
            if others.pop(e.id, None) is not None:
                changed.add(e.id)
            before = people.get(e.id)
            if before is None or before != e.person:
                people[e.id] = e.person
                changed.add(e.id)
            if e.manager_known and managers.get(e.id) != e.manager:
                changed.add(e.id)
                if e.manager:
                    managers[e.id] = e.manager
                else:
                    managers.pop(e.id, None)
    if full and held is not None:
        removed |= held.people.keys() - people.keys()
    return _People(link, people, managers, others), None if full else frozenset(changed), frozenset(removed)


# A group's members are kept as a set of their ids up to this many, above it as a sorted array of numbers standing for
# them (`_Ids`): a 50,000-person tenant's 52 groups of more than 1,000 members hold three quarters of its half a
# million memberships, ~20 MB as sets, ~2 MB so.
PACK_OVER = 1000
Members = frozenset[str] | array


@dataclass(frozen=True, eq=False)
class _Ids:
    """A number for each member id seen (append-only), so big groups' members pack as arrays of them."""

    numbers: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def number(self, oid: str) -> int:
        found = self.numbers.get(oid)
        if found is None:
            found = self.numbers[oid] = len(self.names)
            self.names.append(oid)
        return found

    def pack(self, members: AbstractSet[str]) -> Members:
        if len(members) <= PACK_OVER:
            return frozenset(members)
        return array("i", sorted(self.number(m) for m in members))

    def ids(self, members: Members) -> Iterable[str]:
        return members if isinstance(members, frozenset) else (self.names[n] for n in members)

    def unpack(self, members: Members) -> frozenset[str]:
        return members if isinstance(members, frozenset) else frozenset(self.ids(members))

    def holds(self, members: Members, oids: AbstractSet[str]) -> bool:
        """Whether any of `oids` is among `members`."""
        if isinstance(members, frozenset):
            return not members.isdisjoint(oids)
        for oid in oids:
            n = self.numbers.get(oid)
            if n is not None:
                at = bisect.bisect_left(members, n)
                if at < len(members) and members[at] == n:
                    return True
        return False


@dataclass(frozen=True)
class _Groups:
    """Every group's members as the tenant's `/groups/delta` rounds left them, and what follows from them: each
    group's size counted as `transitiveMembers/$count` does (users and nested groups, through nesting) and, for
    groups of at most GROUP_MEMBERS_PAGE, who they are. `at`: when the last round completed (monotonic)."""

    link: str | None
    direct: dict[str, Members]  # group id -> its direct members (users and groups), packed when many (PACK_OVER)
    nested: dict[str, frozenset[str]]  # group id -> the groups among its direct members (only when there are some)
    counts: dict[str, int]
    members: dict[str, frozenset[str]]
    at: float
    ids: _Ids


def _groups_of(items: list[Json]) -> list[tuple[str, bool, tuple[str, ...], tuple[str, ...]]]:
    """A groups delta page as kept until the round completes: (group id, deleted, members added, members removed)."""
    out = []
    for d in items:
        refs = [m for m in d.get("members@delta") or () if isinstance(m, dict) and m.get("id")]
        out.append((_id(d), mapping.is_removed(d), tuple(_id(m) for m in refs if not mapping.is_removed(m)),
                    tuple(_id(m) for m in refs if mapping.is_removed(m))))
    return out


def _apply_groups(held: _Groups | None, pages: list[tuple[bool, list[tuple[str, bool, tuple[str, ...],
                                                                          tuple[str, ...]]]]],
                  link: str, gone: frozenset[str], at: float) -> tuple[_Groups, int]:
    """The groups after a round's pages (and the people deleted meanwhile, `gone`: Graph does not report a deleted
    user's memberships as removed): (state, how many groups' sizes or members changed). A group's members may come
    on several pages of one round, a part on each."""
    full = held is None or any(restarted for restarted, _ in pages)
    direct = {} if full or held is None else dict(held.direct)
    ids = held.ids if held is not None else _Ids()
    added: dict[str, set[str]] = {}
    dropped: dict[str, set[str]] = {}
    deleted: set[str] = set()
    for _, entries in pages:
        for gid, removed, plus_ids, minus_ids in entries:
            if removed:
                deleted.add(gid)
                added.pop(gid, None)
                dropped.pop(gid, None)
                continue
            deleted.discard(gid)
            plus, minus = added.setdefault(gid, set()), dropped.setdefault(gid, set())
            plus.difference_update(minus_ids)
            minus.update(minus_ids)
            minus.difference_update(plus_ids)
            plus.update(plus_ids)
    changed: set[str] = set()
    for gid in deleted:
        if direct.pop(gid, None) is not None:
            changed.add(gid)
    for gid, plus in added.items():
        before = ids.unpack(direct.get(gid, frozenset()))
        after = (before | plus) - dropped[gid]
        if after != before or gid not in direct:
            direct[gid] = ids.pack(after)
            changed.add(gid)
    gone = gone | frozenset(deleted)
    if gone:
        for gid, members in direct.items():
            if ids.holds(members, gone):
                direct[gid] = ids.pack(ids.unpack(members) - gone)
                changed.add(gid)
    if full or held is None:
        nested: dict[str, frozenset[str]] = {}
        counts: dict[str, int] = {}
        members: dict[str, frozenset[str]] = {}
        affected = set(direct)
    else:
        nested, counts, members = dict(held.nested), dict(held.counts), dict(held.members)
        for gid in deleted:
            nested.pop(gid, None)
            counts.pop(gid, None)
            members.pop(gid, None)
        affected = set(changed)
    for gid in affected:  # which of a changed group's members are groups (a few, in real tenants and devtenant's)
        inner = frozenset(m for m in ids.ids(direct.get(gid, frozenset())) if m in direct)
        if inner:
            nested[gid] = inner
        else:
            nested.pop(gid, None)
    parents: dict[str, set[str]] = {}
    for gid, inner in nested.items():
        for child in inner:
            parents.setdefault(child, set()).add(gid)
    stack = list(affected)  # a group's size moves with its nested groups': their parents, up the chain
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in affected:
                affected.add(parent)
                stack.append(parent)
    for gid in affected:
        if gid not in direct:
            continue
        found = _transitive(gid, direct, nested, ids)
        counts[gid] = len(found)
        if len(found) <= GROUP_MEMBERS_PAGE and isinstance(found, frozenset):
            members[gid] = found
        else:
            members.pop(gid, None)
    return _Groups(link, direct, nested, counts, members, at, ids), len(changed) if not full else len(direct)


def _transitive(gid: str, direct: Mapping[str, Members], nested: Mapping[str, frozenset[str]], ids: _Ids) -> Members:
    """A group's members through nesting (users and groups), as `transitiveMembers` lists them."""
    if gid not in nested:
        return direct[gid]
    out = set(ids.ids(direct[gid]))
    seen, stack = {gid}, list(nested[gid])
    while stack:
        child = stack.pop()
        if child in seen:
            continue
        seen.add(child)
        out.update(ids.ids(direct.get(child, frozenset())))
        stack.extend(nested.get(child, ()))
    out.discard(gid)
    return ids.pack(out)


class TenantFacts:
    """The per-tenant cache of FACTS (`cache`, keyed (tenant, part)) and group sizes, refreshed in the background
    after a verification once older than REFRESH_AFTER_S. Group sizes and small groups' members come from the
    tenant's groups delta (`count`, `members`); those a verification read itself, before the first round completed
    or for a group created since, are kept in `group_counts` / `group_members` (keyed (tenant, group id))."""

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
        self._people: dict[str, _People] = {}
        self._groups: dict[str, _Groups] = {}
        self._refreshed: dict[str, float] = {}
        self._counted: dict[str, int] = {}  # per tenant: bumped whenever a catalogue group's size is put
        self._catalogue_groups: dict[str, _MappedCatalogue] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}

    def _delta_groups(self, tenant_id: str) -> _Groups | None:
        held = self._groups.get(tenant_id)
        return held if held is not None and self.monotonic() - held.at < TTL_S else None

    def directory(self, tenant_id: str) -> DirectorySnapshot | None:
        """The tenant's directory snapshot when it is complete (every page of a round read), else None."""
        held = self.cache.get((tenant_id, "users"))
        return held if isinstance(held, DirectorySnapshot) and held.complete else None

    def count(self, tenant_id: str, group_id: str) -> int | None:
        """The group's size (users and nested groups, through nesting), if known."""
        held = self._delta_groups(tenant_id)
        if held is not None and group_id in held.counts:
            return held.counts[group_id]
        return self.group_counts.get((tenant_id, group_id))

    def members(self, tenant_id: str, group_id: str) -> frozenset[str] | None:
        """The members of a group of at most GROUP_MEMBERS_PAGE, if known (None for a bigger group)."""
        held = self._delta_groups(tenant_id)
        if held is not None and group_id in held.counts:
            return held.members.get(group_id)
        return self.group_members.get((tenant_id, group_id))

    def knows_memberships(self, tenant_id: str) -> bool:
        """Whether a recent groups delta round is held: every group's direct members, as fresh as its sizes."""
        return self._delta_groups(tenant_id) is not None

    def direct_groups(self, tenant_id: str, user_id: str, group_ids: Iterable[str]) -> set[str]:
        """Which of `group_ids` (groups the user is in, through nesting or not) hold `user_id` as a direct member, from
        the groups delta: what `/users/{id}/memberOf` would say. A group the last round does not know (created since)
        is counted as direct, as when memberOf cannot be read; with no round held (`knows_memberships`), all are."""
        held = self._delta_groups(tenant_id)
        if held is None:
            return set(group_ids)
        who = frozenset((user_id,))
        return {gid for gid in group_ids if gid not in held.direct or held.ids.holds(held.direct[gid], who)}

    def put_count(self, tenant_id: str, group_id: str, count: int) -> None:
        self.group_counts.put((tenant_id, group_id), count)
        held = self._catalogue_groups.get(tenant_id)
        if held is None or group_id in held.groups:  # a catalogue group's size: the mapped catalogue is out of date
            self._counted[tenant_id] = self._counted.get(tenant_id, 0) + 1

    def catalogue_groups(self, tenant_id: str, catalogue: tuple[Json, ...], population: int) -> Mapping[str, Group]:
        """The group catalogue as Groups (by id) with the sizes counted so far, mapped once and shared by every
        verification until the catalogue, the population or a size changes (or REFRESH_AFTER_S passes: sizes expire).
        Shared: a caller that adds to it copies it first (`dict(...)`, a C-level copy, not a walk of up to 999)."""
        key = (population, self._counted.get(tenant_id, 0), int(self.monotonic() // REFRESH_AFTER_S))
        held = self._catalogue_groups.get(tenant_id)
        if held is not None and held.key == key and held.catalogue is catalogue:
            return held.groups
        groups = {group.id: group for group in (
            mapping.group(g, member_count=self.count(tenant_id, str(g["id"])), is_direct=False, population=population)
            for g in catalogue)}
        self._catalogue_groups[tenant_id] = _MappedCatalogue(key, catalogue, groups)
        return groups

    def refresh_soon(self, tenant_id: str) -> None:
        last = self._refreshed.get(tenant_id)
        if last is not None and self.monotonic() - last < REFRESH_AFTER_S:
            return
        if tenant_id in self._running:  # a big tenant's first refresh can outlast REFRESH_AFTER_S: never two at once
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
        """Read again what is getting old: the small facts whole, the people and the groups' members through their
        delta rounds (everything the first time, what changed since the last round after)."""
        deadline = Deadline.after(REFRESH_BUDGET_S)
        tokens = self.tokens.for_tenant(tenant_id, self.graph_url)
        try:
            for part, fact in FACTS.items():
                if part == "users":  # the snapshot: from /users/delta below
                    continue
                current = self.cache.get((tenant_id, part))
                if self._fresh(self.cache, (tenant_id, part)) and getattr(current, "complete", True):
                    continue
                value = await self._read(tokens, fact, deadline, current)
                if value is not None:
                    self.cache.put((tenant_id, part), value)
            await self._refresh_directory(tenant_id, tokens)
        except (TokenError, BatchError, BrokenPage, httpx.HTTPError) as err:
            log.info("graph: background refresh for tenant %s stopped: %s", tenant_id, type(err).__name__)
            self._refreshed.pop(tenant_id, None)  # try again with the next verification
        except Exception:  # a background task has nobody to raise to: say it, and try again later
            log.exception("graph: background refresh for tenant %s failed", tenant_id)
            self._refreshed.pop(tenant_id, None)

    async def _refresh_directory(self, tenant_id: str, tokens: GraphTokenProvider) -> None:
        """One round of each delta query, side by side; then (off the event loop) the people and the snapshot, and
        the groups' members and sizes. A round that fails changes nothing: the next refresh resumes from the last
        complete round's link. Without the groups' round, verifications read their groups' sizes themselves."""
        people, groups = self._people.get(tenant_id), self._groups.get(tenant_id)
        users_round, groups_round = await asyncio.gather(
            self._round(tokens, USERS_DELTA_URL, people.link if people else None, _people_of),
            self._round(tokens, GROUPS_DELTA_URL, groups.link if groups else None, _groups_of),
            return_exceptions=True)
        if isinstance(users_round, BaseException):
            if not isinstance(groups_round, BaseException):  # keep the groups' round: it is complete
                await self._apply_groups(tenant_id, groups, groups_round, frozenset())
            raise users_round
        previous = self.cache.get((tenant_id, "users"))
        held, snapshot, gone = await asyncio.to_thread(_people_and_snapshot, people, previous, *users_round)
        self._people[tenant_id] = held
        self.cache.put((tenant_id, "users"), snapshot)  # the same snapshot when nobody changed: its TTL renewed
        if isinstance(groups_round, BaseException):
            log.info("graph: groups delta for tenant %s failed: %s", tenant_id, type(groups_round).__name__)
            return
        await self._apply_groups(tenant_id, groups, groups_round, gone)

    async def _apply_groups(self, tenant_id: str, held: _Groups | None, found: tuple[list[Any], str],
                            gone: frozenset[str]) -> None:
        pages, link = found
        state, changed = await asyncio.to_thread(_apply_groups, held, pages, link, gone, self.monotonic())
        self._groups[tenant_id] = state
        if changed:  # the mapped catalogue's sizes are out of date
            self._counted[tenant_id] = self._counted.get(tenant_id, 0) + 1

    async def _round(self, tokens: GraphTokenProvider, start: str, resume: str | None,
                     compact: Callable[[list[Json]], T]) -> tuple[list[tuple[bool, T]], str]:
        """One delta round's pages, each made `compact` as it arrives (a 50,000-person tenant's first round is
        half a million members@delta entries: their JSON is not kept), and the new delta link (below the Graph
        version). Each page: (whether it began a clean round, its compact entries)."""
        pages: list[tuple[bool, T]] = []

        async def fetch(url: str) -> Any:
            res = (await send_batch(self.http, self.graph_url, tokens, [BatchItem("delta", url)],
                                    Deadline.after(DELTA_PAGE_BUDGET_S), calls=self.calls))["delta"]
            if res.ok:
                return res.body
            error = BatchError(f"delta page: {res.status} {res.error_code}")
            if res.status in REFUSED_STATUSES:
                log.info("graph: delta link refused (%s %s): a clean round", res.status, res.error_code)
                raise LinkRefused(error)
            raise error

        async def keep(page: DeltaPage) -> None:
            pages.append((page.restarted, compact(page.items)))

        link = await walk_delta(lambda url: fetch(relative_link(self.graph_url, url)), start, resume, keep)
        return pages, relative_link(self.graph_url, link)

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
        return await asyncio.to_thread(_prepared, fact, items, url is None, previous)


def _people_and_snapshot(held: _People | None, previous: Any, pages: list[tuple[bool, list[_Person]]], link: str
                         ) -> tuple[_People, DirectorySnapshot, frozenset[str]]:
    """The people after a users delta round and the directory snapshot of them: the previous one when nobody
    changed, else a new one prepared from it (what still holds carries over). Runs off the event loop."""
    state, changed, gone = _apply_people(held, pages, link)
    known = isinstance(previous, DirectorySnapshot) and previous.complete
    if changed is not None and not changed and known:
        return state, previous, gone
    snapshot = DirectorySnapshot(tuple(state.people.values()), state.managers, complete=True,
                                 others=tuple(state.others.values()))
    snapshot.__dict__["by_id"] = state.people  # never changed after: the next round works on a copy
    snapshot.prepare(previous if isinstance(previous, DirectorySnapshot) else None, changed if known else None)
    _out_of_collections()
    return state, snapshot, gone
