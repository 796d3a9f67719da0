"""Their manager, asked in Teams "is <name> on the phone with the helpdesk now?": Confirm / I don't know / Deny."""

from __future__ import annotations

from bot.cards import card_of, card_text
from store import AuditFilter, TenantAccess
from tests.dialogs.fakes import ALAN, GRACE, KEN, SECURITY, TENANT
from tests.dialogs.harness import Chat, Teams, answer_until_decided, invoke_responses, is_question, truthful_answer
from verification import Outcome, Policy
from verification.factors import ManagerMode


async def start(teams: Teams, agent: Chat, *, thin: bool = True, policy: Policy | None = None) -> Chat:
    """Alan has no chat with Watchword (so no code); Grace, his manager, has one. Thin: his data alone can't do."""
    teams.directory.manager = GRACE
    grace = teams.chat(GRACE)
    await grace.say("hi")
    grace.new()
    security = teams.chat(SECURITY)
    await security.say("hi")
    await teams.store.policies.save(TENANT, policy or Policy(security_contact_id=SECURITY.id),
                                    "admin@contoso.example", TenantAccess())
    if thin:
        teams.directory.thin.add(ALAN.id)
    await agent.say("verify alan turing")
    return grace


async def answer_all(teams: Teams, agent: Chat) -> None:
    while is_question(agent.last_card()):
        await agent.answer(await truthful_answer(teams, agent, ALAN))


