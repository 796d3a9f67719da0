"""Signed-out admin console sessions, shared by every instance on the database (store.console_sessions)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import pytest

from store import Store
from tests.store.sql import scalar
from tests.store.support import FakeClock, StoreTarget

SID = "k3J9x-Qp2LmZ8vT0aB7cYw4n"


async def test_an_ended_session_is_ended_and_others_are_not(store: Store, store_clock: FakeClock) -> None:
    sessions = store.console_sessions
    assert not await sessions.is_ended(SID)

    await sessions.end(SID, store_clock.now + timedelta(hours=8))

    assert await sessions.is_ended(SID)
    assert not await sessions.is_ended("another-session-id")


async def test_ending_twice_is_harmless_and_keeps_the_later_time(store: Store, store_clock: FakeClock) -> None:
    later = store_clock.now + timedelta(hours=8)
    await store.console_sessions.end(SID, later)
    await store.console_sessions.end(SID, store_clock.now + timedelta(minutes=1))
    await store.console_sessions.end(SID, later)

    assert await scalar(store, "SELECT count(*) FROM console_signouts") == 1
    store_clock.advance(hours=1)
    assert await store.console_sessions.purge_expired() == 0
    assert await store.console_sessions.is_ended(SID)


async def test_another_process_sees_the_session_ended(
    store: Store, store_target: StoreTarget, store_clock: FakeClock
) -> None:
    await store.console_sessions.end(SID, store_clock.now + timedelta(hours=8))

    other = await store_target.open(store_clock)
    try:
        assert await other.console_sessions.is_ended(SID)
    finally:
        await other.close()


async def test_rows_past_their_time_are_purged_and_ending_purges_too(store: Store, store_clock: FakeClock) -> None:
    sessions = store.console_sessions
    await sessions.end("short", store_clock.now + timedelta(minutes=30))
    await sessions.end("long", store_clock.now + timedelta(hours=8))

    store_clock.advance(minutes=29)
    assert await sessions.purge_expired() == 0
    store_clock.advance(minutes=2)
    assert await sessions.purge_expired() == 1
    assert not await sessions.is_ended("short") and await sessions.is_ended("long")

    await sessions.end("third", store_clock.now + timedelta(hours=8))
    store_clock.advance(hours=8, seconds=1)
    await sessions.end("fourth", store_clock.now + timedelta(hours=8))  # and "long", "third" go

    assert await scalar(store, "SELECT count(*) FROM console_signouts") == 1


async def test_only_a_hash_of_the_session_id_is_stored(store: Store, store_clock: FakeClock) -> None:
    await store.console_sessions.end(SID, store_clock.now + timedelta(hours=8))

    stored = await scalar(store, "SELECT sid_hash FROM console_signouts")

    assert stored == hashlib.sha256(SID.encode()).hexdigest()
    assert SID not in stored


async def test_bad_arguments_are_refused(store: Store, store_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.console_sessions.end(SID, datetime(2026, 11, 26, 20, 0))
    with pytest.raises(ValueError, match="sid"):
        await store.console_sessions.end("", store_clock.now)
    with pytest.raises(ValueError, match="sid"):
        await store.console_sessions.is_ended("x" * 1000)


async def test_a_one_time_value_is_used_once_even_when_two_instances_race(store: Store, store_clock) -> None:
    until = store_clock() + timedelta(minutes=30)
    results = await asyncio.gather(*(store.console_sessions.use_once("consent:abc", until) for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    assert await store.console_sessions.use_once("consent:other", until)
    assert not await store.console_sessions.is_ended("consent:abc")  # never taken for a signed-out session
