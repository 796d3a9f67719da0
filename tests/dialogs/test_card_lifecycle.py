"""What the agent reads when a verification ends: counts that match what was asked, and a finished verification
(or a reset already done) never called cancelled."""

from __future__ import annotations

from bot.cards import card_text
from tests.dialogs.fakes import ALAN, TEMPORARY_PASSWORD
from tests.dialogs.harness import Chat, Teams, answer_until_decided, is_question


async def test_cancel_before_any_answer_says_no_question_was_asked(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    assert is_question(agent.last_card())
    await agent.click("Cancel")
    text = agent.text()
    assert "0 questions asked." in text and "1 question asked" not in text


async def test_a_verified_call_left_at_its_decision_card_is_closed_not_cancelled(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    assert (await answer_until_decided(teams, agent, ALAN)).startswith("Verified")
    await agent.say("verify alan turing")
    text = agent.text()
    assert "Previous verification closed" in text and "Verified: Alan Turing: that result stands." in text
    assert "Previous verification cancelled" not in text


async def test_verify_after_a_reset_says_the_reset_stands(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    assert (await answer_until_decided(teams, agent, ALAN)).startswith("Verified")
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    await agent.say("verify alan turing")  # the password card was never acknowledged
    text = agent.text()
    assert "Verified: Alan Turing, password reset: that result stands." in text
    assert "cancelled" not in text.lower() and TEMPORARY_PASSWORD not in text


async def test_cancel_while_questions_are_asked_still_says_cancelled(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.say("cancel")
    assert card_text(agent.last_card()).startswith("Cancelled")
