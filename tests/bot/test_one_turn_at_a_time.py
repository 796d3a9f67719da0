"""Two different activities of one conversation at once (an answer typed while the card's Submit is clicked, or the
same card clicked in two clients served by two instances): the conversation's turns run one after the other, so
each answer is recorded against the state the other left, nothing is recorded twice, and nobody is told "That
didn't go through". On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from microsoft_agents.activity import Activity, ActivityTypes

from bot.cards import card_text
from bot.sealing import FernetSealer
from store import AuditFilter
from tests.dialogs.fakes import ALAN, MARGARET, TENANT
from tests.dialogs.harness import Chat, Teams, find_action, open_teams, truthful_answer
from tests.store.support import FakeClock, StoreTarget


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def teams(store_target: StoreTarget, clock: FakeClock) -> AsyncIterator[Teams]:
    async with open_teams(store_target, clock) as opened:
        yield opened


async def answers_audited(teams: Teams) -> int:
    return len((await teams.store.audit.query(AuditFilter(action="verification.answer"), limit=100)).entries)


async def transcript(teams: Teams) -> int:
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    return len(await teams.store.sessions.transcript(session.session_id))


async def answers_in_state(teams: Teams, chat: Chat) -> int:
    """How many answers the conversation's saved state (the dialog's own copy of the session) knows."""
    return max(len(progress["transcript"]) for progress in await teams.sealed_sessions(chat))


def submit(chat: Chat, card: dict[str, Any], answer: str) -> Activity:
    action = find_action(card, "Submit answer")
    assert action is not None
    activity = Activity(type=ActivityTypes.message, value={**action["data"], "answer": answer})
    activity.reply_to_id = chat.teams.outbox.origins.get(json.dumps(card, sort_keys=True))
    return activity


async def test_an_answer_typed_while_the_card_is_submitted_is_recorded_against_the_saved_state(
        teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    answer = await truthful_answer(teams, agent, ALAN)
    card = agent.last_card()

    await asyncio.gather(agent.send(Activity(type=ActivityTypes.message, text=answer)),
                         agent.send(submit(agent, card, "Ken Thompson")))

    assert "didn't go through" not in agent.text()
    recorded = await transcript(teams)
    assert recorded == await answers_audited(teams) == await answers_in_state(teams, agent)
    assert recorded >= 1


async def test_two_different_answers_to_one_card_on_two_instances_record_one(
        store_target: StoreTarget, clock: FakeClock) -> None:
    key = FernetSealer.generate_key()  # two instances of one deployment share the state key
    async with open_teams(store_target, clock, key=key) as first, \
            open_teams(store_target, clock, key=key, directory=first.directory, outbox=first.outbox) as second:
        agent = first.chat(MARGARET)
        await agent.say("verify alan turing")
        answer = await truthful_answer(first, agent, ALAN)
        card = agent.last_card()
        other = second.chat(MARGARET)  # the same conversation, its next activity served by the other instance

        await asyncio.gather(agent.send(submit(agent, card, answer)), other.send(submit(other, card, "Ken Thompson")))

        assert "didn't go through" not in agent.text()
        assert await transcript(first) == await answers_audited(first) == await answers_in_state(first, agent) == 1
        assert card_text(agent.last_card()).startswith("Question 2") or "no longer" in agent.text()


async def test_an_answer_turn_reads_and_writes_its_conversation_state_once_and_no_sign_in_state(
        teams: Teams, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    said = await truthful_answer(teams, agent, ALAN)
    storage = teams.store.conversation_state
    reads: list[str] = []
    writes: list[str] = []
    read, write = storage.read, storage.write

    async def counted_read(keys: list[str], **kwargs: Any) -> Any:
        reads.extend(keys)
        return await read(keys, **kwargs)

    async def counted_write(changes: dict[str, Any]) -> None:
        writes.extend(changes)
        await write(changes)

    monkeypatch.setattr(storage, "read", counted_read)
    monkeypatch.setattr(storage, "write", counted_write)
    await agent.answer(said)
    state = f"msteams/conversations/{agent.conversation_id}"
    assert reads.count(state) == 1 and writes.count(state) == 1  # no second save once the gated one was written
    assert not [key for key in reads if key.startswith("auth:")]  # Watchword signs no user in
