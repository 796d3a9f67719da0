"""Meetings: "Name someone you've had a meeting with in the last two weeks (not your own team)".

Recent, private and transactional: the strongest source. Filters keep only meetings where the target
really met a few people: not cancelled, not declined, not private/personal/confidential, not all-day,
not focus blocks (nobody else invited), not all-hands (more than `max_meeting_attendees`).
"""

from __future__ import annotations

import re

from verification.context import Meeting, OrgKnowledge, Party, ResponseStatus, Sensitivity, Source, UserContext
from verification.guessability import PeopleRanking
from verification.people import party_is_human, party_key
from verification.policy import Policy
from verification.questions.model import Question
from verification.questions.people import PeopleSpec, people_questions, window_phrase

_ALL_HANDS = re.compile(r"all[\s-]*hands|town\s*hall|company\s+meeting|webinar|broadcast", re.IGNORECASE)


def meeting_is_usable(m: Meeting, context: UserContext, policy: Policy) -> bool:
    now = context.fetched_at
    if m.is_cancelled or m.is_all_day or m.sensitivity is not Sensitivity.NORMAL:
        return False
    if m.my_response is ResponseStatus.DECLINED:
        return False
    if not (now - policy.meeting_lookback <= m.start <= now + policy.meeting_lookahead):
        return False
    if m.subject and _ALL_HANDS.search(m.subject):
        return False
    return 2 <= m.attendee_count <= policy.max_meeting_attendees


def met_in(m: Meeting, me_id: str, org: OrgKnowledge | None = None) -> list[Party]:
    """People the target met in this meeting: the organizer and attendees who did not decline, no rooms."""
    people = [m.organizer] + [a.who for a in m.attendees
                              if a.type != "resource" and a.response is not ResponseStatus.DECLINED]
    return [p for p in people if (p.person is None or p.person.id != me_id) and party_is_human(p, org)]


def meeting_everyone(context: UserContext, policy: Policy, org: OrgKnowledge | None = None) -> dict[str, Party]:
    """Everyone the wording "had a meeting with in the window" makes a true answer: every meeting held (not
    cancelled, not declined), whatever its size or sensitivity. Only for `Question.known` and decoys."""
    me, now = context.profile.id, context.fetched_at
    out: dict[str, Party] = {}
    for m in context.meetings:
        if m.is_cancelled or m.my_response is ResponseStatus.DECLINED:
            continue
        if now - policy.meeting_lookback <= m.start <= now + policy.meeting_lookahead:
            for party in met_in(m, me, org):
                out.setdefault(party_key(party), party)
    return out


def meeting_partners(context: UserContext, policy: Policy, org: OrgKnowledge | None = None) -> dict[str, Party]:
    me = context.profile.id
    out: dict[str, Party] = {}
    for m in context.meetings:
        if meeting_is_usable(m, context, policy):
            for party in met_in(m, me, org):
                out.setdefault(party_key(party), party)
    return out


def meeting_questions(context: UserContext, org: OrgKnowledge, ranking: PeopleRanking, policy: Policy,
                      seed: str) -> list[Question]:
    window = window_phrase(policy.meeting_lookback)
    spec = PeopleSpec(
        Source.MEETINGS, "met",
        prompt=f"Name someone you've had a meeting with in {window}, or are meeting this week, in a meeting none "
               f"of your teammates was in{{scope}}.",
        recall_per_person=0.55, shared_is_known=True,
        choice_prompt=f"Which one of these people have you had a meeting with in {window}?",
        outsider_choice_prompt=f"Which one of these people from outside your organisation have you had a meeting "
                               f"with in {window}?",
    )
    partners = meeting_partners(context, policy, org)
    out = people_questions(spec, partners, ranking, org, policy, context.profile.department, seed,
                           meeting_everyone(context, policy, org))
    if policy.show_subjects:
        out.extend(_subject_question(context, org, ranking, policy, seed))
    return out


def _subject_question(context: UserContext, org: OrgKnowledge, ranking: PeopleRanking, policy: Policy,
                      seed: str) -> list[Question]:
    """Only when the tenant allows subjects: "Who else was in 'Q3 budget review' on Tuesday?"."""
    usable = [m for m in context.meetings if meeting_is_usable(m, context, policy) and m.subject
              and m.start <= context.fetched_at]
    if not usable:
        return []
    latest = max(usable, key=lambda m: m.start)
    partners = {party_key(p): p for p in met_in(latest, context.profile.id, org)}
    spec = PeopleSpec(
        Source.MEETINGS, "in_subject",
        prompt=f"Your calendar shows \"{latest.subject}\" on {latest.start:%A}. Who else was in it{{scope}}?",
        recall_per_person=0.6,
    )
    return people_questions(spec, partners, ranking, org, policy, context.profile.department, seed)
