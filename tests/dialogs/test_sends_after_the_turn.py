"""The code shown in the person's Teams and the manager's card are sent right after the turn that asks them, not in
it (issue #11: those sends, installing Watchword for someone first, were the answer turns' p99). The turn answers
with its next card at once; a send that fails reaches the session with the chat's next turn, on any instance, and
is told in the chat by itself; a send whose process died half-way neither holds up nor mis-scores the next turn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.cards import card_of, card_text
from bot.ledger import OOB_KEY, read_record
from bot.proactive import ProactiveMessenger
from bot.sealing import FernetSealer
from graph.directory import GraphUnavailable, Unavailability
from store import AuditFilter, TenantAccess
from tests.dialogs.fakes import ALAN, GRACE, MARGARET, TENANT
from tests.dialogs.harness import (
    Chat,
    Teams,
    TeamsAdapter,
    enter_code,
    is_question,
    open_teams,
    shown_code,
    truthful_answer,
)
from tests.store.support import FakeClock, StoreTarget
from verification import Policy, VerificationSession
from verification.factors import Factor

ASK_FOR_CODE = "Ask for the code in their Teams"


class Gate:
    """Holds what Watchword sends into some chats until opened; refuses them, as Teams does when the bot was removed
    from the chat, when told to."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *conversations: str) -> None:
        self.open, self.reached, self.refuse = asyncio.Event(), asyncio.Event(), False
        send = TeamsAdapter.send_activities

        async def held(adapter: TeamsAdapter, context: Any, activities: Any) -> Any:
            if context.activity.conversation.id in conversations:
                self.reached.set()
                if not self.refuse:
                    await self.open.wait()
                if self.refuse:
                    raise RuntimeError("403 Forbidden: the bot is not part of the conversation roster")
            return await send(adapter, context, activities)

        monkeypatch.setattr(TeamsAdapter, "send_activities", held)


async def known_to_alan(teams: Teams) -> Chat:
    alan = teams.chat(ALAN)
    await alan.say("hi")  # Alan has talked to Watchword before, so it can reach him
    alan.new()
    return alan


