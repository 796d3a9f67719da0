"""Everything one running devtenant knows: its organisation, the Watchword app registration,
the tenant's consent to it, the signing key, and the knobs for latency and faults.

The identity platform (`identity.py`) and Graph (`graph_api/`) both read and write this one object.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from devtenant.model import Org
from devtenant.tokens import TokenIssuer

# Microsoft Graph application permissions devtenant knows, with what Watchword uses each for.
# The consent page shows these; a token's `roles` claim holds the names consented.
GRAPH_PERMISSIONS: dict[str, str] = {
    "User.ReadBasic.All": "Read basic profiles to build the list of protected users",
    "User.Read.All": "Read full profiles to start and complete a verification",
    "Calendars.Read": "Ask about meetings (\"Who did you meet this week?\")",
    "Group.Read.All": "Ask about group membership (\"Name a group you belong to\")",
    "Directory.Read.All": "Ask about the organisation chart (manager, peers, reports)",
    "Chat.Read.All": "Ask about recent Teams chats",
    "Contacts.Read": "Ask about Outlook contacts",
    "AuditLog.Read.All": "Read recent sign-ins to spot risk during a verification",
    "Mail.ReadBasic.All": "Ask about who emailed the person (metadata only, never bodies)",
    "RoleManagement.Read.Directory": "Ask about admin roles, and refuse privileged administrators",
    "User-PasswordProfile.ReadWrite.All": "Reset the password after a successful verification",
    "TeamsAppInstallation.ReadWriteSelfForUser.All": "Install Watchword for a person who has no chat with it yet, "
                                                     "to tell them their password was reset or to ask a manager "
                                                     "to vouch (optional)",
}

# Directory roles that let an application's service principal reset (some) passwords.
RESET_CAPABLE_ROLES = {
    "User Administrator",
    "Helpdesk Administrator",
    "Password Administrator",
    "Authentication Administrator",
    "Privileged Authentication Administrator",
    "Global Administrator",
}


@dataclass(frozen=True)
class DevTenantConfig:
    seed: int = 1
    users: int = 200
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    # How long an injected "timeout" fault hangs before its 504: longer than clients usually wait.
    fault_hang_s: float = 30.0
    unconsented: bool = False
    # Demo mode: the app's service principal holds User Administrator so resets work.
    sp_reset_role: str | None = "User Administrator"
    # Extra time an Outlook request (calendar, mail, contacts) holds its mailbox's slot, on top of
    # latency_ms (paid before dispatch): makes Outlook's 4-concurrent-requests-per-mailbox limit observable.
    mailbox_latency_ms: float = 0.0
    # Microsoft Entra ID P2 (or ID Governance): without it PIM's endpoints answer 400 AadPremiumLicenseRequired.
    entra_id_p2: bool = True
    # Microsoft Entra ID P1 (or P2): without it the sign-in logs answer 403
    # Authentication_RequestFromNonPremiumTenantOrB2CTenant, whatever the permissions.
    entra_id_p1: bool = True
    # Microsoft approved the app for Teams' protected APIs (chats in application-only context); without it chats
    # answer 403 "Invoked API requires Protected API access...", with Chat.Read.All granted.
    protected_api_approved: bool = True
    # An Exchange Online application access policy that leaves Watchword out: every mailbox read (mail, calendar,
    # contacts) answers 403 ErrorAccessDenied "... AppOnly AccessPolicy".
    mail_access_policy_blocks: bool = False
    # Directory (identity and access) throttling: resource units per 10 s per app per tenant. None = Graph's
    # quota for the tenant's size (3,500 / 5,000 / 8,000); 0 = no directory throttling.
    directory_ru_per_10s: int | None = None
    # The app registration asks for the `groups` claim (groupMembershipClaims, or the groups optional claim).
    # Off by default, as for a new registration: id tokens then carry no groups at all.
    groups_claim: bool = False
    # After admin consent, client-credentials tokens carry no roles for this long (Entra's replication delay).
    consent_propagation_s: float = 5.0
    # A password set through Graph works for sign-in only after this long (Entra replicates it); until then a
    # sign-in with it fails as a wrong password would (AADSTS50126).
    password_replication_s: float = 10.0
    # A generated organisation has guests (#EXT# UPNs, userType Guest) and disabled accounts, as real tenants do.
    strangers: bool = True
    # A /users/delta deltaLink older than this answers 400 syncStateNotFound (Graph: about 7 days for directory
    # objects): the client must start a new round.
    delta_token_lifetime_s: float = 7 * 24 * 3600.0
    # Extra latency of some endpoints (path prefix below /v1.0 -> ms), paid by each request or $batch item that
    # matches, on top of latency_ms. Sign-in logs (the reports API) take seconds on Microsoft's side.
    endpoint_latency_ms: tuple[tuple[str, float], ...] = (("/auditLogs/signIns", 1500.0),)
    # A page of directory objects with $expand holds at most this many, whatever $top says (Graph: 100; 0 = no cap).
    expand_page_cap: int = 100
    # A /groups/delta page with `members` selected holds at most this many members@delta entries, all groups
    # together; a group with more appears again on the next page with the rest (Graph does both: a dynamic group
    # of ~10,000 members came back on 20 pages, microsoftgraph/msgraph-sdk-dotnet#574).
    group_delta_members_per_page: int = 500


@dataclass
class AppRegistration:
    """Watchword's multi-tenant app registration (lives in the publisher's tenant)."""

    client_id: str
    client_secret: str
    display_name: str = "Watchword"

    @staticmethod
    def new() -> AppRegistration:
        return AppRegistration(client_id=str(uuid.uuid4()), client_secret=secrets.token_urlsafe(32))


@dataclass
class DevTenantState:
    config: DevTenantConfig
    org: Org
    app: AppRegistration
    issuer: TokenIssuer = field(default_factory=TokenIssuer)
    # The app's service principal in the customer tenant (created at consent in real Entra; here up front).
    sp_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Application permissions the tenant's admin consented to; None before any consent.
    consented: set[str] | None = None
    consented_at: float | None = None  # time.time() of the admin consent; None when consented from the start
    base_url: str = ""  # https://127.0.0.1:PORT, set once the server listens
    # Graph's throttling bookkeeping (graph_api/throttling.py), per running tenant so limits are shared
    # by direct requests and $batch items and reset with a fresh state.
    throttles: dict[str, Any] = field(default_factory=dict)
    # Other per-tenant bookkeeping of Graph modules, by module (e.g. graph_api/teamwork.py's app installations).
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant_id(self) -> str:
        return self.org.tenant_id

    def resolve_tenant(self, tenant: str) -> str | None:
        """A tenant id or one of its verified domain names -> the tenant id; None when unknown."""
        if tenant.lower() == self.tenant_id.lower():
            return self.tenant_id
        if any(d.id.lower() == tenant.lower() and d.is_verified for d in self.org.domains):
            return self.tenant_id
        return None
