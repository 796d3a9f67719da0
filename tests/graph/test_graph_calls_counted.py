"""Operators see Graph's answers: every request (a $batch item by item) counted by what it read and how it ended."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from graph.batch import BatchResult, source_of, status_of
from graph.directory import UserNotFound
from observability.metrics import Metrics
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ALAN
from tests.graph.support import directory_for


def graph_calls(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {(s.labels["source"], s.labels["status"]): s.value for family in metrics.registry.collect()
            if family.name == "watchword_graph_calls" for s in family.samples if s.name.endswith("_total")}


def test_a_url_is_counted_by_what_it_reads_never_by_an_id_or_address() -> None:
    assert source_of("/users/2f1c6d0e-8b1a-4c4e-9d55-0d6a8b1e2f3a/calendarView?startDateTime=2026-01-01") == \
        "calendarView"
    assert source_of("/users/alan.turing%40tiny.example") == "users"
    assert source_of("/users/alan.turing@tiny.example/transitiveMemberOf/microsoft.graph.group") == \
        "transitiveMemberOf"
    assert source_of("/groups/2f1c6d0e-8b1a-4c4e-9d55-0d6a8b1e2f3a/transitiveMembers/$count") == "transitiveMembers"
    assert source_of("https://graph.microsoft.com/v1.0/auditLogs/signIns?$top=1") == "signIns"


def test_statuses_are_the_few_an_operator_acts_on() -> None:
    assert [status_of(s) for s in (200, 204, 429, 504, 401, 403, 404, 400, 500, 503)] == \
        ["ok", "ok", "throttled", "timed_out", "refused", "refused", "not_found", "refused", "failed", "failed"]
    assert status_of(BatchResult("x", 504, {}, {"error": {"code": "Timeout"}}).status) == "timed_out"


async def test_a_verifications_reads_are_counted_by_source(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    metrics = Metrics()
    dt = make_tenant()
    async with directory_for(dt, calls=metrics) as directory:
        await directory.load_context(dt.ready["tenant_id"], ALAN)
    counted = graph_calls(metrics)
    assert counted[("calendarView", "ok")] >= 1 and counted[("directReports", "ok")] >= 1
    # a healthy tenant: nothing throttled or refused (someone without a manager is Graph's 404: not_found)
    assert all(status in ("ok", "not_found") for _, status in counted), counted
    assert not any("@" in source or "-" in source for source, _ in counted)


async def test_a_person_graph_does_not_have_is_counted_as_not_found_not_as_refused(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    metrics = Metrics()
    dt = make_tenant()
    async with directory_for(dt, calls=metrics) as directory:
        with pytest.raises(UserNotFound):
            await directory.load_context(dt.ready["tenant_id"], "00000000-0000-4000-8000-00000000dead")
    counted = graph_calls(metrics)
    assert counted.get(("users", "not_found"), 0) >= 1, counted
    assert not any(status == "refused" for _, status in counted), counted


async def test_throttled_directory_reads_are_counted_as_throttled(make_tenant: Callable[..., ThreadedDevTenant]
                                                                 ) -> None:
    metrics = Metrics()
    dt = make_tenant(directory_ru_per_10s=10)  # the eleventh search in a row is answered 429
    async with directory_for(dt, calls=metrics) as directory:
        for _ in range(14):
            await directory.find_people(dt.ready["tenant_id"], "alan")
    counted = graph_calls(metrics)
    assert counted[("users", "throttled")] >= 1 and counted[("users", "ok")] >= 14
