"""Attempts in a rolling 24-hour window, and lockouts until a time."""

from __future__ import annotations

from datetime import timedelta, timezone

from store import Store
from tests.store.support import FakeClock

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
OTHER_TENANT = "9e8d7c6b-5a49-4838-a271-605f4e3d2c1b"
USER = "00000000-0000-4000-8000-000000000001"
OTHER_USER = "00000000-0000-4000-8000-000000000002"


async def test_attempts_in_the_last_24h_are_counted(store: Store, store_clock: FakeClock) -> None:
    for _ in range(3):
        await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")
        store_clock.advance(hours=2)

    assert await store.lockouts.count_recent_attempts(TENANT, USER) == 3


async def test_attempts_older_than_24h_do_not_count(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")
    store_clock.advance(hours=23)
    await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")

    store_clock.advance(hours=1)  # the first attempt is now exactly 24 hours old
    assert await store.lockouts.count_recent_attempts(TENANT, USER) == 1
    store_clock.advance(hours=23)
    assert await store.lockouts.count_recent_attempts(TENANT, USER) == 0


async def test_attempts_are_counted_per_tenant_and_user(store: Store) -> None:
    await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")
    await store.lockouts.record_attempt(TENANT, OTHER_USER, outcome="not_verified")
    await store.lockouts.record_attempt(OTHER_TENANT, USER, outcome="not_verified")

    assert await store.lockouts.count_recent_attempts(TENANT, USER) == 1


async def test_window_can_be_chosen(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")
    store_clock.advance(hours=2)

    assert await store.lockouts.count_recent_attempts(TENANT, USER, window=timedelta(hours=1)) == 0


async def test_lockout_is_active_until_its_time(store: Store, store_clock: FakeClock) -> None:
    until = store_clock.now + timedelta(hours=1)
    await store.lockouts.lock(TENANT, USER, until=until, reason="too_many_attempts")

    active = await store.lockouts.active_lockout(TENANT, USER)
    assert active is not None and active.locked_until == until and active.reason == "too_many_attempts"
    assert await store.lockouts.active_lockout(TENANT, OTHER_USER) is None

    store_clock.advance(hours=1)
    assert await store.lockouts.active_lockout(TENANT, USER) is None


async def test_relocking_replaces_the_lockout(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=1), reason="a")
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=5), reason="b")

    active = await store.lockouts.active_lockout(TENANT, USER)

    assert active is not None and active.reason == "b"
    assert active.locked_until == store_clock.now + timedelta(hours=5)


async def test_unlock_lifts_a_lockout(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=1), reason="a")

    assert await store.lockouts.unlock(TENANT, USER) is True
    assert await store.lockouts.active_lockout(TENANT, USER) is None
    assert await store.lockouts.unlock(TENANT, USER) is False


async def test_lockout_time_in_another_zone_comes_back_as_utc(store: Store, store_clock: FakeClock) -> None:
    plus_two = timezone(timedelta(hours=2))
    until = (store_clock.now + timedelta(hours=1)).astimezone(plus_two)

    await store.lockouts.lock(TENANT, USER, until=until, reason="a")

    active = await store.lockouts.active_lockout(TENANT, USER)
    assert active is not None and active.locked_until == until
    assert active.locked_until.utcoffset() == timedelta(0)


async def test_prune_removes_old_attempts_and_expired_lockouts(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=1), reason="a")
    store_clock.advance(hours=25)
    await store.lockouts.record_attempt(TENANT, USER, outcome="not_verified")

    assert await store.lockouts.prune() == 1
    assert await store.lockouts.count_recent_attempts(TENANT, USER, window=timedelta(days=30)) == 1
    assert await store.lockouts.unlock(TENANT, USER) is False, "the expired lockout was removed"
