"""Shared machinery for "name a person" questions (meetings, chats, mail, contacts, hierarchy).

A source hands over the people the target really dealt with (`partners`); this module shapes the
question so the obvious answers are excluded *by its wording* (the impostor reads the wording too),
measures what remains against the impostor's ranking, and builds free-recall and multiple-choice forms.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum

from verification.context import OrgKnowledge, Party, Person, Source
from verification.department import NameIndex, name_keys
from verification.guessability import (
    DEPARTMENT,
    IMMEDIATE_TEAM,
    SMALL_TIER,
    Guessability,
    PeopleRanking,
    RuledOut,
    assess,
    assess_choice,
    tier_orders,
)
from verification.names import name_forms, normalize, tokens
from verification.outsider_names import decoys as outsider_decoys
from verification.people import is_external
from verification.policy import Policy
from verification.questions.model import AnswerType, Candidate, Form, Question

MAX_CONFUSERS = 100
# True-but-worthless answers kept with a question (`Question.known`), those most likely named first: a 490-person
# all-hands would otherwise put every colleague into every meeting question's plan.
MAX_KNOWN = 200
# Multiple-choice versions of one question, each with a different right answer and options no other version
# shows: the session asks up to `Policy.multiple_choice_per_source` of them, skipping any whose answer was
# already credited (a partner named earlier does not cost the form). Built with spares for that: the free-recall
# question and its "one more" can credit two of the source's partners, and a version whose answer was one of them
# proves nothing (the caller picks a true option for no bits).
SPARE_CHOICE_VERSIONS = 2


DRAWS_PER_DECOY = 64  # random draws from a big pool per decoy wanted, before walking the pool


def choice_versions(policy: Policy) -> int:
    """How many multiple-choice versions a source builds: what a session may ask, and the spares."""
    return max(1, policy.multiple_choice_per_source) + SPARE_CHOICE_VERSIONS


class Scope(StrEnum):
    """Who the wording rules out. Stated to the caller, so the impostor skips them too."""

    ANYONE = "anyone"
    OUTSIDE_TEAM = "outside_team"  # not the manager, the skip-level, teammates or direct reports
    OUTSIDE_DEPARTMENT = "outside_department"  # nobody from the department or the chain above
    # Nobody in the directory: a supplier, a client. Where colleagues saved or met are people the team deals with
    # together (a teammate's first guesses), the outsiders alone are what only the target knows.
    OUTSIDE_ORGANISATION = "outside_organisation"

    def phrase(self, department: str | None) -> str:
        if self is Scope.OUTSIDE_ORGANISATION:
            return " (someone from outside your organisation, not a colleague)"
        if self is Scope.OUTSIDE_TEAM:
            return " (not your manager, your manager's manager, or anyone on your own team)"
        if self is Scope.OUTSIDE_DEPARTMENT:
            where = f"the {department} department" if department else "your department"
            return f" (someone outside {where}, and not your manager or their manager)"
        return ""

    def excluded(self, ranking: PeopleRanking) -> RuledOut:
        """The named tiers this wording rules out."""
        if self is Scope.OUTSIDE_ORGANISATION:
            return ranking.ruled_out_inside()
        labels = {Scope.ANYONE: (), Scope.OUTSIDE_TEAM: IMMEDIATE_TEAM, Scope.OUTSIDE_DEPARTMENT: DEPARTMENT}[self]
        return ranking.ruled_out(*labels)


@dataclass(frozen=True, slots=True)
class PeopleSpec:
    """What a source says about its question: ids, wording, and how easy one partner is to recall."""

    source: Source
    family: str  # e.g. "met" -> kinds "meetings.met.outside_team"
    prompt: str  # with "{scope}" where the scope phrase goes
    recall_per_person: float  # chance the genuine user comes up with a given partner
    choice_prompt: str | None = None  # multiple-choice wording, None = no multiple-choice form
    # The wording of multiple-choice versions whose options are all from outside the organisation (a supplier, a
    # client): decoys from verification/outside_names.py. None = colleagues only.
    outsider_choice_prompt: str | None = None
    scopes: tuple[Scope, ...] = (Scope.ANYONE, Scope.OUTSIDE_TEAM, Scope.OUTSIDE_DEPARTMENT, Scope.OUTSIDE_ORGANISATION)
    ruled_out: tuple[str, ...] = ()  # tiers the wording itself excludes ("someone ELSE who reports to...")
    # What the team shares (PeopleRanking.team_shared): `known` where a teammate saw it happen (meetings, chats: they
    # were there), else the teammate's first guesses (mail, contacts: they see neither, but guess the team's
    # partners first); False for the org chart, which is public anyway.
    team_aware: bool = True
    shared_is_known: bool = False


def candidate_for_person(p: Person, org: OrgKnowledge, ranking: PeopleRanking | None = None) -> Candidate:
    """`ranking`: where the names' normalised forms may already be known (its department's index)."""
    given, surname, _ = ranking.name_keys(p) if ranking is not None else name_keys(p)
    return Candidate(p.id, p.display_name, p.given_name, p.surname,
                     org.given_name_counts.get(given, 0), org.surname_counts.get(surname, 0))


def _party_candidate(key: str, party: Party, org: OrgKnowledge, ranking: PeopleRanking) -> Candidate:
    """candidate_for_party, once per start for each party: every wording and source of a start asks for the same
    people again (up to MAX_KNOWN true-but-known ones per wording)."""
    memo = ranking.memo("party candidates")
    held = memo.get(key)
    if held is None or held[0] is not party:  # type: ignore[index]
        held = memo[key] = (party, candidate_for_party(key, party, org, ranking))
    return held[1]  # type: ignore[index,no-any-return]


def candidate_for_party(key: str, party: Party, org: OrgKnowledge, ranking: PeopleRanking | None = None) -> Candidate:
    if party.person is not None:
        return candidate_for_person(party.person, org, ranking)
    given, surname = split_name(party.name)
    return Candidate(key, party.name, given, surname, external=True, given_share=given_share(given, org))


# No first name is taken to be rarer than this among people at large: a tenant of a few hundred has never met most
# names, and the commonest ones run at 1 to 3 in 100 people of a country.
RAREST_GIVEN_SHARE = 0.001


def given_share(given: str | None, org: OrgKnowledge) -> float:
    """How common a first name is among people at large, the tenant's own people taken as the sample: its holders and
    those of the names the nicknames table links to it (a bare "Bill" fits every William), one added so a name the
    tenant has never seen is not taken as unheard of. 0 when the tenant's names are unknown."""
    first = tokens(given)[:1]
    if not first or org.population <= 0 or not org.given_name_counts:
        return 0.0
    holders = sum(org.given_name_counts.get(form, 0) for form in name_forms(first[0]))
    return min(1.0, max(RAREST_GIVEN_SHARE, (holders + 1) / (org.population + 1)))


