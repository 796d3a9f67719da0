"""devtenant's per-endpoint latency: sign-in logs (the reports API) take seconds, as on Microsoft's side."""

from __future__ import annotations

from devtenant.__main__ import parse_args
from devtenant.graph_api.router import GraphRequest, endpoint_latency_s
from devtenant.state import DevTenantConfig
from tests.devtenant.graph_support import make_state


def _request(state, path: str) -> GraphRequest:
    return GraphRequest(method="GET", path=path, query={}, headers={}, body=None, claims={}, state=state,
                        base_url="https://127.0.0.1/v1.0")


def test_sign_in_logs_are_slow_by_default_and_nothing_else_is() -> None:
    state = make_state()
    assert dict(DevTenantConfig().endpoint_latency_ms)["/auditLogs/signIns"] >= 1000
    assert endpoint_latency_s(_request(state, "/auditLogs/signIns")) >= 1.0
    assert endpoint_latency_s(_request(state, "/users/abc")) == 0


def test_the_cli_sets_an_endpoints_latency() -> None:
    args = parse_args(["--endpoint-latency-ms", "/auditLogs/signIns=3000", "--endpoint-latency-ms", "/users=50"])
    assert args.endpoint_latency_ms == [("/auditLogs/signIns", 3000.0), ("/users", 50.0)]


async def test_a_delta_link_older_than_its_lifetime_answers_sync_state_not_found() -> None:
    import asyncio

    from devtenant.graph_api import build_router
    from tests.devtenant.graph_support import call

    state = make_state(delta_token_lifetime_s=0.0)
    router = build_router()
    first = await call(state, "GET", "/users/delta", {"$select": "id"}, router=router)
    while "@odata.nextLink" in first.body:
        token = first.body["@odata.nextLink"].split("$skiptoken=")[1]
        first = await call(state, "GET", "/users/delta", {"$skiptoken": token}, router=router)
    token = first.body["@odata.deltaLink"].split("$deltatoken=")[1]
    await asyncio.sleep(1.1)
    expired = await call(state, "GET", "/users/delta", {"$deltatoken": token}, router=router)
    assert (expired.status, expired.body["error"]["code"]) == (400, "syncStateNotFound")
    assert DevTenantConfig().delta_token_lifetime_s == 7 * 24 * 3600  # Graph's default for directory objects
