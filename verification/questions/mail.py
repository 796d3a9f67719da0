"""Mail: "Name someone who has emailed you in the last three days".

Senders only (Mail.ReadBasic metadata); never subjects unless policy allows them. Automated senders
(no-reply, newsletters) and external senders are dropped: outside the tenant, a human-looking name is
too often a marketing robot, and the genuine user rarely remembers it.
"""

from __future__ import annotations

from verification.context import OrgKnowledge, Party, Source, UserContext
from verification.guessability import PeopleRanking
from verification.people import is_external, party_is_human, party_key
from verification.policy import Policy
from verification.questions.model import Question
from verification.questions.people import PeopleSpec, people_questions, window_phrase


def mail_senders(context: UserContext, org: OrgKnowledge, policy: Policy) -> dict[str, Party]:
    me = context.profile.id
    since = context.fetched_at - policy.mail_window
    out: dict[str, Party] = {}
    for message in context.mail:
        sender = message.sender
        if message.received_at < since or message.received_at > context.fetched_at:
            continue
        if sender.person is not None and sender.person.id == me:
            continue
        if party_is_human(sender, org) and not is_external(sender, org.internal_domains):
            out.setdefault(party_key(sender), sender)
    return out


def mail_everyone(context: UserContext, org: OrgKnowledge, policy: Policy) -> dict[str, Party]:
    """Every human sender in the window, outsiders too: all true answers to "who has emailed you"."""
    since = context.fetched_at - policy.mail_window
    return {party_key(m.sender): m.sender for m in context.mail
            if since <= m.received_at <= context.fetched_at and party_is_human(m.sender, org)
            and (m.sender.person is None or m.sender.person.id != context.profile.id)}


def mail_questions(context: UserContext, org: OrgKnowledge, ranking: PeopleRanking, policy: Policy,
                   seed: str) -> list[Question]:
    window = window_phrase(policy.mail_window)
    spec = PeopleSpec(
        Source.MAIL, "emailed_by",
        prompt=f"Name someone from work who has emailed you in {window}{{scope}}.",
        recall_per_person=0.4,
        choice_prompt=f"Which one of these people has emailed you in {window}?",
    )
    return people_questions(spec, mail_senders(context, org, policy), ranking, org, policy,
                            context.profile.department, seed, mail_everyone(context, org, policy))
