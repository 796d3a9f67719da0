"""`reset my password` from the person themselves: off unless the tenant turned it on."""

from __future__ import annotations

import pytest

from bot.cards import card_text
from store import SessionOutcome
from tests.dialogs.fakes import ALAN, TEMPORARY_PASSWORD, TENANT
from tests.dialogs.harness import Chat, Teams, answer_until_decided
from verification.policy import Policy

MAX_QUESTIONS = Policy().max_questions  # what the question cards count up to


async def test_self_service_is_off_unless_the_policy_enables_it(teams: Teams, alan: Chat) -> None:
    await alan.say("reset my password")
    assert ("Self-service password reset is off\nYour organisation has not turned on self-service password reset"
            in alan.text())
    assert teams.directory.resets == []


async def _enable_self_service(teams: Teams) -> None:
    policies = getattr(teams.store, "policies", None)
    if policies is None:
        pytest.skip("store.policies (the tenant's saved policy) is not there yet")
    from store import TenantAccess
    from verification import Policy

    await policies.save(TENANT, Policy(), "admin@contoso.example", TenantAccess(self_service=True))


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
    assert session.outcome is SessionOutcome.VERIFIED and session.agent_id is None
    assert session.required_bits == 28


async def test_self_service_one_wrong_answer_ends_it(teams: Teams, alan: Chat) -> None:
    await _enable_self_service(teams)
    await alan.say("reset my password")
    decision = await answer_until_decided(teams, alan, ALAN, truthful=False, guesses=("Grace Hopper",) * 4)
    assert decision.startswith("Not reset") and "call the IT helpdesk" in decision
    assert teams.directory.resets == []