def split_name(name: str) -> tuple[str | None, str | None]:
    """'Joan Clarke' -> (Joan, Clarke); 'Clarke, Joan' -> (Joan, Clarke)."""
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip() or None, last.strip() or None
    parts = name.split()
    if len(parts) < 2:
        return (parts[0] if parts else None), None
    return " ".join(parts[:-1]), parts[-1]


def people_questions(spec: PeopleSpec, partners: Mapping[str, Party], ranking: PeopleRanking,
                     org: OrgKnowledge, policy: Policy, department: str | None, seed: str,
                     everyone: Mapping[str, Party] | None = None) -> list[Question]:
    """The best-scoped free-recall question for these partners, its "one more" follow-up, and (policy
    permitting) a multiple-choice one. `partners`: the people the source's rules accept; `everyone`: every person
    the question's wording makes a true answer (a colleague from a huge meeting too). Partners the team shares, and
    everyone else true, are `known`: never credited, never wrong, never a multiple-choice decoy."""
    true = {**partners, **(everyone or {})}
    shared = ranking.team_shared if spec.team_aware and spec.shared_is_known else frozenset()
    private = {k: p for k, p in partners.items() if k not in shared}
    if not private:
        return []
    known = {k: p for k, p in true.items() if k not in private}
    known = dict(sorted(known.items(), key=lambda kp: kp[0] not in partners)[:MAX_KNOWN])
    out: list[Question] = []
    free = _best_free_recall(spec, private, known, ranking, org, policy, department)
    if free is not None:
        follow_up = _follow_up(spec, free, ranking, private, org, policy)
        out += _with_look_alikes([free] if follow_up is None else [free, follow_up], ranking, private, org)
    if policy.allow_multiple_choice and spec.choice_prompt:
        out.extend(_multiple_choice(spec, private, true, ranking, org, policy, seed))
    return out


