"""Who may use the console: members of the configured admin group, or holders of a configured directory role
(Global Administrator and Privileged Role Administrator unless WATCHWORD_ADMIN_ROLES says otherwise).

The group is checked in the id token's `groups` claim when the token lists the person's groups; Entra puts
that claim in only when the app registration asks for it, and over 200 groups sends an overage marker instead,
so otherwise the directory is asked (a transitive membership check through Graph). The role is checked in
`wids` (role template ids), and only for people of a connected or configured tenant: a role template id is
the same in every tenant, so without that a Global Administrator of any tenant would qualify. Group object
ids are unique to one tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from graph.directory import Directory, DirectoryError
from graph.signin import SignedInPerson


class Refusal(StrEnum):
    NO_ADMINS_CONFIGURED = "no_admins_configured"
    OTHER_TENANT = "other_tenant"
    NOT_ADMIN = "not_admin"
    MEMBERSHIP_UNKNOWN = "membership_unknown"


REFUSAL_TEXT = {
    Refusal.NO_ADMINS_CONFIGURED: "No console administrators are configured. Whoever runs Watchword must set "
                                  "WATCHWORD_ADMIN_GROUP_ID (an Entra group) or WATCHWORD_ADMIN_ROLES.",
    Refusal.OTHER_TENANT: "Your account belongs to another organisation than the one this Watchword serves.",
    Refusal.NOT_ADMIN: "Your account is not a Watchword administrator. Ask an administrator to add you to the "
                       "Watchword admins group or give you one of the roles below in Microsoft Entra, then sign "
                       "in again.",
    Refusal.MEMBERSHIP_UNKNOWN: "Your sign-in did not list your groups, and your membership of the Watchword "
                                "admins group could not be checked in the directory (Microsoft Graph did not "
                                "answer, or the tenant is not connected). Try again in a minute or ask another "
                                "administrator.",
}


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    via: str | None = None  # "group" or "role" when allowed
    refusal: Refusal | None = None

    @property
    def message(self) -> str:
        return REFUSAL_TEXT[self.refusal] if self.refusal else ""


# Names of the directory roles people are most often told about (template id -> name), for the refusal page.
ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
}


def role_name(template_id: str) -> str:
    return ROLE_NAMES.get(template_id.lower(), f"the directory role {template_id}")


async def decide(person: SignedInPerson, *, admin_group_id: str, admin_role_ids: tuple[str, ...],
                 known_tenants: frozenset[str], directory: Directory | None) -> AccessDecision:
    """Whether `person` may use the console. `known_tenants`: connected and configured tenant ids."""
    group, roles = admin_group_id.lower(), {r.lower() for r in admin_role_ids}
    if not group and not roles:
        return AccessDecision(False, refusal=Refusal.NO_ADMINS_CONFIGURED)
    if known_tenants and person.tenant_id not in known_tenants:
        return AccessDecision(False, refusal=Refusal.OTHER_TENANT)
    unknown = False
    if group:
        if group in person.groups:
            return AccessDecision(True, via="group")
        if not person.groups_listed:
            if directory is None:
                unknown = True
            else:
                try:
                    if await directory.is_member_of(person.tenant_id, person.oid, group):
                        return AccessDecision(True, via="group")
                except DirectoryError:
                    unknown = True
    if roles and known_tenants and roles.intersection(person.directory_roles):
        return AccessDecision(True, via="role")
    return AccessDecision(False, refusal=Refusal.MEMBERSHIP_UNKNOWN if unknown else Refusal.NOT_ADMIN)
