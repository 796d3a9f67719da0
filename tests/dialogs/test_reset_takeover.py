"""A reset's claim taken over from a process taken for dead, and fenced against one that was only stalled.

Killed during a reset, the agent's next try resets DEAD_OWNER_TAKEOVER after the fence (the killed process's
heartbeat has lapsed), not after the 3-minute CLAIM_EXPIRY that could use up the verification's 15-minute window.
A process whose event loop stalled past its heartbeat is taken for dead the same way; when it resumes, it sends no
PATCH, shows no password a later attempt replaced, and records nothing over the new owner's attempt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import dialogs.reset_dialog as reset_dialog
from store import AuditFilter
from tests.dialogs.fakes import ALAN, MARGARET, TEMPORARY_PASSWORD, TENANT, FakeDirectory
from tests.dialogs.harness import Chat, Teams, answer_until_decided
from tests.store.support import StoreTarget
from verification.reset import DEAD_OWNER_TAKEOVER, ResetClaim


class Killed(BaseException):
    """The process dies here: nothing after this point of the turn runs."""


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reset_dialog, "CARD_RETRY_DELAYS", (0.0, 0.0))


async def confirming(teams: Teams, agent: Chat) -> str:
    """Verified, the agent asked to reset, the confirm card shown; this process beating. The session's id."""
    await teams.store.turns.beat()
    await agent.say("verify alan turing")
    assert (await answer_until_decided(teams, agent, ALAN)).startswith("Verified")
    await agent.click("Reset password")
    await teams.store.turns.beat()
    return (await teams.store.sessions.list_for_user(TENANT, ALAN.id, limit=1))[0].session_id


async def reset_rows(teams: Teams) -> list[tuple[str, Any]]:
    entries = (await teams.store.audit.query(AuditFilter(action="password_reset"))).entries
    return [(e.outcome, e.details.get("attempt")) for e in reversed(entries)]


def taken_over(teams: Teams, db: StoreTarget, session_id: str) -> Callable[[], Awaitable[None]]:
    """This process stalls past its heartbeat, and another instance (the agent's redelivered click) takes over."""

    async def take() -> None:
        teams.clock.advance(seconds=DEAD_OWNER_TAKEOVER.total_seconds())
        other = await db.open(teams.clock)
        try:
            await other.turns.beat()
            took = await other.sessions.claim_reset(session_id, by=MARGARET.id, actor=f"teams:{MARGARET.id}")
            assert took.claim is ResetClaim.CLAIMED
        finally:
            await other.close()

    return take


async def test_killed_after_graph_the_agent_resets_again_once_the_heartbeat_says_so_not_after_the_expiry(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await confirming(teams, agent)
    confirm = agent.last_card()
    real_reset = FakeDirectory.reset_password

    async def killed_after_graph(self: FakeDirectory, tenant_id: str, user_id: str, **kw: Any) -> Any:
        await real_reset(self, tenant_id, user_id, **kw)
        raise Killed

    monkeypatch.setattr(FakeDirectory, "reset_password", killed_after_graph)
    with pytest.raises(Killed):
        await agent.click("Yes, reset it")
    monkeypatch.setattr(FakeDirectory, "reset_password", real_reset)

    teams.clock.advance(seconds=DEAD_OWNER_TAKEOVER.total_seconds())  # no heartbeat since: the process is dead
    await agent.click("Yes, reset it", card=confirm)

    assert teams.directory.resets == [ALAN.id, ALAN.id] and TEMPORARY_PASSWORD in agent.text()
    assert await reset_rows(teams) == [("started", 1), ("unknown", 1), ("started", 2), ("success", 2)]


async def test_stalled_before_the_patch_and_taken_over_it_sends_no_patch(
        teams: Teams, agent: Chat, db: StoreTarget) -> None:
    session_id = await confirming(teams, agent)
    teams.directory.before_patch_hook = taken_over(teams, db, session_id)

    await agent.click("Yes, reset it")

    assert teams.directory.resets == []  # the new owner's reset is the only one
    assert "Another reset took over" in agent.text() and TEMPORARY_PASSWORD not in agent.text()
    assert await reset_rows(teams) == [("started", 1), ("unknown", 1), ("started", 2), ("superseded", 1)]


async def test_stalled_after_the_patch_and_taken_over_it_shows_no_password_a_later_reset_replaces(
        teams: Teams, agent: Chat, db: StoreTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = await confirming(teams, agent)
    real_notify = reset_dialog.ResetPasswordDialog._notify
    take = taken_over(teams, db, session_id)

    async def stalls_then_notifies(self: Any, *args: Any) -> Any:
        await take()
        return await real_notify(self, *args)

    monkeypatch.setattr(reset_dialog.ResetPasswordDialog, "_notify", stalls_then_notifies)
    await agent.click("Yes, reset it")

    assert teams.directory.resets == [ALAN.id]
    assert "Another reset took over" in agent.text() and TEMPORARY_PASSWORD not in agent.text()
    assert await reset_rows(teams) == [("started", 1), ("unknown", 1), ("started", 2), ("superseded", 1)]


async def test_taken_over_between_the_check_and_the_card_the_card_is_taken_back(
        teams: Teams, agent: Chat, db: StoreTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = await confirming(teams, agent)
    real_show = reset_dialog.ResetPasswordDialog._show
    take = taken_over(teams, db, session_id)

    async def shows_then_stalls(self: Any, *args: Any, **kwargs: Any) -> Any:
        shown = await real_show(self, *args, **kwargs)
        await take()
        return shown

    monkeypatch.setattr(reset_dialog.ResetPasswordDialog, "_show", shows_then_stalls)
    await agent.click("Yes, reset it")

    text = agent.text()
    assert "Another reset took over" in text and "do not use it" in text
    assert TEMPORARY_PASSWORD not in text  # the card was updated to one without the password
    assert await reset_rows(teams) == [("started", 1), ("unknown", 1), ("started", 2), ("superseded", 1)]


async def test_a_verify_killed_after_its_admission_costs_the_caller_no_attempt(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn is killed after the session was admitted (counted while open) and before the chat's state was saved:
    the agent's `verify` again cancels the session nobody can reach, so three kills do not use up the caller's three
    attempts a day (after which questions alone no longer verify)."""
    from bot.records import StoreRecords
    from verification import Outcome
    from verification.session import Flag

    real_open = StoreRecords.open_session

    async def killed(self: StoreRecords, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(StoreRecords, "open_session", killed)
    for _ in range(3):
        with pytest.raises(Killed):
            await agent.say("verify alan turing")
    monkeypatch.setattr(StoreRecords, "open_session", real_open)

    await agent.say("verify alan turing")
    assert (await answer_until_decided(teams, agent, ALAN)).startswith("Verified")
    sessions = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert sorted(s.outcome.value for s in sessions) == [Outcome.CANCELLED.value] * 3 + [Outcome.VERIFIED.value]
    decided = (await teams.store.audit.query(AuditFilter(action="verification.decided", outcome="verified"))).entries
    assert Flag.AFTER_LIMIT.value not in decided[0].details["flags"]
