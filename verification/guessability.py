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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from verification.context import OrgKnowledge, Person, UserContext
from verification.names import similar_titles

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
IMMEDIATE_TEAM = (MANAGER, TEAMMATES, DIRECT_REPORTS, SKIP_LEVEL)
DEPARTMENT = (*IMMEDIATE_TEAM, DEPT_CLOSE, DEPT_NEAR, DEPT_REST)

@dataclass(frozen=True, slots=True)
class PeopleRanking:
    """The impostor's ranking of the target's colleagues, most guessable first, built once per target.

    Order: manager; teammates; direct reports; skip-level manager; department colleagues in the same
    office with a similar title; then same office or similar title; then the rest of the department;
    then everyone else in the tenant (unnamed, uniform); then the outside world."""

    target_id: str
    named: tuple[tuple[str, frozenset[str]], ...]
    population: int  # tenant members, the target included
    people: tuple[Person, ...]  # everyone named, for look-alikes and multiple-choice decoys
    # Party keys of the people a teammate knows the target dealt with (verification/questions/team.py): the insider
    # to beat. Never credited; filled by generate_questions.
    team_shared: frozenset[str] = frozenset()

    def ids(self, *labels: str) -> frozenset[str]:
        return frozenset().union(*(ids for label, ids in self.named if label in labels))

    def rank_of(self, person_id: str | None) -> int:
        """Tier index of a person (a directory id, or an outsider's party key "ext:..."): named tiers first,
        len(named) = rest of tenant, +1 = external."""
        for i, (_, ids) in enumerate(self.named):
            if person_id in ids:
                return i
        if person_id is None or person_id.startswith("ext:"):
            return len(self.named) + 1
        return len(self.named)

    def tiers(self, accepted: Iterable[str | None], excluded: frozenset[str] = frozenset()) -> list[Tier]:
        """Tiers for one question: `accepted` person ids (an outsider's party key, or None, for an external
        person); `excluded` ids are the ones the wording rules out, so the impostor does not waste guesses on them."""
        counts = [0] * (len(self.named) + 2)
        for pid in accepted:
            counts[self.rank_of(pid)] += 1
        out: list[Tier] = []
        named_total = 0
        for i, (label, ids) in enumerate(self.named):
            live = ids - excluded
            named_total += sum(1 for i in ids if not i.startswith("ext:"))
            out.append(Tier(label, len(live), counts[i]))
        outside_named = len({i for i in excluded if not i.startswith("ext:")}
                            - frozenset().union(*(ids for _, ids in self.named)))
        rest = max(self.population - 1 - named_total - outside_named, counts[-2])
        out.append(Tier("anyone else in the organisation", rest, counts[-2]))
        out.append(Tier("someone outside the organisation", EXTERNAL_UNIVERSE, counts[-1]))
        return out


def with_team_partners(ranking: PeopleRanking, shared: frozenset[str]) -> PeopleRanking:
    """The ranking of the stronger insider, a teammate: right after the team itself, the people the team meets or
    chats with together (`shared`, party keys, outsiders too), whom a teammate guesses before the department."""
    named: list[tuple[str, frozenset[str]]] = [(label, ids) for label, ids in ranking.named if label in IMMEDIATE_TEAM]
    seen = frozenset().union(*(ids for _, ids in named)) | {ranking.target_id}
    partners = shared - seen
    named.append((TEAM_PARTNERS, partners))
    named += [(label, ids - partners) for label, ids in ranking.named if label not in IMMEDIATE_TEAM]
    return replace(ranking, named=tuple(named), team_shared=shared)


def rank_people(context: UserContext, org: OrgKnowledge) -> PeopleRanking:
    me = context.profile
    seen: set[str] = {me.id}
    named: list[tuple[str, frozenset[str]]] = []
    everyone: list[Person] = []

    def add(label: str, people: Iterable[Person | None]) -> None:
        fresh = {p.id: p for p in people if p is not None and p.id not in seen}
        seen.update(fresh)
        everyone.extend(fresh.values())
        named.append((label, frozenset(fresh)))

    add(MANAGER, [context.manager or org.manager])
    add(TEAMMATES, [*context.peers, *org.peers])
    add(DIRECT_REPORTS, [*context.direct_reports, *org.direct_reports])
    add(SKIP_LEVEL, [org.skip_level])
    dept = [p for p in org.department_members if p.id not in seen]
    office = _same(me.office_location)
    add(DEPT_CLOSE, [p for p in dept if office(p.office_location) and similar_titles(p.job_title, me.job_title)])
    add(DEPT_NEAR, [p for p in dept if office(p.office_location) or similar_titles(p.job_title, me.job_title)])
    add(DEPT_REST, dept)
    everyone.extend(p for p in org.others if p.id not in seen)  # decoys only: unnamed tier, not a guess list
    population = max(org.population, len(seen))
    return PeopleRanking(me.id, tuple(named), population, tuple(everyone))


def _same(value: str | None):
    wanted = (value or "").strip().lower()
    return lambda other: bool(wanted) and (other or "").strip().lower() == wanted


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
