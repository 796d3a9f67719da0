"""`POST /$batch`: Graph's JSON batching, run server-side through the same Router as direct calls.

Outer checks (400 for the whole batch): a JSON object with 1..20 `requests`, each with a unique
(case-insensitive) string `id`, a `method` and a relative `url`; `headers` an object; a `body`
needs a Content-Type header; `dependsOn` names other items and forms no cycle.

Then every item runs with the outer request's token claims; items without `dependsOn` run
concurrently, an item with `dependsOn` after those it names; when one of them failed (status >= 400)
it is not run and answers 424 Failed Dependency. Each item gets its own status, headers and body
(throttles inside handlers give an item its own 429 and Retry-After; devtenant's injected faults
are drawn per item too, as Graph evaluates each item separately). The outer answer is 200, with
the responses in completion order. Injected latency is paid once, by the outer HTTP request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router, bad_request, error_response
from devtenant.graph_api.wire import (
    GRAPH_JSON,
    TEXT_PLAIN,
    Faults,
    dispatch,
    new_request_id,
    split_relative_url,
    stamp_error,
)

MAX_REQUESTS = 20
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class BatchItem:
    id: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: Any
    depends_on: tuple[str, ...]


def register(router: Router, faults: Faults | None = None) -> None:
    """Mount `POST /$batch` on `router`; its items are dispatched through that same router."""

    async def json_batch(req: GraphRequest) -> GraphResponse:
        return await run_batch(router, req, faults)

    router.route("POST", "/$batch", permissions=())(json_batch)


def _invalid(message: str) -> GraphError:
    return bad_request(f"Invalid batch payload format: {message}")


def parse_batch(body: Any) -> list[BatchItem]:
    """Validate a batch payload as Graph does; any problem fails the whole batch with 400."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid("the body must be a JSON object with a 'requests' array.")
    raw_items = body["requests"]
    if not 1 <= len(raw_items) <= MAX_REQUESTS:
        raise _invalid(f"a batch holds 1 to {MAX_REQUESTS} requests; this one has {len(raw_items)}.")
    items: list[BatchItem] = []
    seen: set[str] = set()
    for raw in raw_items:
        if not isinstance(raw, dict):
            raise _invalid("each request must be a JSON object.")
        item_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
        if not isinstance(item_id, str) or not item_id:
            raise _invalid("each request needs a string 'id'.")
        if item_id.lower() in seen:
            raise bad_request(f"Batch request contains duplicate id '{item_id}'.")
        seen.add(item_id.lower())
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _invalid(f"request '{item_id}' needs a 'method' among {sorted(METHODS)}.")
        if not isinstance(url, str) or not url.strip():
            raise _invalid(f"request '{item_id}' needs a relative 'url'.")
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _invalid(f"the 'headers' of request '{item_id}' must be an object of strings.")
        if "body" in raw and raw["body"] is not None and not any(k.lower() == "content-type" for k in headers):
            raise _invalid(f"request '{item_id}' has a body but no Content-Type header.")
        depends_on = raw.get("dependsOn") or []
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            raise _invalid(f"the 'dependsOn' of request '{item_id}' must be an array of ids.")
        items.append(BatchItem(item_id, method.upper(), url.strip(), headers, raw.get("body"),
                               tuple(d.lower() for d in depends_on)))
    ids = {i.id.lower() for i in items}
    for item in items:
        for dep in item.depends_on:
            if dep not in ids or dep == item.id.lower():
                raise _invalid(f"request '{item.id}' depends on an unknown request '{dep}'.")
    _check_acyclic(items)
    return items


def _check_acyclic(items: list[BatchItem]) -> None:
    deps = {i.id.lower(): i.depends_on for i in items}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise _invalid("the dependsOn chain forms a cycle.")
        state[node] = 1
        for dep in deps[node]:
            visit(dep)
        state[node] = 2

    for node in deps:
        visit(node)


async def run_batch(router: Router, req: GraphRequest, faults: Faults | None) -> GraphResponse:
    items = parse_batch(req.body)
    client_request_id = req.headers.get("client-request-id") or new_request_id()
    finished: dict[str, asyncio.Event] = {i.id.lower(): asyncio.Event() for i in items}
    status: dict[str, int] = {}
    responses: list[dict[str, Any]] = []

    async def run(item: BatchItem) -> None:
        for dep in item.depends_on:
            await finished[dep].wait()
        if any(status[dep] >= 400 for dep in item.depends_on):
            resp = error_response(GraphError(424, "FailedDependency", "Failed Dependency"))
        else:
            resp = await _execute(router, req, item, faults)
        stamp_error(resp, request_id=new_request_id(), client_request_id=client_request_id)
        status[item.id.lower()] = resp.status
        responses.append(_item_json(item.id, resp))
        finished[item.id.lower()].set()

    await asyncio.gather(*(run(item) for item in items))
    return GraphResponse(body={"responses": responses})


async def _execute(router: Router, outer: GraphRequest, item: BatchItem, faults: Faults | None) -> GraphResponse:
    try:
        if "://" in item.url:
            raise bad_request("Invalid request URL: a batch request's url must be relative, e.g. /users.")
        path, query = split_relative_url(item.url)
        if path.lower().rstrip("/") == "/$batch":
            raise bad_request("A batch request cannot contain another batch.")
    except GraphError as err:
        return error_response(err)
    kind = faults.draw(allow_timeout=False) if faults else None
    if kind:
        return await faults.response(kind)  # type: ignore[union-attr]
    request = GraphRequest(
        method=item.method, path=path, query=query, headers=CIMultiDictProxy(CIMultiDict(item.headers)),
        body=item.body, claims=outer.claims, state=outer.state, base_url=outer.base_url,
    )
    return await dispatch(router, request)


def _item_json(item_id: str, resp: GraphResponse) -> dict[str, Any]:
    headers = {"Cache-Control": "no-cache"}
    if isinstance(resp.body, dict | list):
        headers |= {"OData-Version": "4.0", "Content-Type": GRAPH_JSON}
    elif isinstance(resp.body, str):
        headers["Content-Type"] = TEXT_PLAIN
    headers |= resp.headers
    out: dict[str, Any] = {"id": item_id, "status": resp.status, "headers": headers}
    if resp.body is not None and resp.status != 204:
        out["body"] = resp.body
    return out
