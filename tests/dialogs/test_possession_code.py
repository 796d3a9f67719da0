"""The one-time code in the person's own Teams: the caller reads it out, the agent types it; "not me" stops all."""

from __future__ import annotations

from bot.cards import card_of, card_text
from store import AuditFilter, TenantAccess
from tests.dialogs.fakes import ALAN, KEN, SECURITY, TENANT
from tests.dialogs.harness import (
    Chat,
    Teams,
    answer_until_decided,
    enter_code,
    invoke_responses,
    is_question,
    shown_code,
    truthful_answer,
)
from verification import Outcome, Policy


async def start(teams: Teams, agent: Chat, alan: Chat, *, security: Chat | None = None) -> None:
    await alan.say("hi")  # Alan has talked to Watchword before, so it can reach him
    alan.new()
    if security is not None:
        await security.say("hi")
        await teams.store.policies.save(TENANT, Policy(security_contact_id=SECURITY.id), "admin@contoso.example",
                                        TenantAccess())
    await agent.say("verify alan turing")


def wrong(code: str) -> str:
    return "".join(str((int(c) + 5) % 10) for c in code.replace(" ", ""))


async def audit(teams: Teams, action: str) -> list[tuple[str, str]]:
    found = await teams.store.audit.query(AuditFilter(action=action))
    return [(e.outcome, e.actor) for e in found.entries]


async def test_person_with_a_chat_is_shown_a_code_and_the_agent_is_asked_for_it(teams: Teams, agent: Chat,
                                                                                   alan: Chat) -> None:
    await start(teams, agent, alan)
    code = shown_code(alan)
    assert len(code.replace(" ", "")) == 6 and "[Not me]" in card_text(alan.last_card())
    assert "Ask for the code in their Teams" in card_text(agent.last_card())
    assert "6-digit code in their own Teams" in agent.text()
    assert code not in agent.text() and code.replace(" ", "") not in agent.text()


async def test_right_code_and_one_right_answer_verify_and_the_card_names_the_factors(teams: Teams, agent: Chat,
                                                                                      alan: Chat) -> None:
    await start(teams, agent, alan)
    await enter_code(agent, shown_code(alan))
    await agent.answer(await truthful_answer(teams, agent, ALAN))
    decision = card_text(agent.last_card())
    assert decision.startswith("Verified"), decision
    assert "Read out the code shown in their own Teams" in decision
    assert "Answered questions only they should know" in decision
    assert "bits" not in decision and "[Reset password]" in decision


