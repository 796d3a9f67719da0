"""devtenant's own CPU for benchmarks (--profile / --request-cpu), and how much of a request's time it injected."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from devtenant import profiling
from devtenant.graph_api import INJECTED_MS, graph_app
from devtenant.server import _AccessLogger
from tests.devtenant.graph_helpers import bearer, make_state, mount, mounted


def test_a_kind_of_request_names_its_route_and_options_never_their_values() -> None:
    kind = profiling.kind_of("GET", "/users/{id}/messages", {"$filter": "subject eq 'secret'", "$top": "10",
                                                               "startDateTime": "2026-12-01"})
    assert kind == "GET /users/{id}/messages ?$filter&$top"
    assert "secret" not in kind


async def test_the_request_table_counts_each_batch_item_as_its_own_kind(aiohttp_client, tmp_path: Path,
                                                                        monkeypatch) -> None:
    profiler = profiling.RequestProfiler(tmp_path / "graph", cprofile=False)
    monkeypatch.setattr(profiling, "PROFILER", profiler)
    state = make_state()
    client = await aiohttp_client(mounted(state))
    profiler.start()
    requests = [{"id": "1", "method": "GET", "url": "/users?$select=id"},
                {"id": "2", "method": "GET", "url": "/users?$select=id,displayName&$top=2"}]
    resp = await client.post("/v1.0/$batch", json={"requests": requests}, headers=bearer(state))
    assert resp.status == 200
    await (await client.get("/v1.0/users?$top=1", headers=bearer(state))).read()
    profiler.stop()
    table = json.loads((tmp_path / "graph.requests.json").read_text())
    assert table["GET /users ?$select"]["requests"] == 1
    assert table["GET /users ?$select&$top"]["requests"] == 1
    assert table["POST /$batch"]["requests"] == 1
    assert table["encode POST $batch"]["requests"] == 1 and table["encode GET direct"]["requests"] == 1
    assert table["GET /users ?$top"]["requests"] == 1
    assert not (tmp_path / "graph").exists()  # no cProfile asked for


async def test_a_graph_request_knows_the_latency_devtenant_injected_into_it(aiohttp_client) -> None:
    state = make_state(latency_ms=20.0, endpoint_latency_ms=(("/auditLogs/signIns", 30.0),))
    seen: list[float | None] = []

    @web.middleware
    async def note(request: web.Request, handler):  # type: ignore[no-untyped-def]
        response = await handler(request)
        seen.append(request.get(INJECTED_MS))
        return response

    root = mount(graph_app(state))
    root.middlewares.append(note)
    client = await aiohttp_client(root)
    await (await client.get("/v1.0/users?$top=1", headers=bearer(state))).read()
    batch = {"requests": [{"id": "1", "method": "GET", "url": "/users?$top=1"},
                          {"id": "2", "method": "GET", "url": "/auditLogs/signIns?$top=1"}]}
    await (await client.post("/v1.0/$batch", json=batch, headers=bearer(state))).read()
    assert seen == [20.0, 50.0]  # the latency, plus the slowest item's own (side by side in a batch)


def test_the_access_log_says_how_much_of_a_graph_requests_time_was_injected(caplog) -> None:
    class Request(dict):
        method, path = "POST", "/v1.0/$batch"

    class Response:
        status = 200

    logger = logging.getLogger("devtenant.access.test")
    access = _AccessLogger(logger, "")
    with caplog.at_level(logging.INFO, logger=logger.name):
        access.log(Request({INJECTED_MS: 1600.0}), Response(), 1.6504)  # type: ignore[arg-type]
        access.log(Request(), Response(), 0.0021)  # type: ignore[arg-type]
    assert caplog.messages == ["POST /v1.0/$batch 200 1650.4 ms (1600.0 ms injected)", "POST /v1.0/$batch 200 2.1 ms"]
