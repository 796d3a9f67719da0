"""Outlook contacts: "Name someone saved in your Outlook contacts".

v1.0 has no starred/favourite flag, so every saved contact counts. External contacts are the point
(nobody can guess a supplier's name from the org chart), but genuine recall is poor: people rarely
remember who they saved, so the ease estimate is low and the session asks this late.
"""

from __future__ import annotations

from verification.context import OrgKnowledge, Party, Source, UserContext
from verification.guessability import PeopleRanking
from verification.people import party_is_human, party_key
from verification.policy import Policy
from verification.questions.model import Question
from verification.questions.people import PeopleSpec, people_questions


def contact_parties(context: UserContext, org: OrgKnowledge | None = None) -> dict[str, Party]:
    me = context.profile.id
    out: dict[str, Party] = {}
    for contact in context.contacts:
        party = Party(contact.display_name, contact.emails[0] if contact.emails else None, contact.person)
        if (contact.person is None or contact.person.id != me) and party_is_human(party, org):
            out.setdefault(party_key(party), party)
    return out


def contact_questions(context: UserContext, org: OrgKnowledge, ranking: PeopleRanking, policy: Policy,
                      seed: str) -> list[Question]:
    spec = PeopleSpec(
        Source.CONTACTS, "saved",
        prompt="Name someone saved in your Outlook contacts{scope}.",
        recall_per_person=0.2,
        # Recognising one is easier than recall: colleagues among decoys from the org chart's tiers, suppliers and
        # clients among made-up outsiders (verification/outsider_names.py).
        choice_prompt="Which one of these people is saved in your Outlook contacts?",
        outsider_choice_prompt="Which one of these people from outside your organisation is saved in your Outlook "
                               "contacts?",
    )
    return people_questions(spec, contact_parties(context, org), ranking, org, policy,
                            context.profile.department, seed)
