"""Who the bot serves (bot/access.py): the helpdesk group's member list read once per tenant for everyone's turns,
kept five minutes and read again in the background before then; when it cannot be read, each person is asked
about as before: a membership cached two minutes, a failure fifteen seconds, an unknown answer not at all; past
the cache's size the least recently asked go first."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

import bot.access as access_module
from bot.access import (
    FAILURE_TTL,
    MEMBER_LIST_LIMIT,
    MEMBERS_TTL,
    MEMBERSHIP_TTL,
    REFRESH_AT,
    TENANT_TTL,
    Access,
    Membership,
)
from graph.directory import DirectoryError, GraphUnavailable, GroupTooLarge, Unavailability

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
    """The helpdesk group's member list (`members`, or the error reading it raises) and the per-person check
    (`answer`); counts both kinds of request."""

    answer: bool | Exception = True
    members: frozenset[str] | Exception = GroupTooLarge(GROUP, MEMBER_LIST_LIMIT)
    asked: list[str] = field(default_factory=list)
    list_reads: int = 0

    async def is_member_of(self, tenant: str, user: str, group: str) -> bool:
        self.asked.append(user)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def group_member_ids(self, tenant: str, group: str, *, at_most: int | None = None,
                               budget_s: float | None = None) -> frozenset[str]:
        self.list_reads += 1
        await asyncio.sleep(0.01)  # Graph takes a while: other turns arrive meanwhile
        if isinstance(self.members, Exception):
            raise self.members
        return self.members


async def settle() -> None:
    """Let a background read of the member list finish."""
    for _ in range(10):
        await asyncio.sleep(0.01)


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


# --- the member list, read once for everyone -----------------------------------------------------------------
async def test_fifty_agents_first_turns_at_once_make_one_member_list_read() -> None:
    agents = frozenset(person(n) for n in range(0, 50, 2))
    directory = Directory(members=agents)
    gate = access(directory, Clock())
    checks = await asyncio.gather(*(gate.check_agent(TENANT, person(n)) for n in range(50)))
    assert directory.list_reads == 1 and directory.asked == []
    assert [c.is_agent for c in checks] == [n % 2 == 0 for n in range(50)]


async def test_the_list_is_read_again_in_the_background_and_a_removed_agent_is_then_refused() -> None:
    directory, clock = Directory(members=frozenset({person(1), person(2)})), Clock()
    gate = access(directory, clock)
    assert (await gate.check_agent(TENANT, person(1))).is_agent
    directory.members = frozenset({person(2)})  # person 1 leaves the helpdesk group
    clock.now += REFRESH_AT
    assert (await gate.check_agent(TENANT, person(1))).is_agent  # nobody waits: the kept list answers meanwhile
    await settle()
    assert directory.list_reads == 2
    assert (await gate.check_agent(TENANT, person(1))).membership is Membership.NOT_AGENT
    assert (await gate.check_agent(TENANT, person(2))).is_agent and directory.asked == []


async def test_a_list_that_cannot_be_read_again_is_kept_no_longer_than_five_minutes() -> None:
    directory, clock = Directory(members=frozenset({person(1)})), Clock()
    gate = access(directory, clock)
    assert (await gate.check_agent(TENANT, person(1))).is_agent
    directory.members, directory.answer = GraphUnavailable("throttled", Unavailability.THROTTLED), False
    clock.now += REFRESH_AT
    assert (await gate.check_agent(TENANT, person(1))).is_agent
    await settle()
    clock.now += MEMBERS_TTL - REFRESH_AT  # the kept list has expired and cannot be read: ask the person
    assert (await gate.check_agent(TENANT, person(1))).membership is Membership.NOT_AGENT
    assert directory.asked == [person(1)]


async def test_an_unreadable_list_falls_back_to_asking_each_person() -> None:
    directory = Directory(members=GraphUnavailable("group members: timed out", Unavailability.TIMED_OUT))
    gate = access(directory, Clock())
    assert (await gate.check_agent(TENANT, person(1))).is_agent
    assert directory.asked == [person(1)]


async def test_a_timed_out_check_after_an_unreadable_list_is_unknown_not_no() -> None:
    directory = Directory(members=GraphUnavailable("group members: timed out", Unavailability.TIMED_OUT),
                          answer=GraphUnavailable("membership check: timed out", Unavailability.TIMED_OUT))
    gate = access(directory, Clock())
    check = await gate.check_agent(TENANT, person(1))
    assert check.membership is Membership.UNKNOWN and check.cause is Unavailability.TIMED_OUT
    directory.answer = True  # Graph answers again: nothing "no" was remembered
    assert (await gate.check_agent(TENANT, person(1))).is_agent


async def test_a_helpdesk_group_too_large_to_read_whole_is_asked_about_per_person_for_five_minutes() -> None:
    directory, clock = Directory(members=GroupTooLarge(GROUP, MEMBER_LIST_LIMIT)), Clock()
    gate = access(directory, clock)
    for n in (1, 2):
        assert (await gate.check_agent(TENANT, person(n))).is_agent
    assert directory.list_reads == 1 and directory.asked == [person(1), person(2)]
    clock.now += MEMBERS_TTL
    await gate.check_agent(TENANT, person(3))
    assert directory.list_reads == 2


# --- asking per person (the list could not be read) --------------------------------------------------------
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
