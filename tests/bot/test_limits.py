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


def _agent(i: int) -> Actor:
    """The i-th of six helpdesk agents (one agent starting again cancels their own open session: test_lockouts)."""
    return Actor(TENANT, f"aaaaaaaa-0000-4000-8000-0000000001{i:02d}", f"Agent {i}", personal_chat=True)


async def _begin_six(stores: list[Store], clock: FakeClock, *, one_agent: bool = False) -> list[Outcome | None]:
    """Six agents type `verify Alan Turing` at the same moment (or one agent, six times); the first step each
    verification took."""
    sealer = FernetSealer(FernetSealer.generate_key())
    keepers = [SessionKeeper(StoreRecords(store, clock), sealer, clock) for store in stores]
    loaded = await FakeDirectory(clock).load_context(TENANT, ALAN.id)

    async def begin(i: int) -> Outcome | None:
        chat = SimpleNamespace(channel_id="msteams", conversation=SimpleNamespace(id="a:one-chat"))
        context = SimpleNamespace(turn_state={}, activity=chat if one_agent else None)
        started = await keepers[i % len(keepers)].begin(context, loaded, Policy(),
                                                        actor=AGENT if one_agent else _agent(i), target_id=ALAN.id,
                                                        self_service=False)
        return started.first.decision.outcome if started.first.decision else None

    # One agent's: a start whose session the next start cancelled before its plan was kept fails (SessionClosedError)
    return list(await asyncio.gather(*(begin(i) for i in range(6)), return_exceptions=one_agent))  # type: ignore


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


async def test_one_agent_starting_six_at_once_keeps_one_session_open(store: Store, store_clock: FakeClock) -> None:
    """Each start in a chat cancels the same agent's session left open there (a `verify` typed again): never more
    than one of theirs is open in it, so racing their own starts wins them nothing."""
    await _begin_six([store], store_clock, one_agent=True)
    sessions = await store.sessions.list_for_user(TENANT, ALAN.id)
    assert [s.outcome for s in sessions].count(Outcome.IN_PROGRESS) == 1
