"""Two-sided activity: calendar events and Teams chats, following the org chart.

Over the 30 days before `now` and the week after: weekly (or fortnightly) 1:1s with the manager,
team meetings and ceremonies, project meetings across two or three teams, rare cross-department
meetings, a monthly company all-hands and department all-hands, focus and personal blocks, some
meetings with outsiders. Workdays only, in each office's local working hours. Chats are drawn from
the same work partners (see `work.py`), with a few messages each.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from devtenant.generate._rand import InstantCache, guid, rng_for
from devtenant.generate.catalogue import (
    CHAT_LINES,
    CHAT_TOPICS_CROSS,
    CHAT_TOPICS_TEAM,
    CROSS_SUBJECTS,
    EXEC_SUBJECTS,
    EXTERNAL_SUBJECTS,
    FOCUS_SUBJECTS,
    ONE_ON_ONE_SUBJECTS,
    PERSONAL_BLOCKS,
    PRIVATE_SUBJECTS,
    PROJECT_MEETINGS,
    PROJECT_ONE_OFFS,
    STAFF_SUBJECTS,
    TEAM_SYNC_SUBJECTS,
)
from devtenant.generate.people import Outsiders, Roster
from devtenant.generate.work import WorkGraph, draw_partner
from devtenant.model import Chat, ChatMessage, EmailAddress, Event

DAYS_BACK = 30
DAYS_AHEAD = 7
TEAMS_MEETING = "Microsoft Teams Meeting"
MAX_MEETING_CHAT_MEMBERS = 250
NOBODY: frozenset[str] = frozenset()  # shared: CPython allocates a new empty frozenset per call


class Timeline:
    """Days of the activity window, and local office time -> shared UTC datetimes."""

    def __init__(self, now: datetime, offices: list) -> None:
        self.now = now
        self.day0: date = (now - timedelta(days=DAYS_BACK)).date()
        self.n_days = DAYS_BACK + DAYS_AHEAD + 1
        self.days = [self.day0 + timedelta(days=k) for k in range(self.n_days)]
        self.epoch = datetime.combine(self.day0, time(0), tzinfo=UTC)
        self.instants = InstantCache(self.epoch)
        self._message_ids: dict[int, str] = {}
        self.now_minute = int((now - self.epoch).total_seconds() // 60)
        self.by_weekday: list[list[int]] = [[] for _ in range(7)]
        for k, d in enumerate(self.days):
            self.by_weekday[d.weekday()].append(k)
        self.workdays = [k for k, d in enumerate(self.days) if d.weekday() < 5]
        self.past_workdays = [k for k in self.workdays if k * 1440 + 17 * 60 < self.now_minute] or self.workdays
        self.offsets: list[list[int]] = []
        for office in offices:
            zone = ZoneInfo(office.tz)
            self.offsets.append([
                int(datetime.combine(d, time(12), tzinfo=zone).utcoffset().total_seconds() // 60) for d in self.days
            ])

    def at(self, day: int, office: int, local_minute: int) -> datetime:
        return self.instants.minutes(day * 1440 + local_minute - self.offsets[office][day])

    def minutes(self, minute: int) -> datetime:
        return self.instants.minutes(minute)

    def message_id(self, minute: int) -> str:
        """Teams message ids are the creation time in epoch milliseconds; shared per minute."""
        hit = self._message_ids.get(minute)
        if hit is None:
            hit = self._message_ids[minute] = str(int(self.instants.minutes(minute).timestamp()) * 1000)
        return hit


class Activity:
    def __init__(self, roster: Roster, work: WorkGraph, outsiders: Outsiders, timeline: Timeline) -> None:
        self.r = roster
        self.work = work
        self.outsiders = outsiders
        self.tl = timeline
        self.seed = roster.seed
        self.ids_rng = rng_for(roster.seed, "activity-ids")
        self.uid = [u.id for u in roster.people]
        self.events: list[Event] = []
        self.chats: list[Chat] = []
        # Series that get a Teams meeting chat: (subject, organizer, attendees (person indices), starts).
        self._meeting_chats: list[tuple[str, int, tuple[int, ...], list[datetime]]] = []
        self.rooms = [f"Conference Room {o.city}" for o in roster.offices]

    # --- events ---------------------------------------------------------------------------------
    def _event(self, subject: str, organizer: int, attendees: tuple[str, ...], start: datetime, minutes: int,
               kind: str, *, sensitivity: str = "normal", cancelled: bool = False, online: bool = True,
               location: str | None = TEAMS_MEETING, declined: frozenset[str] = NOBODY,
               externals: tuple[EmailAddress, ...] = (), all_day: bool = False) -> Event:
        event = Event(
            id=guid(self.ids_rng), subject=subject, organizer_id=self.uid[organizer], attendee_ids=attendees,
            start=start, end=self.tl.instants.minutes(int((start - self.tl.epoch).total_seconds() // 60) + minutes),
            kind=kind, sensitivity=sensitivity, is_cancelled=cancelled, is_all_day=all_day, is_online_meeting=online,
            location=location, declined_ids=declined, external_attendees=externals,
        )
        self.events.append(event)
        return event

    def _series(self, rng: random.Random, subject: str, organizer: int, attendees: tuple[int, ...], office: int,
                days: list[int], local_minute: int, minutes: int, kind: str, *, sensitivity: str = "normal",
                p_cancel: float = 0.03, p_decline: float = 0.1, location: str | None = TEAMS_MEETING,
                chat_p: float = 0.0) -> None:
        ids = tuple(self.uid[a] for a in attendees)
        starts = []
        for day in days:
            start = self.tl.at(day, office, local_minute)
            declined = NOBODY
            if ids and rng.random() < p_decline:
                declined = frozenset((rng.choice(ids),))
            self._event(subject, organizer, ids, start, minutes, kind, sensitivity=sensitivity,
                        cancelled=rng.random() < p_cancel, declined=declined, location=location,
                        online=location == TEAMS_MEETING or rng.random() < 0.5)
            starts.append(start)
        if chat_p and rng.random() < chat_p and len(attendees) < MAX_MEETING_CHAT_MEMBERS:
            self._meeting_chats.append((subject, organizer, attendees, starts))

    def _cadence(self, rng: random.Random, weekday: int, every: int) -> list[int]:
        days = self.tl.by_weekday[weekday]
        return days if every == 1 else days[rng.randrange(every)::every]

    def meetings(self) -> None:
        self._team_meetings()
        self._project_meetings()
        self._all_hands()
        self._cross_meetings()
        self._external_meetings()
        self._personal_blocks()

    def _team_meetings(self) -> None:
        r = self.r
        rng = rng_for(self.seed, "team-meetings")
        for team in r.teams:
            m = team.manager
            office = team.office
            members = tuple(team.members)
            if not members:
                continue
            dept = r.departments[team.dept] if team.dept >= 0 else None
            # The team meeting, mornings.
            if team.dept < 0:
                subject = rng.choice(EXEC_SUBJECTS)
            elif team.height == 1:
                subject = rng.choice(TEAM_SYNC_SUBJECTS).format(team=team.name)
            else:
                subject = rng.choice(STAFF_SUBJECTS).format(team=team.area, name=r.first_name(m))
            legal = dept is not None and dept.name == "Legal"
            self._series(rng, subject, m, members, office, self._cadence(rng, rng.randrange(5), 1),
                         rng.choice((9 * 60 + 30, 10 * 60, 10 * 60 + 30, 11 * 60)), rng.choice((30, 45, 60)),
                         "team", sensitivity="private" if legal and rng.random() < 0.5 else "normal",
                         p_decline=0.15, chat_p=0.35,
                         location=TEAMS_MEETING if rng.random() < 0.8 else self.rooms[office])
            # Ceremonies of front-line teams (sprint planning, retro, pipeline review...).
            if dept is not None and team.height == 1:
                for template in dept.team_meetings:
                    ceremony = template.format(team=team.name)
                    if "standup" in template:
                        if rng.random() < 0.4:
                            self._series(rng, ceremony, m, members, office, self.tl.workdays, 9 * 60, 15,
                                         "team", p_decline=0.08, p_cancel=0.05)
                        continue
                    every = 2 if rng.random() < 0.6 else 1
                    self._series(rng, ceremony, m, members, office, self._cadence(rng, rng.randrange(5), every),
                                 rng.choice((11 * 60 + 30, 15 * 60, 16 * 60)), 60, "team", p_decline=0.1)
                if dept.name == "Engineering" and rng.random() < 0.03:
                    saturdays = [d for d in self.tl.by_weekday[5] if d * 1440 < self.tl.now_minute]
                    if saturdays:
                        day = rng.choice(saturdays)
                        self._event(f"Weekend release cutover: {team.name}", m,
                                    tuple(self.uid[x] for x in members), self.tl.at(day, office, 10 * 60), 120, "team")
            # 1:1s with each report, afternoons.
            for p in members:
                a, b = r.first_name(p), r.first_name(m)
                subject = rng.choice(ONE_ON_ONE_SUBJECTS).format(a=a, b=b)
                organizer, attendee = (m, p) if rng.random() < 0.8 else (p, m)
                every = 1 if rng.random() < 0.7 else 2
                self._series(rng, subject, organizer, (attendee,), office,
                             self._cadence(rng, rng.randrange(5), every),
                             rng.randrange(13 * 2, 17 * 2) * 30, rng.choice((30, 30, 30, 45, 60)), "one_on_one",
                             sensitivity="private" if rng.random() < 0.06 else "normal",
                             p_cancel=0.05, p_decline=0.02)
                if rng.random() < 0.03:
                    day = rng.choice(self.tl.workdays)
                    self._event(rng.choice(PRIVATE_SUBJECTS), m, (self.uid[p],),
                                self.tl.at(day, office, rng.randrange(9 * 2, 17 * 2) * 30), 45, "one_on_one",
                                sensitivity="private")

    def _project_meetings(self) -> None:
        r = self.r
        rng = rng_for(self.seed, "project-meetings")
        for project in self.work.projects:
            lead = project.lead
            office = r.office_of[lead]
            attendees = tuple(p for p in project.core if p != lead)
            if not attendees:
                continue
            subject = rng.choice(PROJECT_MEETINGS).format(project=project.name)
            every = 1 if rng.random() < 0.6 else 2
            self._series(rng, subject, lead, attendees, office, self._cadence(rng, rng.randrange(5), every),
                         rng.choice((10 * 60, 11 * 60, 14 * 60, 15 * 60, 16 * 60)), rng.choice((30, 45, 60)),
                         "project", p_decline=0.15, chat_p=0.5)
            everyone = tuple(self.uid[p] for p in project.members if p != lead)
            for _ in range(rng.choice((0, 1, 1, 2))):
                day = rng.choice(self.tl.workdays)
                externals = ()
                if rng.random() < 0.15:
                    name, domain = self.outsiders.company(rng)
                    given, surname, address = self.outsiders.person(rng, domain)
                    externals = (EmailAddress(f"{given} {surname}", address),)
                self._event(rng.choice(PROJECT_ONE_OFFS).format(project=project.name), lead, everyone,
                            self.tl.at(day, office, rng.randrange(10, 16) * 60), 60, "project",
                            externals=externals, cancelled=rng.random() < 0.05)

    def _all_hands(self) -> None:
        r = self.r
        rng = rng_for(self.seed, "all-hands")
        ceo = r.ceo()
        everyone = tuple(self.uid[1:])
        first_thursdays = [k for k in self.tl.by_weekday[3] if self.tl.days[k].day <= 7]
        for day in first_thursdays:
            month = self.tl.days[day].strftime("%B")
            self._event(f"Company All Hands - {month}", ceo, everyone, self.tl.at(day, 0, 16 * 60), 60,
                        "all_hands", location=f"Town Hall, {r.offices[0].city} + {TEAMS_MEETING}")
        second_tuesdays = [k for k in self.tl.by_weekday[1] if 8 <= self.tl.days[k].day <= 14]
        for d, members in enumerate(r.dept_members):
            if len(members) < 40:
                continue
            head = members[0]
            dept = r.departments[d].name
            attendees = tuple(self.uid[p] for p in members[1:])
            for day in second_tuesdays:
                self._event(f"{dept} all hands", head, attendees, self.tl.at(day, r.office_of[head], 15 * 60), 60,
                            "all_hands", cancelled=rng.random() < 0.05)

    def _cross_meetings(self) -> None:
        """Rare meetings across departments: budget reviews, hiring committees, escalations."""
        r = self.r
        rng = rng_for(self.seed, "cross-meetings")
        n_depts = len(r.departments)
        for _ in range(max(2, r.size // 40)):
            organizer = rng.randrange(r.size)
            d1 = r.dept_of[organizer]
            others = [d for d in range(n_depts) if d != d1]
            d2 = rng.choice(others)
            picked = {organizer}
            for p in self.work.acquaintances(organizer):
                picked.add(p)
            for _ in range(rng.randint(1, 4)):
                picked.add(rng.choice(r.dept_members[d2]))
            picked.discard(organizer)
            company = self.outsiders.company(rng)[0]
            subject = rng.choice(CROSS_SUBJECTS).format(
                q=rng.randint(1, 4), d1=r.department_name(organizer), d2=r.departments[d2].name, company=company,
                topic=rng.choice(r.departments[d2].topics))
            day = rng.choice(self.tl.workdays)
            self._event(subject, organizer, tuple(self.uid[p] for p in sorted(picked)),
                        self.tl.at(day, r.office_of[organizer], rng.randrange(9 * 2, 17 * 2) * 30),
                        rng.choice((30, 60)), "cross_team", cancelled=rng.random() < 0.05,
                        declined=NOBODY, sensitivity="private" if rng.random() < 0.05 else "normal")

    def _external_meetings(self) -> None:
        r = self.r
        rng = rng_for(self.seed, "external-meetings")
        for p in range(1, r.size):
            d = r.dept_of[p]
            if d < 0 or rng.random() > r.departments[d].external_share * 1.5:
                continue
            team = r.team_of[p]
            mates = [x for x in r.teams[team].members if x != p] if team >= 0 else []
            for _ in range(rng.randint(1, 4)):
                name, domain = self.outsiders.company(rng)
                externals = []
                for _ in range(rng.randint(1, 3)):
                    given, surname, address = self.outsiders.person(rng, domain)
                    externals.append(EmailAddress(f"{given} {surname}", address))
                internal = rng.sample(mates, min(len(mates), rng.choice((0, 0, 1, 1, 2))))
                day = rng.choice(self.tl.workdays)
                subject = rng.choice(EXTERNAL_SUBJECTS).format(company=name, us=r.company)
                self._event(subject, p, tuple(self.uid[x] for x in internal),
                            self.tl.at(day, r.office_of[p], rng.randrange(9 * 2, 17 * 2) * 30), rng.choice((30, 60)),
                            "external", externals=tuple(externals), cancelled=rng.random() < 0.05,
                            declined=NOBODY)

    def _personal_blocks(self) -> None:
        r = self.r
        rng = rng_for(self.seed, "blocks")
        for p in range(r.size):
            office = r.office_of[p]
            if rng.random() < 0.15:
                for _ in range(rng.choice((1, 1, 2))):
                    self._series(rng, rng.choice(FOCUS_SUBJECTS), p, (), office,
                                 self._cadence(rng, rng.randrange(5), 1), rng.choice((9 * 60, 13 * 60, 14 * 60)),
                                 120, "focus", p_cancel=0.0, p_decline=0.0, location=None)
            if rng.random() < 0.05:
                first = rng.choice(self.tl.workdays)
                for day in range(first, min(first + rng.choice((1, 1, 2, 5)), self.tl.n_days)):
                    if self.tl.days[day].weekday() < 5:
                        self._event(rng.choice(("Out of office", "Annual leave", "OOO", "Holiday")), p, (),
                                    self.tl.minutes(day * 1440), 1440, "focus", online=False, location=None,
                                    all_day=True)
            if rng.random() < 0.06:
                day = rng.choice(self.tl.workdays)
                self._event(rng.choice(PERSONAL_BLOCKS), p, (), self.tl.at(day, office, rng.randrange(8, 17) * 60),
                            60, "focus", sensitivity="private", online=False, location=None)

    # --- chats ----------------------------------------------------------------------------------
    def _messages(self, rng: random.Random, members: tuple[int, ...], last_minute: int, count: int,
                  ) -> list[ChatMessage]:
        out = []
        minute = last_minute
        for _ in range(count):
            sender = self.uid[rng.choice(members)]
            out.append(ChatMessage(self.tl.message_id(minute), sender, self.tl.minutes(minute),
                                   rng.choice(CHAT_LINES)))
            minute -= rng.choice((1, 2, 3, 5, 10, 30, 60, 240, 1440))
        out.reverse()
        return out

    def _last_minute(self, rng: random.Random, active: bool, office: int) -> int:
        """When a chat's last message was sent: within the last three days if active, in working hours."""
        now = self.tl.now_minute
        today = now // 1440
        days = range(max(0, today - 3), today + 1) if active else range(max(0, today - DAYS_BACK), today - 3)
        workdays = [d for d in days if self.tl.days[d].weekday() < 5] or list(days)
        day = rng.choice(workdays)
        minute = day * 1440 + rng.randrange(8 * 60, 18 * 60 + 30) - self.tl.offsets[office][day]
        return minute if minute < now else now - rng.randrange(5, 180)

    def _chat(self, rng: random.Random, chat_id: str, chat_type: str, topic: str | None, members: tuple[int, ...],
              active: bool, count: int) -> None:
        messages = self._messages(rng, members, self._last_minute(rng, active, self.r.office_of[members[0]]), count)
        first = messages[0].created_date_time if messages else self.tl.minutes(self.tl.now_minute)
        created = first - timedelta(days=rng.randrange(0, 120), minutes=rng.randrange(1440))
        self.chats.append(Chat(chat_id, chat_type, topic, tuple(self.uid[m] for m in members),
                               created.replace(second=0), messages))

    def _thread_id(self, rng: random.Random) -> str:
        return f"19:{rng.getrandbits(128):032x}@thread.v2"

    def chats_all(self) -> None:
        r = self.r
        rng = rng_for(self.seed, "chats")
        ids = self.ids_rng
        # One-on-one chats, mostly with the manager and teammates.
        pairs: set[tuple[int, int]] = set()
        counts = (0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8)
        for p in range(r.size):
            partners = self.work.partners(p)
            if not partners[0]:
                continue
            for _ in range(rng.choice(counts)):
                q = draw_partner(rng, partners)
                pair = (p, q) if p < q else (q, p)
                if pair in pairs:
                    continue
                pairs.add(pair)
                close = self.work.is_close(p, q)
                chat_id = f"19:{self.uid[pair[0]]}_{self.uid[pair[1]]}@unq.gbl.spaces"
                self._chat(rng, chat_id, "oneOnOne", None, (p, q), rng.random() < (0.7 if close else 0.35),
                           rng.choice((1, 2, 2, 3, 4, 5, 6, 8)))
        # Team group chats.
        for team in r.teams:
            if len(team.members) < 2 or rng.random() > 0.5:
                continue
            k = min(len(team.members), rng.randint(2, 8))
            members = (team.manager, *rng.sample(team.members, k)) if rng.random() < 0.6 else tuple(
                rng.sample(team.members, k))
            topic = rng.choice(CHAT_TOPICS_TEAM)
            self._chat(rng, self._thread_id(ids), "group", topic.format(team=team.name) if topic else None, members,
                       rng.random() < 0.7, rng.choice((2, 3, 4, 6, 8)))
        # Project chats.
        for project in self.work.projects:
            if rng.random() < 0.5 and len(project.core) >= 3:
                self._chat(rng, self._thread_id(ids), "group", f"{project.name} core team", tuple(project.core),
                           rng.random() < 0.6, rng.choice((2, 3, 4, 6)))
        # A few social chats across teams, by office.
        for _ in range(1 + r.size // 150):
            office = rng.randrange(len(r.offices))
            pool = r.office_members[office]
            if len(pool) < 3:
                continue
            members = tuple(rng.sample(pool, min(len(pool), rng.randint(3, 8))))
            topic = rng.choice(CHAT_TOPICS_CROSS)
            self._chat(rng, self._thread_id(ids), "group",
                       topic.format(city=r.offices[office].city) if topic else None, members, rng.random() < 0.4,
                       rng.choice((2, 3, 5)))
        # Meeting chats: a few lines around some past occurrences.
        for subject, organizer, attendees, starts in self._meeting_chats:
            members = (organizer, *attendees)
            past = [s for s in starts if s < self.tl.now]
            if not past:
                continue
            messages: list[ChatMessage] = []
            for start in sorted(rng.sample(past, min(len(past), rng.randint(1, 3)))):
                minute = int((start - self.tl.epoch).total_seconds() // 60) - 2
                for _ in range(rng.randint(1, 3)):
                    if minute > self.tl.now_minute:
                        break
                    messages.append(ChatMessage(self.tl.message_id(minute), self.uid[rng.choice(members)],
                                                self.tl.minutes(minute), rng.choice(CHAT_LINES)))
                    minute += rng.randint(1, 20)
            if not messages:
                continue
            thread = base64.b64encode(guid(ids).encode()).decode().rstrip("=")
            self.chats.append(Chat(f"19:meeting_{thread}@thread.v2", "meeting", subject,
                                   tuple(self.uid[m] for m in members),
                                   starts[0] - timedelta(days=rng.randint(1, 30)), messages))