def _best_free_recall(spec: PeopleSpec, partners: Mapping[str, Party], known: Mapping[str, Party],
                      ranking: PeopleRanking, org: OrgKnowledge, policy: Policy, department: str | None
                      ) -> Question | None:
    best: Question | None = None
    # Never "anyone" when the team shares facts: the wording then rules out the team itself, the most salient
    # people a caller would otherwise name for nothing.
    scopes = [sc for sc in spec.scopes if not (spec.team_aware and sc is Scope.ANYONE)] or spec.scopes
    for scope in scopes:
        q = _free_recall(spec, scope, partners, known, ranking, org, policy, department)
        if q is not None and (best is None or q.expected_bits > best.expected_bits):
            best = q
    return best  # its look-alikes: _with_look_alikes


def _with_look_alikes(questions: list[Question], ranking: PeopleRanking, partners: Mapping[str, Party],
                      org: OrgKnowledge) -> list[Question]:
    """A free-recall question and its follow-up (the same accepted set) with their look-alikes. Found only for the
    wording kept (they do not weigh in the choice, and finding them is most of its cost), and only when one of the
    two may be asked (`PeopleRanking.asked_from`): the org chart's questions, worth ~0 bits, never are."""
    if all(q.bits < ranking.asked_from for q in questions):
        return questions
    confusers = look_alikes(questions[0].accepted, ranking, partners, org)
    return [replace(q, confusers=confusers) for q in questions]


def _known_ids(known: Sequence[Candidate]) -> frozenset[str]:
    return frozenset(c.key for c in known if not c.external)


def _free_recall(spec: PeopleSpec, scope: Scope, partners: Mapping[str, Party], known: Mapping[str, Party],
                 ranking: PeopleRanking, org: OrgKnowledge, policy: Policy, department: str | None
                 ) -> Question | None:
    excluded = scope.excluded(ranking) | ranking.ruled_out(*spec.ruled_out) | _colleagues(scope, {**partners, **known},
                                                                                          org)
    accepted = {k: p for k, p in partners.items() if k not in excluded}
    if not accepted:
        return None
    # Whom the wording rules out stays wrong; what the team shares (or a huge meeting) is true but worth nothing.
    true_known = tuple(_party_candidate(k, p, org, ranking) for k, p in known.items() if k not in excluded)
    # The insider skips whom the wording rules out and what earns nothing: neither dilutes their guesses.
    skipped = excluded | _known_ids(true_known)
    g = score_people(ranking, accepted, skipped, policy.guesses_per_question, policy.max_bits_per_question,
                     outsiders_only=scope is Scope.OUTSIDE_ORGANISATION)
    ease = _ease(spec.recall_per_person, len(accepted), scope)
    cands = tuple(_party_candidate(k, p, org, ranking) for k, p in accepted.items())
    kind = f"{spec.source.value}.{spec.family}.{scope.value}"
    return Question(
        id=kind, kind=kind, source=spec.source, prompt=spec.prompt.replace("{scope}", scope.phrase(department)),
        form=Form.FREE_RECALL, answer_type=AnswerType.PERSON, bits=g.bits, guesses=policy.guesses_per_question,
        explanation=f"{len(accepted)} accepted answer(s), {len(true_known)} true but known to the team. "
                    + g.explanation, ease=ease, accepted=cands,
        known=true_known,  # confusers: added by _best_free_recall to the question it keeps
    )


