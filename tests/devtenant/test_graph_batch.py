"""`POST /v1.0/$batch` behaves as Graph's JSON batching."""

from __future__ import annotations

import asyncio
import time

import pytest

from devtenant.graph_api import ROUTER, graph_app
from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse
from tests.devtenant.graph_helpers import bearer, make_state, mount, mounted
from tests.devtenant.tiny_org import ADA, ALAN, ALL_COMPANY, GLOBAL_ADMIN_ROLE, GRACE, make_eligible


@pytest.fixture
def state():
    return make_state()


@pytest.fixture
def graph(state):
    return graph_app(state)


@pytest.fixture
def router(graph):
    """The Router every module registered on; tests add routes of their own to it."""
    return graph[ROUTER]


@pytest.fixture
async def client(aiohttp_client, graph):
    return await aiohttp_client(mount(graph))


async def batch(client, state, requests, *, roles: tuple[str, ...] = ()):
    resp = await client.post("/v1.0/$batch", json={"requests": requests}, headers=bearer(state, *roles))
    return resp, await resp.json()


def by_id(body) -> dict[str, dict]:
    return {r["id"]: r for r in body["responses"]}


async def test_batch_answers_200_with_each_items_status_headers_and_body(client, state):
    resp, body = await batch(client, state, [
        {"id": "1", "method": "GET", "url": f"/users/{ALAN}?$select=id,displayName"},
        {"id": "2", "method": "GET", "url": "users/nobody"},
        {"id": "3", "method": "GET", "url": "/users?$top=1", "headers": {"client-request-id": "x"}},
    ])
    assert resp.status == 200
    items = by_id(body)
    assert items["1"]["status"] == 200
    assert items["1"]["body"]["displayName"] == "Alan Turing"
    assert items["1"]["headers"]["Content-Type"].startswith("application/json;odata.metadata=minimal")
    assert items["2"]["status"] == 404
    assert items["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert set(items["2"]["body"]["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert "@odata.nextLink" in items["3"]["body"]


async def test_role_assignments_and_eligibilities_travel_in_one_batch(client, state):
    make_eligible(state.org, ALAN, GLOBAL_ADMIN_ROLE)
    query = f"$filter=principalId eq '{ALAN}'&$expand=roleDefinition"
    _, body = await batch(client, state, [
        {"id": "active", "method": "GET", "url": f"/roleManagement/directory/roleAssignments?{query}"},
        {"id": "eligible", "method": "GET",
         "url": f"/roleManagement/directory/roleEligibilityScheduleInstances?{query}"},
    ], roles=("RoleManagement.Read.Directory",))
    items = by_id(body)
    assert items["active"]["status"] == 200 and items["active"]["body"]["value"] == []
    (eligibility,) = items["eligible"]["body"]["value"]
    assert eligibility["roleDefinition"]["displayName"] == "Global Administrator"


async def test_batch_of_21_requests_is_400(client, state):
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{ALAN}"} for n in range(21)]
    resp, body = await batch(client, state, requests)
    assert resp.status == 400
    assert body["error"]["code"] == "BadRequest"


async def test_empty_batch_is_400(client, state):
    resp, _ = await batch(client, state, [])
    assert resp.status == 400


async def test_duplicate_ids_are_400_regardless_of_case(client, state):
    resp, _ = await batch(client, state, [{"id": "a", "method": "GET", "url": "/users"},
                                          {"id": "A", "method": "GET", "url": "/groups"}])
    assert resp.status == 400


async def test_unknown_or_cyclic_dependencies_are_400(client, state):
    unknown = [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]
    cyclic = [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
              {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]}]
    assert (await batch(client, state, unknown))[0].status == 400
    assert (await batch(client, state, cyclic))[0].status == 400


async def test_a_body_without_content_type_is_400(client, state):
    resp, _ = await batch(client, state, [{"id": "1", "method": "POST", "url": f"/users/{ALAN}/checkMemberGroups",
                                           "body": {"groupIds": [ALL_COMPANY]}}])
    assert resp.status == 400


async def test_post_item_with_body(client, state):
    _, body = await batch(client, state, [{"id": "1", "method": "POST", "url": f"/users/{ALAN}/checkMemberGroups",
                                           "headers": {"Content-Type": "application/json"},
                                           "body": {"groupIds": [ALL_COMPANY]}}])
    assert by_id(body)["1"]["body"]["value"] == [ALL_COMPANY]


async def test_failed_dependency_gives_424_down_the_chain(client, state):
    _, body = await batch(client, state, [
        {"id": "1", "method": "GET", "url": "/users/nobody"},
        {"id": "2", "method": "GET", "url": f"/users/{ALAN}", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users/{GRACE}", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": f"/users/{ADA}"},
    ])
    items = by_id(body)
    assert [items[i]["status"] for i in "1234"] == [404, 424, 424, 200]
    assert items["2"]["body"]["error"]["message"] == "Failed Dependency"


