"""Sign-in logs that arrive after the first question (issue 9 item 4): the agent starts asking at once, and
the decision weighs the risk the logs show, or, when they never come, the policy's "sign-ins unavailable" rule.
When the questions are done before the logs (issue 11: the tenant's reports budget serves 30 people a minute), the
answer's turn says so at once and the decision follows in the same chat when the risk is known."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from bot.cards import card_text
from bot.sealing import FernetSealer
from dialogs.session_keeper import RISK_DEADLINE
from graph.directory import SignInRead
from store import TenantAccess
from tests.dialogs.fakes import ALAN, GRACE, MARGARET, TENANT
from tests.dialogs.harness import (
    CHECKING_SIGN_INS,
    Chat,
    Teams,
    answer_until_decided,
    open_teams,
    truthful_answer,
)
from tests.store.support import FakeClock, StoreTarget
from tests.verification import builders as b
from verification import Outcome, Policy
from verification.factors import ManagerMode


def _late(read: SignInRead, arrived: asyncio.Event):
    async def later() -> SignInRead:
        await arrived.wait()
        return read
    return later


async def test_questions_start_before_the_sign_ins_and_a_clean_history_then_verifies(teams: Teams,
                                                                                       agent: Chat) -> None:
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(b.sign_ins()), arrived)
    await agent.say("verify Alan Turing")
    assert "Question 1 of at most" in agent.text()  # asked while the logs are still on their way
    arrived.set()
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified\nAlan Turing")


async def test_risky_sign_ins_that_arrive_late_still_block_the_reset(teams: Teams, agent: Chat) -> None:
    risky = (replace(b.sign_ins()[0], at=b.NOW, risk_level="high"),)
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(risky), arrived)
    await agent.say("verify Alan Turing")
    assert "Question 1 of at most" in agent.text()
    arrived.set()
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Blocked"), decision
    assert "[Reset password]" not in decision
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.BLOCKED_BY_RISK


async def test_sign_ins_that_never_come_leave_the_policys_unavailable_rule_to_decide(teams: Teams,
                                                                                   agent: Chat) -> None:
    teams.directory.late_sign_ins = _late(SignInRead(()), asyncio.Event())  # never arrives
    await agent.say("verify Alan Turing")
    teams.clock.advance(seconds=RISK_DEADLINE.total_seconds() + 1)  # the risk's deadline has passed
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified\nAlan Turing")
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.VERIFIED
    # the caller had to earn the "sign-ins unavailable" extra bits too
    assert session.earned_bits >= Policy().required_bits + Policy().sign_ins_unavailable_extra_bits


async def test_risky_sign_ins_read_by_one_instance_block_the_decision_taken_on_another(
        store_target: StoreTarget, clock: FakeClock) -> None:
    key = FernetSealer.generate_key()  # two instances of one deployment, no sticky sessions
    async with open_teams(store_target, clock, key=key) as first, \
            open_teams(store_target, clock, key=key, directory=first.directory, outbox=first.outbox) as second:
        risky = (replace(b.sign_ins()[0], at=b.NOW, risk_level="high"),)
        arrived = asyncio.Event()
        first.directory.late_sign_ins = _late(SignInRead(risky), arrived)
        await first.chat(MARGARET).say("verify Alan Turing")  # the first instance reads the sign-ins...
        arrived.set()
        [session] = await first.store.sessions.list_for_user(TENANT, ALAN.id)
        for _ in range(200):
            if await first.store.sessions.final_risk(session.session_id) is not None:
                break
            await asyncio.sleep(0.01)

        decision = await answer_until_decided(second, second.chat(MARGARET), ALAN)  # ...the second decides

        assert decision.startswith("Blocked"), decision
        [session] = await second.store.sessions.list_for_user(TENANT, ALAN.id)
        assert session.outcome is Outcome.BLOCKED_BY_RISK


async def test_an_instance_deciding_before_the_sign_ins_arrive_elsewhere_waits_for_them(
        store_target: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    key = FernetSealer.generate_key()
    async with open_teams(store_target, clock, key=key) as first, \
            open_teams(store_target, clock, key=key, directory=first.directory, outbox=first.outbox) as second:
        risky = (replace(b.sign_ins()[0], at=b.NOW, risk_level="high"),)
        arrived = asyncio.Event()
        first.directory.late_sign_ins = _late(SignInRead(risky), arrived)
        await first.chat(MARGARET).say("verify Alan Turing")
        keeper = second.agent.sessions
        real_poll, polled = keeper._poll_kept_risk, []

        async def sign_ins_arrive_while_polling(session_id: str, left_s: float) -> Any:
            polled.append(left_s)  # the deciding turn, on the second instance, waits for the risk...
            arrived.set()  # ...which the first instance reads only now, and keeps
            return await real_poll(session_id, left_s)

        monkeypatch.setattr(keeper, "_poll_kept_risk", sign_ins_arrive_while_polling)
        decision = await answer_until_decided(second, second.chat(MARGARET), ALAN)

        assert polled == [pytest.approx(RISK_DEADLINE.total_seconds(), abs=0.1)]
        assert decision.startswith("Blocked"), decision


async def _answer_while_questions_remain(teams: Teams, agent: Chat) -> None:
    while await teams.current_question(agent) is not None:
        await agent.answer(await truthful_answer(teams, agent, ALAN))


async def test_questions_done_before_the_sign_ins_answer_at_once_and_the_decision_follows(teams: Teams,
                                                                                      agent: Chat) -> None:
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(b.sign_ins()), arrived)
    await agent.say("verify Alan Turing")
    await _answer_while_questions_remain(teams, agent)  # every turn returned: none waited for the sign-in logs

    interim = card_text(agent.last_card())
    assert interim.startswith(CHECKING_SIGN_INS) and "Nothing is decided yet" in interim
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.IN_PROGRESS

    arrived.set()  # the logs come in: Watchword continues the chat by itself
    await teams.agent.messenger.settle()
    decision = card_text(agent.last_card())
    assert decision.startswith("Verified\nAlan Turing"), agent.text()
    assert "Sign-in risk weighed: nothing unusual." in decision
    assert "sign-in logs checked" in agent.text()  # the interim card, replaced
    assert CHECKING_SIGN_INS not in agent.text()


async def test_risky_sign_ins_that_arrive_after_the_questions_block_without_a_click(teams: Teams,
                                                                                  agent: Chat) -> None:
    risky = (replace(b.sign_ins()[0], at=b.NOW, risk_level="high"),)
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(risky), arrived)
    await agent.say("verify Alan Turing")
    await _answer_while_questions_remain(teams, agent)
    assert card_text(agent.last_card()).startswith(CHECKING_SIGN_INS)

    arrived.set()
    await teams.agent.messenger.settle()
    decision = card_text(agent.last_card())
    assert decision.startswith("Blocked"), agent.text()
    assert "[Reset password]" not in decision
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.BLOCKED_BY_RISK


async def test_sign_ins_unread_by_their_deadline_are_reported_and_the_unavailable_rule_asks_more(
        teams: Teams, agent: Chat) -> None:
    teams.directory.late_sign_ins = _late(SignInRead(()), asyncio.Event())  # never arrives
    await agent.say("verify Alan Turing")
    await _answer_while_questions_remain(teams, agent)
    assert card_text(agent.last_card()).startswith(CHECKING_SIGN_INS)

    teams.clock.advance(seconds=RISK_DEADLINE.total_seconds() + 1)  # the risk's budget ends
    await teams.agent.messenger.settle()
    # never skipped silently: the "sign-ins unavailable" rule's extra proof is asked for, then the decision says so
    assert await teams.current_question(agent) is not None, agent.text()
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified\nAlan Turing"), decision
    assert "Sign-in logs could not be read" in decision
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.earned_bits >= Policy().required_bits + Policy().sign_ins_unavailable_extra_bits


async def test_a_check_by_hand_before_the_sign_ins_arrive_keeps_waiting_and_the_late_continuation_says_nothing(
        teams: Teams, agent: Chat) -> None:
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(b.sign_ins()), arrived)
    await agent.say("verify Alan Turing")
    await _answer_while_questions_remain(teams, agent)
    await agent.click("Check again")  # too early: the same card again, and nothing decided
    assert card_text(agent.last_card()).startswith(CHECKING_SIGN_INS)
    before = len(agent.mine())

    arrived.set()
    await teams.agent.messenger.settle()  # two continuations were due: the first card's is dropped silently
    decision = card_text(agent.last_card())
    assert decision.startswith("Verified\nAlan Turing"), agent.text()
    assert len(agent.mine()) == before + 1, agent.text()  # one decision card, no "use the buttons" retry


async def test_a_decision_waiting_for_the_sign_ins_puts_their_read_first(teams: Teams, agent: Chat) -> None:
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(b.sign_ins()), arrived)
    await agent.say("verify Alan Turing")
    await _answer_while_questions_remain(teams, agent)
    await asyncio.sleep(0.05)  # the continuation waiting for the risk has begun
    assert teams.directory.sign_in_reads == [f"hurry {ALAN.id}"]
    arrived.set()
    await teams.agent.messenger.settle()


async def test_a_verification_that_ends_before_its_sign_ins_gives_their_read_up(teams: Teams, agent: Chat) -> None:
    teams.directory.late_sign_ins = _late(SignInRead(b.sign_ins()), asyncio.Event())  # still queued
    await agent.say("verify Alan Turing")
    await agent.say("cancel")  # decided (cancelled): the reports budget it would use goes to someone else's read
    assert teams.directory.sign_in_reads == [f"drop {ALAN.id}"]


async def test_a_manager_asked_along_the_way_does_not_hold_a_decision_only_the_sign_ins_wait_for(
        teams: Teams, agent: Chat) -> None:
    """Grace (Alan's manager) is asked, and has not answered when the questions already meet the policy: the
    decision waits for the sign-in risk alone (the interim card), not for Grace ("Waiting for Grace Hopper")."""
    teams.directory.manager = GRACE
    await teams.chat(GRACE).say("hi")
    await teams.store.policies.save(TENANT, Policy(manager_attestation=ManagerMode.ALWAYS), "admin@contoso.example",
                                    TenantAccess())
    arrived = asyncio.Event()
    teams.directory.late_sign_ins = _late(SignInRead(b.sign_ins()), arrived)
    await agent.say("verify Alan Turing")
    assert "I'm asking Grace Hopper too" in agent.text()
    await _answer_while_questions_remain(teams, agent)
    assert card_text(agent.last_card()).startswith(CHECKING_SIGN_INS), agent.text()
    arrived.set()
    await teams.agent.messenger.settle()
    assert card_text(agent.last_card()).startswith("Verified\nAlan Turing"), agent.text()