def _colleagues(scope: Scope, parties: Mapping[str, Party], org: OrgKnowledge) -> frozenset[str]:
    """Keys of the tenant's own people among `parties`, when the wording asks for someone from outside it."""
    if scope is not Scope.OUTSIDE_ORGANISATION:
        return frozenset()
    return frozenset(k for k, p in parties.items() if not is_external(p, org.internal_domains))


def _follow_up(spec: PeopleSpec, first: Question, ranking: PeopleRanking, partners: Mapping[str, Party],
               org: OrgKnowledge, policy: Policy) -> Question | None:
    """"One more" from the same accepted set, asked after the first was answered, right or wrong (a person
    already credited earns nothing again). Measured as if the impostor had had both questions'
    guesses on this set (their first tries were answered "wrong" or moved on, which tells them something),
    so the follow-up is never worth more than it should."""
    if len(first.accepted) < 2:
        return None
    scope = Scope(first.kind.rsplit(".", 1)[-1])
    excluded = (scope.excluded(ranking) | ranking.ruled_out(*spec.ruled_out) | _known_ids(first.known)
                | _colleagues(scope, partners, org))
    accepted = {c.key: partners[c.key] for c in first.accepted}
    g = score_people(ranking, accepted, excluded, 2 * first.guesses, policy.max_bits_per_question,
                     outsiders_only=scope is Scope.OUTSIDE_ORGANISATION)
    head, _, scope_name = first.kind.rpartition(".")
    kind = f"{head}_again.{scope_name}"  # the scope stays the last part of every kind
    return replace(first, id=kind, kind=kind, bits=g.bits,
                   prompt="One more, please. " + first.prompt, ease=round(first.ease * 0.85, 3),
                   explanation=f"Follow-up; impostor assumed to have spent {2 * first.guesses} guesses on this set. "
                               + g.explanation, follows=first.kind)


def score_people(ranking: PeopleRanking, accepted: Mapping[str, Party], excluded: RuledOut | frozenset[str],
                 guesses: int, cap: float, outsiders_only: bool = False) -> Guessability:
    ids = [p.person.id if p.person is not None else key for key, p in accepted.items()]
    tiers = ranking.tiers(ids, excluded, outsiders_only)
    # The uniform floor runs over the organisation only: outsiders are one unguessable lump.
    inside = any(not i.startswith("ext:") for i in ids)
    # Against the stronger of the teammate and the LinkedIn reader, who walk the same tiers in different orders.
    return max((assess(order, guesses, cap, floor_tiers=tiers[:-1] if inside else None)
                for order in tier_orders(tiers)), key=lambda g: g.p_hit)


def _ease(per_person: float, count: int, scope: Scope) -> float:
    """Chance the genuine user names an accepted partner: better with more of them, worse when the
    wording makes them think past their own team."""
    penalty = {Scope.ANYONE: 1.0, Scope.OUTSIDE_TEAM: 0.93, Scope.OUTSIDE_DEPARTMENT: 0.85,
               Scope.OUTSIDE_ORGANISATION: 0.85}[scope]
    return round(min(0.97, 1.0 - (1.0 - per_person) ** count) * penalty, 3)