async def test_items_run_concurrently_unless_depends_on_orders_them(client, state, router):
    log: list[str] = []

    @router.route("GET", "/test/slow/{name}", permissions=())
    async def slow(req: GraphRequest) -> GraphResponse:
        log.append(f"start {req.params['name']}")
        await asyncio.sleep(0.1)
        log.append(f"end {req.params['name']}")
        return GraphResponse(body={"name": req.params["name"]})

    start = time.perf_counter()
    _, body = await batch(client, state, [{"id": n, "method": "GET", "url": f"/test/slow/{n}"} for n in "abcd"])
    assert time.perf_counter() - start < 0.3  # four 0.1 s items side by side
    assert all(r["status"] == 200 for r in body["responses"])

    log.clear()
    await batch(client, state, [
        {"id": "2", "method": "GET", "url": "/test/slow/second", "dependsOn": ["1"]},
        {"id": "1", "method": "GET", "url": "/test/slow/first"},
    ])
    assert log == ["start first", "end first", "start second", "end second"]


async def test_an_item_can_be_throttled_on_its_own_with_retry_after(client, state, router):
    @router.route("GET", "/test/throttled", permissions=())
    async def throttled(req: GraphRequest) -> GraphResponse:
        raise GraphError(429, "TooManyRequests", "Too many requests.", headers={"Retry-After": "7"})

    resp, body = await batch(client, state, [{"id": "1", "method": "GET", "url": "/test/throttled"},
                                             {"id": "2", "method": "GET", "url": f"/users/{ALAN}"}])
    items = by_id(body)
    assert resp.status == 200
    assert items["1"]["status"] == 429 and items["1"]["headers"]["Retry-After"] == "7"
    assert items["2"]["status"] == 200


async def test_items_are_authorized_with_the_outer_token_and_fail_individually(client, state):
    _, body = await batch(client, state, [{"id": "1", "method": "GET", "url": f"/users/{ALAN}"},
                                          {"id": "2", "method": "GET", "url": f"/groups/{ALL_COMPANY}"}],
                          roles=("User.Read.All",))
    items = by_id(body)
    assert items["1"]["status"] == 200
    assert items["2"]["status"] == 403
    assert items["2"]["body"]["error"]["code"] == "Authorization_RequestDenied"


async def test_item_headers_carry_consistency_level_and_text_bodies_stay_text(client, state):
    _, body = await batch(client, state, [
        {"id": "with", "method": "GET", "url": f"/groups/{ALL_COMPANY}/transitiveMembers/$count",
         "headers": {"ConsistencyLevel": "eventual"}},
        {"id": "without", "method": "GET", "url": f"/groups/{ALL_COMPANY}/transitiveMembers/$count"},
    ])
    items = by_id(body)
    assert items["with"]["status"] == 200 and items["with"]["body"] == "6"
    assert items["with"]["headers"]["Content-Type"] == "text/plain"
    assert items["without"]["status"] == 400


async def test_absolute_and_nested_batch_urls_fail_the_item(client, state):
    _, body = await batch(client, state, [
        {"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"},
        {"id": "2", "method": "POST", "url": "/$batch", "headers": {"Content-Type": "application/json"},
         "body": {"requests": []}},
    ])
    assert [r["status"] for r in sorted(body["responses"], key=lambda r: r["id"])] == [400, 400]


async def test_batch_needs_a_token(client):
    resp = await client.post("/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/users"}]})
    assert resp.status == 401


async def test_latency_is_paid_once_per_batch_not_per_item(aiohttp_client):
    state = make_state(latency_ms=80)
    client = await aiohttp_client(mounted(state))
    start = time.perf_counter()
    _, body = await batch(client, state, [{"id": str(n), "method": "GET", "url": f"/users/{ALAN}"}
                                          for n in range(10)])
    elapsed = time.perf_counter() - start
    assert len(body["responses"]) == 10
    assert 0.08 <= elapsed < 0.3


async def test_injected_faults_reach_single_items(aiohttp_client):
    state = make_state(fault_rate=0.4, seed=11)
    client = await aiohttp_client(mounted(state, fault_hang_s=0.01))
    statuses: set[int] = set()
    for _ in range(5):
        resp = await client.post("/v1.0/$batch", headers=bearer(state), json={
            "requests": [{"id": str(n), "method": "GET", "url": f"/users/{ALAN}"} for n in range(20)]})
        if resp.status == 200:
            statuses |= {r["status"] for r in (await resp.json())["responses"]}
    assert 200 in statuses and statuses & {429, 503}


async def test_a_handler_bug_answers_graphs_500_envelope_and_spares_the_other_items(client, state, router, caplog):
    @router.route("GET", "/test/broken", permissions=())
    async def broken(req: GraphRequest) -> GraphResponse:
        raise RuntimeError("boom")

    resp = await client.get("/v1.0/test/broken", headers=bearer(state))
    assert resp.status == 500 and (await resp.json())["error"]["code"] == "UnknownError"
    _, body = await batch(client, state, [{"id": "1", "method": "GET", "url": "/test/broken"},
                                          {"id": "2", "method": "GET", "url": f"/users/{ALAN}"}])
    assert {r["id"]: r["status"] for r in body["responses"]} == {"1": 500, "2": 200}
    assert "boom" in caplog.text
