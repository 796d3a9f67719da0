"""In a group chat only the agent who started a verification may answer or cancel it; the others are told so."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cards import card_text
from store import AuditFilter
from tests.dialogs.fakes import ALAN, KEN, MARGARET
from tests.dialogs.harness import Chat, Teams, answer_until_decided, invoke_responses, open_teams, truthful_answer
from tests.store.support import FakeClock, sqlite_copy

GROUP = "19:helpdesk-room@thread.v2"


@pytest.fixture
async def teams(tmp_path: Path, sqlite_template: Path):
    async with open_teams(sqlite_copy(sqlite_template, tmp_path), FakeClock()) as opened:
        yield opened


@pytest.fixture
async def room(teams: Teams) -> tuple[Chat, Chat]:
    """Margaret (who verifies Alan) and Ken, another helpdesk agent, in the same group chat."""
    margaret = teams.chat(MARGARET, conversation_type="groupChat", conversation_id=GROUP)
    ken = teams.chat(KEN, conversation_type="groupChat", conversation_id=GROUP)
    await margaret.say("verify alan turing")
    assert await teams.current_question(margaret) is not None
    ken.new()
    return margaret, ken


async def refusals(teams: Teams) -> list:
    page = await teams.store.audit.query(AuditFilter(action="verification.refused", outcome="not_the_starter"))
    return list(page.entries)


async def test_another_member_cannot_answer_the_question(teams: Teams, room: tuple[Chat, Chat]) -> None:
    margaret, ken = room
    before = await teams.current_question(margaret)

    replies = await ken.answer(await truthful_answer(teams, margaret, ALAN))

    text = "\n".join(card_text(r.attachments[0].content) for r in replies if r.attachments)
    assert "Only Margaret Hamilton can answer or cancel" in text and "1:1 chat" in text
    assert await teams.current_question(margaret) == before  # nothing was recorded for the question
    [entry] = await refusals(teams)
    assert entry.actor == f"teams:{KEN.id}" and entry.details["attempted"] == "answer"
    assert "verified" in (await answer_until_decided(teams, margaret, ALAN)).lower()  # she carries on


async def test_another_member_cannot_answer_with_an_execute_card_either(teams: Teams,
                                                                        room: tuple[Chat, Chat]) -> None:
    margaret, ken = room
    before = await teams.current_question(margaret)

    replies = await ken.answer(await truthful_answer(teams, margaret, ALAN), execute=True)

    [response] = invoke_responses(replies)
    body = response["body"]
    # a message to the one who clicked: the question card stays as it is for everyone else
    assert body["type"] == "application/vnd.microsoft.activity.message" and "Only Margaret Hamilton" in body["value"]
    assert await teams.current_question(margaret) == before


@pytest.mark.parametrize("typed", ["cancel", "verify grace hopper", "some answer"])
async def test_another_member_cannot_cancel_or_replace_it(teams: Teams, room: tuple[Chat, Chat], typed: str) -> None:
    margaret, ken = room
    before = await teams.current_question(margaret)

    await ken.say(typed)

    assert "Only Margaret Hamilton" in ken.text()
    assert await teams.current_question(margaret) == before
    [entry] = await refusals(teams)
    assert entry.details["attempted"] == ("cancel" if typed == "cancel" else
                                          "verify" if typed.startswith("verify") else "answer")


async def test_help_is_still_answered_for_anyone(teams: Teams, room: tuple[Chat, Chat]) -> None:
    margaret, ken = room
    await ken.say("help")
    assert "Only Margaret Hamilton" not in ken.text() and await refusals(teams) == []


async def test_the_starter_may_cancel(teams: Teams, room: tuple[Chat, Chat]) -> None:
    margaret, _ = room
    await margaret.say("cancel")
    assert "Cancelled" in margaret.text() and await teams.current_question(margaret) is None


async def test_once_it_is_over_anyone_may_start_one(teams: Teams, room: tuple[Chat, Chat]) -> None:
    margaret, ken = room
    await margaret.say("cancel")
    await ken.say("verify alan turing")
    assert await teams.current_question(ken) is not None and await refusals(teams) == []
