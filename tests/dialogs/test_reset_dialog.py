"""After a verified call: reset once, show the temporary password once, then take it off the chat."""

from __future__ import annotations

from microsoft_agents.activity import Activity, ActivityTypes

from bot.cards import card_of, card_text
from dialogs.ports import Actor
from graph.directory import ResetRefusal
from store import AuditFilter
from tests.dialogs.fakes import ALAN, MARGARET, TEMPORARY_PASSWORD, TENANT
from tests.dialogs.harness import Chat, Teams, answer_until_decided, database_bytes, invoke_responses
from verification.reset import ResetClaim


async def verified(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified")


async def test_password_is_shown_once_then_redacted(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    await agent.click("Reset password")
    assert "Reset this password?" in card_text(agent.last_card())
    await agent.click("Yes, reset it")
    shown = card_text(agent.last_card())
    assert TEMPORARY_PASSWORD in shown and "shown only once" in shown
    assert teams.directory.resets == [ALAN.id]
    password_card_id = next(a.id for a in agent.mine() if TEMPORARY_PASSWORD in card_text(card_of(a)))
    await agent.click("I've passed it on")
    assert TEMPORARY_PASSWORD not in agent.text()
    [update] = {u.id: u for u in teams.outbox.updates if u.id == password_card_id}.values()
    assert "Temporary password: ••••••••" in card_text(card_of(update))
    assert TEMPORARY_PASSWORD not in card_text(card_of(update))


async def test_password_never_reaches_state_audit_or_log(teams: Teams, agent: Chat, db, caplog) -> None:
    caplog.set_level("DEBUG")
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert TEMPORARY_PASSWORD.encode() not in database_bytes(db)
    assert TEMPORARY_PASSWORD not in caplog.text


async def test_second_reset_click_resets_nothing(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    decision = agent.last_card()
    await agent.click("Reset password", card=decision)
    confirm = agent.last_card()
    await agent.click("Yes, reset it", card=confirm)
    await agent.click("I've passed it on")
    await agent.click("Yes, reset it", card=confirm)  # a double click, or the old card clicked again
    await agent.click("Reset password", card=decision)
    assert teams.directory.resets == [ALAN.id]
    assert TEMPORARY_PASSWORD not in agent.text()
    assert "That card is no longer active" in agent.text()


async def test_reset_racing_another_click_resets_nothing_and_offers_it_again(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    sessions = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    margaret = Actor(TENANT, MARGARET.id, MARGARET.display_name, personal_chat=True)
    claim = await teams.agent.ledger.claim(sessions[0].session_id, actor=margaret)  # another instance got there first
    assert claim.claim is ResetClaim.CLAIMED
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.resets == []
    assert "A reset of this password has not finished" in agent.text()
    assert "Reset this password?" in card_text(agent.last_card())


async def test_done_without_reset_changes_nothing(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    await agent.click("Done, no reset")
    assert "No password was reset for Alan Turing." in agent.text()
    assert teams.directory.resets == []


async def test_cancel_at_the_confirmation_changes_nothing(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Cancel")
    assert teams.directory.resets == [] and "Nothing was changed for Alan Turing." in agent.text()


async def test_reset_refused_by_microsoft_says_why(teams: Teams, agent: Chat) -> None:
    teams.directory.refuse_reset = ResetRefusal.APP_LACKS_ROLE
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    text = agent.text()
    assert "Microsoft 365 refused the reset" in text and "holds no directory role" in text
    page = await teams.store.audit.query(AuditFilter(action="password_reset"))
    assert page.entries[0].outcome == "refused" and page.entries[0].details["reason"] == "app_lacks_directory_role"


async def test_person_is_told_their_password_was_reset(teams: Teams, agent: Chat, alan: Chat) -> None:
    await alan.say("hi")  # Alan has a chat with Watchword: he can be told
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    told = card_text(alan.last_card())
    assert told.startswith("Your password was reset\nYour password was reset by the IT helpdesk at 12:00 UTC")
    assert "If this wasn't you, contact security." in told
    assert TEMPORARY_PASSWORD not in alan.text()


async def test_action_execute_gets_the_replacement_card_in_the_invoke_response(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await answer_until_decided(teams, agent, ALAN, execute=True)
    replies = await agent.click("Reset password", execute=True)
    [response] = invoke_responses(replies)
    assert response["status"] == 200 and response["body"]["type"] == "application/vnd.microsoft.card.adaptive"
    assert card_text(response["body"]["value"]).startswith("Verified")  # the decision, without its buttons
    await agent.click("Yes, reset it", execute=True)
    replies = await agent.click("I've passed it on", execute=True)
    [response] = invoke_responses(replies)
    assert "••••••••" in card_text(response["body"]["value"])
    assert teams.directory.resets == [ALAN.id] and TEMPORARY_PASSWORD not in agent.text()


async def test_password_is_redacted_even_when_the_agent_moves_on(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert TEMPORARY_PASSWORD in agent.text()
    await agent.say("verify ada lovelace")  # never clicked "I've passed it on"
    assert TEMPORARY_PASSWORD not in agent.text()
    assert "removed from this chat" in agent.text()


# --- telling the person who has no chat with Watchword --------------------------------------------------------------
async def test_person_without_a_chat_gets_watchword_installed_and_is_told(teams: Teams, agent: Chat) -> None:
    teams.directory.can_install = True
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.installs == [ALAN.id]
    installed = teams.chat(ALAN, conversation_id=f"19:{ALAN.id}_watchword@unq.gbl.spaces")
    assert card_text(installed.last_card()).startswith("Your password was reset")
    assert "couldn't tell" not in agent.text()
    notices = await teams.store.audit.query(AuditFilter(action="password_reset.notice"))
    assert [e.outcome for e in notices.entries] == ["installed"]


async def test_person_who_cannot_be_reached_is_told_by_the_agent_another_way(teams: Teams, agent: Chat) -> None:
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    card = agent.text()
    assert "I couldn't tell Alan Turing in Teams that their password was reset" in card
    assert "Tell them another way" in card
    notices = await teams.store.audit.query(AuditFilter(action="password_reset.notice"))
    assert [e.outcome for e in notices.entries] == ["not_reached"]


async def test_person_with_a_chat_is_told_there_without_installing(teams: Teams, agent: Chat, alan: Chat) -> None:
    teams.directory.can_install = True
    await alan.say("hi")
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.installs == []
    notices = await teams.store.audit.query(AuditFilter(action="password_reset.notice"))
    assert [e.outcome for e in notices.entries] == ["delivered"]


# --- times in the person's own time zone -----------------------------------------------------------------------------
async def test_the_reset_notice_gives_the_time_in_the_persons_own_time_zone(teams: Teams, agent: Chat,
                                                                           alan: Chat) -> None:
    await alan.send(Activity(type=ActivityTypes.message, text="hi", local_timezone="Europe/Paris"))  # Teams sends it
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    told = card_text(alan.last_card())
    assert "Your password was reset by the IT helpdesk at 13:00 CET on" in told, told


async def test_the_code_card_gives_times_in_the_persons_own_time_zone(teams: Teams, agent: Chat, alan: Chat) -> None:
    await alan.send(Activity(type=ActivityTypes.message, text="hi", local_timezone="America/New_York"))
    await agent.say("verify alan turing")
    assert "Started 07:00 EST by Margaret Hamilton" in card_text(alan.last_card())
    await agent.say("cancel")
    [ended] = [text for u in teams.outbox.updates if "has ended" in (text := card_text(card_of(u)))]
    assert "This verification has ended (07:00 EST)" in ended


async def test_a_person_whose_zone_is_unknown_is_told_the_time_in_utc_with_the_zone_named(
        teams: Teams, agent: Chat, alan: Chat) -> None:
    await alan.say("hi")  # no localTimezone
    await verified(teams, agent)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert "at 12:00 UTC on" in card_text(alan.last_card())
