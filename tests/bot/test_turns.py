"""What the bot does around the dialogs: who it serves, help, references, errors, and surviving a restart."""

from __future__ import annotations

import gc
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar

import pytest
from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import ChannelAdapter, ConnectorClientBase, TurnContext, UserTokenClientBase
from microsoft_agents.hosting.core.state.agent_state import CachedAgentState
from microsoft_agents.hosting.dialogs import DialogInstance, DialogState

from bot.cards import CARD_CONTENT_TYPE, card_text
from bot.hosting import BOT
from bot.sealing import FernetSealer
from store import AuditFilter
from tests.bot.endpoint import Connector, activity
from tests.dialogs.fakes import ALAN, MARGARET, OTHER_TENANT, TENANT
from tests.dialogs.harness import Teams, answer_until_decided, invoke_responses, open_teams, truthful_answer
from tests.store.support import FakeClock, StoreTarget, sqlite_copy
from verification import Outcome, VerificationSession
from verification.policy import Policy

T = TypeVar("T")

MAX_QUESTIONS = Policy().max_questions  # what the question cards count up to


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path) -> StoreTarget:
    return sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def teams(db: StoreTarget, clock: FakeClock):
    async with open_teams(db, clock) as opened:
        yield opened


async def test_unknown_tenant_is_refused_politely(teams: Teams) -> None:
    stranger = teams.chat(ALAN, tenant_id=OTHER_TENANT)
    await stranger.say("verify alan turing")
    await stranger.say("help")
    text = stranger.text()
    assert text.count("Watchword isn't set up for your organisation") == 2
    assert "Ask your IT administrator to connect it" in text
    page = await teams.store.audit.query(AuditFilter(action="bot.tenant_refused"))
    [entry] = page.entries  # one row per person per ten minutes, however chatty
    assert entry.details["tenant"] == OTHER_TENANT and entry.actor == f"teams:{ALAN.id}"
    assert teams.directory.membership_checks == 0


async def test_unknown_tenant_card_click_gets_a_refusal_card(teams: Teams) -> None:
    stranger = teams.chat(ALAN, tenant_id=OTHER_TENANT)
    card = teams.agent.cards.render("help", audience="agent", short=False, self_service=False)
    replies = await stranger.click("Verify", {"query": "alan"}, card=card, execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]).startswith("Watchword isn't set up for your organisation")


