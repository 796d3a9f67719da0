"""The person being verified is asked in their own Teams chat: "is that you on the call?"."""

from __future__ import annotations

from bot.cards import card_text
from store import AuditFilter, SessionOutcome
from tests.dialogs.fakes import ALAN, KEN, TENANT
from tests.dialogs.harness import Chat, Teams, answer_until_decided, invoke_responses, is_question, truthful_answer


async def start(teams: Teams, agent: Chat, alan: Chat) -> None:
    await alan.say("hi")  # Alan has talked to Watchword before, so it can reach him
    alan.new()
    await agent.say("verify alan turing")


async def test_person_with_a_chat_is_asked_whether_it_is_them(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    asked = card_text(alan.last_card())
    assert "The IT helpdesk is verifying your identity right now. Is that you on the call?" in asked
    assert "[Yes, that's me]" in asked and "[No, it's not me]" in asked
    assert "I've also asked them in Teams" in agent.text()


async def test_person_who_says_not_me_stops_the_verification(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    replies = await alan.click("No, it's not me", execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]).startswith("Thanks: we've stopped it")
    alert = agent.text()
    assert "STOP: they say it is NOT them" in alert and "do not reset anything" in alert
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is SessionOutcome.NOT_VERIFIED
    assert await teams.current_question(agent) is None  # the session's plan went with its end
    await agent.answer("Ken Thompson")  # the agent, who has not read the alert yet, carries on regardless
    decision = card_text(agent.last_card())
    assert decision.startswith("Stop: the account holder says it is not them")
    assert "[Reset password]" not in decision and not is_question(agent.last_card())
    denied = await teams.store.audit.query(AuditFilter(action="out_of_band.answered"))
    assert [(e.outcome, e.actor) for e in denied.entries] == [("denied", f"teams:{ALAN.id}")]


async def test_not_me_after_the_decision_still_blocks_the_reset(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    await answer_until_decided(teams, agent, ALAN)
    await alan.click("No, it's not me")
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.resets == []
    assert "This reset is blocked. Nothing was done." in agent.text()


async def test_only_the_person_asked_can_answer(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    question = alan.last_card()
    ken = teams.chat(KEN)
    await ken.click("No, it's not me", card=question)
    assert "This question isn't for you" in ken.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is SessionOutcome.IN_PROGRESS


async def test_second_answer_is_ignored(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    question = alan.last_card()
    await alan.click("Yes, that's me", card=question)
    await alan.click("No, it's not me", card=question)
    assert "You already answered" in alan.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is SessionOutcome.IN_PROGRESS


async def test_not_me_just_before_the_last_answer_still_stops_it(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    for _ in range(2):
        await agent.answer(await truthful_answer(teams, agent, ALAN))
    await alan.click("No, it's not me")  # while the agent reads out what turns out to be the last question
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Stop: the account holder says it is not them")
    assert "[Reset password]" not in decision and teams.directory.resets == []
