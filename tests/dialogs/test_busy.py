"""Back-pressure: a start Watchword has no room for says "busy, try again in a few seconds", counts nothing against
the person, and is audited as refused by load; never "I can't read their Microsoft 365 data" while Graph is fine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.cards import card_text
from dialogs.session_keeper import StartLimits
from graph.directory import GraphUnavailable, Unavailability
from store import AuditFilter, TenantAccess
from tests.bot.schemas import assert_valid_card
from tests.dialogs.fakes import ALAN, MARGARET, TENANT
from tests.dialogs.harness import Teams, open_teams
from tests.store.support import FakeClock, StoreTarget
from verification import Policy

ONE_AT_A_TIME = StartLimits(at_once=1, wait=timedelta(0))


@pytest.fixture
async def teams(db: StoreTarget, clock: FakeClock) -> AsyncIterator[Teams]:
    async with open_teams(db, clock, start_limits=ONE_AT_A_TIME) as opened:
        yield opened


async def _busy_refusals(teams: Teams) -> list[dict[str, object]]:
    page = await teams.store.audit.query(AuditFilter(action="verification.refused"))
    return [dict(e.details) for e in page.entries if e.outcome == "busy"]


async def test_a_search_beyond_capacity_is_told_busy_and_costs_no_attempt(teams: Teams) -> None:
    agent = teams.chat(MARGARET)
    async with teams.agent.sessions.starting():  # another verification is starting: the only turn is taken
        await agent.say("verify Alan Turing")
    assert_valid_card(agent.last_card())
    text = card_text(agent.last_card())
    assert text.startswith("Watchword is busy — try again in a few seconds")
    assert "doesn't count as anyone's attempt" in text and "can't search" not in text
    assert await teams.store.sessions.list_for_user(TENANT, ALAN.id) == []  # nothing admitted, nothing counted
    assert [d["why"] for d in await _busy_refusals(teams)] == ["starts_at_once"]
    await agent.say("verify Alan Turing")  # a few seconds later
    assert "Question 1 of at most" in agent.text()


async def test_a_start_beyond_capacity_after_the_search_is_told_busy_and_costs_no_attempt(
        db: StoreTarget, clock: FakeClock) -> None:
    async with open_teams(db, clock, start_limits=StartLimits(at_once=1, wait=timedelta(milliseconds=200))) as teams:
        keeper, release, others = teams.agent.sessions, asyncio.Event(), []
        search = teams.directory.find_people

        async def found_as_another_start_arrives(*args: Any, **kwargs: Any) -> Any:
            async def another_start() -> None:
                async with keeper.starting():  # handed the turn as this search gives it back
                    await release.wait()

            others.append(asyncio.create_task(another_start()))
            await asyncio.sleep(0)
            return await search(*args, **kwargs)

        teams.directory.find_people = found_as_another_start_arrives  # type: ignore[method-assign]
        agent = teams.chat(MARGARET)
        await agent.say("verify Alan Turing")
        release.set()
        await asyncio.gather(*others)
        assert_valid_card(agent.last_card())
        text = card_text(agent.last_card())
        assert text.startswith("Watchword is busy — try again in a few seconds")
        assert "Nothing was started for Alan Turing, and this doesn't count as one of their attempts" in text
        assert "Microsoft 365" not in text
        assert await teams.store.sessions.list_for_user(TENANT, ALAN.id) == []  # nothing admitted, nothing counted
        [busy] = await _busy_refusals(teams)
        assert busy["why"] == "starts_at_once" and int(str(busy["waited_ms"])) >= 0


async def test_graph_connections_all_in_use_is_busy_not_cant_read_their_data(teams: Teams) -> None:
    async def no_free_connection(tenant_id: str, user_id: str, deadline: object = None) -> object:
        raise GraphUnavailable("profile: Watchword busy", Unavailability.BUSY)

    teams.directory.load_context = no_free_connection  # type: ignore[method-assign]
    agent = teams.chat(MARGARET)
    await agent.say("verify Alan Turing")
    text = card_text(agent.last_card())
    assert text.startswith("Watchword is busy") and "can't read" not in text
    assert await teams.store.sessions.list_for_user(TENANT, ALAN.id) == []
    assert [d["why"] for d in await _busy_refusals(teams)] == ["graph_connections"]


async def test_self_service_beyond_capacity_is_told_busy_in_the_persons_words(teams: Teams) -> None:
    await teams.store.policies.save(TENANT, Policy(), "admin@contoso.example", TenantAccess(self_service=True))
    alan = teams.chat(ALAN)
    async with teams.agent.sessions.starting():
        await alan.say("reset my password")
    text = card_text(alan.last_card())
    assert text.startswith("Watchword is busy — try again in a few seconds")
    assert "nothing changed on your account" in text
    assert await teams.store.sessions.list_for_user(TENANT, ALAN.id) == []
