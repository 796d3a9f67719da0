"""The worst day for a reset: killed at each point, a database that drops the outcome's record, a channel that
refuses the password card, Graph that never answers. Each time the reset is recorded, the agent is told the
truth, and the same verified session can reset again with a new password. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

import dialogs.reset_dialog as reset_dialog
from bot.cards import card_text
from graph.directory import ResetOutcomeUnknown, TemporaryPassword, Unavailability
from store import AuditFilter
from tests.dialogs.fakes import ALAN, TEMPORARY_PASSWORD, TENANT, FakeDirectory
from tests.dialogs.harness import Chat, Teams, answer_until_decided, open_teams, truthful_answer
from tests.store.support import FakeClock, StoreTarget
from verification.reset import CLAIM_EXPIRY


class Killed(BaseException):
    """The process dies here: nothing after this point of the turn runs, and nothing catches it."""


@pytest.fixture
async def teams(store_target: StoreTarget, clock: FakeClock) -> AsyncIterator[Teams]:
    async with open_teams(store_target, clock) as opened:
        yield opened


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reset_dialog, "CARD_RETRY_DELAYS", (0.0, 0.0))


async def verified_and_confirming(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    assert (await answer_until_decided(teams, agent, ALAN)).startswith("Verified")
    await agent.click("Reset password")


async def reset_rows(teams: Teams) -> list[tuple[str, Any]]:
    entries = (await teams.store.audit.query(AuditFilter(action="password_reset"))).entries
    return [(e.outcome, e.details.get("attempt")) for e in reversed(entries)]


async def click_killed(chat: Chat, title: str) -> None:
    with pytest.raises(Killed):
        await chat.click(title)


async def test_killed_between_the_claim_and_graph_the_claim_expires_and_the_reset_can_be_done(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await verified_and_confirming(teams, agent)
    confirm = agent.last_card()
    real_reset = FakeDirectory.reset_password

    async def killed_before_graph(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        raise Killed

    monkeypatch.setattr(FakeDirectory, "reset_password", killed_before_graph)
    await click_killed(agent, "Yes, reset it")
    monkeypatch.setattr(FakeDirectory, "reset_password", real_reset)

    await agent.click("Yes, reset it", card=confirm)  # the agent clicks again at once: it is not finished yet
    assert "A reset of this password has not finished" in agent.text() and teams.directory.resets == []
    teams.clock.advance(seconds=CLAIM_EXPIRY.total_seconds())
    await agent.click("Yes, reset it")

    assert teams.directory.resets == [ALAN.id] and TEMPORARY_PASSWORD in agent.text()
    assert await reset_rows(teams) == [("started", 1), ("refused_busy", 1), ("unknown", 1), ("started", 2),
                                       ("success", 2)]


async def test_killed_right_after_graph_changed_the_password_it_is_recorded_unknown_and_reset_again(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await verified_and_confirming(teams, agent)
    confirm = agent.last_card()
    real_reset = FakeDirectory.reset_password

    async def killed_after_graph(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        await real_reset(self, tenant_id, user_id)  # Entra took the new password...
        raise Killed  # ...and the process died before anything else

    monkeypatch.setattr(FakeDirectory, "reset_password", killed_after_graph)
    await click_killed(agent, "Yes, reset it")
    monkeypatch.setattr(FakeDirectory, "reset_password", real_reset)
    assert await reset_rows(teams) == [("started", 1)]  # written ahead: the intent is on record

    teams.clock.advance(seconds=CLAIM_EXPIRY.total_seconds())
    await agent.click("Yes, reset it", card=confirm)
    assert teams.directory.resets == [ALAN.id, ALAN.id] and TEMPORARY_PASSWORD in agent.text()
    assert await reset_rows(teams) == [("started", 1), ("unknown", 1), ("started", 2), ("success", 2)]
    assert "being reset already" not in agent.text()


async def test_killed_before_the_password_card_the_agent_can_reset_again_and_gets_a_password(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while the person is told or the card is sent: the password changed but nobody saw it. The agent must
    be able to reset again with a new one, never be told "already reset. Nothing more was done"."""
    await verified_and_confirming(teams, agent)
    confirm = agent.last_card()

    async def killed_on_the_card(self: Any, context: Any, password: Any, name: str, ref: str, **card: Any) -> Any:
        raise Killed

    monkeypatch.setattr(reset_dialog.ResetPasswordDialog, "_show", killed_on_the_card)
    await click_killed(agent, "Yes, reset it")
    monkeypatch.undo()
    await agent.click("Yes, reset it", card=confirm)  # at once: it has not finished as far as anyone knows
    assert "A reset of this password has not finished" in agent.text()
    teams.clock.advance(seconds=CLAIM_EXPIRY.total_seconds())
    await agent.click("Yes, reset it")

    assert teams.directory.resets == [ALAN.id, ALAN.id] and TEMPORARY_PASSWORD in agent.text()
    assert "already reset" not in agent.text()
    assert await reset_rows(teams) == [("started", 1), ("refused_busy", 1), ("unknown", 1), ("started", 2),
                                       ("success", 2)]