def codes_issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every code the sessions issue (which a failed send shows nobody), to look for where it must never be."""
    issued: list[str] = []
    issue = VerificationSession.issue_code

    def keeping(session: VerificationSession) -> str:
        issued.append(code := issue(session))
        return code

    monkeypatch.setattr(VerificationSession, "issue_code", keeping)
    return issued


async def code_entries(teams: Teams) -> list[str]:
    """The code's entries in the stored transcript, by result ("skipped": the caller couldn't see it)."""
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    return [e.result.value for e in await teams.store.sessions.transcript(session.session_id)
            if e.kind == "possession.code"]


def replaced(teams: Teams, chat: Chat) -> list[str]:
    """What the chat's cards were replaced with, in order (the harness's chat shows the replacement in their place)."""
    ids = {a.id for a in chat.mine()}
    return [card_text(card_of(u)) for u in teams.outbox.updates if u.id in ids]


# --- the next card comes without waiting for the send --------------------------------------------------------------
async def verify_with_the_code_held_back(teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch
                                        ) -> tuple[Chat, Gate]:
    """The agent verifies Alan, known to Watchword, while a Gate holds what is sent to his Teams (the code card) and
    the turn does not wait for sends: his chat, and the Gate that lets the code through (or refuses it)."""
    alan = await known_to_alan(teams)
    gate = Gate(monkeypatch, alan.conversation_id)
    teams.wait_for_sends = False
    await agent.say("verify alan turing")
    return alan, gate


async def grace_asked_in_her_chat(teams: Teams, monkeypatch: pytest.MonkeyPatch) -> Gate:
    """Alan's manager is Grace, who chatted with Watchword before (her chat is kept), and his data alone can't do, so
    she is asked: a Gate on her chat holds (or refuses) the card sent to her."""
    teams.directory.manager = GRACE
    teams.directory.thin.add(ALAN.id)
    grace = teams.chat(GRACE)
    await grace.say("hi")
    return Gate(monkeypatch, grace.conversation_id)


async def test_the_agent_is_asked_for_the_code_before_it_has_reached_the_persons_teams(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    # `verify` returns although Alan's chat takes nothing yet
    alan, gate = await verify_with_the_code_held_back(teams, agent, monkeypatch)
    assert card_text(agent.last_card()).startswith(ASK_FOR_CODE)
    assert "Your code for the IT helpdesk" not in alan.text()
    gate.open.set()
    await teams.agent.messenger.sent()
    await enter_code(agent, shown_code(alan))  # the code that arrived right after is the one the session checks
    assert is_question(agent.last_card())


async def test_an_answer_that_asks_the_manager_brings_the_next_question_before_the_managers_card_is_sent(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    teams.directory.manager = GRACE  # Grace has never opened Watchword: asking her installs it for her through Graph
    teams.directory.can_install = True
    teams.directory.thin.add(ALAN.id)  # his data alone can't do: she is asked at once
    installing = asyncio.Event()
    install = teams.directory.open_app_chat

    async def slow_install(*args: Any, **kwargs: Any) -> str | None:
        await installing.wait()
        return await install(*args, **kwargs)

    monkeypatch.setattr(teams.directory, "open_app_chat", slow_install)
    teams.wait_for_sends = False
    await agent.say("verify alan turing")
    assert "I'm asking Grace Hopper too" in agent.text() and is_question(agent.last_card())
    assert teams.directory.installs == []
    installing.set()
    await teams.agent.messenger.sent()
    grace = teams.chat(GRACE, conversation_id=f"19:{GRACE.id}_watchword@unq.gbl.spaces")
    assert "Is Alan Turing on the phone with the helpdesk now?" in card_text(grace.last_card())
    assert "I couldn't ask" not in agent.text()


# --- a failed send tells the agent, and "no code" costs nothing ------------------------------------------------
async def test_a_code_that_cannot_be_shown_is_told_on_its_card_and_the_questions_follow(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    alan = await known_to_alan(teams)
    Gate(monkeypatch, alan.conversation_id).refuse = True
    await agent.say("verify alan turing")  # the harness returns once the send and what follows it have run
    assert replaced(teams, agent) == ["The code couldn't be shown in their Teams."]  # the card that asked for it
    assert ASK_FOR_CODE not in agent.text() and is_question(agent.last_card())
    assert await code_entries(teams) == []  # nothing the caller did
    asked = await teams.store.audit.query(AuditFilter(action="out_of_band.asked"))
    assert [e.outcome for e in asked.entries] == ["not_delivered"]


async def test_they_cant_see_a_code_after_a_failed_send_costs_the_caller_nothing_on_another_instance(
        db: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    key = FernetSealer.generate_key()
    async with open_teams(db, clock, key=key) as first, open_teams(db, clock, key=key, outbox=first.outbox) as second:
        alan = await known_to_alan(first)
        Gate(monkeypatch, alan.conversation_id).refuse = True
        first.agent.messenger.resume = None  # this instance does not get to continue the chat by itself
        await first.chat(MARGARET).say("verify alan turing")
        agent = second.chat(MARGARET)  # the chat's next turn goes to the other instance
        await agent.click("They can't see a code")
        assert replaced(second, agent) == ["The code couldn't be shown in their Teams."]
        assert ASK_FOR_CODE not in agent.text() and is_question(agent.last_card())
        assert await code_entries(second) == []


async def test_they_cant_see_a_code_that_was_shown_is_the_callers(teams: Teams, agent: Chat) -> None:
    await known_to_alan(teams)
    await agent.say("verify alan turing")
    await agent.click("They can't see a code")
    assert is_question(agent.last_card())
    assert await code_entries(teams) == ["skipped"]
    declined = await teams.store.audit.query(AuditFilter(action="verification.code"))
    assert [e.outcome for e in declined.entries] == ["declined"]


async def test_a_manager_who_cannot_be_asked_is_told_in_the_chat_and_the_session_goes_on_without_them(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    (await grace_asked_in_her_chat(teams, monkeypatch)).refuse = True  # her chat is gone, and no install is allowed
    await agent.say("verify alan turing")
    told = agent.text()
    assert "I'm asking Grace Hopper too" in told
    assert "I couldn't ask Grace Hopper\nGrace Hopper, their manager, couldn't be reached in Teams" in told
    await agent.click("Caller doesn't know")  # the next turn knows: thin data and no manager cannot verify
    assert not card_text(agent.last_card()).startswith("Waiting for Grace Hopper")
    asked = await teams.store.audit.query(AuditFilter(action="manager.asked"))
    assert [e.outcome for e in asked.entries] == ["not_delivered"]


async def test_a_waiting_for_the_manager_card_moves_on_by_itself_when_their_card_could_not_be_sent(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = await grace_asked_in_her_chat(teams, monkeypatch)
    teams.wait_for_sends = False
    await agent.say("verify alan turing")
    while is_question(agent.last_card()):  # the questions end before the manager's card could be sent
        await agent.answer(await truthful_answer(teams, agent, ALAN))
    assert card_text(agent.last_card()).startswith("Waiting for Grace Hopper")
    gate.refuse = True
    gate.open.set()
    await teams.agent.messenger.settle()
    assert "I couldn't ask Grace Hopper\nGrace Hopper, their manager, couldn't be reached in Teams" in agent.text()
    assert replaced(teams, agent)[-1] == "Grace Hopper couldn't be asked in Teams."  # the waiting card, by itself
    decision = card_text(agent.last_card())
    assert not decision.startswith("Verified") and "Waiting for Grace Hopper" not in agent.text(), decision


# --- a process killed mid-send ----------------------------------------------------------------------------------
@asynccontextmanager
async def killed_mid_send(db: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, *,
                          after_delivery: bool) -> AsyncIterator[tuple[Teams, Chat]]:
    """The code's send begins, then the process dies: before Teams took the card, or after, before its outcome was
    kept. Yields the restarted process and the person's chat."""
    key = FernetSealer.generate_key()
    async with open_teams(db, clock, key=key) as doomed:
        alan = await known_to_alan(doomed)
        never, reached = asyncio.Event(), asyncio.Event()
        if after_delivery:
            keep = ProactiveMessenger._keep_fields

            async def hangs(self: ProactiveMessenger, session_id: str, fields: Any, **kw: Any) -> bool:
                if any(name.endswith("_delivered") for name in fields):
                    reached.set()
                    await never.wait()
                return await keep(self, session_id, fields, **kw)

            monkeypatch.setattr(ProactiveMessenger, "_keep_fields", hangs)
        else:
            reached = Gate(monkeypatch, alan.conversation_id).reached  # never opened
        doomed.wait_for_sends = False
        await doomed.chat(MARGARET).say("verify alan turing")
        await reached.wait()
        doomed.agent.messenger.close()  # killed: the send is cut where it is (cancelled), nothing more runs
        await doomed.agent.messenger.settle()
        monkeypatch.undo()
        outbox = doomed.outbox
    async with open_teams(db, clock, key=key, outbox=outbox) as restarted:
        yield restarted, restarted.chat(ALAN)


