"""What an operator's dashboard shows of a verification: started, ended by outcome, how long the first question
and each answer took, and the reset's outcome (observability/metrics.py)."""

from __future__ import annotations

from tests.dialogs.fakes import ALAN
from tests.dialogs.harness import Chat, Teams, answer_until_decided


def sample(teams: Teams, name: str, **labels: str) -> float:
    return teams.agent.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_verified_call_and_its_reset_are_counted(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    assert sample(teams, "watchword_verifications_started_total", kind="agent") == 1
    assert sample(teams, "watchword_first_question_seconds_count") == 1
    assert sample(teams, "watchword_answer_turn_seconds_count") == 0
    assert sample(teams, "watchword_plans_held") == 1
    assert sample(teams, "watchword_plan_memory_bytes") == teams.agent.sessions.plan_bytes > 0
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified")
    assert sample(teams, "watchword_verifications_ended_total", outcome="verified") == 1
    assert sample(teams, "watchword_answer_turn_seconds_count") >= 1
    assert sample(teams, "watchword_first_question_seconds_count") == 1  # answers are not starts
    assert sample(teams, "watchword_plans_held") == sample(teams, "watchword_plan_memory_bytes") == 0  # decided
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    assert sample(teams, "watchword_password_resets_total", outcome="done") == 1


async def test_a_failed_verification_is_counted_by_its_outcome(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    decision = await answer_until_decided(teams, agent, ALAN, truthful=False, guesses=("Ken Thompson",))
    assert decision.startswith("Not verified")
    assert sample(teams, "watchword_verifications_ended_total", outcome="not_verified") == 1
    assert sample(teams, "watchword_verifications_ended_total", outcome="verified") == 0


async def test_a_verification_decided_at_once_times_no_first_question(teams: Teams, agent: Chat) -> None:
    await agent.say("verify ada")  # a privileged administrator: refused as soon as the directory says so
    assert sample(teams, "watchword_verifications_started_total", kind="agent") == 1
    assert sample(teams, "watchword_verifications_ended_total", outcome="privileged") == 1
    assert sample(teams, "watchword_first_question_seconds_count") == 0