async def test_the_outcomes_record_failing_after_graph_changed_the_password_is_told_truthfully(
        teams: Teams, agent: Chat, alan: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await alan.say("hi")
    await verified_and_confirming(teams, agent)
    audit, real_append = teams.store.audit, teams.store.audit.append_in

    def connection_lost(conn: Any, event: Any) -> Any:
        if event.action == "password_reset" and event.outcome == "success":
            raise OperationalError("UPDATE verification_sessions", {}, ConnectionResetError("connection lost"))
        return real_append(conn, event)

    monkeypatch.setattr(audit, "append_in", connection_lost)
    monkeypatch.setattr("bot.ledger.SETTLE_RETRY_DELAYS", (0.0, 0.0))
    await agent.click("Yes, reset it")

    text = agent.text()
    assert TEMPORARY_PASSWORD in text, "the password was changed: the agent must have it"
    assert "The reset could not be recorded" in text and "Tell your security team" in text
    assert "Nothing more will happen" not in text and "nothing was changed" not in text.lower()
    assert card_text(alan.last_card()).startswith("Your password was reset")
    assert await reset_rows(teams) == [("started", 1)]  # the intent, written ahead, is on record


async def test_a_database_gone_after_graph_changed_the_password_never_says_nothing_happened(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await verified_and_confirming(teams, agent)
    monkeypatch.setattr("bot.ledger.SETTLE_RETRY_DELAYS", (0.0, 0.0))
    real_write = teams.store.units.write

    async def database_gone(work: Any) -> Any:
        if teams.directory.resets:  # from the moment Entra took the password, nothing can be written
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))
        return await real_write(work)

    monkeypatch.setattr(teams.store.units, "write", database_gone)
    await agent.click("Yes, reset it")

    text = agent.text()
    assert TEMPORARY_PASSWORD in text and "nothing more will happen" not in text.lower()
    assert "The password may have been changed before this went wrong" in text


