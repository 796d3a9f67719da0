"""The same activity delivered twice (at once or later, on one instance or two) is processed once; a redelivery of one
whose process died, or that was turned away while the chat was busy, is processed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from microsoft_agents.activity import Activity, ActivityTypes

from bot import turn_state
from bot.cards import card_text
from bot.sealing import FernetSealer
from store import AuditFilter, activity_key, conversation_key
from store.turns import OWNER_ALIVE, TURN_LEASE
from tests.dialogs.fakes import ALAN, MARGARET, TENANT
from tests.dialogs.harness import Chat, Teams, open_teams, truthful_answer
from tests.store.support import FakeClock, StoreTarget


@pytest.fixture
async def teams(store_target: StoreTarget, clock: FakeClock) -> AsyncIterator[Teams]:
    async with open_teams(store_target, clock) as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def deliver(chat: Chat, activity_id: str, text: str) -> None:
    """Deliver a message with this activity id, as Teams does (again, when it redelivers)."""
    activity = Activity(type=ActivityTypes.message, text=text)
    chat.adapter._gen_id = lambda: activity_id  # type: ignore[method-assign]
    await chat.send(activity)


async def answers_recorded(teams: Teams) -> int:
    entries = (await teams.store.audit.query(AuditFilter(action="verification.answer"), limit=100)).entries
    return len(entries)


async def test_an_answer_delivered_again_later_is_recorded_once(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    answer = await truthful_answer(teams, agent, ALAN)
    await deliver(agent, "1:redelivered", answer)
    shown = len(agent.mine())
    await deliver(agent, "1:redelivered", answer)  # Teams redelivers the slow turn

    assert await answers_recorded(teams) == 1
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert len(await teams.store.sessions.transcript(session.session_id)) == 1
    assert len(agent.mine()) == shown, "the second delivery showed nothing"
    assert "didn't go through" not in agent.text()


async def test_an_answer_delivered_twice_at_once_on_two_instances_is_recorded_once(
        store_target: StoreTarget, clock: FakeClock) -> None:
    key = FernetSealer.generate_key()  # two instances of one deployment share the state key
    async with open_teams(store_target, clock, key=key) as first, \
            open_teams(store_target, clock, key=key, directory=first.directory, outbox=first.outbox) as second:
        agent = first.chat(MARGARET)
        await agent.say("verify alan turing")
        answer = await truthful_answer(first, agent, ALAN)
        other = second.chat(MARGARET)
        other.adapter._gen_id = agent.adapter._gen_id = lambda: "1:twice"  # type: ignore[method-assign]
        await asyncio.gather(agent.send(Activity(type=ActivityTypes.message, text=answer)),
                             other.send(Activity(type=ActivityTypes.message, text=answer)))

        assert await answers_recorded(first) == 1
        assert card_text(agent.last_card()).startswith("Question 2"), "the answer went through, once"
        assert "didn't go through" not in agent.text()


async def test_a_verify_command_delivered_twice_starts_one_verification(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await deliver(agent, "1:verify", "verify alan turing")
    await deliver(agent, "1:verify", "verify alan turing")

    assert len(await teams.store.sessions.list_for_user(TENANT, ALAN.id)) == 1
    assert "Previous verification cancelled" not in agent.text()


async def test_a_redelivery_after_the_claiming_process_died_is_processed(
        teams: Teams, store_target: StoreTarget, clock: FakeClock) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    answer = await truthful_answer(teams, agent, ALAN)
    dead = await store_target.open(clock)  # another instance claims the activity, takes the chat, and is killed
    try:
        await dead.turns.begin(activity_key("msteams", agent.conversation_id, "1:killed"),
                               conversation_key("msteams", agent.conversation_id), dead.turns.holder())
    finally:
        await dead.close()

    await deliver(agent, "1:killed", answer)  # within its lease: maybe only slow, so not done twice
    assert await answers_recorded(teams) == 0
    clock.advance(seconds=TURN_LEASE.total_seconds())  # nothing renewed it: Teams' redelivery is processed
    await deliver(agent, "1:killed", answer)

    assert await answers_recorded(teams) == 1
    assert card_text(agent.last_card()).startswith("Question 2")
    assert "didn't go through" not in agent.text()


async def test_a_message_that_waited_too_long_for_the_turn_before_is_not_lost(
        teams: Teams, store_target: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turn_state, "WAIT_FOR_CONVERSATION_S", 0.2)
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    answer = await truthful_answer(teams, agent, ALAN)
    other = await store_target.open(clock)  # another instance is in a long turn of this chat (a reset, say)
    try:
        chat, holder = conversation_key("msteams", agent.conversation_id), other.turns.holder()
        await other.turns.begin(None, chat, holder)

        await deliver(agent, "1:waited", answer)
        assert "I'm still working on your previous message" in card_text(agent.last_card())
        assert await answers_recorded(teams) == 0

        await other.turns.release_conversation(chat, holder)  # its turn ends
        await deliver(agent, "1:waited", answer)  # Teams' redelivery (or the agent sending it again)
    finally:
        await other.close()
    assert await answers_recorded(teams) == 1
    assert card_text(agent.last_card()).startswith("Question 2")


async def test_a_message_waiting_on_a_killed_instances_turn_is_answered_once_its_heartbeat_lapsed(
        teams: Teams, store_target: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turn_state, "WAIT_FOR_CONVERSATION_S", 0.2)
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    answer = await truthful_answer(teams, agent, ALAN)
    dead = await store_target.open(clock)  # another instance, alive, takes the chat for a turn and is killed
    try:
        await dead.turns.beat()
        await dead.turns.begin(activity_key("msteams", agent.conversation_id, "1:killed"),
                               conversation_key("msteams", agent.conversation_id), dead.turns.holder())
    finally:
        await dead.close()

    clock.advance(seconds=OWNER_ALIVE.total_seconds())  # its heartbeat lapsed; its turn's lease has not
    await deliver(agent, "1:sent-again", answer)  # the agent, seeing no reply, sends it again

    assert "I'm still working on your previous message" not in agent.text()
    assert await answers_recorded(teams) == 1
    assert card_text(agent.last_card()).startswith("Question 2")