async def test_code_typed_in_the_chat_works_too(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    await agent.say(shown_code(alan))
    assert is_question(agent.last_card())


async def test_wrong_code_stops_and_alerts_the_agent_and_security(teams: Teams, agent: Chat, alan: Chat) -> None:
    security = teams.chat(SECURITY)
    await start(teams, agent, alan, security=security)
    await enter_code(agent, wrong(shown_code(alan)))
    decision = card_text(agent.last_card())
    assert decision.startswith("Stop: wrong code") and "[Reset password]" not in decision
    assert "read out a wrong code" in security.text()
    assert await audit(teams, "security.alert") == [("sent", "watchword")]
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.NOT_VERIFIED


async def test_one_misheard_digit_gets_one_more_try(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    code = shown_code(alan).replace(" ", "")
    near = code[:5] + str((int(code[5]) + 1) % 10)
    await enter_code(agent, near)
    assert "Another wrong code stops the verification" in card_text(agent.last_card())
    await enter_code(agent, code)
    assert is_question(agent.last_card())


async def test_caller_who_cannot_see_the_code_is_asked_questions(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    await agent.click("They can't see a code")
    assert is_question(agent.last_card())
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified") and "Read out the code" not in decision


async def test_person_who_says_not_me_stops_the_verification(teams: Teams, agent: Chat, alan: Chat) -> None:
    security = teams.chat(SECURITY)
    await start(teams, agent, alan, security=security)
    replies = await alan.click("Not me", execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]).startswith("Thanks: we've stopped it")
    alert = agent.text()
    assert "STOP: they say it is NOT them" in alert and "do not reset anything" in alert
    assert "was denied" in security.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.NOT_VERIFIED
    await enter_code(agent, shown_code(alan))  # the agent, who has not read the alert yet, carries on regardless
    decision = card_text(agent.last_card())
    assert decision.startswith("Stop: the account holder says it is not them")
    assert "[Reset password]" not in decision and not is_question(agent.last_card())
    assert await audit(teams, "out_of_band.answered") == [("denied", f"teams:{ALAN.id}")]


async def test_not_me_after_the_decision_still_blocks_the_reset(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    await enter_code(agent, shown_code(alan))
    await answer_until_decided(teams, agent, ALAN)
    await alan.click("Not me")
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.resets == []
    assert "This reset is blocked. Nothing was done." in agent.text()


async def test_not_me_after_the_reset_is_told_the_truth_and_alerts(teams: Teams, agent: Chat, alan: Chat) -> None:
    security = teams.chat(SECURITY)
    await start(teams, agent, alan, security=security)
    await enter_code(agent, shown_code(alan))
    await answer_until_decided(teams, agent, ALAN)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.resets == [ALAN.id]
    code_card = next(c for c in reversed(alan.cards()) if card_text(c).startswith("Your code"))
    replies = await alan.click("Not me", card=code_card, execute=True)
    [response] = invoke_responses(replies)
    told = card_text(response["body"]["value"])
    at = teams.clock().strftime("%H:%M")
    assert told.startswith("The password was already reset") and f"reset it at {at}" in told
    assert "ALERT: reset password, caller denied" in agent.text()
    assert "a reset was denied afterwards" in security.text()
    assert await audit(teams, "out_of_band.answered") == [("denied_after_reset", f"teams:{ALAN.id}")]


async def test_not_me_after_a_failed_verification_is_told_it_already_ended(teams: Teams, agent: Chat,
                                                                           alan: Chat) -> None:
    await start(teams, agent, alan)
    await agent.click("They can't see a code")
    await agent.click("Cancel")
    replies = await alan.click("Not me", execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]).startswith("This verification already ended")
    assert await audit(teams, "out_of_band.answered") == [("denied_after_end", f"teams:{ALAN.id}")]


async def test_only_the_person_shown_the_code_can_say_not_me(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    card = alan.last_card()
    ken = teams.chat(KEN)
    await ken.click("Not me", card=card)
    assert "This question isn't for you" in ken.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.IN_PROGRESS


async def test_second_not_me_is_ignored(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    card = alan.last_card()
    await alan.click("Not me", card=card)
    await alan.click("Not me", card=card)
    assert "You already answered" in alan.text()


async def test_the_code_never_reaches_state_audit_or_the_store(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    code = shown_code(alan).replace(" ", "")
    for progress in await teams.sealed_sessions(agent):
        assert code not in str(progress)
    entries = await teams.store.audit.query(AuditFilter())
    assert all(code not in str(e.details) for e in entries.entries)


async def test_after_the_limit_the_code_still_verifies_the_real_person(teams: Teams, agent: Chat, alan: Chat) -> None:
    for _ in range(3):
        await agent.say("verify alan turing")
        await answer_until_decided(teams, agent, ALAN, truthful=False)
    assert await teams.store.lockouts.active_lockout(TENANT, ALAN.id) is not None
    await alan.say("hi")
    await agent.say("verify alan turing")
    assert "questions alone can't verify them now" in agent.text()
    await enter_code(agent, shown_code(alan))
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified") and "Read out the code shown in their own Teams" in decision


async def test_after_the_limit_questions_alone_no_longer_verify(teams: Teams, agent: Chat, alan: Chat) -> None:
    for _ in range(3):
        await agent.say("verify alan turing")
        await answer_until_decided(teams, agent, ALAN, truthful=False)
    await alan.say("hi")
    await agent.say("verify alan turing")
    await agent.click("They can't see a code")
    decision = card_text(agent.last_card())
    assert decision.startswith("Not verified") and "[Reset password]" not in decision


def code_card_updates(teams: Teams, alan: Chat) -> list[str]:
    """What the person's code card was replaced with, newest last."""
    [card_id] = [a.id for a in alan.mine() if card_text(card_of(a)).startswith("Your code for the IT helpdesk")]
    return [card_text(card_of(u)) for u in teams.outbox.updates if u.id == card_id]


async def test_the_code_leaves_the_persons_card_once_the_code_is_used(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    code = shown_code(alan)
    await enter_code(agent, code)
    [ended] = code_card_updates(teams, alan)
    assert "has ended" in ended and "[Not me]" in ended
    assert code not in ended and code.replace(" ", "") not in ended


async def test_the_code_leaves_the_persons_card_when_the_agent_cancels(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    code = shown_code(alan)
    await agent.say("cancel")
    [ended] = code_card_updates(teams, alan)
    assert "has ended" in ended and code not in ended and code.replace(" ", "") not in ended


async def test_not_me_closes_the_agents_open_question_card(teams: Teams, agent: Chat, alan: Chat) -> None:
    await start(teams, agent, alan)
    await enter_code(agent, shown_code(alan))
    [question] = [a for a in agent.mine() if card_of(a) is not None and is_question(card_of(a))]
    await alan.click("Not me", execute=True)
    [closed] = [card_of(u) for u in teams.outbox.updates if u.id == question.id]
    assert card_text(closed).startswith("Verification stopped") and not is_question(closed)
    assert not closed.get("actions") and "Input" not in str(closed)  # nothing left on it to answer with


async def test_the_code_leaves_the_persons_card_when_the_verification_times_out_unattended(
        teams: Teams, agent: Chat, alan: Chat) -> None:
    # Nobody comes back to the chat: the store's sweep ends the session, and the card must not keep showing a code.
    await start(teams, agent, alan)
    code = shown_code(alan)
    teams.clock.advance(hours=2)
    expired = await teams.store.sessions.expire_overdue()
    assert len(expired) == 1
    assert await teams.agent.messenger.close_code_cards(alan.adapter, expired) == 1
    [ended] = code_card_updates(teams, alan)
    assert "has ended" in ended and code not in ended and code.replace(" ", "") not in ended
    assert await teams.agent.messenger.close_code_cards(alan.adapter, expired) == 0  # once



async def test_the_code_goes_to_the_chat_the_person_last_used_when_each_verification_starts(
        teams: Teams, agent: Chat, alan: Chat) -> None:
    """A start reads the person's chat once, for knowing the code can be asked and for sending it right after its
    turn (bot/proactive.py `turn`): read afresh by each turn, so a chat they moved to since is where the next code
    goes."""
    await start(teams, agent, alan)
    assert len(shown_code(alan).replace(" ", "")) == 6
    await agent.say("cancel")
    moved = teams.chat(ALAN, conversation_id=f"a:moved-{ALAN.id}")
    await moved.say("hi")
    moved.new()
    alan.new()
    await agent.say("verify alan turing")
    assert "Your code for the IT helpdesk" in moved.text()
    assert alan.new() == []
