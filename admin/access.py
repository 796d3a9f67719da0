"""Who may use the console: members of the configured admin group, or holders of the configured directory role.

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
                                  "WATCHWORD_ADMIN_GROUP_ID (an Entra group) or WATCHWORD_ADMIN_ROLE.",
    Refusal.OTHER_TENANT: "Your account belongs to another organisation than the one this Watchword serves.",
    Refusal.NOT_ADMIN: "Your account is not a Watchword administrator. Ask an administrator to add you to the "
                       "Watchword admins group in Microsoft Entra, then sign in again.",
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


async def decide(person: SignedInPerson, *, admin_group_id: str, admin_role_id: str,
                 known_tenants: frozenset[str], directory: Directory | None) -> AccessDecision:
    """Whether `person` may use the console. `known_tenants`: connected and configured tenant ids."""
    group, role = admin_group_id.lower(), admin_role_id.lower()
    if not group and not role:
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
    if role and known_tenants and role in person.directory_roles:
        return AccessDecision(True, via="role")
    return AccessDecision(False, refusal=Refusal.MEMBERSHIP_UNKNOWN if unknown else Refusal.NOT_ADMIN)