async def test_thin_data_asks_the_manager_at_once(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    asked = card_text(grace.last_card())
    assert "Is Alan Turing on the phone with the helpdesk now?" in asked
    assert "call them on a number you already know" in asked
    assert "[Confirm]" in asked and "[I don't know]" in asked and "[Deny]" in asked
    assert "I'm asking Grace Hopper too" in agent.text() and is_question(agent.last_card())


async def test_thin_data_and_a_manager_who_confirms_verify(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    await answer_all(teams, agent)
    assert card_text(agent.last_card()).startswith("Waiting for Grace Hopper")
    await grace.click("Confirm")
    assert "Their manager confirmed" in agent.text()
    await agent.click("Check again")
    decision = card_text(agent.last_card())
    assert decision.startswith("Verified"), decision
    assert "Their manager confirmed in Teams that they are on the call" in decision


async def test_manager_who_confirms_before_the_questions_end_saves_the_wait(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    await grace.click("Confirm")
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified"), decision


async def test_manager_who_denies_stops_it_and_alerts(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    replies = await grace.click("Deny", execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]).startswith("Thanks: we've stopped it")
    assert "STOP: their manager says it is NOT them" in agent.text()
    assert "was denied" in teams.chat(SECURITY).text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.NOT_VERIFIED
    await agent.say("Ken Thompson")  # typed: the question card was closed
    decision = card_text(agent.last_card())
    assert decision.startswith("Stop: their manager says it is not them") and "[Reset password]" not in decision
    found = await teams.store.audit.query(AuditFilter(action="manager.answered"))
    assert [(e.outcome, e.actor) for e in found.entries] == [("denied", f"teams:{GRACE.id}")]


async def test_a_managers_denial_closes_the_agents_open_question_card(teams: Teams, agent: Chat) -> None:
    # As the person's own "not me" does: nothing left on the card invites the agent to carry on with the caller.
    grace = await start(teams, agent)
    [question] = [a for a in agent.mine() if card_of(a) is not None and is_question(card_of(a))]
    await grace.click("Deny", execute=True)
    [closed] = [card_of(u) for u in teams.outbox.updates if u.id == question.id]
    assert card_text(closed).startswith("Verification stopped") and "manager" in card_text(closed)
    assert not closed.get("actions") and "Input" not in str(closed)

async def test_manager_who_does_not_know_leaves_thin_data_unverified(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    await grace.click("I don't know")
    assert "Their manager doesn't know" in agent.text()
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Not verified") and "manager" not in decision.split("Next step")[0].lower()


async def test_manager_is_not_bothered_when_questions_are_enough(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent, thin=False)
    assert grace.new() == []
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified")


async def test_policy_can_always_ask_the_manager(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent, thin=False, policy=Policy(manager_attestation=ManagerMode.ALWAYS))
    assert "Is Alan Turing on the phone with the helpdesk now?" in grace.text()


async def test_no_manager_factor_when_the_policy_turns_it_off(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent, policy=Policy(manager_attestation=ManagerMode.OFF))
    assert grace.new() == []
    assert card_text(agent.last_card()).startswith("Can't verify this way")


async def test_only_the_manager_can_answer(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    ken = teams.chat(KEN)
    await ken.click("Deny", card=grace.last_card())
    assert "This question isn't for you" in ken.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.IN_PROGRESS


async def test_manager_answer_after_the_end_is_told_it_ended(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent)
    await agent.click("Cancel")
    replies = await grace.click("Confirm", execute=True)
    [response] = invoke_responses(replies)
    assert card_text(response["body"]["value"]).startswith("This verification already ended")


async def test_manager_is_asked_mid_way_when_dont_knows_leave_the_questions_short(teams: Teams, agent: Chat) -> None:
    grace = await start(teams, agent, thin=False)
    assert grace.new() == []  # enough data: nobody bothered at the start
    for _ in range(8):
        if "I'm asking Grace Hopper too" in agent.text() or not is_question(agent.last_card()):
            break
        await agent.click("Caller doesn't know")
    assert "I'm asking Grace Hopper too" in agent.text()
    assert "Is Alan Turing on the phone with the helpdesk now?" in grace.text()
    await grace.click("Confirm")
    decision = await answer_until_decided(teams, agent, ALAN)
    if decision.startswith("Waiting for Grace Hopper"):
        await agent.click("Check again")
        decision = card_text(agent.last_card())
    assert decision.startswith("Verified"), decision
    assert "Their manager confirmed in Teams that they are on the call" in decision


async def test_a_manager_without_a_chat_is_asked_by_installing_watchword_for_them(teams: Teams, agent: Chat) -> None:
    teams.directory.manager = GRACE  # no chat with Watchword
    teams.directory.can_install = True
    teams.directory.thin.add(ALAN.id)
    await agent.say("verify alan turing")
    assert teams.directory.installs == [GRACE.id]
    grace = teams.chat(GRACE, conversation_id=f"19:{GRACE.id}_watchword@unq.gbl.spaces")
    assert "Is Alan Turing on the phone with the helpdesk now?" in card_text(grace.last_card())
    assert "I'm asking Grace Hopper too" in agent.text()


async def test_a_manager_installed_for_once_is_asked_there_again_without_installing(teams: Teams, agent: Chat) -> None:
    teams.directory.manager = GRACE  # no chat with Watchword
    teams.directory.can_install = True
    teams.directory.thin.add(ALAN.id)
    await agent.say("verify alan turing")
    await agent.say("verify alan turing")  # the same agent again: the first verification is set aside
    assert teams.directory.installs == [GRACE.id]  # the installed chat was kept: no second install through Graph
    grace = teams.chat(GRACE, conversation_id=f"19:{GRACE.id}_watchword@unq.gbl.spaces")
    asked = [c for c in grace.cards() if "Is Alan Turing on the phone with the helpdesk now?" in card_text(c)]
    assert len(asked) == 2


async def test_a_manager_whose_kept_chat_is_gone_gets_watchword_installed_again(teams: Teams, agent: Chat,
                                                                                  monkeypatch) -> None:
    from tests.dialogs.harness import TeamsAdapter

    gone = "19:removed-watchword@unq.gbl.spaces"
    await teams.store.conversation_refs.save(TENANT, GRACE.id, {
        "channelId": "msteams", "serviceUrl": "https://smba.example", "bot": {"id": "watchword"},
        "user": {"id": GRACE.id}, "conversation": {"id": gone, "conversationType": "personal", "tenantId": TENANT}})
    send = TeamsAdapter.send_activities

    async def refusing(self, context, activities):  # the chat no longer has Watchword in it: Teams refuses
        if context.activity.conversation.id == gone:
            raise RuntimeError("403 Forbidden: the bot is not part of the conversation roster")
        return await send(self, context, activities)

    monkeypatch.setattr(TeamsAdapter, "send_activities", refusing)
    teams.directory.manager = GRACE
    teams.directory.can_install = True
    teams.directory.thin.add(ALAN.id)
    await agent.say("verify alan turing")
    assert teams.directory.installs == [GRACE.id]
    grace = teams.chat(GRACE, conversation_id=f"19:{GRACE.id}_watchword@unq.gbl.spaces")
    assert "Is Alan Turing on the phone with the helpdesk now?" in card_text(grace.last_card())
    assert "I'm asking Grace Hopper too" in agent.text()
