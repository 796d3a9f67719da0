"""What the target's team shares: the people a teammate could name as well as the target.

The insider to beat is a real peer of the target (another report of the same manager): they sit in the team's
meetings, recurring cross-team project meetings included, its group chats, and know the partners the team deals
with together. They see none of the target's 1:1s, private chats or mail. So a person the target met or chatted
with in a meeting or chat where a teammate was too is worth what a teammate would guess: nothing. We take the
strongest such insider, the teammate who was there: one teammate present is enough to share a fact.

Everyone met in a huge meeting (an all-hands) is shared the same way: anyone could name them. Such people are
never credited, but naming one is not wrong either (`Question.known`).
"""

from __future__ import annotations

from verification.context import ChatType, GroupKind, OrgKnowledge, Person, ResponseStatus, UserContext
from verification.people import party_is_human, party_key
from verification.policy import Policy
from verification.questions.meetings import meeting_is_usable, met_in


def teammates(context: UserContext, org: OrgKnowledge) -> frozenset[str]:
    """The target's team as the org chart shows it: the manager's other reports and the target's own reports."""
    ids = {p.id for p in (*context.peers, *org.peers, *context.direct_reports, *org.direct_reports)}
    return frozenset(ids - {context.profile.id})


def team_shared(context: UserContext, org: OrgKnowledge, policy: Policy) -> frozenset[str]:
    """Party keys of everyone the target met or chatted with where a teammate was too (or in a huge meeting or chat,
    or a meeting chat): what a teammate knows as well as the target."""
    team = teammates(context, org)
    me = context.profile.id
    shared: set[str] = set()
    for m in context.meetings:
        if m.is_cancelled or m.my_response is ResponseStatus.DECLINED or not _in_window(m.start, context, policy):
            continue
        people = met_in(m, me, org)
        keys = {party_key(p) for p in people}
        with_team = bool(keys & team) or (m.organizer.person is not None and m.organizer.person.id in team)
        if with_team or not meeting_is_usable(m, context, policy):
            shared |= keys
    since = context.fetched_at - policy.chat_window
    for chat in context.chats:
        if chat.last_message_at is None or chat.last_message_at < since:
            continue
        members = [p for p in chat.members if (p.person is None or p.person.id != me) and party_is_human(p, org)]
        keys = {party_key(p) for p in members}
        crowded = chat.chat_type is ChatType.MEETING or len(chat.members) > policy.max_chat_members
        if keys & team or crowded:
            shared |= keys
    return frozenset(shared)


def collaborators(context: UserContext, policy: Policy) -> frozenset[str]:
    """Directory ids of the people the target shares a small Microsoft 365 group with (a project's working group, a
    cross-team team): who works with whom is what anyone sees by looking the group up in the directory, and what a
    LinkedIn profile shows (its projects and colleagues). An impostor who knows the target's title, department,
    manager and these collaborators guesses them right after the team. Distribution lists and security groups say
    who gets mail or access, not who works together; big groups say nothing; groups whose members were not read
    count for nothing."""
    found: set[str] = set()
    for g in context.groups:
        if g.kind is GroupKind.MICROSOFT_365 and not g.is_tenant_wide and g.member_ids is not None \
                and len(g.member_ids) <= policy.max_group_members:
            found |= g.member_ids
    return frozenset(found - {context.profile.id})


def people_among(context: UserContext, ids: frozenset[str]) -> tuple[Person, ...]:
    """The directory people of `ids` the target's own data names (meetings, chats, mail, contacts), once each, in a
    fixed order: a group lists only ids, and a collaborator from another department is known by name only there."""
    found: dict[str, Person] = {}
    parties = [p for m in context.meetings for p in (m.organizer, *(a.who for a in m.attendees))]
    parties += [p for c in context.chats for p in c.members] + [mail.sender for mail in context.mail]
    for person in (*(p.person for p in parties), *(c.person for c in context.contacts)):
        if person is not None and person.id in ids:
            found.setdefault(person.id, person)
    return tuple(found[i] for i in sorted(found))


def team_groups(context: UserContext, org: OrgKnowledge) -> frozenset[str]:
    """Ids of the target's groups a teammate is in too (the team's own group, its projects' groups): known to
    that teammate. Groups whose members were not read count as not shared."""
    team = teammates(context, org)
    return frozenset(g.id for g in context.groups if g.member_ids is not None and g.member_ids & team)


def _in_window(start, context: UserContext, policy: Policy) -> bool:
    now = context.fetched_at
    return now - policy.meeting_lookback <= start <= now + policy.meeting_lookahead
