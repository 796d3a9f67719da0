"""Groups: "Name a team or group you're a member of (a smaller one, not company-wide)".

Company-wide and large groups are public knowledge (anyone is in "All Company"), so the wording rules
them out and the impostor skips them too. What remains is ranked for the impostor: groups named after
the target's department, title or office first (biggest first, or all alike: whichever ranking hits more
counts), then the rest by size (bigger = likelier to hold anyone), then the unnamed remainder of the
tenant's groups. "One more, please" follows the first answer, right or wrong, when the target is in two or
more. Groups a teammate is in too (verification/questions/team.py) are set aside by the wording and never credited.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from verification.context import Group, GroupKind, OrgKnowledge, Source, UserContext
from verification.guessability import Tier, assess_strongest
from verification.names import tokens
from verification.policy import Policy
from verification.questions.model import AnswerType, Candidate, Question
from verification.questions.people import choice_versions, seeded_rng, stable_key, stable_rng, variant_id
from verification.questions.team import team_groups
from verification.questions.things import choice_question, size_tiers, thing_question

_GENERIC = frozenset({"team", "group", "all", "the", "and", "of", "dl", "members", "staff", "office", "users",
                      "department", "senior", "lead", "manager", "engineer", "specialist", "analyst"})


def is_public_group(g: Group, org: OrgKnowledge, policy: Policy) -> bool:
    if g.is_tenant_wide:
        return True
    if g.member_count is None:
        return False
    share = g.member_count / org.population if org.population else 0.0
    return g.member_count > policy.max_group_members or share >= policy.tenant_wide_share


def group_questions(context: UserContext, org: OrgKnowledge, policy: Policy, seed: str) -> list[Question]:
    mine = {g.id for g in context.groups}
    shared = team_groups(context, org)
    small = [g for g in context.groups if g.is_direct and not is_public_group(g, org, policy)]
    # The team's own groups (a teammate is in them too) are true answers a teammate gives as easily: never credited,
    # never wrong, and the teammate does not spend guesses on them.
    accepted = [g for g in small if g.id not in shared]
    if not accepted:
        return []
    known = {gid: g for gid, g in _known_eligible(context, org, policy).items() if gid not in shared}
    hints = _hints(context)
    first, rankings = _free_recall(accepted, known, hints, org, policy)
    if shared:  # the team's own groups are the first that come to mind: the wording sets them aside
        first = replace(first, known=tuple(_candidate(g) for g in small if g.id in shared), prompt=(
            "Name a team or group you're a member of that none of your teammates is in: a smaller one, not a "
            "company-wide, office-wide or department-wide list."))
    out = [first]
    follow_up = _follow_up(first, rankings, policy)
    if follow_up is not None:
        out.append(follow_up)
    if policy.allow_multiple_choice:
        out.extend(_multiple_choice(accepted, known, hints, mine, policy, seed, context.profile.id, org.choice_key))
    return out


def _free_recall(accepted: list[Group], known: dict[str, Group], hints: set[str], org: OrgKnowledge,
                 policy: Policy) -> tuple[Question, list[list[Tier]]]:
    ids = {g.id for g in accepted}
    public = sum(1 for g in org.groups if is_public_group(g, org, policy))
    unnamed = Tier("any other group in the tenant", max(org.group_count - public - len(known), 0), 0)
    rankings = [[*tiers, unnamed] for tiers in group_rankings(known, hints, ids)]
    words = frozenset().union(*(_words(a.name) for a in accepted))  # any of them shared is a shared word
    confusers = [_candidate(g) for g in known.values() if g.id not in ids and not words.isdisjoint(_words(g.name))]
    kind = "groups.member_of.small"
    prompt = ("Name a team or group you're a member of: a smaller one, not a company-wide, office-wide or "
              "department-wide list.")
    ease = round(min(0.95, 1 - 0.5 ** len(accepted)) * 0.95, 3)
    return thing_question(kind, Source.GROUPS, prompt, AnswerType.GROUP, [_candidate(g) for g in accepted],
                          confusers, rankings[0], ease, policy, rankings[1:]), rankings


def _follow_up(first: Question, rankings: list[list[Tier]], policy: Policy) -> Question | None:
    """"One more, please": another of the target's small groups, asked after the first was answered, right or
    wrong (a group already credited earns nothing again). Measured as for people: as if the impostor had
    had both questions' guesses on the same ranking, so never worth more than the first."""
    n = len(first.accepted)
    if n < 2:
        return None
    guesses = 2 * first.guesses
    g = assess_strongest(rankings, guesses, policy.max_bits_per_question)
    kind = "groups.member_of_again.small"
    return replace(first, id=kind, kind=kind, bits=g.bits, prompt="One more, please. " + first.prompt,
                   ease=round(min(0.95, 1 - 0.5 ** (n - 1)) * 0.95 * 0.85, 3), follows=first.kind,
                   explanation=f"Follow-up; impostor assumed to have spent {guesses} guesses on these groups. "
                               + g.explanation)