def look_alikes(accepted: Sequence[Candidate], ranking: PeopleRanking, partners: Mapping[str, Party],
                org: OrgKnowledge) -> tuple[Candidate, ...]:
    """Non-accepted people a caller's answer could also fit (same or nickname-linked first name, same
    surname, within typos): the matcher needs them to call "Alan" ambiguous. Includes true partners the
    wording excluded. Looked up by name word in the department's shared index, the ranking's own people and the
    partners, so a 5,000-person department costs what a 50-person one does."""
    keys = {c.key for c in accepted} | {ranking.target_id}
    partner_people = {p.person.id: p.person for p in partners.values() if p.person is not None}
    indexes = (ranking.department.names, *ranking.names(), ranking.names_of(partner_people))
    # Each name word once (peers and partners share first names), given names with their nicknames (a given name's
    # forms hold the word itself, so a word that is a surname too needs nothing more).
    given = {word for c in accepted for word in tokens(c.given)}
    surnames = {word for c in accepted for word in tokens(c.surname)} - given
    found: set[str] = set()
    for word in given:
        found |= _near(word, name_forms(word), indexes)
    for word in surnames:
        found |= _near(word, frozenset({word}), indexes)
    # Only the first MAX_CONFUSERS (by id) are kept: make no more (a common first name in a big department is
    # thousands of ids, and a Candidate each was most of a question's cost).
    return tuple(candidate_for_person(partner_people.get(pid) or ranking.person(pid), org,  # type: ignore[arg-type]
                                      ranking)
                 for pid in sorted(found - keys)[:MAX_CONFUSERS])


def _near(word: str, forms: frozenset[str], indexes: Sequence[NameIndex]) -> set[str]:
    """Ids whose name words equal one of `forms` or sit within the typo budget of `word`."""
    hits: set[str] = set()
    for index in indexes:
        for form in forms:
            hits |= index.ids_by_word.get(form, frozenset())
        for name in index.close_words(word):
            hits |= index.ids_by_word[name]
    return hits


def _multiple_choice(spec: PeopleSpec, partners: Mapping[str, Party], true: Mapping[str, Party],
                     ranking: PeopleRanking, org: OrgKnowledge, policy: Policy, seed: str) -> list[Question]:
    """One true partner among decoys from the same tier of the ranking (so the impostor cannot spot
    the odd one out). Every decoy is FALSE by the wording: nobody in `true` (whom the target met, chatted with,
    heard from or saved in the window, huge meetings and team meetings included). The right answer is drawn from
    the least guessable tier that has enough decoys; never the manager, the team or anyone the team shares (a
    teammate picks them first). Up to `choice_versions` versions with different right answers and no option in
    common.

    Which colleagues are the right answers, and the decoys around each, depend on the person, the source and the
    right answer only (`stable_rng`), not on the session: calling again (another agent, another conversation) shows
    the same options around the same right answer, so comparing calls singles nothing out (decoys drawn anew each
    call left the right answer as the one option shown both times). Only the options' order is the session's."""
    rng = seeded_rng(seed, spec.source.value + spec.family)
    salt = f"{spec.source.value}.{spec.family}"
    k = policy.multiple_choice_options
    public = ranking.ids(*IMMEDIATE_TEAM)
    internal = [p.person for p in partners.values() if p.person is not None and p.person.id not in public]
    internal.sort(key=lambda p: (-ranking.rank_of(p.id), stable_key(org.choice_key, ranking.target_id, salt, p.id)))
    out: list[Question] = []
    # Decoys of earlier versions are never shown again (`never`), so versions reveal nothing of each other.
    # Names the person's data holds (a supplier may share a colleague's name): never a colleague decoy's, or the one
    # name an outsiders' version and a colleagues' version of this source both show would be a right answer.
    named = {normalize(p.person.display_name if p.person else p.name) for p in true.values()}
    never = {*true, *partners}  # grown by each version's decoys: one set, not joined anew per version
    for correct in internal:
        if len(out) == choice_versions(policy):
            return out
        draw = stable_rng(org.choice_key, ranking.target_id, salt, correct.id)
        decoys = _decoys(correct, ranking, never, k - 1, draw, named)
        if len(decoys) == k - 1:
            out.append(_choice_question(spec, correct, decoys, ranking, org, rng, len(out)))
            never.update(p.id for p in decoys)
    if spec.outsider_choice_prompt is not None:
        out.extend(_outsider_choice(spec, partners, true, ranking, org, policy, rng, len(out)))
    return out


