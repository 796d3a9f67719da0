"""The org chart: manager, peers, direct reports.

These are PUBLIC: anyone with a mailbox can open the org chart. They are generated (so the audit can
show what they would be worth) but measure ~0 bits against the informed impostor, so the session never
asks them unless a tenant's ranking genuinely hides them (e.g. a department too large to cover).
"""

from __future__ import annotations

from collections.abc import Sequence

from verification.context import OrgKnowledge, Party, Person, Source, UserContext
from verification.guessability import DIRECT_REPORTS, MANAGER, TEAMMATES, PeopleRanking
from verification.people import person_is_human
from verification.policy import Policy
from verification.questions.model import Question
from verification.questions.people import PeopleSpec, Scope, people_questions


def hierarchy_questions(context: UserContext, org: OrgKnowledge, ranking: PeopleRanking, policy: Policy,
                        seed: str) -> list[Question]:
    manager = context.manager or org.manager
    peers = context.peers or org.peers
    reports = context.direct_reports or org.direct_reports
    out: list[Question] = []
    asks = (
        ("manager", "Who is your manager?", [manager] if manager else [], ()),
        ("peer", "Name someone else who reports to your manager.", peers, (MANAGER, DIRECT_REPORTS)),
        ("direct_report", "Name one of your direct reports.", reports, (MANAGER, TEAMMATES)),
    )
    for family, prompt, people, ruled_out in asks:
        spec = PeopleSpec(Source.HIERARCHY, family, prompt=prompt, recall_per_person=0.95, scopes=(Scope.ANYONE,),
                          ruled_out=ruled_out, team_aware=False)
        out.extend(people_questions(spec, _parties(people, context.profile.id), ranking, org, policy,
                                    context.profile.department, seed))
    return out


def _parties(people: Sequence[Person], me: str) -> dict[str, Party]:
    return {p.id: Party(p.display_name, p.mail, p) for p in people if p.id != me and person_is_human(p)}
