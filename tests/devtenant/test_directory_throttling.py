"""devtenant throttles directory (identity and access) requests as Graph does: resource units per app per
tenant in a 10-second bucket, sized by the tenant, with Graph's per-request costs (issue 9 item 8)."""

from __future__ import annotations

from devtenant.graph_api import build_router
from devtenant.graph_api.throttling import TokenBucket, directory_cost, directory_quota
from tests.devtenant.graph_support import call, make_state


def test_request_costs_follow_graphs_table() -> None:
    assert directory_cost("GET", "/users", {}) == 2
    assert directory_cost("GET", "/users", {"$select": "id"}) == 1
    assert directory_cost("GET", "/users", {"$select": "id", "$expand": "manager"}) == 2
    assert directory_cost("GET", "/groups/g/transitiveMembers", {}) == 5
    assert directory_cost("POST", "/users/u/checkMemberGroups", {}) == 4
    assert directory_cost("GET", "/users/u", {"$select": "id", "$top": "5"}) == 1  # never below 1
    assert directory_cost("GET", "/users/u/calendarView", {}) is None  # Outlook: limits of its own
    assert directory_cost("GET", "/auditLogs/signIns", {}) is None  # reports: limits of their own


def test_quota_depends_on_the_tenant_size() -> None:
    assert (directory_quota(20), directory_quota(200), directory_quota(5000)) == (3_500, 5_000, 8_000)


def test_the_bucket_refills_over_ten_seconds() -> None:
    now = [0.0]
    bucket = TokenBucket(10, clock=lambda: now[0])
    assert all(bucket.take("k", 1) == 0 for _ in range(10))
    assert bucket.take("k", 1) == 1.0  # one unit comes back every second
    now[0] += 1.0
    assert bucket.take("k", 1) == 0


async def test_over_budget_reads_get_429_with_retry_after_and_the_throttle_scope() -> None:
    state = make_state(directory_ru_per_10s=3)
    router = build_router()
    answers = [await call(state, "GET", "/users", {"$select": "id"}, router=router) for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    assert throttled.body["error"]["code"] == "TooManyRequests"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    assert (await call(state, "GET", "/domains", {}, router=router)).status == 429  # any directory read
    assert (await call(state, "GET", "/auditLogs/signIns", {}, router=router)).status == 200  # not one
