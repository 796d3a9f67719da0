"""Fakes for the directory sync's tests: a directory whose users, pages and tenant-wide reads the test controls.

`FakeDirectory.sync_users` walks its users in pages of `page_size`, with links that say where they
lead ("fake://next/<cycle>/<offset>", "fake://delta/<version>"), so a test can check which link a
sync resumed from. `fail_after_pages` makes it raise GraphUnavailable after delivering that many pages
(in one call), as Graph going away mid-sync would. The tenant-wide reads answer from `not_resettable`,
`groups` (set with `set_group`; an unknown group is Graph's 404), `total` and `names`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from graph.directory import DirectoryUser, GraphUnavailable, GroupNotFound, OnPage, SyncPage


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def person(n: int, **fields: object) -> DirectoryUser:
    values: dict = {"display_name": f"Person {n:05d}", "upn": f"person{n}@contoso.example"} | fields
    return DirectoryUser(id=uid(n), **values)


@dataclass
class FakeDirectory:
    users: dict[str, DirectoryUser] = field(default_factory=dict)
    page_size: int = 3
    fail_after_pages: int | None = None
    version: int = 0
    # Changes since each version: (version, user id, user or None when removed).
    changes: list[tuple[int, str, DirectoryUser | None]] = field(default_factory=list)
    calls: list[str | None] = field(default_factory=list)  # the resume link of each sync_users call
    pages_served: int = 0
    served: list[str] = field(default_factory=list)  # ids of users (and removals) in pages served
    hang_after_pages: int | None = None  # then wait forever (for a test to cancel), once
    refuse_links: bool = False  # answer a stored link as Graph does an expired token: start over
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    # The tenant-wide reads: who may not be reset, and each group's (transitive) members.
    not_resettable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    total: int | None = None
    group_reads: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # group id -> display name (for the policy page)
    unavailable: bool = False  # group names: Graph cannot be reached

    def add(self, *users: DirectoryUser) -> None:
        for u in users:
            self.version += 1
            self.users[u.id] = u
            self.changes.append((self.version, u.id, u))

    def remove(self, *user_ids: str) -> None:
        for user_id in user_ids:
            self.version += 1
            self.users.pop(user_id, None)
            self.changes.append((self.version, user_id, None))

    def _entries(self, since: int | None) -> list[tuple[str, DirectoryUser | None]]:
        if since is None:
            return [(u.id, u) for u in sorted(self.users.values(), key=lambda u: u.id)]
        latest: dict[str, DirectoryUser | None] = {}
        for version, user_id, user in self.changes:
            if version > since:
                latest[user_id] = user
        return sorted(latest.items())

    async def sync_users(self, tenant_id: str, resume_link: str | None, on_page: OnPage) -> str:
        self.calls.append(resume_link)
        restarted = False
        if resume_link is not None and self.refuse_links:
            resume_link, restarted, self.refuse_links = None, True, False
        # Links carry what is needed to continue: the base version (or "full") and the offset.
        if resume_link is None:
            since, offset = None, 0
        elif resume_link.startswith("fake://delta/"):
            since, offset = int(resume_link.rsplit("/", 1)[1]), 0
        else:
            base, start = resume_link.removeprefix("fake://next/").split("/")
            since, offset = (None if base == "full" else int(base)), int(start)
        entries = self._entries(since)
        base = "full" if since is None else str(since)
        delivered = 0
        while True:
            chunk = entries[offset:offset + self.page_size]
            offset += len(chunk)
            more = offset < len(entries)
            page = SyncPage(
                users=tuple(u for _, u in chunk if u is not None),
                removed_ids=tuple(i for i, u in chunk if u is None),
                next_link=f"fake://next/{base}/{offset}" if more else None,
                delta_link=None if more else f"fake://delta/{self.version}",
                restarted=restarted,
            )
            restarted = False
            await on_page(page)
            self.pages_served += 1
            self.served += [i for i, _ in chunk]
            delivered += 1
            if self.hang_after_pages is not None and delivered >= self.hang_after_pages:
                self.hang_after_pages = None
                self.hanging.set()
                await asyncio.Event().wait()
            if not more:
                return str(page.delta_link)
            if self.fail_after_pages is not None and delivered >= self.fail_after_pages:
                raise GraphUnavailable("throttled")

    def set_group(self, group_id: str, members: Iterable[str]) -> None:
        self.groups[group_id] = frozenset(members)

    async def group_member_ids(self, tenant_id: str, group_id: str, *, at_most: int | None = None,
                               budget_s: float | None = None) -> frozenset[str]:
        self.group_reads.append(group_id)
        if group_id not in self.groups:
            raise GroupNotFound(group_id)
        return self.groups[group_id]

    async def not_resettable_ids(self, tenant_id: str) -> Mapping[str, tuple[str, ...]]:
        return self.not_resettable

    async def count_users(self, tenant_id: str) -> int | None:
        return self.total

    async def group_names(self, tenant_id: str, group_ids: Iterable[str]) -> dict[str, str | None]:
        if self.unavailable:
            raise GraphUnavailable("group: timed out")
        return {g: self.names.get(g) for g in group_ids}
