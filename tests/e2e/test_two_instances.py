"""Two Watchword processes, one PostgreSQL database, no sticky sessions (README: Running several instances).

One verification whose turns alternate between the two completes; a burst of turns on both at once keeps the audit
chain valid. Needs WATCHWORD_TEST_DATABASE_URL (.ci/run sets it): each run gets a database of its own.

The tests share one pair of instances (starting two processes is most of their cost): each verifies people of its
own (the cluster hands each target out once) from agents' chats whose earlier verifications have ended, so what one
test leaves in the database is another helpdesk's history, as in production; the chain is checked over all of it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bench.cluster import Cluster, cluster, postgres_database, verification
from bot.turn_errors import NEUTRAL
from store import open_store
from tests.store.support import POSTGRES_SKIP_REASON, POSTGRES_URL_VARIABLE

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def database() -> AsyncIterator[str]:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(POSTGRES_SKIP_REASON)
    async with postgres_database(url, "watchword_two") as database_url:
        yield database_url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with cluster(2, database, tmp_path_factory.mktemp("two-instances"), users=120, agents=4) as running:
        yield running


async def test_a_verification_whose_turns_alternate_between_two_instances_completes(two: Cluster,
                                                                                    database: str) -> None:
    outcome = await verification(two, two.agents[0], route=lambda n: n % 2, skip_refused=True)

    # Completed: a decision, reached with turns on both instances (whether the simulated caller convinced the
    # policy is bench.accuracy's business, not this test's).
    assert outcome.title in ("Verified", "Not verified"), outcome
    assert set(outcome.turns_by_instance) == {0, 1} and outcome.questions >= 2
    store = await open_store(database)
    try:
        chain = await store.audit.verify_chain()
        entries = (await store.audit.query(None, limit=1000)).entries
    finally:
        await store.close()
    [decided] = [e for e in entries if e.action == "verification.decided" and e.subject == outcome.target]
    session = decided.details["session_id"]
    answers = [e for e in entries if e.action == "verification.answer" and e.details.get("session_id") == session]
    assert sorted(e.details["question"] for e in answers) == list(range(1, outcome.questions + 1))  # each once
    assert chain.ok


async def test_the_audit_chain_stays_valid_under_concurrent_writes_from_both(two: Cluster, database: str) -> None:
    routes = [lambda n, k=k: (n + k) % 2 for k in range(len(two.agents))]
    outcomes = await asyncio.gather(*(verification(two, agent, route=route)
                                      for agent, route in zip(two.agents, routes, strict=True)))

    # each ended clearly (a decision, or a refusal before any question), none in the turn-error handler
    assert all(o.title and o.title not in (NEUTRAL, "That didn't go through") for o in outcomes), outcomes
    store = await open_store(database)
    try:
        chain = await store.audit.verify_chain()
    finally:
        await store.close()
    assert chain.ok and chain.rows_checked > 10, chain


async def test_the_attempt_limit_holds_when_six_agents_verify_one_person_on_both_at_once(two: Cluster,
                                                                                        database: str) -> None:
    from bench.faults import attempts_of, over_limit
    from bench.turns import Agent
    from verification import Policy

    person = next(two.targets)
    agents = [Agent(a.user_id, a.name, f"a:burst-{n}-{a.user_id}", a.tenant_id)
              for n, a in enumerate(two.agents * 2)][:6]
    outcomes = await asyncio.gather(*(verification(two, agent, route=lambda k, n=n: (n + k) % 2, target=person)
                                      for n, agent in enumerate(agents)))

    assert all(o.title not in (NEUTRAL, "That didn't go through") for o in outcomes), outcomes
    store = await open_store(database)
    try:
        attempts = await attempts_of(store, person.id)
    finally:
        await store.close()
    assert len(attempts) >= 1 and over_limit(attempts, Policy().max_attempts_per_day) == 0, attempts
