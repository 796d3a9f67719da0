"""`reset my password` from the person themselves: off unless the tenant turned it on."""

from __future__ import annotations

from dataclasses import replace

from bot.cards import card_text
from dialogs.self_service_dialog import self_service_policy
from store import TenantAccess, UserSnapshot
from tests.dialogs.fakes import ADA, ALAN, GRACE, TEMPORARY_PASSWORD, TENANT
from tests.dialogs.harness import Chat, Teams, answer_until_decided
from tests.verification import builders as b
from verification import Outcome, VerificationSession, assess_risk
from verification.factors import Factor
from verification.policy import Policy

MAX_QUESTIONS = Policy().max_questions  # what the question cards count up to


async def test_self_service_is_off_unless_the_policy_enables_it(teams: Teams, alan: Chat) -> None:
    await alan.say("reset my password")
    assert ("Self-service password reset is off\nYour organisation has not turned on self-service password reset"
            in alan.text())
    assert teams.directory.resets == []


async def _enable_self_service(teams: Teams) -> None:
    await teams.store.policies.save(TENANT, Policy(), "admin@contoso.example", TenantAccess(self_service=True))


async def test_self_service_when_enabled_asks_more_and_resets_once(teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    await alan.say("reset my password")
    first = card_text(alan.last_card())
    assert first.startswith(f"Question 1 of at most {MAX_QUESTIONS}") and "[I don't know]" in first
    decision = await answer_until_decided(teams, alan, ALAN)
    assert decision.startswith("Reset this password?")
    await alan.click("Yes, reset it")
    assert TEMPORARY_PASSWORD in alan.text()
    await alan.click("I've passed it on")
    assert TEMPORARY_PASSWORD not in alan.text()
    [session] = await teams.store.sessions.list_for_user(TENANT, ALAN.id)
    assert session.outcome is Outcome.VERIFIED and session.agent_id is None
    assert session.required_bits == 28


async def test_self_service_wrong_answers_reset_nothing_and_say_what_to_do_without_blame(teams: Teams,
                                                                                         alan: Chat) -> None:
    await _enable_self_service(teams)
    await alan.say("reset my password")
    decision = await answer_until_decided(teams, alan, ALAN, truthful=False, guesses=("Grace Hopper",) * 8)
    assert decision.startswith("Not reset") and "Call the IT helpdesk: they can check it's you by phone" in decision
    assert "activity" not in decision and "weren't enough" not in decision
    assert teams.directory.resets == []


async def test_self_service_never_shows_a_code(teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    await alan.say("reset my password")
    assert "Your code for the IT helpdesk" not in alan.text() and "Ask for the code" not in alan.text()


async def test_thin_data_self_service_gets_through_with_the_managers_confirmation(teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    teams.directory.manager = GRACE
    teams.directory.thin.add(ALAN.id)
    grace = teams.chat(GRACE)
    await grace.say("hi")
    await alan.say("reset my password")
    asked = card_text(grace.last_card())
    assert "Is Alan Turing resetting their own password in Teams right now?" in asked
    assert "A stolen phone or laptop could do that too." in asked
    assert "I'm asking Grace Hopper to confirm it's you" in alan.text()
    await grace.click("Confirm")
    decision = await answer_until_decided(teams, alan, ALAN)
    if decision.startswith("Waiting for Grace Hopper"):
        await alan.click("Check again")
        decision = card_text(alan.last_card())
    assert decision.startswith("Reset this password?"), decision


async def test_thin_data_self_service_without_a_manager_says_what_to_do(teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    teams.directory.thin.add(ALAN.id)
    await alan.say("reset my password")
    told = alan.text()
    assert "I can't check it's you in this chat this time. That's not something you did." in told
    assert "Call the IT helpdesk" in told and "activity" not in told


async def test_help_offers_self_service_only_to_people_who_can_use_it(teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    await teams.store.protected_users.begin_sync(TENANT)
    await teams.store.protected_users.apply_sync_page(
        TENANT, upserts=[UserSnapshot(ALAN.id, ALAN.upn or "", ALAN.display_name),
                         UserSnapshot(ADA.id, ADA.upn or "", ADA.display_name,
                                      not_resettable_reasons=("privileged_admin",))], delta_link="d")
    await alan.say("help")
    assert "reset my password" in alan.text().lower()
    ada = teams.chat(ADA)  # a Global Administrator: never reset through Watchword
    await ada.say("help")
    assert "reset my password" not in ada.text().lower()


async def test_thin_data_self_service_asks_a_manager_without_a_chat_by_installing_watchword_for_them(
        teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    teams.directory.manager = GRACE  # Grace has never opened a chat with Watchword
    teams.directory.can_install = True  # the tenant granted TeamsAppInstallation.ReadWriteSelfForUser.All
    teams.directory.thin.add(ALAN.id)
    await alan.say("reset my password")
    assert teams.directory.installs == [GRACE.id]
    grace = teams.chat(GRACE, conversation_id=f"19:{GRACE.id}_watchword@unq.gbl.spaces")
    assert "Is Alan Turing resetting their own password in Teams right now?" in card_text(grace.last_card())
    assert "I'm asking Grace Hopper to confirm it's you" in alan.text()
    await grace.click("Confirm")
    decision = await answer_until_decided(teams, alan, ALAN)
    if decision.startswith("Waiting for Grace Hopper"):
        await alan.click("Check again")
        decision = card_text(alan.last_card())
    assert decision.startswith("Reset this password?"), decision


async def test_a_manager_without_a_chat_is_not_offered_when_watchword_may_not_install_itself(
        teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    teams.directory.manager = GRACE
    teams.directory.thin.add(ALAN.id)
    await alan.say("reset my password")
    assert teams.directory.installs == []
    told = alan.text()
    assert "I can't check it's you in this chat this time. That's not something you did." in told
    assert ("Grace Hopper, your manager, could confirm it's you here once they have opened Watchword in Teams: ask "
            "them to, then try again." in told)
    assert "Call the IT helpdesk" in told


def _self_service_start(available: frozenset[Factor]) -> VerificationSession:
    """Someone whose only private facts are their saved contacts: 8 bits at most, as in the thinnest tenth."""
    context = replace(b.context(), meetings=(), chats=(), mail=(), groups=())
    policy = self_service_policy(Policy())
    session = VerificationSession(lambda: context.fetched_at, seed="contacts-only")
    session.start(context, b.org(), policy, assess_risk(context, policy), 0, available)
    return session


def test_thin_data_that_reaches_the_helpdesks_bar_with_the_code_reaches_self_service_with_the_manager() -> None:
    assert _self_service_start(frozenset()).decision is not None  # questions alone: refused up front
    with_manager = _self_service_start(frozenset({Factor.MANAGER}))
    assert with_manager.decision is None  # asked: the manager and 6 bits can verify them
    assert with_manager.plan()
