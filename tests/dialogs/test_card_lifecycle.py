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


def summary_line(chat: Chat) -> str:
    """The "N questions asked." line of the newest card that has one."""
    for card in reversed(chat.cards()):
        lines = [line for line in card_text(card).splitlines()
                 if line.endswith(("question asked.", "questions asked."))]
        if lines:
            return lines[-1]
    raise AssertionError(f"no card counts the questions:\n{chat.text()}")


async def test_a_typed_cancel_before_any_answer_counts_no_question(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.say("cancel")
    assert card_text(agent.last_card()).startswith("Cancelled")
    assert "1 question asked" not in agent.text()


async def test_a_cancel_after_two_answers_counts_two(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.answer("no idea")
    await agent.answer("no idea")
    assert is_question(agent.last_card())
    await agent.click("Cancel")
    assert summary_line(agent) == "2 questions asked."


async def test_not_me_after_two_answers_the_stop_card_counts_two(teams: Teams, agent: Chat, alan: Chat) -> None:
    await alan.say("hi")  # Alan can be reached: he is shown a code, with "Not me" beside it
    await agent.say("verify alan turing")
    await agent.click("They can't see a code")
    await agent.answer("no idea")
    await agent.answer("no idea")
    await alan.click("Not me", execute=True)
    await agent.say("Ken Thompson")  # the agent, who has not read the alert yet, types an answer regardless
    stop = card_text(agent.last_card())
    assert stop.startswith("Stop: the account holder says it is not them"), stop
    assert summary_line(agent) == "2 questions asked."


async def test_not_me_before_any_answer_the_stop_card_counts_none(teams: Teams, agent: Chat, alan: Chat) -> None:
    await alan.say("hi")
    await agent.say("verify alan turing")
    await alan.click("Not me", execute=True)
    await agent.click("They can't see a code")  # the code card, still open on the agent's side
    assert card_text(agent.last_card()).startswith("Stop: the account holder says it is not them")
    assert summary_line(agent) == "0 questions asked."
