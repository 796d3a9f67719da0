"""Teams chats: "Name someone you've chatted with in Teams in the last week".

One-on-one and small group chats with a message inside the window. Meeting chats are left to the
meetings source; big group chats are as public as big meetings.
"""

from __future__ import annotations

from verification.context import ChatType, OrgKnowledge, Party, Source, UserContext
from verification.guessability import PeopleRanking
from verification.people import party_is_human, party_key
from verification.policy import Policy
from verification.questions.model import Question
from verification.questions.people import PeopleSpec, people_questions, window_phrase


def chat_partners(context: UserContext, policy: Policy, org: OrgKnowledge | None = None) -> dict[str, Party]:
    me = context.profile.id
    since = context.fetched_at - policy.chat_window
    out: dict[str, Party] = {}
    for chat in context.chats:
        if chat.chat_type is ChatType.MEETING or len(chat.members) > policy.max_chat_members:
            continue
        if chat.last_message_at is None or chat.last_message_at < since:
            continue
        for member in chat.members:
            if (member.person is None or member.person.id != me) and party_is_human(member, org):
                out.setdefault(party_key(member), member)
    return out


def chat_everyone(context: UserContext, policy: Policy, org: OrgKnowledge | None = None) -> dict[str, Party]:
    """Everyone "chatted with in Teams in the window" makes a true answer: every chat, meeting chats and big ones."""
    me = context.profile.id
    since = context.fetched_at - policy.chat_window
    out: dict[str, Party] = {}
    for chat in context.chats:
        if chat.last_message_at is not None and chat.last_message_at >= since:
            for member in chat.members:
                if (member.person is None or member.person.id != me) and party_is_human(member, org):
                    out.setdefault(party_key(member), member)
    return out


def chat_questions(context: UserContext, org: OrgKnowledge, ranking: PeopleRanking, policy: Policy,
                   seed: str) -> list[Question]:
    window = window_phrase(policy.chat_window)
    spec = PeopleSpec(
        Source.CHATS, "chatted",
        prompt=f"Name someone you've chatted with in Teams in {window}, in a chat none of your teammates is "
               f"in{{scope}}.",
        recall_per_person=0.6, shared_is_known=True,
        choice_prompt=f"Which one of these people have you chatted with in Teams in {window}?",
        outsider_choice_prompt=f"Which one of these people from outside your organisation have you chatted with in "
                               f"Teams in {window}?",
    )
    return people_questions(spec, chat_partners(context, policy, org), ranking, org, policy,
                            context.profile.department, seed, chat_everyone(context, policy, org))
