"""devtenant's Microsoft Graph v1.0: an aiohttp sub-application serving the generated organisation.

    app.add_subapp("/v1.0", graph_app(state))

One catch-all handler does what Graph's front door does for every request: pays the injected
latency, authenticates the bearer token (401 InvalidAuthenticationToken), maybe injects a fault
(seeded: 429 / 503 / a hang then 504), builds a `GraphRequest`, dispatches it through one
`Router` on which every Graph module registered its routes, and writes the `GraphResponse` with
Graph's headers (request-id, client-request-id, OData content type). `$batch` items go through
the same router (batch.py), so they answer exactly as direct calls do.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from devtenant import profiling
from devtenant.graph_api import audit_logs, batch, chats, directory, mailbox, passwords, roles, teamwork
from devtenant.graph_api.router import (
    ENDPOINT_WAITS,
    GraphError,
    GraphRequest,
    GraphResponse,
    Router,
    bad_request,
    error_response,
)
from devtenant.graph_api.wire import (
    Faults,
    authenticate,
    dispatch,
    encode_json,
    graph_headers,
    new_request_id,
    parse_query,
    stamp_error,
)
from devtenant.state import DevTenantState

ROUTER = web.AppKey("graph_router", Router)
FAULTS = web.AppKey("graph_faults", Faults)
STATE = web.AppKey("graph_state", DevTenantState)
INJECTED_MS = web.RequestKey("devtenant_injected_ms", float)  # on a Graph request: the latency added on purpose

# Every Graph module exposes register(router); batch registers last, over the same router.
MODULES = (directory, mailbox, chats, audit_logs, roles, passwords, teamwork)


def build_router(faults: Faults | None = None) -> Router:
    router = Router()
    for module in MODULES:
        module.register(router)
    batch.register(router, faults)
    return router


def graph_app(state: DevTenantState, *, fault_hang_s: float | None = None) -> web.Application:
    """The Graph v1.0 sub-application for one devtenant; mount it at /v1.0."""
    faults = Faults(state.config.fault_rate, state.config.seed,
                    hang_s=state.config.fault_hang_s if fault_hang_s is None else fault_hang_s)
    router = build_router(faults)
    app = web.Application()
    app[ROUTER] = router
    app[FAULTS] = faults
    app[STATE] = state

    async def handle(request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        client_request_id = request.headers.get("client-request-id") or request_id
        waits: list[float] = []
        ENDPOINT_WAITS.set(waits)
        if state.config.latency_ms > 0:
            await asyncio.sleep(state.config.latency_ms / 1000)
        try:
            claims = authenticate(state, request.headers.get("Authorization"))
            kind = faults.draw()
            if kind:
                resp = await faults.response(kind)
            else:
                resp = await dispatch(router, await _graph_request(request, state, claims))
        except GraphError as err:
            resp = error_response(err)
        # Injected: the latency, and the slowest endpoint's own (a batch's items wait side by side).
        request[INJECTED_MS] = state.config.latency_ms + 1000 * max(waits, default=0.0)
        profiler = profiling.PROFILER
        if profiler is None or not profiler.on:
            return to_http(resp, request_id=request_id, client_request_id=client_request_id)
        began = time.thread_time()
        answer = to_http(resp, request_id=request_id, client_request_id=client_request_id)
        profiler.add(f"encode {request.method} {'$batch' if request.path.endswith('/$batch') else 'direct'}",
                     time.thread_time() - began, count=True)
        return answer

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _graph_request(request: web.Request, state: DevTenantState, claims: dict) -> GraphRequest:
    tail = request.match_info["tail"]
    prefix = request.path[: len(request.path) - len(tail)].rstrip("/")
    body = None
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise bad_request("Unable to read JSON request payload. Please ensure Content-Type header is set "
                                  "and payload is of valid JSON format.") from None
    return GraphRequest(
        method=request.method,
        path="/" + tail,
        query=parse_query(request.query.items()),
        headers=request.headers,
        body=body,
        claims=claims,
        state=state,
        base_url=f"{request.scheme}://{request.host}{prefix}",
    )


def to_http(resp: GraphResponse, *, request_id: str, client_request_id: str) -> web.Response:
    """A GraphResponse on the wire: JSON with Graph's OData content type, text/plain, or empty."""
    stamp_error(resp, request_id=request_id, client_request_id=client_request_id)
    headers = graph_headers(resp, request_id=request_id, client_request_id=client_request_id)
    if resp.body is None or resp.status == 204:
        data = b""
    elif isinstance(resp.body, str):
        data = resp.body.encode("utf-8")
    else:
        data = encode_json(resp.body)
    return web.Response(status=resp.status, body=data, headers=headers)


__all__ = ["FAULTS", "INJECTED_MS", "ROUTER", "STATE", "build_router", "graph_app", "to_http"]
