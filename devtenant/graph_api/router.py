"""devtenant's Graph v1.0 dispatcher: one place that matches a request to a handler.

Handlers are plain async functions over `GraphRequest` -> `GraphResponse`, so the same handler
serves a direct HTTP request and an item of a `$batch` (see batch.py), exactly as Graph does.
Authentication happens before dispatch (the bearer token's claims arrive in `GraphRequest.claims`);
the permission check happens here, from what each route declares.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtenant import profiling
from devtenant.state import DevTenantState

# A permission requirement: any one alternative suffices; an alternative that is a tuple needs all
# of its permissions (e.g. sign-in logs need AuditLog.Read.All AND Directory.Read.All).
Permission = str | tuple[str, ...]


class GraphError(Exception):
    """An error Graph would answer with its envelope {"error": {"code", "message", "innerError"}}."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_found(what: str = "Resource") -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", f"{what} does not exist or one of its queried "
                      "reference-property objects are not present.")


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


@dataclass
class GraphRequest:
    method: str
    path: str  # below /v1.0, without the query string, e.g. "/users/abc/calendarView"
    query: Mapping[str, str]  # decoded query parameters ($select, $filter, startDateTime, ...)
    headers: Mapping[str, str]  # case-insensitive mapping
    body: Any  # parsed JSON body, or None
    claims: Mapping[str, Any]  # the validated access token's claims
    state: DevTenantState
    base_url: str  # absolute Graph base, e.g. https://127.0.0.1:8443/v1.0 (for @odata.nextLink)
    params: dict[str, str] = field(default_factory=dict)  # filled from the route pattern

    @property
    def roles(self) -> set[str]:
        return set(self.claims.get("roles", []))


@dataclass
class GraphResponse:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str -> text/plain; None -> empty
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[GraphRequest], Awaitable[GraphResponse]]

# The endpoint latencies (s) the current HTTP request's handlers slept for: a $batch's items run in tasks that
# share this list with their batch. The access log says how much of a request's time was injected.
ENDPOINT_WAITS: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("endpoint_waits", default=None)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    permissions: Sequence[Permission]
    handler: Handler
    source: str = ""  # the pattern as registered, e.g. "/users/{id}" (a request's kind, when profiling)


class Router:
    """Routes are patterns such as "/users/{id}/calendarView"; `{name}` matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def route(self, method: str, pattern: str, *, permissions: Sequence[Permission]) -> Callable[[Handler], Handler]:
        regex = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "/?$", re.IGNORECASE
        )

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), regex, tuple(permissions), handler, pattern))
            return handler

        return register

    async def dispatch(self, request: GraphRequest) -> GraphResponse:
        """Match, check permissions, call the handler; GraphError becomes Graph's error envelope."""
        try:
            route, params = self._match(request.method.upper(), request.path)
            request.params = params
            self._authorize(route, request.roles)
            from devtenant.graph_api.throttling import check_directory_limit  # throttling imports this module

            check_directory_limit(request)
            delay = endpoint_latency_s(request)
            if delay:
                waits = ENDPOINT_WAITS.get()
                if waits is not None:
                    waits.append(delay)
                await asyncio.sleep(delay)
            if profiling.PROFILER is not None and profiling.PROFILER.on:
                kind = profiling.kind_of(route.method, route.source, request.query)
                return await profiling.PROFILER.timed(kind, route.handler(request))
            return await route.handler(request)
        except GraphError as err:
            return error_response(err)

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        path_matched = False
        for route in self._routes:
            m = route.pattern.match(path)
            if m:
                path_matched = True
                if route.method == method:
                    return route, m.groupdict()
        if path_matched:
            raise GraphError(405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed.")
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path.strip('/').split('/')[0]}'.")

    @staticmethod
    def _authorize(route: _Route, roles: set[str]) -> None:
        for alternative in route.permissions:
            needed = {alternative} if isinstance(alternative, str) else set(alternative)
            if needed <= roles:
                return
        if route.permissions:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def endpoint_latency_s(request: GraphRequest) -> float:
    """The extra time this endpoint takes (DevTenantConfig.endpoint_latency_ms), in seconds."""
    path = request.path.lower()
    return sum(ms for prefix, ms in request.state.config.endpoint_latency_ms if path.startswith(prefix.lower())) / 1000


def error_response(err: GraphError) -> GraphResponse:
    body = {"error": {"code": err.code, "message": err.message,
                      "innerError": {"date": _now_iso(), "request-id": _request_id(),
                                     "client-request-id": _request_id()}}}
    return GraphResponse(status=err.status, body=body, headers=dict(err.headers))


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _request_id() -> str:
    import uuid

    return str(uuid.uuid4())
