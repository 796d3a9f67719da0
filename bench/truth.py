"""devtenant's ground truth as the simulated callers know it (bench/callers.py).

Read straight from devtenant's `Org` records, never from what the product loaded: the genuine employee's
`Memory` (who they really met, chatted with, heard from, saved; their groups and roles), the public
`Chart` an informed impostor reads, and the directory's names a random impostor draws from. So a bench that
drives the product with these callers checks that the product reads the right facts, not just that it
agrees with itself.

Each person, group or role carries a `note` saying whether the product's own rules (verification/questions,
with the policy's windows and sizes) should accept it, and if not why ("only in private meetings",
"group of 64 members"): a genuine answer judged wrong with a note of "accepted" points at the product.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from bench.callers import Chart, GroupInfo, InformedImpostor, Memory, Recollection, Relation, TeammateInsider
from devtenant.model import Event, Org, RoleDefinition, User
from verification.names import normalize, similar_titles, tokens
from verification.policy import Policy

ACCEPTED = "accepted"  # the note of a fact the product's rules should accept
# Words in group names that say nothing about a department, title or office.
_GENERIC = frozenset({"team", "group", "all", "the", "and", "of", "sg", "users", "office", "hq", "senior", "lead",
                      "manager", "managers", "engineer", "specialist", "analyst", "head", "i", "ii", "iii"})
_CHAT_WEIGHT = {"oneOnOne": 2.0, "group": 1.0, "meeting": 0.3}
# Teams (Microsoft 365 groups) come to mind first; people often do not know their security groups at all.
_GROUP_WEIGHT = {"microsoft365": 3.0, "distribution": 1.0, "mailEnabledSecurity": 0.7, "security": 0.3}
BIG_MEETING_SALIENCE = 0.3  # how strongly a salient colleague from a huge meeting comes to mind
_GROUP_RECALL = {"microsoft365": 0.97, "distribution": 0.85, "mailEnabledSecurity": 0.6, "security": 0.3}


@dataclass
class _Fact:
    """A person, group or role being accumulated: salience adds up, the best note wins."""

    name: str
    relation: Relation
    given: str | None
    weight: float = 0.0
    note: str = ""
    alone: bool = False  # seen at least once without a teammate

    def add(self, weight: float, note: str, with_team: bool = False) -> None:
        self.weight += weight
        self.alone = self.alone or not with_team
        if self.note != ACCEPTED and (not self.note or note == ACCEPTED):
            self.note = note

    def recollection(self) -> Recollection:
        return Recollection(self.name, self.relation, round(self.weight, 4), self.given, self.note,
                            with_team=not self.alone)


class GroundTruth:
    """One organisation's truth, indexed once; `memory(uid)` and `chart(uid)` per target."""

    def __init__(self, org: Org, now: datetime, policy: Policy) -> None:
        self.org = org
        self.now = now
        self.policy = policy
        self.people = [u for u in org.users.values()
                       if not u.is_service_account and u.account_enabled and u.user_type == "Member"]
        self.names = [u.display_name for u in self.people]
        self._name_counts = Counter(normalize(n) for n in self.names)
        self.population = len(self.people)
        self.by_department: dict[str, list[User]] = {}
        for u in self.people:
            if u.department:
                self.by_department.setdefault(u.department, []).append(u)
        self.by_office = Counter(u.office_location for u in self.people if u.office_location)
        self.group_sizes = {gid: len(org.transitive_user_members(gid)) for gid in org.groups}
        self.groups = [GroupInfo(g.display_name, self.group_sizes[g.id], g.is_tenant_wide)
                       for g in org.groups.values()]
        self.group_names = [g.name for g in self.groups]
        holders = Counter(a.role_definition_id for a in org.role_assignments)
        defs = org.role_definitions
        self.common_roles = [defs[r].display_name for r, _ in holders.most_common()
                             if r in defs and not defs[r].is_privileged]
        self.role_names = [d.display_name for d in defs.values()]
        self._memories: dict[str, Memory] = {}

    def namesakes(self, name: str) -> int:
        """How many people in the directory have this full name."""
        return self._name_counts[normalize(name)]

    # --- who is who to the target ----------------------------------------------------------------------
    def relation_of(self, target: User) -> dict[str, Relation]:
        org = self.org
        manager = target.manager_id
        out: dict[str, Relation] = {}
        if manager:
            for uid in org.reports_of.get(manager, []):
                out[uid] = Relation.TEAM
            skip = org.users[manager].manager_id if manager in org.users else None
            if skip:
                out[skip] = Relation.SKIP
            out[manager] = Relation.MANAGER
        for uid in org.reports_of.get(target.id, []):
            out.setdefault(uid, Relation.REPORT)
        return out

    def _relation(self, target: User, relations: dict[str, Relation], uid: str) -> Relation:
        rel = relations.get(uid)
        if rel is not None:
            return rel
        other = self.org.users.get(uid)
        if other is None:
            return Relation.EXTERNAL
        return Relation.DEPT if target.department and other.department == target.department else Relation.OTHER

    def roles_of(self, uid: str) -> list[RoleDefinition]:
        """Directory roles held directly or through a (role-assignable) group."""
        held = {r.id: r for r in self.org.roles_of(uid)}
        for g in self.org.transitive_member_of(uid):
            held.update((r.id, r) for r in self.org.roles_of(g.id))
        return list(held.values())

    def is_person(self, uid: str | None) -> bool:
        u = self.org.users.get(uid) if uid else None
        return u is not None and not u.is_service_account

    # --- the genuine employee ----------------------------------------------------------------------------
    def memory(self, uid: str) -> Memory:
        """What `uid` really did (computed once: a teammate insider reads their peers' too)."""
        cached = self._memories.get(uid)
        if cached is None:
            cached = self._memories[uid] = self._memory(uid)
        return cached

    def _memory(self, uid: str) -> Memory:
        target = self.org.users[uid]
        relations = self.relation_of(target)
        facts: dict[str, dict[str, _Fact]] = {}

        def person(topic: str, other: str, weight: float, note: str, with_team: bool = False) -> None:
            u = self.org.users[other]
            fact = facts.setdefault(topic, {}).get(other)
            if fact is None:
                fact = facts[topic][other] = _Fact(u.display_name, self._relation(target, relations, other),
                                                   u.given_name)
            fact.add(weight, note, with_team)

        def outsider(topic: str, name: str, given: str | None, weight: float, note: str,
                     with_team: bool = False) -> None:
            key = "ext:" + name.lower()
            fact = facts.setdefault(topic, {}).get(key)
            if fact is None:
                fact = facts[topic][key] = _Fact(name, Relation.EXTERNAL, given or name.split()[0])
            fact.add(weight, note, with_team)

        self._meetings(target, person, outsider)
        self._chats(target, person)
        self._mail(target, person)
        self._contacts(target, person, outsider)
        topics: dict[str, list[Recollection]] = {t: [f.recollection() for f in fs.values()] for t, fs in facts.items()}
        topics["groups"] = self._groups(target)
        topics["roles"] = [Recollection(r.display_name, note=ACCEPTED) for r in self.roles_of(uid)
                           if not r.is_privileged]
        manager = target.manager_id
        hierarchy = {
            "hierarchy.manager": [manager] if manager else [],
            "hierarchy.peer": [u for u, r in relations.items() if r is Relation.TEAM and u != uid],
            "hierarchy.direct_report": self.org.reports_of.get(uid, []),
        }
        for topic, ids in hierarchy.items():
            topics[topic] = [Recollection(self.org.users[i].display_name, self._relation(target, relations, i), 1.0,
                                          self.org.users[i].given_name, ACCEPTED) for i in ids if self.is_person(i)]
        return Memory(topics)

    def _meetings(self, target: User, person, outsider) -> None:
        p = self.policy
        lo, hi = self.now - p.meeting_lookback, self.now + p.meeting_lookahead
        for e in self.org.calendar(target.id):
            if not lo <= e.start <= hi or e.is_cancelled or e.is_all_day or target.id in e.declined_ids:
                continue
            invited = {e.organizer_id, *e.attendee_ids}
            size = len(invited) + len(e.external_attendees)
            if size < 2:
                continue  # a focus block
            note = self._meeting_note(e, size)
            # Small meetings stick; in a big one only the person running it does. Recent ones more than old.
            days = (self.now - e.start).total_seconds() / 86400
            recency = 0.5 if days < 0 else math.exp(-days / 10)
            base = recency / math.sqrt(size - 1)
            big = size > p.max_meeting_attendees
            team = bool((invited - e.declined_ids) & self.team_of(target))
            for other in invited - {target.id} - e.declined_ids:
                # A colleague from a huge meeting comes to mind now and then (BIG_MEETING_SALIENCE), as people do.
                if self.is_person(other) and (not big or other == e.organizer_id or self._salient(target, e, other)):
                    person("meetings", other, base if not big else BIG_MEETING_SALIENCE * recency, note, team or big)
            if not big:
                for a in e.external_attendees:
                    outsider("meetings", a.name, None, base, note, team)

    def _meeting_note(self, e: Event, size: int) -> str:
        if e.kind == "all_hands":
            return "only in all-hands meetings"
        if e.sensitivity != "normal":
            return f"only in {e.sensitivity} meetings"
        if size > self.policy.max_meeting_attendees:
            return f"only in meetings of more than {self.policy.max_meeting_attendees} people"
        return ACCEPTED

    def _chats(self, target: User, person) -> None:
        p = self.policy
        since = self.now - p.chat_window
        for c in self.org.chats_for(target.id):
            recent = [m for m in c.messages if since <= m.created_date_time <= self.now]
            if not recent:
                continue
            size = len(c.member_ids)
            if c.chat_type == "meeting":
                note = "only in meeting chats"
            elif size > p.max_chat_members:
                note = f"only in group chats of more than {p.max_chat_members} people"
            else:
                note = ACCEPTED
            base = _CHAT_WEIGHT.get(c.chat_type, 1.0) / math.sqrt(max(size - 1, 1))
            spoke = Counter(m.sender_id for m in recent)
            team = bool(set(c.member_ids) & self.team_of(target)) or note != ACCEPTED
            for other in c.member_ids:
                if other != target.id and self.is_person(other):
                    person("chats", other, base * (1 + 0.5 * min(spoke[other], 3)), note, team)

    def _mail(self, target: User, person) -> None:
        since = self.now - self.policy.mail_window
        for m in self.org.messages_of(target.id):
            sender = m.sender.user_id
            if since <= m.received_date_time <= self.now and sender != target.id and self.is_person(sender):
                person("mail", sender, 1.0, ACCEPTED)

    def _contacts(self, target: User, person, outsider) -> None:
        for c in self.org.contacts_of(target.id):
            inside = next((a.user_id for a in c.email_addresses if self.is_person(a.user_id)), None)
            if inside and inside != target.id:
                person("contacts", inside, 1.0, ACCEPTED)
            elif inside is None and c.display_name:
                outsider("contacts", c.display_name, c.given_name, 1.0, ACCEPTED)

    def _groups(self, target: User) -> list[Recollection]:
        """Groups the person is directly in, minus the ones they know are company-, office- or
        department-wide (the question asks them to skip those): tenant-wide groups, anything holding a fifth
        of the tenant, and lists holding most of their department or office."""
        p = self.policy
        dept = len(self.by_department.get(target.department or "", ()))
        office = self.by_office.get(target.office_location or "", 0)
        out = []
        for g in self.org.member_of(target.id):
            size = self.group_sizes[g.id]
            wide = (g.is_tenant_wide or size >= 0.2 * self.population or (dept >= 10 and size >= 0.8 * dept)
                    or (office >= 10 and size >= 0.8 * office))
            if wide:
                continue
            if size > p.max_group_members or size >= p.tenant_wide_share * self.population:
                note = f"group of more than {p.max_group_members} members"
            else:
                note = ACCEPTED
            with_team = bool(set(self.org.transitive_user_members(g.id)) & self.team_of(target))
            out.append(Recollection(g.display_name, weight=_GROUP_WEIGHT.get(g.kind.value, 1.0), note=note,
                                    recall=_GROUP_RECALL.get(g.kind.value, 0.8), with_team=with_team))
        return out

    def team_of(self, target: User) -> set[str]:
        """The target's teammates as the product counts them: the manager's other reports and the target's reports."""
        rel = self.relation_of(target)
        return {u for u, r in rel.items() if r in (Relation.TEAM, Relation.REPORT) and u != target.id}

    def _salient(self, target: User, e: Event, other: str) -> bool:
        """About one in twenty colleagues from a huge meeting stands out (asked a question, sat nearby)."""
        return zlib.crc32(f"{target.id}:{e.id}:{other}".encode()) % 20 == 0

    # --- the teammate insider and the LinkedIn impostor ------------------------------------------------------
    def insider(self, uid: str, rng_seed: str) -> TeammateInsider | None:
        """The strongest real peer of the target: the teammate who shares most meetings and chats with them. What
        they would say for each source: the people in their own meetings, chats, contacts and mail, team partners
        first (weight), the target's team and the department after; their own groups."""
        import random

        target = self.org.users[uid]
        peers = [u for u in self.team_of(target) if self.is_person(u)]
        if not peers:
            return None
        mine = self.memory(uid)
        target_people = {normalize(r.name) for t in ("meetings", "chats") for r in mine.topics.get(t, ())}

        def overlap(peer: str) -> int:
            topics = self.memory(peer).topics
            return len(target_people & {normalize(r.name) for t in ("meetings", "chats") for r in topics.get(t, ())})

        peer = max(sorted(peers), key=overlap)
        theirs = self.memory(peer)
        relations = self.relation_of(target)
        by_name = {self.org.users[u].display_name: self._relation(target, relations, u) for u in self.org.users}
        pooled: dict[str, float] = {}
        for topic in ("meetings", "chats", "contacts", "mail"):
            for r in theirs.topics.get(topic, ()):
                pooled[r.name] = pooled.get(r.name, 0.0) + r.weight
        guesses: dict[str, list[tuple[str, Relation]]] = {}
        for source in ("meetings", "chats", "contacts", "mail"):
            own = sorted(theirs.topics.get(source, ()), key=lambda r: -r.weight)
            ranked = [r.name for r in own] + sorted(pooled, key=lambda n: -pooled[n])
            names = [n for n in dict.fromkeys(ranked) if n != target.display_name]
            guesses[source] = [(n, by_name.get(n, Relation.EXTERNAL)) for n in names]
        groups = [r.name for r in sorted(theirs.topics.get("groups", ()), key=lambda r: -r.weight)
                  if r.note == ACCEPTED]
        known = frozenset(normalize(r.name) for t in ("meetings", "chats", "contacts", "mail", "groups")
                          for r in theirs.topics.get(t, ()))
        fallback = InformedImpostor(self.chart(uid), random.Random(rng_seed))
        return TeammateInsider(guesses, groups, known, fallback)

    def linkedin_chart(self, uid: str) -> Chart:
        """The public org chart plus what a LinkedIn profile adds: title, department, manager, and the people the
        target worked with across teams (their projects' members), guessed first."""
        target = self.org.users[uid]
        chart = self.chart(uid)
        groups = [g for g in self.org.member_of(uid) if g.display_name.startswith("Project ")]
        team = self.team_of(target) | {target.id, target.manager_id or ""}
        relations = self.relation_of(target)
        worked_with = sorted({m for g in groups for m in self.org.transitive_user_members(g.id)} - team)
        tiers = [(rel, self._names(u for u in worked_with if self._relation(target, relations, u) is rel))
                 for rel in (Relation.OTHER, Relation.DEPT)]
        return replace(chart, tiers=[*tiers, *chart.tiers])

    # --- the informed impostor -----------------------------------------------------------------------------
    def chart(self, uid: str) -> Chart:
        """The public org chart around the target: manager, teammates, reports, skip-level, then the
        department (same office and similar title first), every group with its size, roles by holders."""
        target = self.org.users[uid]
        relations = self.relation_of(target)
        tiers: list[tuple[Relation, list[str]]] = []
        for rel in (Relation.MANAGER, Relation.TEAM, Relation.REPORT, Relation.SKIP):
            tiers.append((rel, self._names(u for u, r in relations.items() if r is rel and u != uid)))
        dept = [u for u in self.by_department.get(target.department or "", ()) if u.id != uid
                and u.id not in relations]
        office = [u.office_location == target.office_location for u in dept]
        title = [similar_titles(u.job_title, target.job_title) for u in dept]
        close = [u.id for u, o, t in zip(dept, office, title, strict=True) if o and t]
        near = [u.id for u, o, t in zip(dept, office, title, strict=True) if o != t]
        rest = [u.id for u, o, t in zip(dept, office, title, strict=True) if not o and not t]
        tiers += [(Relation.DEPT, self._names(close)), (Relation.DEPT, self._names(near)),
                  (Relation.DEPT, self._names(rest))]
        hints = {w for text in (target.department, target.job_title, target.office_location) for w in tokens(text)}
        return Chart(tiers=tiers, everyone=self.names, groups=self.groups, hints=frozenset(hints - _GENERIC),
                     roles=self.common_roles, big_group=self.policy.max_group_members)

    def _names(self, ids: Iterable[str]) -> list[str]:
        return [self.org.users[i].display_name for i in ids if self.is_person(i)]
