"""Roles: "Which admin role do you hold?".

Only for holders of non-privileged roles (privileged administrators are refused before any question), and
only roles held active: a PIM eligibility is not something the person uses day to day.
The impostor guesses the roles most held in the tenant first; for a helpdesk worker that is usually
"Helpdesk Administrator", so this question is often worth little, and the numbers say so.
"""

from __future__ import annotations

from verification.context import OrgKnowledge, Source, UserContext
from verification.guessability import Tier
from verification.names import normalize
from verification.policy import Policy
from verification.questions.model import AnswerType, Candidate, Question
from verification.questions.things import size_tiers, thing_question

# Roles helpdesks and IT teams are commonly given, most common first: the impostor's guesses when the
# tenant's own role counts are unknown (and after them when they are known).
COMMON_ROLES = ("Helpdesk Administrator", "Password Administrator", "User Administrator", "Global Reader",
                "Reports Reader", "Service Support Administrator", "License Administrator", "Groups Administrator",
                "Teams Administrator", "Exchange Administrator", "SharePoint Administrator", "Directory Readers",
                "Message Center Reader", "Teams Communications Support Engineer", "Intune Administrator")


def role_questions(context: UserContext, org: OrgKnowledge, policy: Policy, seed: str) -> list[Question]:
    held = [r for r in context.roles if not r.is_privileged and not r.eligible]  # active roles only
    if not held:
        return []
    accepted = {normalize(r.display_name): Candidate(r.id, r.display_name) for r in held}
    known = {normalize(u.name): u for u in org.roles if not u.is_privileged}
    tiers = size_tiers("roles held", [(name, u.holders) for name, u in known.items()], set(accepted))
    privileged = {normalize(u.name) for u in org.roles if u.is_privileged}
    common = [n for n in map(normalize, COMMON_ROLES) if n not in known and n not in privileged]
    tiers.extend(Tier(f"the commonly delegated role {n!r}", 1, int(n in accepted)) for n in common)
    rest = [n for n in accepted if n not in known and n not in common]
    remaining = max(org.role_definition_count - len(org.roles) - len(common), len(rest))
    tiers.append(Tier("any other built-in role", remaining, len(rest)))
    confusers = [Candidate(f"role:{name}", u.name) for name, u in known.items() if name not in accepted]
    return [thing_question("roles.held", Source.ROLES, "Which admin role do you hold in Microsoft 365?",
                           AnswerType.ROLE, list(accepted.values()), confusers, tiers, 0.9, policy)]
