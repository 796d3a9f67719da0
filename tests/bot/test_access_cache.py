"""Who the bot serves is cached briefly per process (bot/access.py): a membership for two minutes, a failure for
fifteen seconds, an unknown answer not at all; past the cache's size the least recently asked go first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

import bot.access as access_module
from bot.access import FAILURE_TTL, MEMBERSHIP_TTL, TENANT_TTL, Access, Membership
from graph.directory import DirectoryError, GraphUnavailable

TENANT = "11111111-1111-4111-8111-111111111111"
GROUP = "22222222-2222-4222-8222-222222222222"


def person(n: int) -> str:
    return f"33333333-3333-4333-8333-{n:012d}"


@dataclass
class Clock:
    now: datetime = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Directory:
    answer: bool | Exception = True
    asked: list[str] = field(default_factory=list)

    async def is_member_of(self, tenant: str, user: str, group: str) -> bool:
        self.asked.append(user)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Tenants:
    def __init__(self) -> None:
        self.asked = 0

    async def get(self, tenant: str) -> SimpleNamespace:
        self.asked += 1
        return SimpleNamespace(is_connected=True)


class Policies:
    async def get_access(self, tenant: str) -> SimpleNamespace:
        return SimpleNamespace(helpdesk_group_id=GROUP)


def access(directory: Directory, clock: Clock, tenants: Tenants | None = None) -> Access:
    store = SimpleNamespace(tenants=tenants or Tenants(), policies=Policies())
    return Access(store, directory, clock)  # type: ignore[arg-type]


async def test_a_membership_is_asked_again_only_after_two_minutes() -> None:
    directory, clock = Directory(), Clock()
    gate = access(directory, clock)
    assert (await gate.check_agent(TENANT, person(1))).is_agent
    clock.now += MEMBERSHIP_TTL - timedelta(seconds=1)
    assert (await gate.check_agent(TENANT, person(1))).is_agent and directory.asked == [person(1)]
    directory.answer = False  # removed from the helpdesk group: takes effect once the cached answer expires
    clock.now += timedelta(seconds=2)
    assert not (await gate.check_agent(TENANT, person(1))).is_agent and len(directory.asked) == 2


async def test_a_person_missing_from_the_directory_is_asked_again_after_fifteen_seconds() -> None:
    directory, clock = Directory(answer=DirectoryError("no such user")), Clock()
    gate = access(directory, clock)
    assert (await gate.check_agent(TENANT, person(1))).membership is Membership.NOT_AGENT
    clock.now += FAILURE_TTL - timedelta(seconds=1)
    await gate.check_agent(TENANT, person(1))
    assert len(directory.asked) == 1
    clock.now += timedelta(seconds=2)
    await gate.check_agent(TENANT, person(1))
    assert len(directory.asked) == 2


async def test_an_unknown_membership_is_never_cached() -> None:
    directory, clock = Directory(answer=GraphUnavailable("Graph did not answer")), Clock()
    gate = access(directory, clock)
    for _ in range(3):
        assert (await gate.check_agent(TENANT, person(1))).membership is Membership.UNKNOWN
    assert len(directory.asked) == 3


async def test_a_tenants_connection_is_read_again_after_a_minute() -> None:
    tenants, clock = Tenants(), Clock()
    gate = access(Directory(), clock, tenants)
    assert await gate.tenant_connected(TENANT) and await gate.tenant_connected(TENANT)
    assert tenants.asked == 1
    clock.now += TENANT_TTL + timedelta(seconds=1)
    assert await gate.tenant_connected(TENANT) and tenants.asked == 2


async def test_a_full_cache_lets_the_least_recently_asked_go_not_everyone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access_module, "CACHE_LIMIT", 3)
    directory, clock = Directory(), Clock()
    gate = access(directory, clock)
    for n in (1, 2, 3):
        await gate.check_agent(TENANT, person(n))
    await gate.check_agent(TENANT, person(1))  # asked again: now the most recent
    await gate.check_agent(TENANT, person(4))  # the cache is full: person 2 goes
    directory.asked.clear()
    for n in (1, 3, 4, 2):
        await gate.check_agent(TENANT, person(n))
    assert directory.asked == [person(2)]