async def test_a_password_card_the_channel_refuses_is_unknown_to_the_agent_and_can_be_reset_again(
        teams: Teams, agent: Chat, alan: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await alan.say("hi")
    await verified_and_confirming(teams, agent)
    real_send = type(agent.adapter).send_activities

    async def teams_refuses_the_password(self: Any, context: Any, activities: list[Any]) -> Any:
        if any(TEMPORARY_PASSWORD in card_text(a.attachments[0].content) for a in activities if a.attachments):
            raise RuntimeError("502 Bad Gateway from the channel")
        return await real_send(self, context, activities)

    monkeypatch.setattr(type(agent.adapter), "send_activities", teams_refuses_the_password)
    await agent.click("Yes, reset it")

    text = agent.text()
    assert "The password could not be shown" in text and "Reset again to set a new one" in text
    assert card_text(alan.last_card()).startswith("Your password was reset"), "the person is told all the same"
    assert "Reset this password?" in card_text(agent.last_card())
    assert await reset_rows(teams) == [("started", 1), ("success", 1), ("not_delivered", 1)]

    monkeypatch.setattr(type(agent.adapter), "send_activities", real_send)
    await agent.click("Yes, reset it")
    assert teams.directory.resets == [ALAN.id, ALAN.id] and TEMPORARY_PASSWORD in agent.text()


async def test_graph_not_answering_is_reported_as_unknown_and_can_be_reset_again(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await verified_and_confirming(teams, agent)

    async def timed_out(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        raise ResetOutcomeUnknown("password reset: timed out; the password may or may not have changed",
                                  Unavailability.TIMED_OUT)

    with monkeypatch.context() as patched:
        patched.setattr(FakeDirectory, "reset_password", timed_out)
        await agent.click("Yes, reset it")
    assert "The reset's outcome is unknown" in agent.text() and "may have been changed" in agent.text()

    await agent.click("Yes, reset it")
    assert teams.directory.resets == [ALAN.id] and TEMPORARY_PASSWORD in agent.text()
    assert [o for o, _ in await reset_rows(teams)] == ["started", "unknown", "started", "success"]


async def test_cancelling_after_an_unknown_outcome_does_not_claim_nothing_changed(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await verified_and_confirming(teams, agent)

    async def timed_out(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        raise ResetOutcomeUnknown("password reset: timed out", Unavailability.TIMED_OUT)

    monkeypatch.setattr(FakeDirectory, "reset_password", timed_out)
    await agent.click("Yes, reset it")
    await agent.click("Cancel")
    assert "No new reset" in agent.text() and "Nothing was changed for Alan Turing" not in agent.text()


async def test_killed_right_after_the_deciding_answer_the_agent_can_still_reset(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await agent.say("verify alan turing")
    records = teams.agent.records
    real_close = type(records).close_session

    async def killed_after_deciding(self: Any, *args: Any, **kwargs: Any) -> bool:
        await real_close(self, *args, **kwargs)  # the decision is in the store...
        raise Killed  # ...and the conversation state that follows it is never saved

    for _ in range(12):
        answer = await truthful_answer(teams, agent, ALAN)
        monkeypatch.setattr(type(records), "close_session", killed_after_deciding)
        try:
            await agent.answer(answer)
        except Killed:
            break
        finally:
            monkeypatch.setattr(type(records), "close_session", real_close)
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome.value == "verified"

    await agent.answer("Grace Hopper")  # the agent, seeing nothing happen, sends the answer again
    assert "can't be continued" not in agent.text()
    assert card_text(agent.last_card()).startswith("Verified\nAlan Turing")
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert teams.directory.resets == [ALAN.id] and TEMPORARY_PASSWORD in agent.text()



async def test_the_person_is_told_a_reset_was_requested_when_its_outcome_is_unknown(
        teams: Teams, agent: Chat, alan: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await alan.say("hi")  # Alan has a chat with Watchword: he can be told
    await verified_and_confirming(teams, agent)

    async def timed_out(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        raise ResetOutcomeUnknown("password reset: timed out", Unavailability.TIMED_OUT)

    monkeypatch.setattr(FakeDirectory, "reset_password", timed_out)
    await agent.click("Yes, reset it")

    told = card_text(alan.last_card())
    assert told.startswith("A password reset was requested for your account"), told
    assert "If your password no longer works, this is why" in told and "tell security" in told
    assert "12:00 UTC" in told
    notices = (await teams.store.audit.query(AuditFilter(action="password_reset.notice"))).entries
    assert [(e.outcome, e.details.get("reset")) for e in notices] == [("delivered", "unknown")]
    assert "Alan Turing was told in Teams" in agent.text()


async def test_an_unknown_outcome_the_person_cannot_be_told_of_asks_the_agent_to_tell_them(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await verified_and_confirming(teams, agent)  # Alan has no chat with Watchword, and none can be made

    async def dropped(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        raise ResetOutcomeUnknown("password reset: connection dropped", Unavailability.UNREACHABLE)

    monkeypatch.setattr(FakeDirectory, "reset_password", dropped)
    await agent.click("Yes, reset it")

    assert "I couldn't tell Alan Turing in Teams that a reset was requested" in agent.text()
    notices = (await teams.store.audit.query(AuditFilter(action="password_reset.notice"))).entries
    assert [(e.outcome, e.details.get("reset")) for e in notices] == [("not_reached", "unknown")]


async def test_killed_right_after_graph_changed_the_password_the_sweep_tells_the_person_once(
        teams: Teams, store_target: StoreTarget, agent: Chat, alan: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await alan.say("hi")
    await verified_and_confirming(teams, agent)
    confirm = agent.last_card()
    real_reset = FakeDirectory.reset_password

    async def killed_after_graph(self: FakeDirectory, tenant_id: str, user_id: str, **_: Any) -> TemporaryPassword:
        await real_reset(self, tenant_id, user_id)
        raise Killed

    monkeypatch.setattr(FakeDirectory, "reset_password", killed_after_graph)
    await click_killed(agent, "Yes, reset it")
    told_before = len(alan.cards())
    assert await teams.agent.messenger.tell_of_abandoned_resets(alan.adapter) == 0  # the claim has not expired

    teams.clock.advance(seconds=CLAIM_EXPIRY.total_seconds())
    async with open_teams(store_target, teams.clock, outbox=teams.outbox) as other_instance:
        swept = [await other_instance.agent.messenger.tell_of_abandoned_resets(alan.adapter),
                 await teams.agent.messenger.tell_of_abandoned_resets(alan.adapter),
                 await other_instance.agent.messenger.tell_of_abandoned_resets(alan.adapter)]

    assert swept == [1, 0, 0]
    notices = alan.cards()[told_before:]
    assert [card_text(card).split("\n")[0] for card in notices] == ["A password reset was requested for your account"]
    assert "If you didn't call the helpdesk, tell security" in card_text(notices[0])
    assert await reset_rows(teams) == [("started", 1), ("unknown", 1)]
    [told] = (await teams.store.audit.query(AuditFilter(action="password_reset.notice"))).entries
    assert (told.outcome, told.subject, told.details["reset"]) == ("delivered", ALAN.id, "unknown")

    monkeypatch.setattr(FakeDirectory, "reset_password", real_reset)
    await agent.click("Yes, reset it", card=confirm)  # the agent can still reset again, for a password they see
    assert teams.directory.resets == [ALAN.id, ALAN.id] and TEMPORARY_PASSWORD in agent.text()