async def test_after_a_kill_before_the_code_was_shown_the_next_turn_goes_on_and_no_code_costs_nothing(
        db: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    async with killed_mid_send(db, clock, monkeypatch, after_delivery=False) as (teams, alan):
        assert "Your code for the IT helpdesk" not in alan.text()
        agent = teams.chat(MARGARET)
        await agent.click("They can't see a code")  # the caller truthfully sees none
        assert is_question(agent.last_card())
        assert await code_entries(teams) == []


async def test_after_a_kill_once_the_code_was_shown_the_code_read_out_still_counts(
        db: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    async with killed_mid_send(db, clock, monkeypatch, after_delivery=True) as (teams, alan):
        agent = teams.chat(MARGARET)
        await enter_code(agent, shown_code(alan))  # its send's outcome never came: the right code proves it came
        assert is_question(agent.last_card())
        assert await code_entries(teams) == ["correct"]


# --- the process tracks its sends; the code goes nowhere on the way ---------------------------------------------
async def test_stopping_ends_a_send_in_flight_and_leaves_nothing_running(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    alan = await known_to_alan(teams)
    Gate(monkeypatch, alan.conversation_id)  # never opened: the send hangs
    teams.wait_for_sends = False
    await agent.say("verify alan turing")
    sending = running(lambda name: "_send_in_background" in name)
    assert len(sending) == 1
    await teams.agent.messenger.stop(grace_s=0.05)
    assert all(task.done() for task in sending) and not running(lambda name: "_send_in_background" in name)


def running(named: Callable[[str], bool]) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if not t.done() and named(t.get_coro().__qualname__)]


async def test_a_code_that_could_not_be_sent_never_reaches_the_log_state_or_store(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    issued = codes_issued(monkeypatch)
    alan = await known_to_alan(teams)
    Gate(monkeypatch, alan.conversation_id).refuse = True
    await agent.say("verify alan turing")
    [code] = issued
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    record = await read_record(teams.store.conversation_state, OOB_KEY.format(session.session_id))
    audit = await teams.store.audit.query(AuditFilter())
    assert "could not deliver the one-time code" in caplog.text  # the failure was logged, the code was not
    for where in (caplog.text, str(await teams.sealed_sessions(agent)), str(record.data if record else None),
                  str([e.details for e in audit.entries]), agent.text()):
        assert code not in where


async def test_a_code_that_arrives_after_the_agent_cancelled_leaves_the_persons_card_at_once(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    alan, gate = await verify_with_the_code_held_back(teams, agent, monkeypatch)
    await agent.say("cancel")  # before the code reached Alan's Teams: there was no card to close yet
    gate.open.set()
    await teams.agent.messenger.sent()
    [ended] = replaced(teams, alan)
    assert "has ended" in ended and "[Not me]" in ended
    assert not any(line.replace(" ", "").isdigit() for line in alan.text().splitlines())  # no code left on screen


async def test_self_service_asks_its_first_question_before_the_managers_card_is_sent_and_says_if_it_could_not_be(
        teams: Teams, alan: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await teams.store.policies.save(TENANT, Policy(), "admin@contoso.example", TenantAccess(self_service=True))
    gate = await grace_asked_in_her_chat(teams, monkeypatch)  # questions alone can't do: Grace is asked at once
    teams.wait_for_sends = False
    await alan.say("reset my password")
    assert "I'm asking Grace Hopper to confirm it's you" in alan.text() and is_question(alan.last_card())
    assert "resetting their own password" not in teams.chat(GRACE).text()
    gate.refuse = True
    gate.open.set()
    await teams.agent.messenger.sent()
    assert "I couldn't ask Grace Hopper\nGrace Hopper, your manager, couldn't be reached in Teams" in alan.text()


async def test_a_managers_card_whose_process_died_before_sending_it_does_not_keep_the_agent_waiting_for_good(
        db: StoreTarget, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    key = FernetSealer.generate_key()
    async with open_teams(db, clock, key=key) as doomed:
        doomed.directory.manager = GRACE
        grace = doomed.chat(GRACE)
        await grace.say("hi")
        doomed.directory.thin.add(ALAN.id)  # questions alone can't do: Grace is asked at once
        gate = Gate(monkeypatch, grace.conversation_id)  # never opened: her card never leaves
        doomed.wait_for_sends = False
        await doomed.chat(MARGARET).say("verify alan turing")
        await gate.reached.wait()
        doomed.agent.messenger.close()  # killed between the turn's reply and the send's outcome
        await doomed.agent.messenger.settle()
        monkeypatch.undo()
        outbox = doomed.outbox
    async with open_teams(db, clock, key=key, outbox=outbox) as teams:
        teams.directory.manager = GRACE
        teams.directory.thin.add(ALAN.id)
        agent = teams.chat(MARGARET)
        while is_question(agent.last_card()):
            await agent.answer(await truthful_answer(teams, agent, ALAN))
        assert card_text(agent.last_card()).startswith("Waiting for Grace Hopper")
        await agent.click("Check again")  # her card may yet be on its way: still waiting
        assert card_text(agent.last_card()).startswith("Waiting for Grace Hopper")
        clock.advance(minutes=3)  # far longer than any send takes: it died with its process
        await agent.click("Check again")
        assert replaced(teams, agent)[-1] == "Grace Hopper couldn't be asked in Teams."
        decision = card_text(agent.last_card())
        assert not decision.startswith("Waiting for Grace Hopper") and not decision.startswith("Verified"), decision


# --- Graph failing the install, the agent racing the send, stopping -------------------------------------------------
@pytest.mark.parametrize("failure", [
    GraphUnavailable("installing Watchword for the person: timed out", Unavailability.TIMED_OUT),
    GraphUnavailable("installing Watchword for the person: 503 Service Unavailable", Unavailability.THROTTLED),
    GraphUnavailable("403: TeamsAppInstallation.ReadWriteSelfForUser.All not granted", Unavailability.REFUSED),
], ids=["timeout", "5xx", "403"])
async def test_a_manager_whose_install_fails_in_graph_after_the_agent_has_moved_on_is_told_and_left_out(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch, failure: GraphUnavailable) -> None:
    teams.directory.manager = GRACE  # never opened Watchword: asking her installs it
    teams.directory.can_install = True
    teams.directory.thin.add(ALAN.id)
    installing = asyncio.Event()

    async def failing_install(*args: Any, **kwargs: Any) -> str | None:
        await installing.wait()
        raise failure

    monkeypatch.setattr(teams.directory, "open_app_chat", failing_install)
    teams.wait_for_sends = False
    await agent.say("verify alan turing")
    assert "I'm asking Grace Hopper too" in agent.text() and is_question(agent.last_card())  # moved on already
    installing.set()
    await teams.agent.messenger.settle()
    assert "I couldn't ask Grace Hopper\nGrace Hopper, their manager, couldn't be reached in Teams" in agent.text()
    asked = await teams.store.audit.query(AuditFilter(action="manager.asked"))
    assert [e.outcome for e in asked.entries] == ["not_delivered"]
    while is_question(agent.last_card()):  # the questions go on; without her, thin data can't verify
        await agent.answer(await truthful_answer(teams, agent, ALAN))
    decision = card_text(agent.last_card())
    assert not decision.startswith("Waiting for Grace Hopper") and not decision.startswith("Verified"), decision


async def test_no_code_said_before_the_code_arrived_gains_nothing_and_the_late_code_is_dead_and_cleared_at_the_end(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    alan, gate = await verify_with_the_code_held_back(teams, agent, monkeypatch)
    await agent.click("They can't see a code")  # at once, before it could reach Alan's Teams
    assert is_question(agent.last_card()) and await code_entries(teams) == []
    declined = await teams.store.audit.query(AuditFilter(action="verification.code"))
    assert [e.outcome for e in declined.entries] == ["declined_before_shown"]  # no cost, but a trace
    gate.open.set()
    await teams.agent.messenger.sent()  # it lands after all: Alan sees it, with his "Not me"
    code = shown_code(alan)
    assert ASK_FOR_CODE not in card_text(agent.last_card())  # nowhere to type it any more
    await agent.say(code)  # read out now, it can only answer the question on screen: it is no code any more
    assert await code_entries(teams) == []
    while is_question(agent.last_card()):
        await agent.answer(await truthful_answer(teams, agent, ALAN))
    assert "has ended" in replaced(teams, alan)[-1]  # the late code left his screen with the verification
    assert not any(line.replace(" ", "").isdigit() for line in replaced(teams, alan)[-1].splitlines())


async def test_stopping_lets_a_send_nearly_done_end_and_keeps_its_outcome(
        teams: Teams, agent: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    alan, gate = await verify_with_the_code_held_back(teams, agent, monkeypatch)
    await gate.reached.wait()
    asyncio.get_running_loop().call_later(0.05, gate.open.set)  # Teams answers just after the stop began
    await teams.agent.messenger.stop(grace_s=5.0)
    assert "Your code for the IT helpdesk" in alan.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert (await teams.agent.messenger.factor_answers(session.session_id)).delivered == {Factor.POSSESSION}
