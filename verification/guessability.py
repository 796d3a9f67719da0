"""How guessable a question is, in bits, against an INFORMED IMPOSTOR.

The impostor model (see README.md):
  The impostor knows everything in OrgKnowledge (org chart, department with titles and offices, group
  names and sizes, how common roles are) and the question's wording (so they skip whoever the wording
  excludes). They rank candidates into tiers, most likely first, and spend their `guesses` going down the
  ranking, choosing at random within a tier (they cannot tell its members apart).

  P(hit) is computed exactly for that strategy: walk the tiers; a tier the guesses cover entirely hits
  for sure if it holds an accepted answer; the tier where guesses run out hits with the hypergeometric
  chance 1 - C(n-a, g) / C(n, g). To stay honest when the ranking is wrong for this impostor, P(hit) is
  at least the chance of g uniform guesses over all remaining candidates, and bits are capped by the
  policy (unmodelled knowledge: LinkedIn, gossip, a shared calendar).

  bits = -log2(P(hit)), capped.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from verification.context import OrgKnowledge, Person, UserContext
from verification.department import EMPTY as EMPTY_DEPARTMENT
from verification.department import DepartmentIndex, DepartmentSlice, NameIndex, Sample, name_keys
from verification.department import of as of_department
from verification.people import person_is_human

# People outside the tenant an impostor would have to guess a name from: effectively unguessable, so
# the per-question cap decides what external answers are worth.
EXTERNAL_UNIVERSE = 1_000_000


@dataclass(frozen=True, slots=True)
class Tier:
    """Candidates the impostor cannot tell apart: `size` of them, `accepted` of which are right."""

    label: str
    size: int
    accepted: int = 0


@dataclass(frozen=True, slots=True)
class Guessability:
    p_hit: float
    bits: float
    explanation: str


def p_all_miss(size: int, accepted: int, draws: int) -> float:
    """Chance that `draws` picks without replacement from `size` items all avoid the `accepted` ones."""
    if accepted <= 0 or draws <= 0:
        return 1.0
    if draws > size - accepted:
        return 0.0
    p = 1.0
    for i in range(draws):
        p *= (size - accepted - i) / (size - i)
    return p


def p_hit_ranked(tiers: Sequence[Tier], guesses: int) -> float:
    """Exact P(hit) for an impostor who guesses tier by tier, at random within a tier."""
    left = guesses
    for tier in tiers:
        if tier.size <= 0:
            continue
        if left >= tier.size:
            if tier.accepted:
                return 1.0
            left -= tier.size
            continue
        return 1.0 - p_all_miss(tier.size, tier.accepted, left)
    return 0.0


def p_hit_uniform(tiers: Sequence[Tier], guesses: int) -> float:
    """P(hit) for guesses spread uniformly over every candidate (the floor when our ranking is wrong)."""
    size = sum(t.size for t in tiers)
    return 1.0 - p_all_miss(size, sum(t.accepted for t in tiers), guesses)


def bits_for(p_hit: float, cap: float) -> float:
    if p_hit <= 0.0:
        return cap
    return round(min(cap, max(0.0, -math.log2(p_hit))), 2)


def assess(tiers: Sequence[Tier], guesses: int, cap: float, floor_tiers: Sequence[Tier] | None = None) -> Guessability:
    """Bits of a question whose candidates are `tiers`; the uniform floor runs over `floor_tiers`
    (default: all tiers) so that, e.g., a billion outsiders do not dilute the floor of a people question."""
    ranked = p_hit_ranked(tiers, guesses)
    uniform = p_hit_uniform(floor_tiers if floor_tiers is not None else tiers, guesses)
    p = max(ranked, uniform)
    bits = bits_for(p, cap)
    return Guessability(p, bits, _explain(tiers, guesses, ranked, uniform, bits, cap))


def assess_strongest(rankings: Sequence[Sequence[Tier]], guesses: int, cap: float) -> Guessability:
    """Bits against the strongest of several plausible impostors (each a ranking of the same candidates):
    used where we cannot tell which ordering an attacker would follow."""
    return max((assess(tiers, guesses, cap) for tiers in rankings), key=lambda g: g.p_hit)


def _explain(tiers: Sequence[Tier], guesses: int, ranked: float, uniform: float, bits: float, cap: float) -> str:
    walked: list[str] = []
    left = guesses
    for tier in tiers:
        if tier.size <= 0 or left <= 0:
            continue
        walked.append(f"{tier.label} ({tier.accepted} right of {tier.size})")
        left -= tier.size
    capped = " (capped)" if bits >= cap else ""
    return (f"An informed impostor with {guesses} guess(es) tries, in order: {'; '.join(walked) or 'nobody'}. "
            f"P(hit) = {ranked:.4f} ranked, {uniform:.4f} guessing uniformly; worth {bits:.2f} bits{capped}.")


# --- people ----------------------------------------------------------------------------------------

MANAGER = "the manager"
TEAMMATES = "teammates (the manager's other reports)"
DIRECT_REPORTS = "direct reports"
SKIP_LEVEL = "the skip-level manager"
DEPT_CLOSE = "department, same office and similar title"
DEPT_NEAR = "department, same office or similar title"
DEPT_REST = "rest of the department"
TEAM_PARTNERS = "people the team meets or chats with together"
COLLABORATORS = "people in the target's small Microsoft 365 groups (projects: the directory, LinkedIn)"
IMMEDIATE_TEAM = (MANAGER, TEAMMATES, DIRECT_REPORTS, SKIP_LEVEL)
DEPARTMENT = (*IMMEDIATE_TEAM, DEPT_CLOSE, DEPT_NEAR, DEPT_REST)
_DEPARTMENT_TIERS = frozenset({DEPT_CLOSE, DEPT_NEAR, DEPT_REST})
SMALL_TIER = 256  # a tier this small is listed person by person; a bigger department tier is sampled from

@dataclass(frozen=True, slots=True)
class PeopleRanking:
    """The impostor's ranking of the target's colleagues, most guessable first, built once per target.

    Order: manager; teammates; direct reports; skip-level manager; department colleagues in the same
    office with a similar title; then same office or similar title; then the rest of the department;
    then everyone else in the tenant (unnamed, uniform); then the outside world.

    The tiers are disjoint. The department's tiers are views of `department`, the department's shared index (built
    once per directory snapshot, verification/department.py: `DepartmentSlice`): a start never copies, joins or
    walks the department person by person (thousands in a large tenant); the other tiers are small sets."""

    target_id: str
    named: tuple[tuple[str, Collection[str]], ...]
    population: int  # tenant members, the target included
    # The people named outside the department's tiers (manager, team, skip-level) and the sample of other
    # departments: with `department`, the pool of look-alikes and multiple-choice decoys.
    people: tuple[Person, ...]
    # How many of `people`, at the end, are the sample of other departments (OrgKnowledge.others), whose index by name
    # word the department's shared index keeps (DepartmentIndex.sample_names).
    sample: int = 0
    # Party keys of the people a teammate knows the target dealt with (verification/questions/team.py): the insider
    # to beat. Never credited; filled by generate_questions.
    team_shared: frozenset[str] = frozenset()
    department: DepartmentIndex = EMPTY_DEPARTMENT
    # Collaborators from other departments whom the target's data names: multiple-choice decoys of their own tier
    # (so a collaborator as the right answer is not the odd one out), never look-alikes (`names`).
    decoys: tuple[Person, ...] = ()
    # Questions worth fewer bits are dropped by the caller (generate_questions(asked_only=True): a session never asks
    # them), so what only answering them needs (their look-alikes) is not worked out. 0: every question complete.
    asked_from: float = 0.0
    # Worked out once per ranking, then looked up by every question (see __post_init__).
    _ranks: dict[str, int] = field(init=False, repr=False, compare=False)  # id -> tier, for the tiers held as sets
    _views: tuple[int, ...] = field(init=False, repr=False, compare=False)  # the tiers held as views
    _named_internal: int = field(init=False, repr=False, compare=False)
    _by_id: dict[str, Person] = field(init=False, repr=False, compare=False)
    _memo: dict[object, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ranks: dict[str, int] = {}
        views: list[int] = []
        for i, (_, ids) in enumerate(self.named):
            if isinstance(ids, DepartmentSlice):
                views.append(i)
            else:
                for pid in ids:
                    ranks.setdefault(pid, i)
        object.__setattr__(self, "_ranks", ranks)
        object.__setattr__(self, "_views", tuple(views))
        # The department's tiers hold directory ids only; the others may hold outsiders' party keys.
        object.__setattr__(self, "_named_internal", sum(len(ids) if label in _DEPARTMENT_TIERS else _internal_count(ids)
                                                        for label, ids in self.named))
        object.__setattr__(self, "_by_id", {**{p.id: p for p in self.decoys}, **{p.id: p for p in self.people}})
        object.__setattr__(self, "_memo", {})

    def ids(self, *labels: str) -> frozenset[str]:
        key = ("ids", labels)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = frozenset().union(*(ids for label, ids in self.named if label in labels))
        return found  # type: ignore[return-value]

    def ruled_out(self, *labels: str) -> RuledOut:
        """Everyone in the named tiers `labels`, without joining them (see RuledOut)."""
        return RuledOut(self, frozenset(labels) & {label for label, _ in self.named})

    def ruled_out_inside(self) -> RuledOut:
        """Every directory id in the named tiers (not the outsiders' party keys)."""
        found = self._memo.get("internal")
        if found is None:
            # The department's tiers are directory ids only: ruled out whole, by label.
            others = frozenset(i for label, ids in self.named if label not in _DEPARTMENT_TIERS for i in ids
                               if not i.startswith("ext:"))
            found = self._memo["internal"] = (frozenset(label for label, _ in self.named
                                                        if label in _DEPARTMENT_TIERS), others)
        # The labels and ids are kept, not the RuledOut: it refers to this ranking, and a memo of the ranking's that
        # held it made a reference cycle, keeping the ranking (every memo of the start) until a full collection.
        labels, ids = found  # type: ignore[misc]
        return RuledOut(self, labels, ids)

    def rank_of(self, person_id: str | None) -> int:
        """Tier index of a person (a directory id, or an outsider's party key "ext:..."): named tiers first,
        len(named) = rest of tenant, +1 = external."""
        n = len(self.named)
        rank = self._ranks.get(person_id, n) if person_id is not None else n  # type: ignore[arg-type]
        for i in self._views:
            if i >= rank:
                break
            if person_id in self.named[i][1]:
                return i
        if rank < n:
            return rank
        if person_id is None or person_id.startswith("ext:"):
            return n + 1
        return n

    def person(self, person_id: str) -> Person | None:
        """A person of the pool by id: the ones named outside the department first, then the department."""
        return self._by_id.get(person_id) or self.department.by_id.get(person_id)

    def memo(self, kind: str) -> dict[object, object]:
        """A dict of this ranking's (one start's) for the generators to keep what several questions ask for again
        (a colleague's Candidate, a pool's decoys), by `kind`."""
        found = self._memo.get(("memo", kind))
        if found is None:
            found = self._memo[("memo", kind)] = {}
        return found  # type: ignore[return-value]

    def name_keys(self, p: Person) -> tuple[str, str, str]:
        """verification/department.py `name_keys`, from the department's index or the sample's when one holds `p`."""
        if self.department.by_id.get(p.id) is p:
            return self.department.keys[p.id]
        sample = self._sample()
        if sample.by_id.get(p.id) is p:
            return sample.keys[p.id]
        return name_keys(p)

    def is_human(self, p: Person) -> bool:
        """verification/people.py `person_is_human`, answered from the department's index or the sample's when one
        holds `p`."""
        if self.department.by_id.get(p.id) is p:
            return p.id in self.department.human_ids
        sample = self._sample()
        if sample.by_id.get(p.id) is p:
            return p.id in sample.human_ids
        return person_is_human(p)

    def _sample(self) -> Sample:
        """The sample of other departments at the end of `people`, as the department's shared index keeps it."""
        found = self._memo.get("sample")
        if found is None:
            found = self._memo["sample"] = self.department.sample(self.people[len(self.people) - self.sample:])
        return found  # type: ignore[return-value]

    def names(self) -> tuple[NameIndex, NameIndex]:
        """`people` indexed by name word (the department has its own index): the start's own circle, and the sample
        of other departments as the department's shared index keeps it."""
        found = self._memo.get("names")
        if found is None:
            found = self._memo["names"] = (
                NameIndex.build(self.people[:len(self.people) - self.sample],
                                neighbours=self.department.names.neighbours),
                self._sample().names)
        return found  # type: ignore[return-value]

    def names_of(self, people: Mapping[str, Person]) -> NameIndex:
        """`people` indexed by name word; the last such index is kept, as a question's scopes ask for the same."""
        held = self._memo.get("names_of")
        if held is None or held[0] != people:  # type: ignore[index]
            held = self._memo["names_of"] = (people, NameIndex.build(people.values(),
                                                                     neighbours=self.department.names.neighbours))
        return held[1]  # type: ignore[index,return-value]

    def candidates_in(self, rank: int) -> Sequence[Person]:
        """People who may be in tier `rank`, in an order fixed by their ids: the tier's own people, or for one of the
        department's big tiers the department's human beings (a superset: callers check the tier)."""
        key = ("candidates", rank)
        found = self._memo.get(key)
        if found is None:
            if rank >= len(self.named):
                found = tuple(p for p in self.people if self.rank_of(p.id) == rank)
            elif self.named[rank][0] in _DEPARTMENT_TIERS and len(self.named[rank][1]) > SMALL_TIER:
                found = self.department.humans
            else:
                found = tuple(p for p in map(self.person, sorted(self.named[rank][1])) if p is not None)
            self._memo[key] = found
        return found  # type: ignore[return-value]

    def tiers(self, accepted: Iterable[str | None], excluded: RuledOut | Collection[str] = frozenset(),
              outsiders_only: bool = False) -> list[Tier]:
        """Tiers for one question: `accepted` person ids (an outsider's party key, or None, for an external
        person); `excluded` ids are the ones the wording rules out, so the impostor does not waste guesses on them.
        `outsiders_only`: the wording rules out the whole organisation (no guess goes to the rest of it)."""
        if not isinstance(excluded, RuledOut):
            excluded = RuledOut(self, ids=frozenset(excluded))
        n = len(self.named)
        counts = [0] * (n + 2)
        for pid in accepted:
            counts[self.rank_of(pid)] += 1
        whole = excluded.labels
        gone = [0] * (n + 2)  # the ids ruled out one by one, by tier (the tiers are disjoint)
        for pid in excluded.ids:
            gone[self.rank_of(pid)] += 1
        out = [Tier(label, 0 if label in whole else len(ids) - gone[i], counts[i])
               for i, (label, ids) in enumerate(self.named)]
        outside_named = gone[n]  # directory ids in no named tier (outsiders' keys rank n + 1)
        rest = 0 if outsiders_only else max(self.population - 1 - self._named_internal - outside_named, counts[-2])
        out.append(Tier("anyone else in the organisation", rest, counts[-2]))
        out.append(Tier("someone outside the organisation", EXTERNAL_UNIVERSE, counts[-1]))
        return out


@dataclass(frozen=True, slots=True, eq=False)
class RuledOut:
    """Whom a question's wording rules out, for `ranking`: its named tiers `labels`, whole, and `ids` besides. Kept
    apart rather than joined into one set: a department's tiers are thousands of ids, and a question only asks
    whether someone is ruled out (`in`) and how many of each tier are (PeopleRanking.tiers)."""

    ranking: PeopleRanking
    labels: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()

    def __contains__(self, key: object) -> bool:
        if key in self.ids:
            return True
        if not self.labels or not isinstance(key, str):
            return False
        rank = self.ranking.rank_of(key)
        return rank < len(self.ranking.named) and self.ranking.named[rank][0] in self.labels

    def __or__(self, other: RuledOut | Collection[str]) -> RuledOut:
        if isinstance(other, RuledOut):
            if other.ranking is not self.ranking:
                raise ValueError("ruled out for another ranking")
            return RuledOut(self.ranking, self.labels | other.labels, self.ids | other.ids)
        return RuledOut(self.ranking, self.labels, self.ids | frozenset(other)) if other else self


def tier_orders(tiers: list[Tier]) -> list[list[Tier]]:
    """`tiers` (from `PeopleRanking.tiers`) in the order of each insider we score against: the teammate's (the team's
    partners, then the collaborators) and, when the target has collaborators, the LinkedIn reader's (the
    collaborators first). The tiers are disjoint, so moving one is exact."""
    labels = [t.label for t in tiers]
    if COLLABORATORS not in labels or TEAM_PARTNERS not in labels:
        return [tiers]
    projects = tiers[labels.index(COLLABORATORS)]
    linkedin = [t for t in tiers if t is not projects]
    linkedin.insert(labels.index(TEAM_PARTNERS), projects)
    return [tiers, linkedin]


def _internal_count(ids: frozenset[str]) -> int:
    """Directory ids among `ids` (outsiders' party keys start "ext:")."""
    return len(ids) - sum(1 for i in ids if i.startswith("ext:"))


def with_team_partners(ranking: PeopleRanking, shared: frozenset[str],
                       collaborators: frozenset[str] = frozenset(), known: Sequence[Person] = ()) -> PeopleRanking:
    """The ranking of the stronger insiders: right after the team itself, the people the team meets or chats with
    together (`shared`, party keys, outsiders too), whom a teammate guesses before the department; then the target's
    collaborators across teams (`collaborators`, directory ids: verification/questions/team.py), whom someone who
    read their LinkedIn profile or looked their projects up in the directory guesses first. One ranking for both, so
    each is credited for what it knows (the teammate wastes nothing on the collaborators after their own partners,
    nor the LinkedIn reader on the team's partners, in the usual case where the two overlap). `known`: the
    collaborators' people where the target's data names them, to be decoys among collaborators."""
    named: list[tuple[str, Collection[str]]] = [(label, ids) for label, ids in ranking.named
                                                if label in IMMEDIATE_TEAM]
    seen = frozenset().union(*(ids for _, ids in named)) | {ranking.target_id}
    partners = shared - seen
    named.append((TEAM_PARTNERS, partners))
    projects = collaborators - seen - partners
    if projects:
        named.append((COLLABORATORS, projects))
    named += [(label, ids - (partners | projects)) for label, ids in ranking.named  # type: ignore[operator]
              if label not in IMMEDIATE_TEAM]
    decoys = tuple(p for p in known if p.id in projects)
    return replace(ranking, named=tuple(named), team_shared=shared, decoys=decoys)


def rank_people(context: UserContext, org: OrgKnowledge) -> PeopleRanking:
    me = context.profile
    seen: set[str] = {me.id}
    named: list[tuple[str, Collection[str]]] = []
    circle: list[Person] = []

    def add(label: str, people: Iterable[Person | None]) -> None:
        fresh = {p.id: p for p in people if p is not None and p.id not in seen}
        seen.update(fresh)
        circle.extend(fresh.values())
        named.append((label, frozenset(fresh)))

    add(MANAGER, [context.manager or org.manager])
    add(TEAMMATES, [*context.peers, *org.peers])
    add(DIRECT_REPORTS, [*context.direct_reports, *org.direct_reports])
    add(SKIP_LEVEL, [org.skip_level])
    department = of_department(org)
    close, near, rest = department.split(me.office_location, me.job_title, frozenset(seen))
    named += [(DEPT_CLOSE, close), (DEPT_NEAR, near), (DEPT_REST, rest)]
    # Decoys only, not a guess list: nobody named, nobody from the department.
    others = [p for p in org.others if p.id not in seen and p.id not in department.ids]
    population = max(org.population, len(seen) + len(close) + len(near) + len(rest))
    return PeopleRanking(me.id, tuple(named), population, (*circle, *others), len(others), department=department)


def assess_choice(option_classes: Sequence[object], correct_index: int) -> Guessability:
    """Multiple choice with one guess. The impostor sorts options by what they can see (their tier in the
    ranking, a group's size band); an option that looks different from the rest is spotted at once. So
    P(hit) = 1 / (number of options that look like the right one): log2(k) bits when every decoy is from
    the right one's class, 0 bits when the right one is the odd one out."""
    alike = sum(1 for c in option_classes if c == option_classes[correct_index])
    bits = round(math.log2(alike), 2)
    return Guessability(1.0 / alike, bits,
                        f"{alike} of {len(option_classes)} options are indistinguishable to an informed impostor; "
                        f"P(hit) = 1/{alike}; worth {bits:.2f} bits.")