def _outsider_choice(spec: PeopleSpec, partners: Mapping[str, Party], true: Mapping[str, Party],
                     ranking: PeopleRanking, org: OrgKnowledge, policy: Policy, rng: random.Random,
                     built: int) -> list[Question]:
    """Versions whose right answer is someone from outside the organisation only the target deals with (never anyone
    the team shares or a teammate would name first: those sit in the ranking's named tiers), among made-up outsiders
    (verification/outsider_names.py): nobody the target's data names, nobody another version shows. Every option
    looks alike to any impostor (no directory, no team knows them): log2(k) bits each. After the `built` colleagues'
    versions, up to `choice_versions` in all."""
    wanted = choice_versions(policy) - built
    if wanted <= 0:
        return []
    k = policy.multiple_choice_options
    outside = len(ranking.named) + 1  # rank_of: the unnamed outside world
    answers = [(key, p) for key, p in partners.items() if is_external(p, org.internal_domains)
               and key not in ranking.team_shared and ranking.rank_of(key) == outside]
    if not answers:
        return []
    rng.shuffle(answers)
    # Normalised names, through tokens' cache: the same people come back verification after verification.
    avoid = {" ".join(tokens(p.person.display_name if p.person else p.name)) for p in true.values()}
    shown: set[str] = set()
    out: list[Question] = []
    for key, party in answers:
        # Seeded by the name, not the address: one supplier saved under two addresses (two keys) must not show two
        # option sets whose only option in common is them.
        drawn = outsider_decoys(party.name, k - 1, avoid, org.choice_key, ranking.target_id, normalize(party.name))
        if drawn is None:
            continue
        answer, decoys = drawn
        options = [answer, *decoys]
        if shown & {normalize(o) for o in options}:
            continue
        rng.shuffle(options)
        index = options.index(answer)
        g = assess_choice([outside] * len(options), index)
        kind = f"{spec.source.value}.{spec.family}.choice"
        assert spec.outsider_choice_prompt is not None
        out.append(Question(
            id=variant_id(kind, built + len(out)), kind=kind, source=spec.source,
            prompt=spec.outsider_choice_prompt, form=Form.MULTIPLE_CHOICE, answer_type=AnswerType.PERSON,
            bits=g.bits, guesses=1, explanation=f"Multiple choice, {len(options)} options from outside the "
            f"organisation, one right. {g.explanation}", ease=round(min(0.97, spec.recall_per_person + 0.3), 3),
            accepted=(candidate_for_party(key, party, org),),
            confusers=tuple(Candidate(f"decoy:{normalize(d)}", d, *split_name(d), external=True) for d in decoys),
            options=tuple(options), correct_option=index,
        ))
        shown.update(normalize(o) for o in options)
        if len(out) == wanted:
            break
    return out


def _decoys(correct: Person, ranking: PeopleRanking, partner_keys: set[str], n: int,
            rng: random.Random, named: Collection[str] = ()) -> list[Person]:
    """`n` people of the right answer's tier, human, not true by the wording, not named like it nor like anyone in
    `named` (normalised names): drawn at random."""
    rank = ranking.rank_of(correct.id)
    name = ranking.name_keys(correct)[2]
    pool = ranking.candidates_in(rank)
    if len(pool) <= SMALL_TIER:  # walked whole: what depends only on the tier is checked once per start
        memo = ranking.memo("decoy pools")
        kept = memo.get(rank)
        if kept is None:
            kept = memo[rank] = tuple((p, ranking.name_keys(p)[2]) for p in pool
                                      if ranking.rank_of(p.id) == rank and ranking.is_human(p))
        found = [p for p, key in kept  # type: ignore[attr-defined]
                 if p.id not in partner_keys and p.id != ranking.target_id and key != name and key not in named]
        rng.shuffle(found)
        return found[:n]

    def fits(p: Person) -> bool:
        return (p.id not in partner_keys and p.id != ranking.target_id and ranking.rank_of(p.id) == rank
                and (key := ranking.name_keys(p)[2]) != name and key not in named and ranking.is_human(p))

    return sample_where(pool, fits, n, rng)


