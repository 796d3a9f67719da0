"""Turns processed once per activity: claimed by id, done in the same transaction as the turn's state."""

from __future__ import annotations

import asyncio

import pytest
from microsoft_agents.hosting.core.state.agent_state import CachedAgentState

from store import ETagConflictError, Store, TurnClaim, activity_key
from store.turns import TURN_LEASE
from tests.store.sql import scalar
from tests.store.support import FakeClock, StoreTarget

KEY = activity_key("msteams", "a:conversation", "1700000000001")


async def _done(store: Store, key: str = KEY) -> bool:
    return bool(await scalar(store, "SELECT count(*) FROM processed_activities WHERE key = :k AND done_at IS NOT NULL",
                             k=key))


async def test_the_same_activity_is_claimed_once(store: Store) -> None:
    assert await store.turns.claim(KEY) is TurnClaim.FIRST
    assert await store.turns.claim(KEY) is TurnClaim.DUPLICATE
    assert await store.turns.claim(activity_key("msteams", "a:conversation", "1700000000002")) is TurnClaim.FIRST


async def test_six_deliveries_at_once_on_two_instances_make_one_turn(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    second = await store_target.open(store_clock)
    try:
        claims = await asyncio.gather(*((store if i % 2 else second).turns.claim(KEY) for i in range(6)))
    finally:
        await second.close()
    assert sorted(c.value for c in claims) == ["duplicate"] * 5 + ["first"]


async def test_a_turn_killed_before_it_finished_can_be_done_by_a_redelivery_after_the_lease(
        store: Store, store_clock: FakeClock) -> None:
    await store.turns.claim(KEY)  # ...and the process dies
    store_clock.advance(seconds=TURN_LEASE.total_seconds() - 1)
    assert await store.turns.claim(KEY) is TurnClaim.DUPLICATE  # still within its lease: maybe just slow
    store_clock.advance(seconds=1)
    assert await store.turns.claim(KEY) is TurnClaim.FIRST


async def test_done_is_committed_with_the_turns_state_and_never_redone(store: Store, store_clock: FakeClock) -> None:
    await store.turns.claim(KEY)
    store.turns.done_with_state(KEY)
    await store.conversation_state.write({"conv": CachedAgentState({"dialog": 1})})

    assert await _done(store)
    store_clock.advance(hours=1)
    assert await store.turns.claim(KEY) is TurnClaim.DUPLICATE


async def test_a_state_write_that_loses_its_etag_check_does_not_mark_the_activity_done(store: Store) -> None:
    await store.conversation_state.write({"conv": CachedAgentState({"dialog": 1})})
    stale = (await store.conversation_state.read(["conv"], target_cls=CachedAgentState))["conv"]
    await store.conversation_state.write({"conv": CachedAgentState({"dialog": 2})})  # another turn won
    await store.turns.claim(KEY)
    store.turns.done_with_state(KEY)

    with pytest.raises(ETagConflictError):
        await store.conversation_state.write({"conv": stale})
    assert not await _done(store)


async def test_old_activities_are_forgotten(store: Store, store_clock: FakeClock) -> None:
    await store.turns.claim(KEY)
    store_clock.advance(days=1)
    assert await store.turns.prune() == 1
