"""One-sided, high-volume facts, made on demand per user: Outlook contacts, received mail, sign-ins.

Each user's facts come from an RNG seeded with (seed, user id, purpose), so they are the same
whatever order users are asked for, and the same after a cache eviction. The caches are bounded
(least recently used), so walking a 50,000-user org does not keep millions of records alive.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from devtenant.generate._rand import cumulative, guid, rng_for, weighted_index
from devtenant.generate.activity import DAYS_BACK, Timeline
from devtenant.generate.catalogue import (
    ANONYMOUS_PREFIXES,
    APPS,
    ATTACKER_DEVICES,
    AUTOMATED_INTERNAL,
    EXTERNAL_MAIL_SUBJECTS,
    EXTERNAL_TITLES,
    FAILURE_INVALID_PASSWORD,
    FAILURE_LOCKED,
    FAILURE_MFA_REQUIRED,
    FOREIGN_PLACES,
    INTERNAL_SUBJECTS,
    IT_APPS,
    LAPTOPS,
    MANAGER_SUBJECTS,
    MICROSOFT_SENDERS,
    NEWSLETTER_SUBJECTS,
    NEWSLETTERS,
    OTHER_DEPT_SUBJECTS,
    PERSONAL_MAIL_DOMAINS,
    PHONES,
    PROJECT_SUBJECTS,
    AppProfile,
    Office,
    Place,
)
from devtenant.generate.people import Outsiders, Roster
from devtenant.generate.work import WorkGraph, draw_partner
from devtenant.model import Contact, EmailAddress, MailMessage, SignIn

ANOMALIES = ("failed_burst", "new_country", "impossible_travel", "risky_sign_in")
SHARED_MAILBOXES = {  # local part -> what people write to it about
    "servicedesk": ("my laptop", "the VPN", "my password", "a new monitor", "Outlook crashing", "MFA on my new phone"),
    "payroll": ("my payslip", "my tax code", "overtime pay", "the bonus payment"),
    "facilities": ("a broken chair", "the meeting room screen", "desk booking", "the air conditioning"),
    "accounts-payable": ("an invoice", "a payment run", "supplier bank details", "a purchase order"),
    "careers": ("a job application", "the interview schedule", "a referral"),
}
T = TypeVar("T")


def choose_anomalies(roster: Roster, rng: random.Random, share: float = 0.05) -> dict[int, str]:
    """A seeded ~5% of people get one injected sign-in anomaly; every kind at least once."""
    count = max(len(ANOMALIES), round(roster.size * share))
    people = rng.sample(range(roster.size), min(count, roster.size))
    return {p: ANOMALIES[k % len(ANOMALIES)] for k, p in enumerate(people)}


class _Lru:
    __slots__ = ("_data", "_size")

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[str, list] = OrderedDict()
        self._size = size

    def get(self, key: str, make: Callable[[], list[T]]) -> list[T]:
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
            return hit
        value = make()
        self._data[key] = value
        if len(self._data) > self._size:
            self._data.popitem(last=False)
        return value


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12742 * math.asin(math.sqrt(a))


class Footprint:
    """The lazily materialised per-user facts behind `Org.contacts_of`, `messages_of` and `sign_ins_of`."""

    def __init__(self, roster: Roster, work: WorkGraph, outsiders: Outsiders, timeline: Timeline,
                 anomalies: dict[int, str], cache_size: int = 512) -> None:
        self.r = roster
        self.work = work
        self.outsiders = outsiders
        self.tl = timeline
        self.seed = roster.seed
        self.now = timeline.now
        self.anomalies = anomalies
        self.index_of = {u.id: i for i, u in enumerate(roster.people)}
        self.shared = {u.id: u for u in roster.service_accounts
                       if u.user_principal_name.split("@")[0] in SHARED_MAILBOXES}
        self.service_by_local = {u.user_principal_name.split("@")[0]: u for u in roster.service_accounts}
        self._contacts = _Lru(cache_size)
        self._mail = _Lru(cache_size)
        self._sign_ins = _Lru(cache_size)
        it = [k for k, d in enumerate(roster.departments) if d.name == "IT"]
        self.it_dept = it[0] if it else -2

    # --- the Org callables ---------------------------------------------------------------------
    def contacts_of(self, user_id: str) -> list[Contact]:
        p = self.index_of.get(user_id)
        if p is None:
            return []
        return self._contacts.get(user_id, lambda: self._make_contacts(p))

    def messages_of(self, user_id: str) -> list[MailMessage]:
        p = self.index_of.get(user_id)
        if p is None:
            if user_id in self.shared:
                return self._mail.get(user_id, lambda: self._make_shared_mail(self.shared[user_id].id))
            return []
        return self._mail.get(user_id, lambda: self._make_mail(p))

    def sign_ins_of(self, user_id: str) -> list[SignIn]:
        p = self.index_of.get(user_id)
        if p is None:
            return []
        return self._sign_ins.get(user_id, lambda: self._make_sign_ins(p))

    # --- helpers ---------------------------------------------------------------------------------
    def _address(self, p: int) -> EmailAddress:
        u = self.r.people[p]
        return EmailAddress(u.display_name, u.mail or u.user_principal_name, u.id)

    def _moment(self, rng: random.Random, day: int, office: int, lo_minute: int, hi_minute: int) -> datetime:
        minute = rng.randrange(lo_minute, hi_minute)
        base = self.tl.at(day, office, minute)
        return base + timedelta(seconds=rng.randrange(60))

    def _recent_days(self) -> list[int]:
        """Day indices of the last DAYS_BACK days, today last."""
        today = (self.now.date() - self.tl.day0).days
        return list(range(max(0, today - DAYS_BACK + 1), today + 1))

    # --- contacts ------------------------------------------------------------------------------
    def _make_contacts(self, p: int) -> list[Contact]:
        r = self.r
        user = r.people[p]
        rng = rng_for(self.seed, "contacts", user.id)
        partners = self.work.partners(p)
        manager_bonus = 8 if r.leads[p] >= 0 else 0
        wanted = min(len(partners[0]), rng.randint(2, 20) + manager_bonus)
        colleagues: dict[int, None] = {}
        for _ in range(wanted * 4):
            if len(colleagues) >= wanted:
                break
            colleagues[draw_partner(rng, partners)] = None
        out: list[Contact] = []
        for q in colleagues:
            other = r.people[q]
            since = max(user.created_date_time, other.created_date_time)
            created = since + (self.now - since) * rng.random()
            out.append(Contact(
                id=guid(rng), owner_id=user.id, display_name=other.display_name, given_name=other.given_name,
                surname=other.surname, email_addresses=(self._address(q),), company_name=r.company,
                job_title=other.job_title, mobile_phone=other.mobile_phone if rng.random() < 0.6 else None,
                created_date_time=created.replace(microsecond=0),
            ))
        dept = r.dept_of[p]
        share = r.departments[dept].external_share if dept >= 0 else 0.2
        for _ in range(rng.randint(0, 3) + int(share * 25 * rng.random())):
            company, domain = self.outsiders.company(rng)
            given, surname, address = self.outsiders.person(rng, domain)
            out.append(self._external_contact(rng, user.id, given, surname, address, company,
                                              rng.choice(EXTERNAL_TITLES), user.created_date_time))
        for _ in range(rng.choice((0, 0, 1, 2))):  # family, friends
            given, surname, _address = self.outsiders.person(rng, rng.choice(PERSONAL_MAIL_DOMAINS))
            out.append(self._external_contact(rng, user.id, given, surname, _address, None, None,
                                              user.created_date_time))
        out.sort(key=lambda c: c.display_name)
        return out

    def _external_contact(self, rng: random.Random, owner: str, given: str, surname: str, address: str,
                          company: str | None, title: str | None, since: datetime) -> Contact:
        created = since + (self.now - since) * rng.random()
        mobile = f"+{rng.randint(1, 49)} {rng.randrange(100, 999)} {rng.randrange(100000, 999999)}"
        return Contact(
            id=guid(rng), owner_id=owner, display_name=f"{given} {surname}", given_name=given, surname=surname,
            email_addresses=(EmailAddress(f"{given} {surname}", address),), company_name=company, job_title=title,
            mobile_phone=mobile if rng.random() < 0.5 else None, created_date_time=created.replace(microsecond=0),
        )

    # --- mail ----------------------------------------------------------------------------------
    def _make_mail(self, p: int) -> list[MailMessage]:
        r = self.r
        user = r.people[p]
        rng = rng_for(self.seed, "mail", user.id)
        owner = self._address(p)
        to_owner = (owner,)
        office = r.office_of[p]
        dept = r.dept_of[p]
        department = r.departments[dept] if dept >= 0 else None
        topics = department.topics if department else ("the board meeting", "the strategy offsite")
        partners = self.work.partners(p)
        manager = r.manager_of[p]
        team = r.teams[r.team_of[p]] if r.team_of[p] >= 0 else None
        projects = [self.work.projects[k].name for k in self.work.projects_of.get(p, ())]
        external = department.external_share if department else 0.1
        # Who sends: partners, other internal, internal systems, Microsoft, newsletters, outsiders.
        weights = (0.50, 0.06, 0.14, 0.06, 0.08, external)
        cum = cumulative(weights)
        rate = rng.uniform(5, 30) * (1.15 if r.leads[p] >= 0 else 1.0)
        addresses: dict[int, EmailAddress] = {}

        def internal(q: int) -> EmailAddress:
            hit = addresses.get(q)
            if hit is None:
                hit = addresses[q] = self._address(q)
            return hit

        newsletters = rng.sample(NEWSLETTERS, 2)
        out: list[MailMessage] = []
        for day in self._recent_days():
            workday = self.tl.days[day].weekday() < 5
            count = int(rate * rng.uniform(0.6, 1.4)) if workday else rng.randint(0, 3)
            for _ in range(count):
                received = self._moment(rng, day, office, 7 * 60, 20 * 60)
                if received > self.now:
                    continue
                kind = weighted_index(rng, cum) if workday else 2 + rng.randrange(3)
                cc: tuple[EmailAddress, ...] = ()
                importance = "normal"
                if kind == 0:  # a work partner
                    q = draw_partner(rng, partners)
                    sender = internal(q)
                    if q == manager:
                        subject = rng.choice(MANAGER_SUBJECTS).format(
                            team=team.name if team else r.company, topic=rng.choice(topics))
                        importance = "high" if rng.random() < 0.08 else "normal"
                    elif projects and rng.random() < 0.3:
                        subject = rng.choice(PROJECT_SUBJECTS).format(project=rng.choice(projects))
                    else:
                        subject = rng.choice(INTERNAL_SUBJECTS).format(topic=rng.choice(topics))
                    if rng.random() < 0.15 and manager >= 0 and q != manager:
                        cc = (internal(manager),)
                elif kind == 1:  # someone elsewhere in the company
                    q = rng.randrange(r.size)
                    sender = internal(q)
                    subject = rng.choice(OTHER_DEPT_SUBJECTS).format(q=rng.randint(1, 4))
                elif kind == 2:  # internal systems
                    name, local, subjects = rng.choice(AUTOMATED_INTERNAL)
                    account = self.service_by_local.get(local)
                    sender = EmailAddress(name, f"{local}@{r.domain}", account.id if account else None)
                    key = (department.nickname[:3] if department else "exe").upper()
                    subject = rng.choice(subjects).format(n=rng.randrange(10000, 99999), topic=rng.choice(topics),
                                                          key=key)
                elif kind == 3:  # Microsoft 365 itself
                    name, address, subjects = rng.choice(MICROSOFT_SENDERS)
                    sender = EmailAddress(name, address)
                    q = draw_partner(rng, partners)
                    subject = rng.choice(subjects).format(n=rng.randint(2, 30), name=r.people[q].display_name,
                                                          team=team.name if team else r.company,
                                                          topic=rng.choice(topics))
                elif kind == 4:  # newsletters
                    name, address = rng.choice(newsletters)
                    sender = EmailAddress(name, address)
                    subject = rng.choice(NEWSLETTER_SUBJECTS).format(topic=rng.choice(topics), n=rng.randint(50, 400))
                else:  # customers, vendors, partners
                    company, domain = self.outsiders.company(rng)
                    given, surname, address = self.outsiders.person(rng, domain)
                    sender = EmailAddress(f"{given} {surname}", address)
                    subject = rng.choice(EXTERNAL_MAIL_SUBJECTS).format(n=rng.randrange(1000, 99999), us=r.company)
                age_hours = (self.now - received).total_seconds() / 3600
                out.append(MailMessage(
                    id=guid(rng), owner_id=user.id, sender=sender, to_recipients=to_owner, cc_recipients=cc,
                    subject=subject, received_date_time=received,
                    is_read=rng.random() < (0.97 if age_hours > 48 else 0.6), importance=importance,
                    has_attachments=rng.random() < 0.12,
                ))
        out.sort(key=lambda m: m.received_date_time, reverse=True)
        return out

    def _make_shared_mail(self, mailbox_id: str) -> list[MailMessage]:
        r = self.r
        rng = rng_for(self.seed, "mail", mailbox_id)
        box = self.shared[mailbox_id]
        owner = EmailAddress(box.display_name, box.mail or box.user_principal_name, box.id)
        out = []
        for day in self._recent_days():
            for _ in range(rng.randint(2, 12) if self.tl.days[day].weekday() < 5 else rng.randint(0, 2)):
                received = self._moment(rng, day, 0, 7 * 60, 19 * 60)
                if received > self.now:
                    continue
                if rng.random() < 0.7:
                    sender = self._address(rng.randrange(r.size))
                    subject = rng.choice(("Help: {t}", "Question about {t}", "Re: {t}")).format(
                        t=rng.choice(SHARED_MAILBOXES[box.user_principal_name.split("@")[0]]))
                else:
                    company, domain = self.outsiders.company(rng)
                    given, surname, address = self.outsiders.person(rng, domain)
                    sender = EmailAddress(f"{given} {surname}", address)
                    subject = rng.choice(EXTERNAL_MAIL_SUBJECTS).format(n=rng.randrange(1000, 99999), us=r.company)
                out.append(MailMessage(guid(rng), box.id, sender, (owner,), (), subject, received,
                                       rng.random() < 0.8))
        out.sort(key=lambda m: m.received_date_time, reverse=True)
        return out

    # --- sign-ins ------------------------------------------------------------------------------
    def _make_sign_ins(self, p: int) -> list[SignIn]:
        r = self.r
        user = r.people[p]
        rng = rng_for(self.seed, "sign-ins", user.id)
        office_index = r.office_of[p]
        office = r.offices[office_index]
        home_city, home_state = rng.choice(office.homes)
        home_ip = f"{rng.choice(office.isp_prefixes)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        office_ip = f"{office.office_prefix}.{rng.randrange(2, 30)}"
        laptop = rng.choice(LAPTOPS)
        phone = rng.choice(PHONES) if rng.random() < 0.85 else None
        apps: list[AppProfile] = list(APPS) + (list(IT_APPS) if r.dept_of[p] == self.it_dept else [])
        favourites = self._favourite_apps(rng, apps)
        mobile_apps = [a for a in favourites if a.mobile] or [APPS[0]]
        desktop_apps = [a for a in favourites if a.desktop] or [APPS[0]]
        out: list[SignIn] = []

        def add(when: datetime, app: AppProfile, device: tuple, ip: str, city: str, state: str | None,
                country: str, error: tuple[int, str] | None = None, risk: str = "none", risk_state: str = "none",
                anomaly: str | None = None) -> None:
            os_name, browser, compliant, managed, _mobile = device
            out.append(SignIn(
                id=guid(rng), user_id=user.id, created_date_time=when, app_display_name=app.name,
                client_app_used=app.client, ip_address=ip, city=city, state=state, country_or_region=country,
                operating_system=os_name, browser=browser, is_compliant=compliant, is_managed=managed,
                error_code=error[0] if error else 0, failure_reason=error[1] if error else None,
                risk_level_during_sign_in=risk, risk_state=risk_state,
                conditional_access_status="notApplied" if error and error[0] != 50074 else "success",
                is_interactive=True, anomaly=anomaly,
            ))

        # A business trip to another office, long enough ago not to look like today's news.
        trip: tuple[set[int], Office, str] | None = None
        days = self._recent_days()
        if len(r.offices) > 1 and rng.random() < 0.05 and len(days) > 12:
            other = rng.choice([o for k, o in enumerate(r.offices) if k != office_index])
            first = rng.choice(days[:-10])
            trip = ({first, first + 1, first + 2}, other, f"{other.office_prefix}.{rng.randrange(2, 30)}")
        for day in days:
            workday = self.tl.days[day].weekday() < 5
            count = rng.randint(2, 5) if workday else (1 if rng.random() < 0.3 else 0)
            at_office = workday and rng.random() < 0.6
            for _ in range(count):
                when = self._moment(rng, day, office_index, 7 * 60 + 30 if workday else 9 * 60,
                                    19 * 60 if workday else 21 * 60)
                if when > self.now:
                    continue
                on_phone = phone is not None and rng.random() < 0.35
                device = phone if on_phone else laptop
                app = rng.choice(mobile_apps if on_phone else desktop_apps)
                if trip and day in trip[0]:
                    ip, city, state, country = trip[2], trip[1].city, trip[1].state, trip[1].country_code
                elif at_office:
                    ip, city, state, country = office_ip, office.city, office.state, office.country_code
                else:
                    ip, city, state, country = home_ip, home_city, home_state, office.country_code
                roll = rng.random()
                if roll < 0.015:  # a typo, then the right password
                    add(when - timedelta(seconds=rng.randint(20, 90)), app, device, ip, city, state, country,
                        error=FAILURE_INVALID_PASSWORD)
                elif roll < 0.035:
                    add(when - timedelta(seconds=rng.randint(10, 40)), app, device, ip, city, state, country,
                        error=FAILURE_MFA_REQUIRED)
                risk = "low" if rng.random() < 0.004 else "none"
                add(when, app, device, ip, city, state, country, risk=risk,
                    risk_state="dismissed" if risk == "low" else "none")

        kind = self.anomalies.get(p)
        if kind is not None:
            self._inject(rng, kind, add, office, home_ip, home_city, home_state, laptop, desktop_apps)
        out.sort(key=lambda s: s.created_date_time, reverse=True)
        return out

    @staticmethod
    def _favourite_apps(rng: random.Random, apps: list[AppProfile]) -> list[AppProfile]:
        k = min(len(apps), rng.randint(4, 7))
        picked: list[AppProfile] = []
        pool = list(apps)
        while len(picked) < k:
            total = sum(a.weight for a in pool)
            x = rng.random() * total
            for a in pool:
                x -= a.weight
                if x < 0:
                    picked.append(a)
                    pool.remove(a)
                    break
        if APPS[0] not in picked:
            picked.append(APPS[0])
        return picked

    def _inject(self, rng: random.Random, kind: str, add: Callable[..., None], office: Office, home_ip: str,
                home_city: str, home_state: str | None, laptop: tuple, apps: list[AppProfile]) -> None:
        now = self.now
        browser_apps = [a for a in APPS if a.client == "Browser"]
        if kind == "failed_burst":
            start = now - timedelta(minutes=rng.randint(15, 18 * 60))
            attacker = rng.random() < 0.5
            if attacker:
                place = rng.choice(FOREIGN_PLACES)
                ip = f"{rng.choice(ANONYMOUS_PREFIXES + (place.ip_prefix,))}.{rng.randrange(256)}.{rng.randrange(256)}"
                where: tuple[str, str | None, str] = (place.city, place.state, place.country_code)
                device = rng.choice(ATTACKER_DEVICES)
            else:
                ip, where, device = home_ip, (home_city, home_state, office.country_code), laptop
            app = rng.choice(browser_apps)
            attempts = rng.randint(8, 25)
            when = start
            for n in range(attempts):
                error = FAILURE_LOCKED if n == attempts - 1 and attempts > 12 else FAILURE_INVALID_PASSWORD
                add(when, app, device, ip, *where, error=error, anomaly=kind)
                when += timedelta(seconds=rng.randint(3, 30))
        elif kind == "new_country":
            place = rng.choice(FOREIGN_PLACES)
            when = now - timedelta(minutes=rng.randint(60, 3 * 24 * 60))
            ip = f"{place.ip_prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            device = rng.choice(ATTACKER_DEVICES[:2] + (laptop,))
            for _ in range(rng.randint(1, 2)):
                add(when, rng.choice(browser_apps), device, ip, place.city, place.state, place.country_code,
                    risk=rng.choice(("none", "low")), anomaly=kind)
                when += timedelta(minutes=rng.randint(1, 40))
        elif kind == "impossible_travel":
            first = now - timedelta(minutes=rng.randint(120, 5 * 24 * 60))
            far = self._far_place(rng, office)
            add(first, rng.choice(apps), laptop, home_ip, home_city, home_state, office.country_code, anomaly=kind)
            second = first + timedelta(minutes=rng.randint(10, 90))
            ip = f"{far.ip_prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            add(second, rng.choice(browser_apps), rng.choice(ATTACKER_DEVICES), ip, far.city, far.state,
                far.country_code, risk=rng.choice(("none", "low", "medium")), anomaly=kind)
        elif kind == "risky_sign_in":
            for _ in range(rng.randint(1, 3)):
                when = now - timedelta(minutes=rng.randint(30, 3 * 24 * 60))
                ip = f"{rng.choice(ANONYMOUS_PREFIXES)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                add(when, rng.choice(browser_apps), rng.choice(ATTACKER_DEVICES), ip, office.city, office.state,
                    office.country_code, risk=rng.choice(("high", "medium")), risk_state="atRisk",
                    error=FAILURE_MFA_REQUIRED if rng.random() < 0.25 else None, anomaly=kind)

    @staticmethod
    def _far_place(rng: random.Random, office: Office) -> Place:
        """Somewhere at least 3,000 km from the office (nobody flies that in 90 minutes)."""
        far = [p for p in FOREIGN_PLACES if _km(p.lat, p.lon, office.lat, office.lon) > 3000]
        return rng.choice(far)
