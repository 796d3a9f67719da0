"""The day's limit holds under racing: verifications of one person begun at once, on one instance or two."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bot.records import StoreRecords
from bot.sealing import FernetSealer
from dialogs.ports import Actor
from dialogs.session_keeper import SessionKeeper
from store import Store
from tests.dialogs.fakes import ALAN, MARGARET, TENANT, FakeDirectory
from tests.store.support import FakeClock, StoreTarget
from verification import Outcome, Policy

AGENT = Actor(TENANT, MARGARET.id, MARGARET.display_name, personal_chat=True)


async def _begin_six(stores: list[Store], clock: FakeClock) -> list[Outcome | None]:
    """Six agents type `verify Alan Turing` at the same moment; the first step each verification took."""
    sealer = FernetSealer(FernetSealer.generate_key())
    keepers = [SessionKeeper(StoreRecords(store, clock), sealer, clock) for store in stores]
    loaded = await FakeDirectory(clock).load_context(TENANT, ALAN.id)

    async def begin(i: int) -> Outcome | None:
        started = await keepers[i % len(keepers)].begin(SimpleNamespace(turn_state={}), loaded, Policy(),
                                                        actor=AGENT, target_id=ALAN.id, self_service=False)
        return started.first.decision.outcome if started.first.decision else None

    return list(await asyncio.gather(*(begin(i) for i in range(6))))


async def test_six_simultaneous_verifications_of_one_person_start_no_more_sessions_than_the_limit(
        store: Store, store_clock: FakeClock) -> None:
    firsts = await _begin_six([store], store_clock)
    assert firsts.count(None) == Policy().max_attempts_per_day  # asking questions
    assert firsts.count(Outcome.LOCKED_OUT) == 6 - Policy().max_attempts_per_day


async def test_the_limit_holds_when_the_six_are_split_across_two_instances(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    second = await store_target.open(store_clock)
    try:
        firsts = await _begin_six([store, second], store_clock)
    finally:
        await second.close()
    assert firsts.count(None) == Policy().max_attempts_per_day