def sample_where(pool: Sequence[Person], fits: Callable[[Person], bool], n: int, rng: random.Random) -> list[Person]:
    """Up to `n` members of `pool` that fit, uniformly at random. A big pool (a department's tier: thousands) is
    drawn from at random positions rather than walked whole; only when draws keep missing is it walked."""
    if len(pool) > SMALL_TIER:
        picked: list[Person] = []
        tried: set[int] = set()
        for _ in range(DRAWS_PER_DECOY * n):
            i = rng.randrange(len(pool))
            if i not in tried:
                tried.add(i)
                if fits(pool[i]):
                    picked.append(pool[i])
                    if len(picked) == n:
                        return picked
    found = [p for p in pool if fits(p)]
    rng.shuffle(found)
    return found[:n]


def _choice_question(spec: PeopleSpec, correct: Person, decoys: list[Person], ranking: PeopleRanking,
                     org: OrgKnowledge, rng: random.Random, variant: int = 0) -> Question:
    people = [correct, *decoys]
    rng.shuffle(people)
    index = people.index(correct)
    g = assess_choice([ranking.rank_of(p.id) for p in people], index)
    kind = f"{spec.source.value}.{spec.family}.choice"
    assert spec.choice_prompt is not None
    return Question(
        id=variant_id(kind, variant), kind=kind, source=spec.source, prompt=spec.choice_prompt,
        form=Form.MULTIPLE_CHOICE, answer_type=AnswerType.PERSON, bits=g.bits, guesses=1,
        explanation=f"Multiple choice, {len(people)} options, one right. {g.explanation}",
        ease=round(min(0.97, spec.recall_per_person + 0.3), 3),
        accepted=(candidate_for_person(correct, org, ranking),),
        confusers=tuple(candidate_for_person(p, org, ranking) for p in decoys),
        options=tuple(p.display_name for p in people), correct_option=index,
    )


def variant_id(kind: str, variant: int) -> str:
    """Ids of a question's versions: the kind, then "kind#2", "kind#3"."""
    return kind if variant == 0 else f"{kind}#{variant + 1}"


def seeded_rng(seed: str, salt: str) -> random.Random:
    """Deterministic per (session seed, question family): reproducible in tests and in the audit. The
    seed itself comes from `secrets` (session.py), so option order is not predictable to a caller."""
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - seeded from a secret, see above


def stable_key(key: bytes, *parts: str) -> bytes:
    """A keyed digest of stable inputs (the person, the question's source, a right answer): what orders a source's
    multiple-choice right answers the same way on every call. `key` is the tenant's secret (OrgKnowledge.choice_key)."""
    return hmac.new(key, ":".join(("choice-decoys", *parts)).encode(), hashlib.sha256).digest()


def stable_rng(key: bytes, *parts: str) -> random.Random:
    """Draws that are the same on every call for the same inputs (the person, the source, the right answer): the
    decoys around a right answer, so comparing two calls' cards singles nothing out. Keyed by the tenant's secret:
    from ids and names alone nobody can recompute the draw and test which option, taken as the answer, yields the
    others."""
    return random.Random(int.from_bytes(stable_key(key, *parts)[:8], "big"))  # noqa: S311 - keyed, see above


def window_phrase(window: timedelta) -> str:
    """timedelta(days=14) -> 'the last two weeks'; 3 days -> 'the last three days'."""
    days = max(1, round(window.total_seconds() / 86400))
    if days % 7 == 0:
        weeks = days // 7
        return "the last week" if weeks == 1 else f"the last {_NUMBERS.get(weeks, str(weeks))} weeks"
    return "the last day" if days == 1 else f"the last {_NUMBERS.get(days, str(days))} days"


_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
