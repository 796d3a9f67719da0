"""The Microsoft Graph application permissions Watchword asks for, and what each is used for.

The admin console shows this table after consent (granted or missing), and `check_connection`
compares it with the `roles` claim of a fresh app token for the tenant.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    name: str
    purpose: str
    source: str | None = None  # the question source that depends on it, if any
    optional: bool = False  # Watchword works without it (and says what it then cannot do)


PERMISSIONS: tuple[Permission, ...] = (
    Permission("User.ReadBasic.All", "Builds the list of protected users"),
    Permission("User.Read.All", "Reads profiles to start and complete a verification", "profile"),
    Permission("Calendars.Read", "Asks whom the caller met this week", "meetings"),
    Permission("Group.Read.All", "Asks which groups the caller belongs to", "groups"),
    Permission("Directory.Read.All", "Asks about the organisation chart (manager, peers, reports)", "hierarchy"),
    Permission("Chat.Read.All", "Asks whom the caller chatted with in Teams", "chats"),
    Permission("Contacts.Read", "Asks about the caller's Outlook contacts", "contacts"),
    Permission("AuditLog.Read.All", "Reads recent sign-ins to spot risk during a verification", "sign_ins"),
    Permission("Mail.ReadBasic.All", "Asks who emailed the caller (senders and times only, never content)", "mail"),
    Permission("RoleManagement.Read.Directory", "Asks about admin roles and refuses privileged administrators",
               "roles"),
    Permission("User-PasswordProfile.ReadWrite.All", "Resets the password after a successful verification"),
    Permission("TeamsAppInstallation.ReadWriteSelfForUser.All",
               "Optional: installs Watchword (only Watchword) for a person who has never chatted with it, to tell "
               "them in Teams that their password was reset, or to ask a manager to vouch for their report; without "
               "it the agent is told to tell them another way, and only managers who chatted with Watchword are asked",
               optional=True),
)

# The permissions a connection needs; the optional ones are shown, and reported when missing, but never required.
PERMISSION_NAMES: frozenset[str] = frozenset(p.name for p in PERMISSIONS if not p.optional)

# Directory roles on the app's service principal that allow resetting (non-privileged) passwords.
RESET_ROLES: frozenset[str] = frozenset({
    "User Administrator",
    "Helpdesk Administrator",
    "Password Administrator",
    "Authentication Administrator",
    "Privileged Authentication Administrator",
    "Global Administrator",
})
