"""A hand-built six-person organisation with facts the tests know by heart.

Generated orgs are for realism and scale; this one is for exact assertions ("Ada met Grace on
Tuesday"), and it exists before the generator does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devtenant.model import (
    Chat,
    ChatMessage,
    Contact,
    Domain,
    EmailAddress,
    Event,
    Group,
    GroupKind,
    MailMessage,
    Org,
    RoleAssignment,
    RoleDefinition,
    RoleEligibility,
    SignIn,
    User,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TENANT_ID = "11111111-1111-4111-8111-111111111111"
DOMAIN = "tiny.example"

ADA = "aaaaaaaa-0000-4000-8000-000000000001"  # CEO, Global Administrator
GRACE = "aaaaaaaa-0000-4000-8000-000000000002"  # Engineering manager, reports to Ada
ALAN = "aaaaaaaa-0000-4000-8000-000000000003"  # engineer, reports to Grace
KATHERINE = "aaaaaaaa-0000-4000-8000-000000000004"  # engineer, reports to Grace
MARGARET = "aaaaaaaa-0000-4000-8000-000000000005"  # IT support, helpdesk agent, reports to Ada
JOSE = "aaaaaaaa-0000-4000-8000-000000000006"  # federated (synced) user, reports to Grace

HELPDESK_GROUP = "bbbbbbbb-0000-4000-8000-000000000001"
ADMINS_GROUP = "bbbbbbbb-0000-4000-8000-000000000002"
ALL_COMPANY = "bbbbbbbb-0000-4000-8000-000000000003"
COMPILERS_TEAM = "bbbbbbbb-0000-4000-8000-000000000004"

GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
HELPDESK_ADMIN_ROLE = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
USER_ADMIN_ROLE = "fe930be7-5e62-47db-91af-98c3a49a38b1"


def _user(uid: str, given: str, surname: str, title: str, dept: str, manager: str | None, **kw) -> User:
    upn = f"{given.lower()}.{surname.lower()}@{DOMAIN}"
    return User(
        id=uid, display_name=f"{given} {surname}", given_name=given, surname=surname,
        user_principal_name=upn, mail=upn, job_title=title, department=dept,
        office_location="London HQ", city="London", country="United Kingdom", usage_location="GB",
        manager_id=manager, employee_id=uid[-4:], business_phones=["+44 20 7946 0000"], mobile_phone=None,
        created_date_time=NOW - timedelta(days=400),
        last_password_change_date_time=NOW - timedelta(days=90), **kw,
    )


def _addr(org_users: dict[str, User], uid: str) -> EmailAddress:
    u = org_users[uid]
    return EmailAddress(name=u.display_name, address=u.mail or u.user_principal_name, user_id=uid)


def tiny_org() -> Org:
    users = {
        u.id: u
        for u in [
            _user(ADA, "Ada", "Lovelace", "Chief Executive Officer", "Executive", None),
            _user(GRACE, "Grace", "Hopper", "Engineering Manager", "Engineering", ADA),
            _user(ALAN, "Alan", "Turing", "Software Engineer", "Engineering", GRACE),
            _user(KATHERINE, "Katherine", "Johnson", "Software Engineer", "Engineering", GRACE),
            _user(MARGARET, "Margaret", "Hamilton", "IT Support Specialist", "IT", ADA),
            _user(JOSE, "José", "Müller", "Software Engineer", "Engineering", GRACE,
                  on_premises_sync_enabled=True, on_premises_immutable_id="aW1tdXRhYmxl"),
        ]
    }
    # José's account lives in the federated domain.
    users[JOSE].user_principal_name = users[JOSE].mail = f"jose.muller@corp.{DOMAIN}"
    groups = {
        g.id: g
        for g in [
            Group(HELPDESK_GROUP, "Helpdesk Agents", "People who verify callers", GroupKind.SECURITY,
                  "helpdeskagents", None, None, False, NOW - timedelta(days=300), [MARGARET]),
            Group(ADMINS_GROUP, "Watchword Admins", None, GroupKind.SECURITY, "watchwordadmins", None, None,
                  False, NOW - timedelta(days=300), [ADA, MARGARET]),
            Group(ALL_COMPANY, "All Company", None, GroupKind.MICROSOFT_365, "allcompany",
                  f"allcompany@{DOMAIN}", "Public", False, NOW - timedelta(days=400), list(users),
                  is_tenant_wide=True),
            Group(COMPILERS_TEAM, "Compilers Team", "The compilers team", GroupKind.MICROSOFT_365, "compilers",
                  f"compilers@{DOMAIN}", "Private", False, NOW - timedelta(days=200), [GRACE, ALAN, KATHERINE]),
        ]
    }
    roles = {
        r.id: r
        for r in [
            RoleDefinition(GLOBAL_ADMIN_ROLE, "Global Administrator", "Can manage everything", True),
            RoleDefinition(HELPDESK_ADMIN_ROLE, "Helpdesk Administrator", "Can reset passwords for "
                           "non-administrators", False),
            RoleDefinition(USER_ADMIN_ROLE, "User Administrator", "Can manage users and groups", True),
        ]
    }
    assignments = [
        RoleAssignment("cccccccc-0000-4000-8000-000000000001", GLOBAL_ADMIN_ROLE, ADA),
        RoleAssignment("cccccccc-0000-4000-8000-000000000002", HELPDESK_ADMIN_ROLE, MARGARET),
    ]
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    events = [
        Event("dddddddd-0000-4000-8000-000000000001", "Alan / Grace 1:1", GRACE, (ALAN,), tuesday,
              tuesday + timedelta(minutes=30), "one_on_one"),
        Event("dddddddd-0000-4000-8000-000000000002", "Compilers standup", GRACE, (ALAN, KATHERINE),
              tuesday + timedelta(hours=1), tuesday + timedelta(hours=1, minutes=15), "team"),
        Event("dddddddd-0000-4000-8000-000000000003", "Doctor", ALAN, (), tuesday + timedelta(days=1),
              tuesday + timedelta(days=1, hours=1), "focus", sensitivity="private"),
        Event("dddddddd-0000-4000-8000-000000000004", "Design review", KATHERINE, (ALAN,),
              tuesday - timedelta(days=1), tuesday - timedelta(days=1, minutes=-60), "project",
              is_cancelled=True),
    ]
    chats = [
        Chat("19:alan_katherine@unq.gbl.spaces", "oneOnOne", None, (ALAN, KATHERINE), NOW - timedelta(days=20),
             [ChatMessage("1732000000001", KATHERINE, NOW - timedelta(days=1), "lunch?")]),
        Chat("19:compilers@thread.v2", "group", "Compilers", (GRACE, ALAN, KATHERINE), NOW - timedelta(days=60),
             [ChatMessage("1732000000002", GRACE, NOW - timedelta(hours=5), "release is out")]),
    ]

    def contacts_of(uid: str) -> list[Contact]:
        if uid != ALAN:
            return []
        return [
            Contact("eeeeeeee-0000-4000-8000-000000000001", ALAN, "Katherine Johnson", "Katherine", "Johnson",
                    (_addr(users, KATHERINE),), None, "Software Engineer", None, NOW - timedelta(days=100)),
            Contact("eeeeeeee-0000-4000-8000-000000000002", ALAN, "Joan Clarke", "Joan", "Clarke",
                    (EmailAddress("Joan Clarke", "joan@bletchley.example"),), "Bletchley", None, None,
                    NOW - timedelta(days=300)),
        ]

    def messages_of(uid: str) -> list[MailMessage]:
        if uid != ALAN:
            return []
        return [
            MailMessage("ffffffff-0000-4000-8000-000000000001", ALAN, _addr(users, GRACE), (_addr(users, ALAN),),
                        (), "Quarterly goals", NOW - timedelta(hours=20), True),
            MailMessage("ffffffff-0000-4000-8000-000000000002", ALAN,
                        EmailAddress("Newsletter", "news@vendor.example"), (_addr(users, ALAN),), (),
                        "This week in tech", NOW - timedelta(days=3), False),
        ]

    def sign_ins_of(uid: str) -> list[SignIn]:
        out = [
            SignIn(f"99999999-0000-4000-8000-{i:012d}", uid, NOW - timedelta(days=i), "Microsoft Teams",
                   "Mobile Apps and Desktop clients", "81.2.69.160", "London", "England", "GB", "Windows 11",
                   "Edge 120", True, True, 0, None, "none", "none", "success", True)
            for i in range(1, 6)
        ]
        if uid == KATHERINE:  # a burst of wrong passwords an hour ago
            out[:0] = [
                SignIn(f"88888888-0000-4000-8000-{i:012d}", uid, NOW - timedelta(minutes=60 - i), "Office 365",
                       "Browser", "203.0.113.9", "Lagos", None, "NG", "Linux", "Firefox 119", False, False,
                       50126, "Invalid username or password.", "medium", "atRisk", "notApplied", True,
                       anomaly="failed_burst")
                for i in range(8)
            ]
        return out

    org = Org(
        tenant_id=TENANT_ID, display_name="Tiny Example Ltd",
        domains=[Domain(DOMAIN, True, True, "Managed"), Domain(f"corp.{DOMAIN}", False, True, "Federated")],
        now=NOW, users=users, groups=groups, role_definitions=roles, role_assignments=assignments,
        events=events, chats=chats, helpdesk_group_id=HELPDESK_GROUP, admins_group_id=ADMINS_GROUP,
        contacts_of=contacts_of, messages_of=messages_of, sign_ins_of=sign_ins_of,
    )
    return org.index()


def make_eligible(org: Org, principal_id: str, role_id: str) -> RoleEligibility:
    """Make a user or group eligible (Entra PIM) for a role, permanently, from a month ago."""
    eligibility = RoleEligibility(f"eeeeeeee-0000-4000-8000-{len(org.role_eligibilities) + 1:012d}", role_id,
                                  principal_id, NOW - timedelta(days=30))
    org.role_eligibilities.append(eligibility)
    return eligibility
