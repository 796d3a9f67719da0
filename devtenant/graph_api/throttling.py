"""Graph's documented throttles, kept per running devtenant (on `DevTenantState.throttles`).

Three limits matter to Watchword, and all are checked behind the router, so they hold for an
item of a `$batch` exactly as for a direct request:

* Directory reads and writes (identity and access: users, groups, roles, domains...): a token
  bucket of resource units per app per tenant, refilled over 10 s; its size depends on the tenant
  (S under 50 users 3,500, M up to 500 5,000, L above 8,000) unless `DevTenantConfig.directory_ru_per_10s`
  says otherwise. A request costs its path's base cost (`GET /users` 2, `transitiveMembers` 5,
  `checkMemberGroups` 4, anything else 1), minus 1 with `$select`, plus 1 with `$expand`, minus 1
  with `$top` under 20, never under 1. Over budget: 429 `TooManyRequests` with `Retry-After` and
  `x-ms-throttle-scope` (Microsoft Graph "service-specific throttling limits", identity and access).

* Reports (sign-in logs): 5 requests per 10 s per app per tenant, a sliding window. The sixth
  gets 429 `TooManyRequests` with `Retry-After` = whole seconds until the oldest request leaves
  the window. A throttled request does not count.
* Outlook (mail, calendar, contacts): at most 4 concurrent requests per app per mailbox. The
  fifth gets 429 `ApplicationThrottled`, "Application is over its MailboxConcurrency limit.".
  A request holds its slot for `service_time_s` (DevTenantConfig.mailbox_latency_ms, default 0)
  and yields to the event loop at least once, so requests dispatched together (a `$batch` of five
  calls on one mailbox) overlap as on Exchange. The framework's latency_ms is paid before dispatch,
  outside any slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from devtenant.graph_api.router import GraphError, GraphRequest
from devtenant.state import DevTenantState

log = logging.getLogger("devtenant.reports")  # one line per reports request: benchmarks count them

REPORTS_LIMIT = 5
REPORTS_WINDOW_S = 10.0
MAILBOX_CONCURRENCY = 4
DIRECTORY_WINDOW_S = 10.0

# Graph's documented base costs, by (method, last path segments); anything else costs 1.
_DIRECTORY_COSTS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("GET", re.compile(r"^/users/?$", re.I), 2),
    ("GET", re.compile(r"/transitiveMembers(/|$)", re.I), 5),
    ("GET", re.compile(r"^/groups/[^/]+/members(/|$)", re.I), 3),
    ("POST", re.compile(r"/(checkMemberGroups|checkMemberObjects)$", re.I), 4),
    ("POST", re.compile(r"/(getMemberGroups|getMemberObjects)$", re.I), 2),
    ("GET", re.compile(r"/(memberOf|transitiveMemberOf)(/|$)", re.I), 2),
    ("POST", re.compile(r"^/directoryObjects/getByIds$", re.I), 3),
)
# Paths served by the identity and access service (Outlook, Teams and reports have limits of their own).
_DIRECTORY_ROOTS = ("users", "groups", "domains", "organization", "servicePrincipals", "roleManagement",
                    "directoryObjects", "applications")
_NOT_DIRECTORY = re.compile(r"/(calendarView|events|messages|mailFolders|contacts|chats)(/|$)", re.I)


def app_key(claims: Mapping[str, Any]) -> tuple[str, str]:
    """Graph throttles per app per tenant: the token's appid and tid."""
    return str(claims.get("appid") or claims.get("azp") or ""), str(claims.get("tid") or "")