async def test_help_explains_what_the_bot_does_for_agents(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("help")
    text = agent.text()
    assert "type **verify** and their name or email" in text and "[Verify]" in text


async def test_help_for_everyone_else_says_self_service_is_off(teams: Teams) -> None:
    alan = teams.chat(ALAN)
    await alan.say("help")
    text = alan.text()
    assert "helps your IT helpdesk check that someone asking for a password reset is really you" in text
    assert "Self-service password reset is turned off for your organisation" in text
    assert "[Verify]" not in text


async def test_unknown_input_gets_a_short_help_card(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("what's the weather")
    assert agent.text().startswith("I didn't understand that.")


async def test_help_card_button_starts_a_verification(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("help")
    await agent.click("Verify", {"query": "alan turing"})
    assert "Verifying\nAlan Turing" in agent.text()


async def test_conversation_reference_is_kept_from_a_personal_chat_only(teams: Teams) -> None:
    group = teams.chat(ALAN, conversation_type="groupChat", conversation_id="19:team@thread.v2")
    await group.say("help")
    assert await teams.store.conversation_refs.get(TENANT, ALAN.id) is None
    alan = teams.chat(ALAN)
    await alan.say("hi")
    stored = await teams.store.conversation_refs.get(TENANT, ALAN.id)
    assert stored is not None and stored.reference["conversation"]["id"] == alan.conversation_id
    assert stored.reference["serviceUrl"] and "activityId" not in stored.reference


async def test_install_in_a_personal_scope_says_hello_once_and_keeps_the_reference(teams: Teams) -> None:
    from microsoft_agents.activity import Activity, ActivityTypes

    from tests.dialogs.harness import BOT

    alan = teams.chat(ALAN)
    await alan.send(Activity(type=ActivityTypes.installation_update, action="add"))
    await alan.send(Activity(type=ActivityTypes.conversation_update, members_added=[BOT, alan.user]))
    assert alan.text().count("Watchword helps your IT helpdesk") == 1
    assert await teams.store.conversation_refs.get(TENANT, ALAN.id) is not None


async def test_helpdesk_members_are_read_once_per_five_minutes_not_per_agent(teams: Teams) -> None:
    agent, other = teams.chat(MARGARET), teams.chat(ALAN)
    for _ in range(3):
        await agent.say("help")
    await other.say("help")
    assert (teams.directory.member_list_reads, teams.directory.membership_checks) == (1, 0)
    teams.clock.advance(minutes=6)
    await agent.say("help")
    assert (teams.directory.member_list_reads, teams.directory.membership_checks) == (2, 0)


async def test_card_from_a_finished_conversation_is_refused(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")
    question = agent.last_card()
    await agent.click("Cancel")
    replies = await agent.click("Submit answer", {"answer": "Grace Hopper"}, card=question, execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]) == "This card is no longer active."


async def test_turn_error_shows_correlation_id_not_exception(teams: Teams, caplog) -> None:
    agent = teams.chat(MARGARET)
    await agent.say("verify alan turing")

    async def broken(*args, **kwargs):
        raise RuntimeError("database password=hunter2 leaked in an exception")

    teams.agent.records.record_answer = broken  # the next answer fails deep inside the dialog
    with caplog.at_level(logging.ERROR, logger="watchword.bot"):
        await agent.answer(await truthful_answer(teams, agent, ALAN))
    shown = agent.text()
    assert "Something went wrong on my side" in shown
    assert "hunter2" not in shown and "RuntimeError" not in shown and "Traceback" not in shown
    reference = re.search(r"give IT this reference: ([0-9a-f]{12})", shown).group(1)
    [record] = [r for r in caplog.records if reference in r.getMessage()]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])
    # the broken conversation state is gone: the next message starts afresh
    await agent.say("help")
    assert agent.text().endswith("[Verify]")
    assert await teams.sealed_sessions(agent) == []


async def test_restart_in_the_middle_of_a_verification_loses_nothing(db: StoreTarget, clock: FakeClock) -> None:
    key = FernetSealer.generate_key()
    async with open_teams(db, clock, key=key) as first:
        agent = first.chat(MARGARET)
        await agent.say("verify alan turing")
        await agent.answer(await truthful_answer(first, agent, ALAN))
        asked = card_text(agent.last_card())
        assert asked.startswith(f"Question 2 of at most {MAX_QUESTIONS}")
    async with open_teams(db, clock, key=key, outbox=first.outbox) as second:  # a new process, same database
        agent = second.chat(MARGARET)
        decision = await answer_until_decided(second, agent, ALAN)
        assert decision.startswith("Verified")
        [session] = await second.store.sessions.list_for_user(TENANT, ALAN.id)
        assert session.outcome is Outcome.VERIFIED
        assert len(await second.store.sessions.transcript(session.session_id)) >= 2


async def test_restart_without_the_state_key_ends_the_verification_cleanly(db: StoreTarget, clock: FakeClock) -> None:
    async with open_teams(db, clock) as first:
        agent = first.chat(MARGARET)
        await agent.say("verify alan turing")
    async with open_teams(db, clock, outbox=first.outbox) as second:  # another key: the answers stay sealed
        agent = second.chat(MARGARET)
        await agent.answer("Grace Hopper")
        assert "This verification can't be continued" in agent.text()
        await agent.say("verify alan turing")
        assert card_text(agent.last_card()).startswith(f"Question 1 of at most {MAX_QUESTIONS}")


async def test_each_answer_moves_a_small_state_while_the_plan_is_stored_once(db: StoreTarget, clock: FakeClock) -> None:
    async with open_teams(db, clock) as teams:
        agent = teams.chat(MARGARET)
        await agent.say("verify alan turing")
        await agent.answer(await truthful_answer(teams, agent, ALAN))
        [progress] = await teams.sealed_sessions(agent)
        plan = await teams.store.sessions.sealed_plan(progress["id"])
        key = f"msteams/conversations/{agent.conversation_id}"
        state = (await teams.store.conversation_state.read([key], target_cls=CachedAgentState))[key].state
        state_bytes = len(json.dumps(state))
        assert plan is not None and state_bytes < len(plan)
        assert state_bytes < 16_000  # the dialog stack, the question card and the sealed progress


async def test_an_answer_turn_writes_the_conversation_state_only(db: StoreTarget, clock: FakeClock) -> None:
    """No user state (bot/turn_state.py); the SDK's OAuth sign-in state is looked up (its own cost) but never
    written: nothing but the conversation's state is."""
    async with open_teams(db, clock) as teams:
        agent = teams.chat(MARGARET)
        await agent.say("verify alan turing")
        answer = await truthful_answer(teams, agent, ALAN)
        writes: list[str] = []
        original = teams.store.conversation_state.write

        async def counted(changes: dict[str, object]) -> None:
            writes.extend(changes)
            await original(changes)  # type: ignore[arg-type]

        teams.store.conversation_state.write = counted  # type: ignore[method-assign]
        await agent.answer(answer)
        assert writes == [f"msteams/conversations/{agent.conversation_id}"]
        assert card_text(agent.last_card()).startswith("Question 2")


async def test_a_turn_leaves_no_verification_session_for_the_collector(db: StoreTarget, clock: FakeClock) -> None:
    """The SDK's state and dialogs keep a turn's TurnContext in reference cycles until a full collection (one every
    few dozen starts); the session the turn opened, with its decoded plan, goes when the turn ends, not with them."""
    async with open_teams(db, clock) as teams:
        agent = teams.chat(MARGARET)
        gc.collect()
        gc.disable()
        try:
            await agent.say("verify alan turing")
            await agent.answer(await truthful_answer(teams, agent, ALAN))
            left = [o for o in gc.get_objects() if isinstance(o, VerificationSession)]
        finally:
            gc.enable()
    assert left == []


def alive_now() -> dict[int, object]:
    """Every object the collector tracks now, by id: what earlier tests in this process (a pytest worker runs many
    files) still hold is not what the turns under test left. Kept alive meanwhile, so no id is reused."""
    return {id(o): o for o in gc.get_objects()}


def made_since(earlier: dict[int, object], kind: type | UnionType) -> list[Any]:
    return [o for o in gc.get_objects() if isinstance(o, kind) and id(o) not in earlier]


async def left_by(turns: Callable[[], Awaitable[T]]) -> tuple[T, tuple[list[Any], list[Any], list[Any], list[Any]]]:
    """What `turns` returns, and what they left alive with the collector off: their TurnContexts, each one's channel
    clients and turn_state keys, and the activities with cards made meanwhile."""
    gc.collect()
    earlier = alive_now()
    gc.disable()
    try:
        result = await turns()
        contexts = made_since(earlier, TurnContext)
        clients = [(c.services.get(ConnectorClientBase), c.services.get(UserTokenClientBase)) for c in contexts]
        kept = [set(c.turn_state) for c in contexts]
        cards = [o for o in made_since(earlier, Activity) if o.attachments]
    finally:
        gc.enable()
    return result, (contexts, clients, kept, cards)


async def test_what_a_finished_turn_leaves_to_the_collector_holds_none_of_its_state(db: StoreTarget,
                                                                                  clock: FakeClock) -> None:
    """The SDK leaves each turn's TurnContext, and its DialogContexts, in reference cycles that only a full collection
    frees (bot/agent.py release_turn). What they can still reach once the turn is over is the SDK's own small
    objects: not the conversation's state, the decoded dialog stack or anything the turn kept in its turn_state. (The
    invoke response the adapter reads after the turn stays: test_card_action_invoke_is_answered_with_a_card.)"""
    async with open_teams(db, clock) as teams:
        agent = teams.chat(MARGARET)
        await agent.say("verify alan turing")
        answer = await truthful_answer(teams, agent, ALAN)
        gc.collect()
        earlier = alive_now()
        gc.disable()
        try:
            await agent.answer(answer, execute=True)
            await agent.answer(await truthful_answer(teams, agent, ALAN))
            contexts = made_since(earlier, TurnContext)
            kept = [set(context.turn_state) for context in contexts]
            dialog_state = made_since(earlier, DialogInstance | DialogState | CachedAgentState)
        finally:
            gc.enable()
    assert len(contexts) >= 2  # both turns' contexts are still there, in the SDK's cycles
    assert all(keys <= {ChannelAdapter.INVOKE_RESPONSE_KEY} for keys in kept)
    assert [type(o).__name__ for o in dialog_state] == []


async def test_turns_over_http_leave_the_collector_neither_channel_clients_nor_cards_and_answer_their_invoke(
        demo_client, connector: Connector) -> None:
    """Through the real adapter: the turns' channel clients (an aiohttp session each) and the SDK's copies of the cards
    they sent are not kept by the SDK's cycles around each TurnContext (bot/agent.py release_turn), and the invoke
    response the adapter reads after the turn is still there."""
    click = activity(connector, type="invoke", name="adaptiveCard/action",
                     value={"action": {"type": "Action.Execute", "verb": "answer", "data": {"verb": "answer"}}})
    click.pop("text")
    async def turns() -> tuple[Any, Any]:
        return (await demo_client.post("/api/messages", json=activity(connector, text="help")),
                await demo_client.post("/api/messages", json=click))

    (said, clicked), (contexts, clients, kept, cards) = await left_by(turns)
    assert said.status == 202 and len(connector.replies) == 2  # the help card and a notice, sent to the channel
    assert clicked.status == 200 and (await clicked.json())["type"] == CARD_CONTENT_TYPE
    assert len(contexts) == 2
    assert clients == [(None, None), (None, None)]
    assert sorted(map(len, kept)) == [0, 1] and set().union(*kept) == {ChannelAdapter.INVOKE_RESPONSE_KEY}
    assert cards == []


async def test_the_code_sent_to_the_persons_own_teams_leaves_the_collector_neither_channel_clients_nor_its_card(
        demo_client, connector: Connector) -> None:
    """The code card goes out after the start's turn, into the person's own chat (bot/proactive.py), through a
    TurnContext of the SDK's own that is not a turn of ours: it is released as a turn's is (bot/release.py), so its
    channel clients and the SDK's copy of the card, with the code on it, are not kept by the SDK's cycles around it
    until a full collection."""
    alan = activity(connector, text="hi")
    alan["from"] = {"id": f"29:{ALAN.id}", "name": ALAN.display_name, "aadObjectId": ALAN.id}
    alan["conversation"] = {"id": f"a:{ALAN.id}", "conversationType": "personal", "tenantId": TENANT}
    assert (await demo_client.post("/api/messages", json=alan)).status == 202
    connector.replies.clear()
    async def turn() -> Any:
        started = await demo_client.post("/api/messages", json=activity(connector, text="verify alan turing"))
        await demo_client.server.app[BOT].agent.messenger.sent()
        return started

    started, (contexts, clients, kept, cards) = await left_by(turn)
    assert started.status == 202
    to_alan = [reply for path, reply, _ in connector.replies if path.startswith(f"/v3/conversations/a:{ALAN.id}/")]
    assert ["Your code for the IT helpdesk" in json.dumps(reply) for reply in to_alan] == [True]
    assert len(contexts) == 2  # the start's turn and the send's, both in the SDK's cycles
    assert clients == [(None, None), (None, None)]
    assert kept == [set(), set()]
    assert cards == []
