"""Groups (all four kinds) and directory roles for the generated people."""

from __future__ import annotations

import base64
import random
import uuid
from datetime import timedelta

from devtenant.generate._rand import guid, rng_for, slug
from devtenant.generate.catalogue import APP_ACCESS_GROUPS, INTEREST_GROUPS, ROLE_ID, ROLES, SERVICE_DESK
from devtenant.generate.people import Roster
from devtenant.generate.work import WorkGraph
from devtenant.model import Group, GroupKind, RoleAssignment, RoleDefinition, RoleEligibility

HELPDESK_GROUP = "Helpdesk Agents"
ADMINS_GROUP = "Watchword Admins"


class GroupBuilder:
    def __init__(self, roster: Roster, work: WorkGraph) -> None:
        self.r = roster
        self.work = work
        self.rng = rng_for(roster.seed, "groups")
        self.ids = rng_for(roster.seed, "group-ids")
        self.uid = [u.id for u in roster.people]
        self.groups: dict[str, Group] = {}
        self._nicknames: dict[str, int] = {}

    def add(self, name: str, kind: GroupKind, members: list[str], *, description: str | None = None,
            visibility: str | None = None, tenant_wide: bool = False, role_assignable: bool = False,
            nickname: str | None = None) -> Group:
        base = slug(nickname or name) or "group"
        n = self._nicknames.get(base, 0)
        self._nicknames[base] = n + 1
        mail_nickname = base if n == 0 else f"{base}{n + 1}"
        if kind is GroupKind.MICROSOFT_365 and visibility is None:
            visibility = "Private" if self.rng.random() < 0.6 else "Public"
        age = timedelta(days=self.rng.randrange(30, 2500), minutes=self.rng.randrange(1440))
        group = Group(
            id=guid(self.ids), display_name=name, description=description, kind=kind, mail_nickname=mail_nickname,
            mail=None if kind is GroupKind.SECURITY else f"{mail_nickname}@{self.r.domain}",
            visibility=visibility if kind is GroupKind.MICROSOFT_365 else None,
            is_assignable_to_role=role_assignable, created_date_time=(self.r.now - age).replace(microsecond=0),
            member_ids=members, is_tenant_wide=tenant_wide,
        )
        self.groups[group.id] = group
        return group

    def ids_of(self, people: list[int] | range) -> list[str]:
        uid = self.uid
        return [uid[p] for p in people]

    def build(self) -> tuple[Group, Group, list[Group]]:
        """All groups; returns (helpdesk group, Watchword admins group, role-assignable groups)."""
        r, rng = self.r, self.rng
        everyone = range(r.size)
        self.add("All Company", GroupKind.MICROSOFT_365, self.ids_of(everyone), visibility="Public",
                 description=f"Everyone at {r.company}", tenant_wide=True)
        self.add("All Employees", GroupKind.DISTRIBUTION, self.ids_of(everyone), tenant_wide=True,
                 description="Company-wide announcements")
        self.add("All Users", GroupKind.SECURITY, [*self.ids_of(everyone), *(u.id for u in r.service_accounts)],
                 tenant_wide=True, description="Dynamic: every enabled account")

        for o, office in enumerate(r.offices):
            self.add(f"{office.city} Office", GroupKind.DISTRIBUTION, self.ids_of(r.office_members[o]),
                     description=f"Everyone based in {office.city}")
        dept_groups: dict[str, Group] = {}
        for d, department in enumerate(r.departments):
            members = self.ids_of(r.dept_members[d])
            dept_groups[department.name] = self.add(
                f"All {department.name}", GroupKind.DISTRIBUTION, members, description=f"Everyone in {department.name}")
            label = department.nickname.upper() if len(department.nickname) <= 2 else department.nickname.capitalize()
            self.add(f"SG-{label}-Users", GroupKind.SECURITY, members,
                     description=f"Access for {department.name} (file shares, printers)")

        # Each team's own Microsoft 365 group, and an org-wide list for bigger parts of the tree.
        for team in self.r.teams:
            people = [team.manager, *team.members]
            if team.dept < 0:
                self.add("Executive Leadership Team", GroupKind.MICROSOFT_365, self.ids_of(people),
                         visibility="Private", description="The executive team")
                continue
            if team.height == 1:
                self.add(f"{team.name} Team", GroupKind.MICROSOFT_365, self.ids_of(people),
                         description=f"{team.name} ({r.departments[team.dept].name})")
            else:
                self.add(f"{team.name}", GroupKind.MICROSOFT_365, self.ids_of(people),
                         visibility="Private", description=f"{r.people[team.manager].display_name}'s leadership team")

        for project in self.work.projects:
            self.add(f"Project {project.name}", GroupKind.MICROSOFT_365, self.ids_of(project.members),
                     description=f"Working group for {project.name}")

        # Application access: mostly whole departments, so big; admins of each app are tiny.
        names = {d.name: k for k, d in enumerate(r.departments)}
        it_people = r.dept_members[names["IT"]]
        for app, departments in APP_ACCESS_GROUPS:
            members = [p for d in departments if d in names for p in r.dept_members[names[d]] if rng.random() < 0.85]
            if members:
                self.add(f"SG-App-{app}-Users", GroupKind.SECURITY, self.ids_of(members),
                         description=f"Users of {app}")
            admins = rng.sample(it_people, min(len(it_people), rng.randint(1, 3)))
            self.add(f"SG-App-{app}-Admins", GroupKind.SECURITY, self.ids_of(admins),
                     description=f"Administrators of {app}")
        vpn = [p for p in everyone if rng.random() < 0.3]
        self.add("SG-VPN-Users", GroupKind.SECURITY, self.ids_of(vpn), description="Remote access VPN")

        # Mail-enabled security: managers of each department, nested into one list of all people managers.
        manager_groups = []
        for d, department in enumerate(r.departments):
            managers = [p for p in r.dept_members[d] if r.leads[p] >= 0]
            if managers:
                manager_groups.append(self.add(
                    f"{department.name} Managers", GroupKind.MAIL_ENABLED_SECURITY, self.ids_of(managers),
                    description=f"People managers in {department.name}"))
        self.add("All People Managers", GroupKind.DISTRIBUTION, [g.id for g in manager_groups],
                 description="Every people manager (nested department groups)")
        nested = [dept_groups[n].id for n in ("Engineering", "Product") if n in dept_groups]
        if len(nested) == 2:
            self.add("Product & Engineering", GroupKind.DISTRIBUTION, nested, description="Engineering and Product")
        finance = dept_groups.get("Finance")
        if finance is not None:
            approvers = [p for p in finance.member_ids[: max(2, len(finance.member_ids) // 5)]]
            self.add("Finance Approvers", GroupKind.MAIL_ENABLED_SECURITY, approvers, description="Invoice approval")

        # Topic lists people join out of interest, per office when the org is big enough.
        for topic in INTEREST_GROUPS[: max(3, min(len(INTEREST_GROUPS), r.size // 15))]:
            for o, office in enumerate(r.offices):
                pool = r.office_members[o]
                if r.size > 500 or o == 0:
                    k = min(len(pool), max(3, int(len(pool) * rng.uniform(0.005, 0.04))))
                    label = f"{office.city} {topic}" if r.size > 500 else topic
                    self.add(label, GroupKind.DISTRIBUTION, self.ids_of(sorted(rng.sample(pool, k))),
                             description=f"{topic} - anyone welcome")

        # Accounts that are not people: room lists (distribution lists of rooms) and a service account group.
        rooms: dict[str, list[str]] = {}
        others: list[str] = []
        for account in r.service_accounts:
            if account.display_name.startswith(("Conference Room", "Meeting Room")):
                rooms.setdefault(account.city or r.offices[0].city, []).append(account.id)
            else:
                others.append(account.id)
        for city, members in rooms.items():
            self.add(f"Rooms - {city}", GroupKind.DISTRIBUTION, members, description=f"Room list for {city}")
        self.add("Service Accounts", GroupKind.SECURITY, others,
                 description="Shared mailboxes, service and bot accounts (excluded from MFA registration)")

        # IT: the helpdesk, the app's admins, and the role-assignable groups.
        helpdesk = self.add(HELPDESK_GROUP, GroupKind.SECURITY, self.ids_of(r.helpdesk),
                            description="IT Service Desk staff who verify callers with Watchword")
        admins = self._pick_it(["Identity & Access", SERVICE_DESK, "Collaboration Services"], 2 + (r.size > 2000),
                               exclude_head=True)
        admins_group = self.add(ADMINS_GROUP, GroupKind.SECURITY, self.ids_of(admins),
                                description="Configure Watchword and read its audit log")
        it_staff = self.add("IT Department", GroupKind.MAIL_ENABLED_SECURITY, self.ids_of(it_people),
                            description="All of IT")
        self.add("IT Operations", GroupKind.DISTRIBUTION, [helpdesk.id, it_staff.id],
                 description="IT staff and the helpdesk (nested)")
        tier2 = self._pick_it([SERVICE_DESK], max(2, min(6, len(r.helpdesk) // 4)), exclude_head=True, offset=1)
        password_ops = self.add("Helpdesk Tier 2", GroupKind.SECURITY, self.ids_of(tier2), role_assignable=True,
                                description="Senior service desk analysts (role-assignable: Password Administrator)")
        secops = self._pick_it(["IT Security"], 3, exclude_head=True)
        secops_group = self.add("Security Operations", GroupKind.SECURITY, self.ids_of(secops), role_assignable=True,
                                description="Security operations (role-assignable: Security Reader)")
        return helpdesk, admins_group, [password_ops, secops_group]

    def _pick_it(self, areas: list[str], count: int, *, exclude_head: bool = False, offset: int = 0) -> list[int]:
        """IT people by preference of area (falling back to anyone in IT)."""
        r = self.r
        it = next(k for k, d in enumerate(r.departments) if d.name == "IT")
        people = r.dept_members[it]
        head = people[0]
        order: dict[int, None] = {}  # insertion-ordered, and linear for IT departments of thousands
        for area in areas:
            order.update((p, None) for p in people if r.area_of[p] == area)
        order.update((p, None) for p in people)
        ranked = list(order)
        if exclude_head and len(ranked) > count:
            ranked = [p for p in ranked if p != head]
        start = min(offset, max(0, len(ranked) - count))
        return ranked[start:start + count]


def role_definitions() -> dict[str, RoleDefinition]:
    return {r.id: RoleDefinition(r.id, r.name, r.description, r.privileged) for r in ROLES}


def assignment_id(role_id: str, principal_id: str) -> str:
    """Entra's format: base64url of the role id and principal id (little-endian GUID bytes), then "-1"."""
    raw = uuid.UUID(role_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


def role_assignments(roster: Roster, rng: random.Random, role_groups: list[Group]) -> list[RoleAssignment]:
    """A few IT people hold admin roles; one role is held through a role-assignable group."""
    r = roster
    it = next(k for k, d in enumerate(r.departments) if d.name == "IT")
    it_people = r.dept_members[it]
    head = it_people[0]
    by_area: dict[str, list[int]] = {}
    for p in it_people[1:]:
        by_area.setdefault(r.area_of[p], []).append(p)
    helpdesk = [p for p in r.helpdesk if p != head] or [head]
    on_desk = set(r.helpdesk)
    non_helpdesk = [p for p in it_people if p not in on_desk] or [head]
    scale = max(1, len(it_people) // 60)
    names = {d.name: k for k, d in enumerate(r.departments)}
    finance = r.dept_members[names["Finance"]] if "Finance" in names else it_people
    # (role, preferred IT areas, how many, who else will do)
    plan: list[tuple[str, list[str], int, list[int]]] = [
        ("Global Administrator", ["Cloud Infrastructure", "Identity & Access"], rng.randint(1, 2),
         [p for p in non_helpdesk + helpdesk if p != head]),
        ("Privileged Role Administrator", ["Identity & Access"], 1, non_helpdesk),
        ("Privileged Authentication Administrator", ["Identity & Access", "IT Security"], 1, non_helpdesk),
        ("Authentication Administrator", [SERVICE_DESK], 1, helpdesk),
        ("Helpdesk Administrator", [SERVICE_DESK], max(1, min(len(helpdesk) // 3, 12)), helpdesk),
        ("User Administrator", ["Identity & Access", SERVICE_DESK], 1 + (scale > 1), it_people),
        ("Security Administrator", ["IT Security"], 1 + (scale > 1), non_helpdesk),
        ("Exchange Administrator", ["Collaboration Services"], 1, non_helpdesk),
        ("SharePoint Administrator", ["Collaboration Services"], 1, non_helpdesk),
        ("Teams Administrator", ["Collaboration Services", "End User Computing"], 1, non_helpdesk),
        ("Global Reader", ["IT Security", "Enterprise Applications"], rng.randint(1, 2), it_people),
        ("Application Administrator", ["Enterprise Applications", "Identity & Access"], 1, non_helpdesk),
        ("Groups Administrator", ["Collaboration Services", SERVICE_DESK], 1, it_people),
        ("Billing Administrator", ["Finance"], 1, finance),
    ]
    out: list[RoleAssignment] = []
    holders: set[int] = set()
    cap = max(3, min(40, round(len(it_people) * 0.3)))

    def assign(role: str, person_or_group: str) -> None:
        role_id = ROLE_ID[role]
        out.append(RoleAssignment(assignment_id(role_id, person_or_group), role_id, person_or_group))

    assign("Global Administrator", r.people[head].id)  # the head of IT
    holders.add(head)
    for role, areas, k, fallback in plan:
        pool = [p for a in areas for p in by_area.get(a, [])] or fallback
        if len(holders) < cap:  # spread roles over a few people...
            fresh = [p for p in pool if p not in holders] or pool
        else:  # ...then stack them, as small IT teams do
            fresh = [p for p in pool if p in holders] or [p for p in fallback if p in holders] or pool
        for p in rng.sample(fresh, min(k, len(fresh))):
            if role == "Global Administrator" and p == head:
                continue
            holders.add(p)
            assign(role, r.people[p].id)
    for group, role in zip(role_groups, ("Password Administrator", "Security Reader"), strict=True):
        assign(role, group.id)
    return out


# PIM eligibilities: what an eligible person may activate, most common first (weights).
ELIGIBLE_ROLES = (("Global Administrator", 3), ("Privileged Role Administrator", 1), ("User Administrator", 2))
ELIGIBLE_PER_THOUSAND = 5


def role_eligibilities(roster: Roster, rng: random.Random, assignments: list[RoleAssignment]) -> list[RoleEligibility]:
    """A handful of people per thousand are eligible (Entra PIM) for a privileged role they do not hold
    active: IT people without an active role first. Drawn from its own RNG, so nothing else changes."""
    r = roster
    it = next(k for k, d in enumerate(r.departments) if d.name == "IT")
    active = {a.principal_id for a in assignments}
    it_people = r.dept_members[it][1:] or r.dept_members[it]  # not the head of IT (already Global Admin)
    pool = [p for p in it_people if r.people[p].id not in active] or it_people
    count = min(len(pool), max(2, round(len(r.people) * ELIGIBLE_PER_THOUSAND / 1000)))
    names, weights = zip(*ELIGIBLE_ROLES, strict=True)
    out = []
    for p in sorted(rng.sample(pool, count)):
        role_id = ROLE_ID[rng.choices(names, weights)[0]]
        start = (r.now - timedelta(days=rng.randint(10, 400))).replace(microsecond=0)
        end = None if rng.random() < 0.5 else start + timedelta(days=365 + rng.randint(0, 365))
        out.append(RoleEligibility(guid(rng), role_id, r.people[p].id, start, end))
    return out
