"""Who works with whom: projects across teams, and each person's weighted work partners.

Every source of activity (meetings, chats, mail, contacts) draws the people it involves from
`WorkGraph.partners`, so that the sources agree with each other and with the org chart: the
manager and teammates weigh most, project partners less, a few acquaintances elsewhere rarely.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from devtenant.generate._rand import cumulative, rng_for, weighted_index
from devtenant.generate.catalogue import PROJECT_ADJECTIVES, PROJECT_NOUNS
from devtenant.generate.people import Roster

W_MANAGER = 10.0
W_REPORT = 8.0
W_PEER = 5.0
W_SKIP = 1.0
W_PROJECT = 1.5
W_ACQUAINTANCE = 0.4


@dataclass(slots=True)
class Project:
    index: int
    name: str
    teams: tuple[int, ...]
    members: list[int]  # everyone on it
    core: list[int]  # who meets every week (at most 10)
    lead: int


class WorkGraph:
    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        self.seed = roster.seed
        self.projects: list[Project] = []
        self.projects_of: dict[int, list[int]] = {}
        self._build_projects(rng_for(roster.seed, "projects"))

    # --- projects -------------------------------------------------------------------------------
    def _project_name(self, rng: random.Random, used: set[str]) -> str:
        for _ in range(20):
            name = f"{rng.choice(PROJECT_ADJECTIVES)} {rng.choice(PROJECT_NOUNS)}"
            if name not in used:
                used.add(name)
                return name
        name = f"{rng.choice(PROJECT_NOUNS)} {len(used) + 1}"
        used.add(name)
        return name

    def _add_project(self, rng: random.Random, teams: list[int], used: set[str]) -> None:
        r = self.roster
        members: list[int] = []
        core: list[int] = []
        for t in teams:
            team = r.teams[t]
            members.append(team.manager)
            core.append(team.manager)
            joined = [m for m in team.members if rng.random() < 0.6] or team.members[:1]
            members.extend(joined)
            core.extend(rng.sample(joined, min(len(joined), max(1, 8 // len(teams)))))
        project = Project(len(self.projects), self._project_name(rng, used), tuple(teams), members, core[:10],
                          rng.choice(core[:10]))
        self.projects.append(project)
        for p in members:
            self.projects_of.setdefault(p, []).append(project.index)

    def _build_projects(self, rng: random.Random) -> None:
        r = self.roster
        used: set[str] = set()
        front_line = [t for t in r.teams if t.height == 1 and t.dept >= 0 and t.members]
        by_dept: dict[int, list[int]] = {}
        for t in front_line:
            by_dept.setdefault(t.dept, []).append(t.index)
        # Within a department: neighbouring teams (siblings come out of the tree next to each other).
        for dept in sorted(by_dept):
            teams = by_dept[dept]
            k = 0
            while k + 1 < len(teams):
                if rng.random() < 0.75:
                    width = 2 if rng.random() < 0.6 or k + 2 >= len(teams) else 3
                    self._add_project(rng, teams[k:k + width], used)
                    k += width - 1 if rng.random() < 0.3 else width  # some teams are on two projects
                else:
                    k += 1
        # Across departments: fewer, and led from Engineering or Product where they exist.
        names = [d.name for d in r.departments]
        builders = [by_dept[d] for d, n in enumerate(names) if n in ("Engineering", "Product") and d in by_dept]
        builders = [t for ts in builders for t in ts] or [t.index for t in front_line]
        others = [t.index for t in front_line]
        for _ in range(max(1, len(front_line) // 8)):
            a = rng.choice(builders)
            b = rng.choice(others)
            if r.teams[a].dept == r.teams[b].dept:
                candidates = [t for t in others if r.teams[t].dept != r.teams[a].dept]
                if not candidates:
                    continue
                b = rng.choice(candidates)
            self._add_project(rng, [a, b], used)

    # --- partners -------------------------------------------------------------------------------
    def acquaintances(self, person: int) -> list[int]:
        """A few people outside the immediate team this person happens to know."""
        r = self.roster
        rng = rng_for(self.seed, "acquaintances", person)
        out = []
        dept = r.dept_of[person]
        pools = [r.dept_members[dept] if dept >= 0 else None, r.office_members[r.office_of[person]], None]
        for pool in pools:
            other = rng.choice(pool) if pool else rng.randrange(r.size)
            if other != person:
                out.append(other)
        return out

    def partner_weights(self, person: int) -> dict[int, float]:
        r = self.roster
        out: dict[int, float] = {}
        manager = r.manager_of[person]
        if manager >= 0:
            out[manager] = W_MANAGER
            skip = r.manager_of[manager]
            if skip >= 0:
                out[skip] = out.get(skip, 0.0) + W_SKIP
        team = r.team_of[person]
        if team >= 0:
            peers = r.teams[team].members
            w = W_PEER * min(1.0, 6 / max(1, len(peers) - 1))
            for p in peers:
                if p != person:
                    out[p] = out.get(p, 0.0) + w
        led = r.leads[person]
        if led >= 0:
            reports = r.teams[led].members
            w = W_REPORT * min(1.0, 8 / max(1, len(reports)))
            for p in reports:
                out[p] = out.get(p, 0.0) + w
        for pj in self.projects_of.get(person, ()):
            core = self.projects[pj].core
            w = W_PROJECT * min(1.0, 6 / len(core))
            for p in core:
                if p != person:
                    out[p] = out.get(p, 0.0) + w
        for p in self.acquaintances(person):
            out[p] = out.get(p, 0.0) + W_ACQUAINTANCE
        out.pop(person, None)
        return out

    def partners(self, person: int) -> tuple[list[int], list[float]]:
        """(people, cumulative weights) to draw from with `draw_partner`."""
        weights = self.partner_weights(person)
        people = list(weights)
        return people, cumulative(weights.values())

    def is_close(self, a: int, b: int) -> bool:
        """Manager, direct report or teammate: the relationship meetings and chats mostly follow."""
        r = self.roster
        return (r.manager_of[a] == b or r.manager_of[b] == a
                or (r.team_of[a] >= 0 and r.team_of[a] == r.team_of[b]))


def draw_partner(rng: random.Random, partners: tuple[list[int], list[float]]) -> int:
    people, cum = partners
    return people[weighted_index(rng, cum)]
