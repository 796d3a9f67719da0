"""Turns processed once per activity (claimed by id, done in the same transaction as the turn's state) and one at a
time per conversation (taken with the claim, given up with the state), with leases a dead process lets lapse."""

from __future__ import annotations

import asyncio

import pytest
from microsoft_agents.hosting.core.state.agent_state import CachedAgentState

import store.db as store_db
from store import ETagConflictError, Store, TurnClaim, activity_key, conversation_key
from store.turns import BEAT_EVERY, OWNER_ALIVE, RENEW_EVERY, TURN_LEASE
from tests.store.sql import scalar
from tests.store.support import FakeClock, StoreTarget, take_every_connection

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


CONVERSATION = conversation_key("msteams", "a:conversation")


async def test_a_conversation_runs_one_turn_at_a_time_across_two_instances(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    second = await store_target.open(store_clock)
    try:
        holders = [store.turns.holder(), second.turns.holder(), store.turns.holder()]
        begun = await asyncio.gather(*((store, second, store)[i].turns.begin(
            activity_key("msteams", "a:conversation", f"170000000000{i}"), CONVERSATION, holders[i])
            for i in range(3)))
        assert [claim for claim, _ in begun] == [TurnClaim.FIRST] * 3, "three different activities"
        assert sorted(taken for _, taken in begun) == [False, False, True], "one of them runs"
        [running] = [i for i, (_, taken) in enumerate(begun) if taken]
        waiting = (running + 1) % 3
        owner = (store, second, store)[waiting].turns
        assert not await owner.take_conversation(CONVERSATION, holders[waiting])

        runner = (store, second, store)[running].turns
        runner.done_with_state(None, CONVERSATION, holders[running])  # given up with the state it saves
        await (store, second, store)[running].conversation_state.write({"conv": CachedAgentState({"dialog": 1})})
        assert await owner.take_conversation(CONVERSATION, holders[waiting])
    finally:
        await second.close()


async def test_a_conversation_whose_turn_died_is_taken_over_once_its_lease_lapses(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    dead = await store_target.open(store_clock)
    try:
        assert (await dead.turns.begin(KEY, CONVERSATION, dead.turns.holder()))[1]  # ...and the process dies
    finally:
        await dead.close()
    holder = store.turns.holder()
    store_clock.advance(seconds=TURN_LEASE.total_seconds() - 1)
    assert await store.turns.begin(KEY, CONVERSATION, holder) == (TurnClaim.DUPLICATE, False)
    assert not await store.turns.take_conversation(CONVERSATION, holder)
    store_clock.advance(seconds=1)
    assert await store.turns.begin(KEY, CONVERSATION, holder) == (TurnClaim.FIRST, True)


async def test_a_running_turn_renews_its_leases_so_a_slow_turn_is_not_taken_over(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    other = await store_target.open(store_clock)
    try:
        holder = store.turns.holder()
        assert await store.turns.begin(KEY, CONVERSATION, holder) == (TurnClaim.FIRST, True)
        for _ in range(4):  # a minute of a turn still running: a Graph call that takes its time
            store_clock.advance(seconds=RENEW_EVERY.total_seconds())
            await store.turns.renew(KEY, CONVERSATION, holder)
        assert await other.turns.begin(KEY, CONVERSATION, other.turns.holder()) == (TurnClaim.DUPLICATE, False)
        assert not await other.turns.take_conversation(CONVERSATION, other.turns.holder())
    finally:
        await other.close()


async def test_a_turn_that_gives_up_lets_its_redelivery_be_processed(store: Store) -> None:
    holder = store.turns.holder()
    await store.turns.begin(KEY, CONVERSATION, holder)
    await store.turns.give_up(KEY, CONVERSATION, holder)
    assert await store.turns.begin(KEY, CONVERSATION, store.turns.holder()) == (TurnClaim.FIRST, True)


# --- a dead process's turns are taken over once its heartbeat lapses, well before their leases -----------------------
async def _dies_in_a_turn(store_target: StoreTarget, clock: FakeClock, activity: str = KEY) -> None:
    """A second process that beats, begins a turn (claim and conversation), and is killed."""
    dead = await store_target.open(clock)
    try:
        await dead.turns.beat()
        assert await dead.turns.begin(activity, CONVERSATION, dead.turns.holder()) == (TurnClaim.FIRST, True)
    finally:
        await dead.close()  # ...killed: nothing beats or renews for it any more


async def test_a_conversation_whose_process_died_is_taken_over_once_its_heartbeat_lapses_not_its_lease(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    await _dies_in_a_turn(store_target, store_clock)
    other = activity_key("msteams", "a:conversation", "1700000000009")  # the agent sends another message
    store_clock.advance(seconds=OWNER_ALIVE.total_seconds() - 1)
    assert await store.turns.begin(other, CONVERSATION, store.turns.holder()) == (TurnClaim.FIRST, False)
    store_clock.advance(seconds=1)
    assert OWNER_ALIVE < TURN_LEASE
    assert await store.turns.take_conversation(CONVERSATION, store.turns.holder())


async def test_a_redelivery_of_a_dead_processs_activity_is_processed_once_its_heartbeat_lapses(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    await _dies_in_a_turn(store_target, store_clock)
    store_clock.advance(seconds=OWNER_ALIVE.total_seconds())  # Teams redelivers the same activity
    assert await store.turns.begin(KEY, CONVERSATION, store.turns.holder()) == (TurnClaim.FIRST, True)


async def test_a_process_that_keeps_beating_keeps_its_slow_turn_until_the_lease(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    slow = await store_target.open(store_clock)
    try:
        await slow.turns.beat()
        assert await slow.turns.begin(KEY, CONVERSATION, slow.turns.holder()) == (TurnClaim.FIRST, True)
        for _ in range(3):  # alive, beating; its turn waits on Microsoft (renewed every 5 s, not yet)
            store_clock.advance(seconds=BEAT_EVERY.total_seconds())
            await slow.turns.beat()
        assert await store.turns.begin(KEY, CONVERSATION, store.turns.holder()) == (TurnClaim.DUPLICATE, False)
        assert not await store.turns.take_conversation(CONVERSATION, store.turns.holder())
    finally:
        await slow.close()


async def test_a_process_that_stops_is_no_longer_alive_at_once(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    stopping = await store_target.open(store_clock)
    try:
        await stopping.turns.beat()
        assert (await stopping.turns.begin(KEY, CONVERSATION, stopping.turns.holder()))[1]
        await stopping.turns.retire()  # a clean shutdown with a turn cut short
    finally:
        await stopping.close()
    assert await store.turns.begin(KEY, CONVERSATION, store.turns.holder()) == (TurnClaim.FIRST, True)


async def test_the_heartbeats_of_processes_long_gone_are_forgotten(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    await _dies_in_a_turn(store_target, store_clock)
    store_clock.advance(days=1, seconds=OWNER_ALIVE.total_seconds())
    await store.turns.prune()
    assert await scalar(store, "SELECT count(*) FROM turn_processes") == 0


async def test_a_turn_gives_its_chat_up_and_its_process_beats_with_every_pooled_connection_taken(
        store: Store, store_target: StoreTarget, store_clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds of turns at once can take every pooled connection (PostgreSQL): a heartbeat that then waited for one
    would let the other instances take this live one for dead, and a chat not given up would stay held 15 s."""
    monkeypatch.setattr(store_db, "POOL_WAIT_S", 0.2)  # read when the store opens
    busy = await store_target.open(store_clock)
    held = []
    try:
        holder = busy.turns.holder()
        assert (await busy.turns.begin(KEY, CONVERSATION, holder))[1]
        held = await take_every_connection(busy.engine)
        await busy.turns.beat()
        await busy.turns.renew(KEY, CONVERSATION, holder)
        await busy.turns.give_up(KEY, CONVERSATION, holder)  # told busy: its claim and its chat given up
    finally:
        for connection in held:
            await connection.close()
        await busy.close()
    assert await store.turns.begin(KEY, CONVERSATION, store.turns.holder()) == (TurnClaim.FIRST, True)


# --- fencing: a turn taken over from a process only stalled writes nothing when it resumes (store/units.py) ------
async def test_a_turn_taken_over_from_a_stalled_process_writes_nothing_when_it_resumes(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    from datetime import timedelta

    from store import AuditEvent, TurnTakenOver
    from store.units import TURN_FENCE, Fence

    conversation = conversation_key("msteams", "a:conversation")
    stalled = await store_target.open(store_clock)
    event = AuditEvent(action="verification.answered", outcome="correct", actor="teams:agent")
    try:
        await stalled.turns.beat()
        holder = stalled.turns.holder()
        assert await stalled.turns.begin(KEY, conversation, holder) == (TurnClaim.FIRST, True)
        TURN_FENCE.set(Fence(conversation, holder, asyncio.current_task(), lambda: False))
        await stalled.audit.append_event(event)  # it holds the conversation: its writes land

        async def beside() -> None:  # a task the turn started (work that outlives it) is not fenced
            await stalled.audit.append_event(event)

        store_clock.advance(seconds=OWNER_ALIVE.total_seconds() + 1)  # ...its event loop stalls: taken for dead
        taker = store.turns.holder()
        assert await store.turns.begin(KEY, conversation, taker) == (TurnClaim.FIRST, True)  # the redelivery

        with pytest.raises(TurnTakenOver):  # resumed: its answer's record would land over the new owner's
            await stalled.audit.append_event(event)
        with pytest.raises(TurnTakenOver):
            await stalled.sessions.admit(tenant_id="7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a",
                                         target_user_id="00000000-0000-4000-8000-000000000001", agent_id=None,
                                         required_bits=20, expires_at=store_clock.now + timedelta(minutes=5))
        await asyncio.create_task(beside())
    finally:
        TURN_FENCE.set(None)
        await stalled.close()
    assert await scalar(store, "SELECT count(*) FROM audit_log WHERE action = 'verification.answered'") == 2
    assert await scalar(store, "SELECT count(*) FROM verification_sessions") == 0
