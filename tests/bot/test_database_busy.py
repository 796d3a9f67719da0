"""Database connections are held only while the database works: a turn waiting on Microsoft Graph, or on the turn
before it in its conversation, holds none. And a turn that gets no connection in time is told Watchword is busy,
not that something went wrong: nothing of it was done, the chat's verification is kept, and Teams' redelivery of
the same activity is processed. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from microsoft_agents.activity import Activity, ActivityTypes
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

import store.db
from bot.cards import card_text
from tests.dialogs.fakes import ALAN, MARGARET, TENANT
from tests.dialogs.harness import Chat, Teams, is_question, open_teams
from tests.store.support import FakeClock, StoreTarget, take_every_connection


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def teams(store_target: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[Teams]:
    monkeypatch.setattr(store.db, "POOL_WAIT_S", 0.2)  # a short wait for a connection, read when the store opens
    async with open_teams(store_target, clock) as opened:
        yield opened


async def deliver(chat: Chat, activity_id: str, text: str) -> None:
    """Deliver a message with this activity id, as Teams does (again, when it redelivers)."""
    chat.adapter._gen_id = lambda: activity_id  # type: ignore[method-assign]
    await chat.send(Activity(type=ActivityTypes.message, text=text))


def block_graph_search(teams: Teams) -> tuple[asyncio.Event, asyncio.Event]:
    """Graph's people search waits until released: (searching, release)."""
    searching, release = asyncio.Event(), asyncio.Event()
    search = teams.directory.find_people

    async def slow_search(*args: Any, **kwargs: Any) -> Any:
        searching.set()
        await release.wait()
        return await search(*args, **kwargs)

    teams.directory.find_people = slow_search  # type: ignore[method-assign]
    return searching, release


async def test_turns_waiting_on_graph_and_on_the_conversation_gate_hold_no_database_connection(
        teams: Teams) -> None:
    pool = teams.store.engine.pool
    agent = teams.chat(MARGARET)
    searching, release = block_graph_search(teams)

    first = asyncio.create_task(deliver(agent, "1:search", "verify alan turing"))
    await asyncio.wait_for(searching.wait(), 10)
    second = asyncio.create_task(deliver(agent, "1:next", "help"))  # waits for the first turn of the chat
    await asyncio.sleep(0.5)  # the second turn polls the gate meanwhile

    assert not second.done(), "the second turn waits for the first"
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 20)
    assert any(is_question(card) or "Alan" in card_text(card) for card in agent.cards())


async def test_a_turn_that_gets_no_database_connection_is_told_busy_and_its_redelivery_is_processed(
        teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("help")  # the chat is known: what follows is the verification's own path
    read = teams.store.units.read  # the start's first read: the policy, the person's protection and lockout

    async def no_connection(work: Any) -> Any:  # as a pool with every connection in use answers
        raise PoolTimeoutError("QueuePool limit of size 4 overflow 0 reached, connection timed out, timeout 0.20")

    teams.store.units.read = no_connection  # type: ignore[method-assign]
    await deliver(agent, "1:busy", "verify alan turing")
    teams.store.units.read = read  # type: ignore[method-assign]

    said = "\n".join(card_text(card) for card in agent.cards()[1:])
    assert "Watchword is busy — try again in a few seconds" in said
    assert "went wrong" not in said and "reference" not in said
    await deliver(agent, "1:busy", "verify alan turing")  # Teams' redelivery of the same activity

    assert is_question(agent.last_card()), agent.text()


async def test_a_start_with_every_pooled_connection_taken_is_never_an_error(teams: Teams) -> None:
    """A turn's database work runs on the store's own threads (the SQLite thread; PostgreSQL's, each with its own
    connection: store/units.py) and needs no pooled connection at all: the question comes as ever."""
    agent = teams.chat(MARGARET)
    held = await take_every_connection(teams.store.engine)
    try:
        await deliver(agent, "1:start", "verify alan turing")
    finally:
        for connection in held:
            await connection.close()

    assert "went wrong" not in agent.text()
    assert is_question(agent.last_card()), agent.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session is not None
