"""The people: tenant, offices, departments, the manager tree, names, and the service accounts.

Everything is built from index-based parallel lists (person index -> department, office, manager,
team) so the later phases can stay linear and cheap; `User` records are made once, at the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from faker import Faker

from devtenant.generate._rand import guid, immutable_id, mail_local, rng_for, slug
from devtenant.generate.catalogue import (
    DEPARTMENTS,
    HQ_CANDIDATES,
    IT_AREA_TITLES,
    LEVEL_TITLES,
    LEVEL_TITLES_AREA,
    OFFICES,
    SERVICE_DESK,
    SERVICE_DESK_MANAGER,
    Department,
    Office,
)
from devtenant.model import User

EXECUTIVE = "Executive"
TEAM_SUFFIXES = ("Core", "Foundations", "Experience", "Tooling", "Insights", "Automation", "Quality", "Enablement",
                 "Runtime", "Services", "Pipelines", "Reporting", "Clients", "Delivery", "Operations")
MAX_REPORTS = 10  # a front-line manager leads 3-10 people


@dataclass(slots=True)
class Team:
    """A manager and their direct reports."""

    index: int
    name: str
    area: str
    dept: int  # index into Roster.departments, -1 for the executive team
    manager: int
    members: list[int]
    office: int
    height: int  # 1 = the members are individual contributors
    parent: int  # the team the manager belongs to; -1 for the executive team


@dataclass
class Roster:
    """The generated people and their org chart, addressed by person index."""

    seed: int
    now: datetime
    tenant_id: str
    company: str
    slug: str
    domain: str
    federated_domain: str
    offices: list[Office]
    office_weights: list[float]
    departments: list[Department]
    people: list[User] = field(default_factory=list)
    dept_of: list[int] = field(default_factory=list)  # -1: executive office
    office_of: list[int] = field(default_factory=list)
    manager_of: list[int] = field(default_factory=list)  # -1: the CEO
    team_of: list[int] = field(default_factory=list)  # the team the person belongs to (their manager's)
    leads: list[int] = field(default_factory=list)  # the team the person manages, -1 for none
    area_of: list[str] = field(default_factory=list)
    height_of: list[int] = field(default_factory=list)
    title_of: list[str] = field(default_factory=list)
    teams: list[Team] = field(default_factory=list)
    helpdesk: list[int] = field(default_factory=list)
    federated: set[int] = field(default_factory=set)
    recent_password_change: list[int] = field(default_factory=list)
    service_accounts: list[User] = field(default_factory=list)
    dept_members: list[list[int]] = field(default_factory=list)
    office_members: list[list[int]] = field(default_factory=list)
    hq: int = 0

    @property
    def size(self) -> int:
        return len(self.people)

    def ceo(self) -> int:
        return 0

    def department_name(self, person: int) -> str:
        d = self.dept_of[person]
        return EXECUTIVE if d < 0 else self.departments[d].name

    def first_name(self, person: int) -> str:
        return self.people[person].given_name


class NamePools:
    """First and last names per locale, drawn once from faker (which is slow per call) and then combined."""

    def __init__(self, seed: int, locales: list[str], size: int) -> None:
        self.pools: dict[str, tuple[list[str], list[str], list[str]]] = {}
        for n, locale in enumerate(sorted(set(locales))):
            fake = Faker(locale)
            fake.seed_instance(seed * 1009 + n)
            female = [fake.first_name_female() for _ in range(size)]
            male = [fake.first_name_male() for _ in range(size)]
            last = [fake.last_name() for _ in range(size + size // 2)]
            self.pools[locale] = (female, male, last)

    def draw(self, rng: random.Random, locale: str) -> tuple[str, str]:
        female, male, last = self.pools[locale]
        given = rng.choice(female if rng.random() < 0.5 else male)
        return given, rng.choice(last)


_COMPANY_NOISE = {"and", "inc", "llc", "ltd", "plc", "group", "sons", "und", "et", "y", "en", "og", "och", "i",
                  "gmbh", "ag", "kg", "sa", "sl", "sas", "sarl", "bv", "nv", "as", "ab", "sp", "z", "o", "oo", "e",
                  "v", "co", "j", "k", "s", "a", "c", "coop", "hb", "kb", "asa", "ug", "mbh", "cie", "de", "la"}


def company_slug(name: str) -> str:
    words = [w for w in slug(name, " ").split() if w not in _COMPANY_NOISE]
    return "-".join(words[:2])


def _company(seed: int) -> tuple[str, str]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    name = fake.company()
    return name, company_slug(name) or "contoso"


def _split(rng: random.Random, total: int, parts: int, minimum: int) -> list[int]:
    """`total` split into `parts` sizes of at least `minimum`, roughly equal, randomly uneven.

    Fewer parts when `total` cannot give each its minimum."""
    parts = max(1, min(parts, total // minimum))
    sizes = [minimum] * parts
    rest = total - minimum * parts
    weights = [rng.uniform(0.6, 1.4) for _ in range(parts)]
    scale = rest / sum(weights)
    shares = [w * scale for w in weights]
    for k, s in enumerate(shares):
        sizes[k] += int(s)
    for k in range(total - sum(sizes)):
        sizes[k % parts] += 1
    return sizes


class _Builder:
    def __init__(self, roster: Roster, rng: random.Random) -> None:
        self.r = roster
        self.rng = rng
        self.cum_office = []
        total = 0.0
        for w in roster.office_weights:
            total += w
            self.cum_office.append(total)
        self.team_names: dict[tuple[int, str], int] = {}

    def any_office(self) -> int:
        return self.rng.choices(range(len(self.r.offices)), cum_weights=self.cum_office)[0]

    def add(self, dept: int, office: int, manager: int, team: int, area: str) -> int:
        r = self.r
        i = len(r.dept_of)
        r.dept_of.append(dept)
        r.office_of.append(office)
        r.manager_of.append(manager)
        r.team_of.append(team)
        r.leads.append(-1)
        r.area_of.append(area)
        r.height_of.append(0)
        r.title_of.append("")
        return i

    def new_team(self, name: str, area: str, dept: int, manager: int, office: int, parent: int) -> Team:
        t = Team(len(self.r.teams), name, area, dept, manager, [], office, 1, parent)
        self.r.teams.append(t)
        self.r.leads[manager] = t.index
        return t

    def team_name(self, dept: int, area: str, office: int) -> str:
        base = f"{SERVICE_DESK} {self.r.offices[office].city}" if area == SERVICE_DESK else area
        n = self.team_names.get((dept, base), 0)
        self.team_names[(dept, base)] = n + 1
        if n == 0:
            return base
        suffix = TEAM_SUFFIXES[(n - 1) % len(TEAM_SUFFIXES)]
        rounds = (n - 1) // len(TEAM_SUFFIXES)
        return f"{base} {suffix}" + (f" {rounds + 1}" if rounds else "")

    def leadership_name(self, dept: int, area: str) -> str:
        base = f"{area} Leadership"
        n = self.team_names.get((dept, base), 0)
        self.team_names[(dept, base)] = n + 1
        return base if n == 0 else f"{base} {n + 1}"

    def unit(self, size: int, dept: int, office: int, manager: int, parent_team: int, areas: list[str],
             head: bool = False) -> int:
        """A subtree of `size` people under `manager`; returns its root."""
        rng, r = self.rng, self.r
        department = r.departments[dept]
        area = areas[0]
        root = self.add(dept, office, manager, parent_team, area)
        rest = size - 1
        if rest <= MAX_REPORTS:
            team = self.new_team(self.team_name(dept, area, office), area, dept, root, office, parent_team)
            titles = IT_AREA_TITLES.get(area, department.ic_titles) if department.name == "IT" else department.ic_titles
            for _ in range(rest):
                member_office = office if rng.random() < 0.85 else self.any_office()
                ic = self.add(dept, member_office, root, team.index, area)
                r.title_of[ic] = rng.choice(titles)
                team.members.append(ic)
            r.height_of[root] = 1
            if area == SERVICE_DESK:
                r.title_of[root] = SERVICE_DESK_MANAGER
                r.helpdesk.append(root)
                r.helpdesk.extend(team.members)
            elif department.name == "IT":
                r.title_of[root] = f"{area} Manager"
            else:
                r.title_of[root] = department.manager_title
        else:
            if rest <= 7 * (MAX_REPORTS + 1):
                # The reports are front-line managers: teams of 3-10, most of 5-7.
                parts = max(-(-rest // (MAX_REPORTS + 1)), min(7, round(rest / rng.uniform(6.0, 8.5))), 2)
                sizes = _split(rng, rest, parts, 4)
            else:
                parts = rng.randint(3, 7)
                sizes = _split(rng, rest, parts, 12)
            name = f"{department.name} Leadership" if head else self.leadership_name(dept, area)
            team = self.new_team(name, area, dept, root, office, parent_team)
            child_areas = self.share_areas(areas, len(sizes), department, head, sizes)
            height = 1
            for size_k, areas_k in zip(sizes, child_areas, strict=True):
                child_office = office if rng.random() < 0.7 else self.any_office()
                child = self.unit(size_k, dept, child_office, root, team.index, areas_k)
                team.members.append(child)
                height = max(height, r.height_of[child] + 1)
            r.height_of[root] = team.height = height
            level = min(height, 5)
            template = LEVEL_TITLES_AREA if len(areas) == 1 else LEVEL_TITLES
            r.title_of[root] = template[level].format(dept=department.name, area=area)
        if head:
            large = size >= 40
            r.title_of[root] = department.head_title_large if large else department.head_title_small
        return root

    def share_areas(self, areas: list[str], parts: int, department: Department, head: bool,
                    sizes: list[int]) -> list[list[str]]:
        if head and department.name == "IT":
            # The largest front-line group of IT is the Service Desk: its people answer the phones.
            sizes.sort(reverse=True)
            rest = [a for a in areas if a != SERVICE_DESK] or [SERVICE_DESK]
            return [[SERVICE_DESK], *self.share_areas(rest, parts - 1, department, False, sizes[1:])]
        if len(areas) <= 1:
            return [list(areas)] * parts
        if len(areas) < parts:
            return [[areas[k % len(areas)]] for k in range(parts)]
        out = []
        step = len(areas) / parts
        for k in range(parts):
            out.append(areas[round(k * step):round((k + 1) * step)])
        return out


def _department_sizes(rng: random.Random, remaining: int) -> list[tuple[Department, int]]:
    count = max(3, min(len(DEPARTMENTS), remaining // 10))
    chosen = list(DEPARTMENTS[:count])
    sizes = [d.min_size for d in chosen]
    spare = remaining - sum(sizes)
    weights = [d.weight * rng.uniform(0.85, 1.15) for d in chosen]
    total = sum(weights)
    shares = [spare * w / total for w in weights]
    for k, s in enumerate(shares):
        sizes[k] += int(s)
    order = sorted(range(count), key=lambda k: shares[k] - int(shares[k]), reverse=True)
    for k in range(remaining - sum(sizes)):
        sizes[order[k % count]] += 1
    return list(zip(chosen, sizes, strict=True))


def _office_count(people: int) -> int:
    for limit, count in ((60, 2), (200, 3), (1000, 5), (5000, 8), (20000, 11)):
        if people < limit:
            return count
    return len(OFFICES)


def service_account_count(users: int) -> int:
    return max(2, min(users // 50, 200))


def build_roster(seed: int, users: int, now: datetime) -> Roster:
    rng = rng_for(seed, "people")
    ids = rng_for(seed, "people-ids")
    company, company_slug = _company(seed)
    n_service = service_account_count(users)
    n_people = users - n_service

    # Offices: a headquarters and a few more, bigger orgs in more places.
    hq = rng.randrange(HQ_CANDIDATES)
    others = [k for k in range(len(OFFICES)) if k != hq]
    picked = [hq, *rng.sample(others, _office_count(n_people) - 1)]
    offices = [OFFICES[k] for k in picked]
    office_weights = [3.0] + [rng.uniform(0.5, 1.5) for _ in picked[1:]]

    executive = 1 + (n_people >= 100) + (n_people >= 2000)
    plan = _department_sizes(rng, n_people - executive)
    roster = Roster(
        seed=seed, now=now, tenant_id=guid(ids), company=company, slug=company_slug,
        domain=f"{company_slug}.example", federated_domain=f"corp.{company_slug}.example",
        offices=offices, office_weights=office_weights, departments=[d for d, _ in plan],
    )
    b = _Builder(roster, rng)

    ceo = b.add(-1, 0, -1, -1, EXECUTIVE)
    roster.title_of[ceo] = "Chief Executive Officer"
    exec_team = b.new_team("Executive Team", EXECUTIVE, -1, ceo, 0, -1)
    for title in ("Executive Assistant", "Chief of Staff")[: executive - 1]:
        p = b.add(-1, 0, ceo, exec_team.index, EXECUTIVE)
        roster.title_of[p] = title
        exec_team.members.append(p)
    for dept_index, (department, size) in enumerate(plan):
        office = 0 if rng.random() < 0.6 else b.any_office()
        head = b.unit(size, dept_index, office, ceo, exec_team.index, list(department.areas), head=True)
        exec_team.members.append(head)
    roster.height_of[ceo] = exec_team.height = max(roster.height_of[h] for h in exec_team.members) + 1

    roster.dept_members = [[] for _ in roster.departments]
    roster.office_members = [[] for _ in offices]
    for i in range(len(roster.dept_of)):
        if roster.dept_of[i] >= 0:
            roster.dept_members[roster.dept_of[i]].append(i)
        roster.office_members[roster.office_of[i]].append(i)

    _choose_federated(roster, rng)
    _make_users(roster, rng, ids)
    _make_service_accounts(roster, rng, ids, n_service)
    return roster


def _choose_federated(roster: Roster, rng: random.Random) -> None:
    """A few % of people come from an acquired business still synced from on-premises AD."""
    target = max(1, round(len(roster.dept_of) * 0.04))
    helpdesk = set(roster.helpdesk)
    it = {k for k, d in enumerate(roster.departments) if d.name == "IT"}
    eligible_teams = [t for t in roster.teams if t.height == 1 and t.dept not in it and t.dept >= 0]
    chosen: set[int] = set()
    if len(roster.dept_of) >= 200:
        for t in rng.sample(eligible_teams, len(eligible_teams)):
            if len(chosen) + len(t.members) > target:
                continue
            chosen.update(t.members)
            if len(chosen) >= target * 0.9:
                break
    if not chosen:
        ics = [i for i in range(len(roster.dept_of))
               if roster.height_of[i] == 0 and i not in helpdesk and roster.dept_of[i] not in it]
        chosen.update(rng.sample(ics, min(target, len(ics))))
    roster.federated = chosen


def _make_users(roster: Roster, rng: random.Random, ids: random.Random) -> None:
    now = roster.now
    n = len(roster.dept_of)
    locales = [o.locale for o in roster.offices]
    pools = NamePools(roster.seed, locales, size=min(400, 60 + n // 20))
    taken: dict[str, int] = {}
    n_recent = max(1, round(n * 0.01))
    roster.recent_password_change = sorted(rng.sample(range(n), n_recent))
    recent = set(roster.recent_password_change)
    employee_numbers = rng.sample(range(100000, 1000000), n)
    for i in range(n):
        office = roster.offices[roster.office_of[i]]
        locale = office.locale if rng.random() < 0.85 else rng.choice(locales)
        given, surname = pools.draw(rng, locale)
        base = f"{mail_local(given) or 'user'}.{mail_local(surname) or 'user'}"
        clash = taken.get(base, 0)
        taken[base] = clash + 1
        local = base if clash == 0 else f"{base}{clash + 1}"
        federated = i in roster.federated
        domain = roster.federated_domain if federated else roster.domain
        upn = f"{local}@{domain}"
        height = roster.height_of[i]
        tenure_days = 45 + int(min(rng.expovariate(1 / 900), 3500)) + 150 * min(height, 4)
        if i == 0:
            tenure_days = 3000 + rng.randrange(900)
        created = (now - timedelta(days=tenure_days, minutes=rng.randrange(24 * 60))).replace(microsecond=0)
        if i in recent:
            changed = now - timedelta(minutes=rng.randrange(30, 20 * 60))
        else:
            changed = now - timedelta(days=rng.uniform(1.5, min(tenure_days, 200)))
        changed = changed.replace(microsecond=0)
        digits = f"{rng.randrange(10000):04d}"
        user = User(
            id=guid(ids), display_name=f"{given} {surname}", given_name=given, surname=surname,
            user_principal_name=upn, mail=upn, job_title=roster.title_of[i] or None,
            department=roster.department_name(i), office_location=f"{office.city}, Floor {rng.randint(1, 6)}",
            city=office.city, country=office.country, usage_location=office.country_code,
            manager_id=None, employee_id=str(employee_numbers[i]),
            business_phones=[office.phone_prefix + digits] if rng.random() < 0.8 else [],
            mobile_phone=office.mobile_prefix + f"{rng.randrange(1000):03d}" if rng.random() < 0.7 else None,
            created_date_time=created, last_password_change_date_time=changed,
        )
        if federated:
            user.on_premises_sync_enabled = True
            user.on_premises_immutable_id = immutable_id(ids)
        roster.people.append(user)
    for i, m in enumerate(roster.manager_of):
        if m >= 0:
            roster.people[i].manager_id = roster.people[m].id


def _make_service_accounts(roster: Roster, rng: random.Random, ids: random.Random, count: int) -> None:
    """Rooms, shared mailboxes, service and bot accounts: in the directory, but not people."""
    hq = roster.offices[0]
    specs: list[tuple[str, str, Office | None]] = [
        ("IT Service Desk", "servicedesk", None),
        (f"Conference Room {hq.city}", f"room-{slug(hq.city)}", hq),
        ("svc-backup", "svc-backup", None),
        ("Payroll Bot", "payroll-bot", None),
    ]
    specs += [(f"Conference Room {o.city}", f"room-{slug(o.city)}", o) for o in roster.offices[1:]]
    specs += [("svc-scanner", "svc-scanner", None), ("Payroll", "payroll", None), ("Facilities", "facilities", None),
              ("Accounts Payable", "accounts-payable", None), ("Careers", "careers", None), ("HR Bot", "hr-bot", None),
              ("svc-jira", "svc-jira", None), ("svc-sql-reporting", "svc-sql-reporting", None),
              ("Expenses Bot", "expenses-bot", None), (f"Reception {hq.city}", f"reception-{slug(hq.city)}", hq),
              ("Jira", "jira", None), ("Workday", "workday", None), ("Concur Expense", "concur", None)]
    floor = 1
    while len(specs) < count:
        for o in roster.offices:
            specs.append((f"Meeting Room {o.city} {floor}.{len(specs) % 20 + 1:02d}",
                          f"room-{slug(o.city)}-{floor}{len(specs) % 20 + 1:02d}", o))
        floor += 1
    created = roster.now - timedelta(days=4000)
    for name, local, office in specs[:count]:
        upn = f"{local}@{roster.domain}"
        user = User(
            id=guid(ids), display_name=name, given_name="", surname="", user_principal_name=upn, mail=upn,
            job_title=None, department=None, office_location=office.city if office else None,
            city=office.city if office else None, country=office.country if office else None,
            usage_location=office.country_code if office else hq.country_code, manager_id=None, employee_id=None,
            business_phones=[], mobile_phone=None,
            created_date_time=created + timedelta(days=rng.randrange(3000)),
            last_password_change_date_time=created + timedelta(days=rng.randrange(3000, 3900)),
            is_service_account=True,
        )
        roster.service_accounts.append(user)


class Outsiders:
    """Customers, vendors and partners: the people outside the tenant that mail, meetings and contacts name."""

    def __init__(self, seed: int, roster: Roster) -> None:
        rng = rng_for(seed, "outsiders")
        self.locales = sorted({o.locale for o in roster.offices} | {"en_US"})
        self.pools = NamePools(seed + 7, self.locales, size=80)
        self.companies: list[tuple[str, str]] = []
        seen = {roster.slug}
        for n, locale in enumerate(self.locales):
            fake = Faker(locale)
            fake.seed_instance(seed * 31 + n)
            for _ in range(12):
                name = fake.company()
                their_slug = company_slug(name)
                if their_slug and their_slug not in seen:
                    seen.add(their_slug)
                    self.companies.append((name, f"{their_slug}.example"))
        rng.shuffle(self.companies)

    def company(self, rng: random.Random) -> tuple[str, str]:
        return rng.choice(self.companies)

    def person(self, rng: random.Random, domain: str) -> tuple[str, str, str]:
        """(given name, surname, address) of someone at `domain`."""
        given, surname = self.pools.draw(rng, rng.choice(self.locales))
        return given, surname, f"{mail_local(given)}.{mail_local(surname)}@{domain}"
