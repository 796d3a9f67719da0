"""Question generators, one module per source, and `generate_questions` that runs the enabled ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from verification.context import OrgKnowledge, Source, UserContext
from verification.guessability import PeopleRanking, rank_people, with_team_partners
from verification.policy import Policy
from verification.questions.chats import chat_questions
from verification.questions.contacts import contact_questions
from verification.questions.groups import group_questions
from verification.questions.hierarchy import hierarchy_questions
from verification.questions.mail import mail_questions
from verification.questions.meetings import meeting_questions
from verification.questions.model import AnswerType, Candidate, Form, Question
from verification.questions.roles import role_questions
from verification.questions.team import collaborators, people_among, team_shared

__all__ = ["AnswerType", "Candidate", "Form", "Question", "generate_questions"]

_PeopleGen = Callable[[UserContext, OrgKnowledge, PeopleRanking, Policy, str], list[Question]]
_PEOPLE: dict[Source, _PeopleGen] = {
    Source.MEETINGS: meeting_questions,
    Source.CHATS: chat_questions,
    Source.MAIL: mail_questions,
    Source.CONTACTS: contact_questions,
    Source.HIERARCHY: hierarchy_questions,
}


def generate_questions(context: UserContext, org: OrgKnowledge, policy: Policy, seed: str, *,
                       asked_only: bool = False) -> tuple[Question, ...]:
    """Every question the context supports, each measured in bits; unavailable or disabled sources are
    skipped. Ordered by expected bits (bits x ease), best first. Deterministic for a given seed. `asked_only`: only
    the questions a session may ask (`policy.min_bits_per_question` or more), the same as with it False; the others
    (the org chart's, worth ~0 bits, are a fifth of the work) are measured but not finished (look-alikes)."""
    # Scored against the strongest of three insiders: an informed outsider (the public org chart), a teammate, who
    # knows whoever the team meets or chats with together, and a LinkedIn reader, who knows the target's projects.
    projects = collaborators(context, policy)
    ranking = with_team_partners(rank_people(context, org), team_shared(context, org, policy), projects,
                                 people_among(context, projects))
    if asked_only:
        ranking = replace(ranking, asked_from=policy.min_bits_per_question)
    out: list[Question] = []
    for source, gen in _PEOPLE.items():
        if _wanted(source, context, policy):
            out.extend(gen(context, org, ranking, policy, seed))
    if _wanted(Source.GROUPS, context, policy):
        out.extend(group_questions(context, org, policy, seed))
    if _wanted(Source.ROLES, context, policy):
        out.extend(role_questions(context, org, policy, seed))
    if asked_only:
        out = [q for q in out if q.bits >= policy.min_bits_per_question]
    return tuple(sorted(out, key=lambda q: (-q.expected_bits, q.kind)))


def _wanted(source: Source, context: UserContext, policy: Policy) -> bool:
    return source in policy.sources and context.is_available(source)
