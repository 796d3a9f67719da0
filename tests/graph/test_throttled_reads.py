"""Every Graph read Watchword makes outside a $batch survives throttling, slow answers and dropped connections:
it retries 429/503/504 after Graph's Retry-After, and a hung attempt, within its time budget (issue 9 item 8)."""

from __future__ import annotations

import asyncio

import pytest

from graph.directory import GraphUnavailable, Unavailability
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ALAN, HELPDESK_GROUP, MARGARET
from tests.graph.support import directory_for

FIRST_HANGS_SEED = 11  # see test_a_people_search_whose_first_attempt_hangs_is_asked_again


async def test_people_search_waits_out_directory_throttling_instead_of_failing(make_tenant) -> None:
    # 10 resource units per 10 s: the eleventh search in a row is answered 429 with Retry-After.
    dt: ThreadedDevTenant = make_tenant(directory_ru_per_10s=10)
    async with directory_for(dt) as directory:
        tenant = dt.ready["tenant_id"]
        found = [await directory.find_people(tenant, "alan") for _ in range(14)]
    assert all(any(p.id == ALAN for p in people) for people in found)


async def test_membership_check_waits_out_directory_throttling(make_tenant) -> None:
    dt: ThreadedDevTenant = make_tenant(directory_ru_per_10s=10)  # checkMemberGroups costs 4 units
    async with directory_for(dt) as directory:
        tenant = dt.ready["tenant_id"]
        answers = [await directory.is_member_of(tenant, MARGARET, HELPDESK_GROUP) for _ in range(5)]
    assert answers == [True] * 5


async def test_a_hung_search_is_asked_again_within_its_budget(make_tenant) -> None:
    # Every request hangs or fails at first; the retry loop gives up with a typed cause, never a traceback,
    # and within the budget it was given.
    dt: ThreadedDevTenant = make_tenant(fault_rate=1.0, fault_hang_s=30.0)
    async with directory_for(dt) as directory:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(GraphUnavailable) as caught:
            await directory._request("GET", dt.ready["tenant_id"], "/users?$top=1", "people search", budget_s=4.0)
        assert loop.time() - started < 8.0
    assert caught.value.cause in (Unavailability.TIMED_OUT, Unavailability.THROTTLED)
    assert caught.value.outage


async def test_graph_that_cannot_be_reached_is_told_as_unreachable(make_tenant) -> None:
    dt: ThreadedDevTenant = make_tenant()
    async with directory_for(dt) as directory:
        directory._graph_url = "https://127.0.0.1:9"  # nothing listens there: the connection is refused
        with pytest.raises(GraphUnavailable) as caught:
            await directory.is_member_of(dt.ready["tenant_id"], MARGARET, HELPDESK_GROUP, budget_s=3.0)
    assert caught.value.cause is Unavailability.UNREACHABLE


async def test_a_people_search_whose_first_attempt_hangs_is_asked_again(make_tenant) -> None:
    # Seed 11 at a 50% fault rate: the first Graph request hangs (then 504, far later than anyone waits), the
    # second is answered. The search must not wait the hang out, nor give up: it asks again, within its budget.
    dt: ThreadedDevTenant = make_tenant(fault_rate=0.5, seed=FIRST_HANGS_SEED, fault_hang_s=9.0)
    async with directory_for(dt, budget_s=8.0) as directory:
        people = await directory.find_people(dt.ready["tenant_id"], "alan")
    assert any(p.id == ALAN for p in people)
