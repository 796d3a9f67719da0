"""Teams' redelivery of a turn killed half-way: the turn recorded the answer (committed), then died before its
chat's state was saved; the redelivery (same activity id) runs again from the state before the answer, and the
answer is recorded once: one transcript entry, one audit row (issue 10, item 12)."""

from __future__ import annotations

from typing import Any

import pytest
from microsoft_agents.activity import Activity, ActivityTypes

import dialogs.question_dialog as question_dialog
from bot.cards import card_of
from store import AuditFilter
from store.turns import TURN_LEASE
from tests.dialogs.fakes import ALAN, TENANT
from tests.dialogs.harness import Chat, Teams, find_action, truthful_answer


class Killed(BaseException):
    """The process dies here: nothing after this point of the turn runs."""


async def test_an_answer_redelivered_after_its_turn_was_killed_is_recorded_once(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await agent.say("verify alan turing")
    said = await truthful_answer(teams, agent, ALAN)
    card = next(c for a in reversed(agent.mine()) if (c := card_of(a)) and find_action(c, "Submit answer",
                                                                                          required=False))
    card_id = teams.outbox.origins.get(__import__("json").dumps(card, sort_keys=True))
    data = {**find_action(card, "Submit answer")["data"], "answer": said}  # type: ignore[index]

    def delivery() -> Activity:  # the same message each time: Teams redelivers it with its id
        activity = Activity(type=ActivityTypes.message, value=data, id="1700000000777")
        activity.reply_to_id = card_id
        return activity

    real_replace = question_dialog.QuestionDialog._replace_card

    def killed(self: Any, *args: Any) -> None:  # after the answer was recorded, before the state is saved
        raise Killed

    real_id, inbound = agent.adapter._gen_id, [False]

    def same_id_for_the_message() -> str:  # the harness numbers each inbound activity: this one keeps its id
        if inbound[0]:
            inbound[0] = False
            return "1700000000777"
        return real_id()

    monkeypatch.setattr(agent.adapter, "_gen_id", same_id_for_the_message)
    monkeypatch.setattr(question_dialog.QuestionDialog, "_replace_card", killed)
    inbound[0] = True
    with pytest.raises(Killed):
        await agent.send(delivery())
    monkeypatch.setattr(question_dialog.QuestionDialog, "_replace_card", real_replace)
    teams.clock.advance(seconds=TURN_LEASE.total_seconds())  # the dead turn's claim of the message lapses
    inbound[0] = True
    await agent.send(delivery())

    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert len(await teams.store.sessions.transcript(session.session_id)) == 1
    answered = (await teams.store.audit.query(AuditFilter(action="verification.answer"))).entries
    assert len(answered) == 1
    assert "Question 2" in agent.text()  # the redelivery went on to the next question