@dataclass
class SlidingWindow:
    """At most `limit` admitted requests per key in any `window_s` seconds."""

    limit: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[Any, deque[float]] = field(default_factory=dict)

    def admit(self, key: Any) -> float:
        """Count a request; 0.0 when admitted, else the seconds until a slot frees (not counted)."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(hits[0] + self.window_s - now, 0.001)
        hits.append(now)
        return 0.0


@dataclass
class ConcurrencyLimit:
    """At most `limit` requests in flight per key."""

    limit: int
    service_time_s: float = 0.0
    _in_flight: dict[Any, int] = field(default_factory=dict)

    @asynccontextmanager
    async def slot(self, key: Any, on_refused: Callable[[], GraphError]) -> AsyncIterator[None]:
        if self._in_flight.get(key, 0) >= self.limit:
            raise on_refused()
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            # Always yield once while holding the slot: requests dispatched together (the items of a
            # $batch) overlap as they do on Exchange, even with no simulated latency.
            await asyncio.sleep(self.service_time_s)
            yield
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]


@dataclass
class TokenBucket:
    """Resource units per key: `capacity` units, refilled evenly over `window_s` seconds."""

    capacity: float
    window_s: float = DIRECTORY_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _levels: dict[Any, tuple[float, float]] = field(default_factory=dict)  # key -> (units left, at)

    def take(self, key: Any, cost: float) -> float:
        """Spend `cost` units: 0.0 when granted, else the seconds until they would be there (nothing spent)."""
        now = self.clock()
        left, at = self._levels.get(key, (self.capacity, now))
        left = min(self.capacity, left + (now - at) * self.capacity / self.window_s)
        if left < cost:
            self._levels[key] = (left, now)
            return (cost - left) * self.window_s / self.capacity
        self._levels[key] = (left - cost, now)
        return 0.0


def directory_quota(users: int) -> int:
    """Resource units per 10 s per app per tenant, by the tenant's size (Graph's S / M / L)."""
    if users < 50:
        return 3_500
    if users <= 500:
        return 5_000
    return 8_000


@dataclass
class Throttles:
    reports: SlidingWindow = field(default_factory=lambda: SlidingWindow(REPORTS_LIMIT, REPORTS_WINDOW_S))
    mailbox: ConcurrencyLimit = field(default_factory=lambda: ConcurrencyLimit(MAILBOX_CONCURRENCY))
    directory: TokenBucket = field(default_factory=lambda: TokenBucket(directory_quota(0)))


def throttles(state: DevTenantState) -> Throttles:
    """This devtenant's throttle bookkeeping, created on first use."""
    book = state.throttles.get("graph")
    if book is None:
        book = state.throttles["graph"] = Throttles()
        book.mailbox.service_time_s = state.config.mailbox_latency_ms / 1000
        quota = state.config.directory_ru_per_10s
        book.directory = TokenBucket(quota if quota is not None else directory_quota(len(state.org.users)))
    return book


def directory_cost(method: str, path: str, query: Mapping[str, str]) -> int | None:
    """The request's resource units, or None when the identity and access service does not serve it."""
    segments = path.strip("/").split("/")
    if not segments or segments[0].lower() not in {r.lower() for r in _DIRECTORY_ROOTS} \
            or _NOT_DIRECTORY.search(path):
        return None
    cost = next((c for m, pattern, c in _DIRECTORY_COSTS if m == method.upper() and pattern.search(path)), 1)
    keys = {k.lower() for k in query}
    if "$select" in keys:
        cost -= 1
    if "$expand" in keys:
        cost += 1
    top = next((v for k, v in query.items() if k.lower() == "$top"), None)
    if top is not None and top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


def check_directory_limit(req: GraphRequest) -> None:
    """Raise Graph's 429 when this app has spent its resource units for the tenant (identity and access)."""
    if req.state.config.directory_ru_per_10s == 0:
        return  # switched off
    cost = directory_cost(req.method, req.path, req.query)
    if cost is None:
        return
    app, tenant = app_key(req.claims)
    wait = throttles(req.state).directory.take((app, tenant), cost)
    if wait:
        raise GraphError(429, "TooManyRequests", "Too many requests.", headers={
            "Retry-After": str(max(1, math.ceil(wait))),
            "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{app}/{tenant}",
            "x-ms-throttle-information": "ResourceUnitLimitExceeded"})


def check_reports_limit(req: GraphRequest) -> None:
    """Raise Graph's 429 when this app has used up its reports budget for the tenant."""
    wait = throttles(req.state).reports.admit(app_key(req.claims))
    log.info("%s %s", "throttled" if wait else "admitted", req.path)
    if wait:
        raise GraphError(
            429, "TooManyRequests", "Too many requests.", headers={"Retry-After": str(math.ceil(wait))}
        )


def mailbox_slot(req: GraphRequest, mailbox_id: str) -> Any:
    """`async with mailbox_slot(req, user.id):` around the work of one Outlook request."""

    def refused() -> GraphError:
        return GraphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                          headers={"Retry-After": "1"})

    return throttles(req.state).mailbox.slot((*app_key(req.claims), mailbox_id.lower()), refused)