def group_rankings(known: dict[str, Group], hints: set[str], accepted: set[str]) -> list[list[Tier]]:
    """Two impostors' orders: groups named like the department, title or office first, then the rest by
    size; the named ones either by size too (the department's "Managers" list is the first guess against a
    manager) or all alike. Bits are measured against whichever does better."""
    hinted = [(g.id, g.member_count) for g in known.values() if _named_like(g, hints)]
    hinted_ids = {gid for gid, _ in hinted}
    rest = size_tiers("other groups", [(g.id, g.member_count) for g in known.values() if g.id not in hinted_ids],
                      accepted)
    label = "groups named like the department, title or office"
    alike = Tier(label, len(hinted), sum(gid in accepted for gid, _ in hinted))
    return [[*size_tiers(label, hinted, accepted), *rest], [alike, *rest]]


def _multiple_choice(accepted: list[Group], known: dict[str, Group], hints: set[str], mine: set[str],
                     policy: Policy, seed: str, target: str, key: bytes) -> list[Question]:
    """One of the target's groups among groups of the same look (named like the department or not,
    same size band) that the target is not in. Up to `choice_versions` versions with different right
    answers and no option in common. The right answers' order and the decoys around each depend on the person and
    the right answer only (`stable_rng`): calling again shows the same options around the same right answer, so
    comparing calls singles nothing out. Only the options' order is the session's."""
    rng = seeded_rng(seed, "groups")
    k = policy.multiple_choice_options
    kind = "groups.member_of.choice"
    out: list[Question] = []
    shown: set[str] = set()
    # The right answer is a group people know they are in: a team, a mailing list. Few know their security groups
    # (file shares, app access, granted by IT), so a security group's option goes unrecognised.
    known_to_them = [g for g in accepted if g.kind is not GroupKind.SECURITY]
    by_look: dict[tuple[bool, int], list[Group]] = {}  # each group's look once, in `known`'s order
    for g in known.values():
        if g.id not in mine:
            by_look.setdefault(_look(g, hints), []).append(g)
    for correct in sorted(known_to_them, key=lambda g: stable_key(key, target, "groups", g.id)):
        look = _look(correct, hints)
        pool = [g for g in by_look.get(look, ()) if g.id not in shown]
        if len(pool) < k - 1:
            continue
        pool.sort(key=lambda g: g.id)  # the draw below depends on the pool's members, not the order they came in
        options = [correct, *stable_rng(key, target, "groups", correct.id).sample(pool, k - 1)]
        shown.update(g.id for g in options)
        rng.shuffle(options)
        index = options.index(correct)
        out.append(choice_question(kind, Source.GROUPS, "Which one of these groups are you a member of?",
                                   AnswerType.GROUP, [_candidate(g) for g in options], index,
                                   [_look(g, hints) for g in options], 0.85, variant_id(kind, len(out))))
        if len(out) == choice_versions(policy):
            break
    return out


def _look(g: Group, hints: set[str]) -> tuple[bool, int]:
    """What an impostor can tell a group by: named like the target's department, and its size band."""
    size = g.member_count or 0
    band = next(i for i, top in enumerate((10, 25, 50, 10**9)) if size <= top)
    return _named_like(g, hints), band


def _known_eligible(context: UserContext, org: OrgKnowledge, policy: Policy) -> dict[str, Group]:
    """Every group name the impostor can see in the directory, minus those the wording rules out."""
    out: dict[str, Group] = {}
    for g in (*org.groups, *context.groups):
        if not is_public_group(g, org, policy):
            out.setdefault(g.id, g)
    return out


def _hints(context: UserContext) -> set[str]:
    me = context.profile
    words = set(tokens(me.department)) | set(tokens(me.job_title)) | set(tokens(me.office_location))
    return words - _GENERIC


def _named_like(g: Group, hints: set[str]) -> bool:
    return not hints.isdisjoint(tokens(g.name))


@lru_cache(maxsize=65536)  # the catalogue's names come back in every start
def _words(name: str) -> tuple[str, ...]:
    """A group name's words that say something (not "team", "group", "all"...). A tuple of strings: the collector
    stops tracking it, so the cache adds nothing to what a full collection walks."""
    return tuple(w for w in tokens(name) if w not in _GENERIC)


def _candidate(g: Group) -> Candidate:
    return Candidate(g.id, g.name)
