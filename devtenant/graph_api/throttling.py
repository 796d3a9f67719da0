"""Graph's documented throttles, kept per running devtenant (on `DevTenantState.throttles`).

Two limits matter to Watchword, and both are checked inside the handlers, so they hold for an
item of a `$batch` exactly as for a direct request:

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
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from devtenant.graph_api.router import GraphError, GraphRequest
from devtenant.state import DevTenantState

REPORTS_LIMIT = 5
REPORTS_WINDOW_S = 10.0
MAILBOX_CONCURRENCY = 4


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
class Throttles:
    reports: SlidingWindow = field(default_factory=lambda: SlidingWindow(REPORTS_LIMIT, REPORTS_WINDOW_S))
    mailbox: ConcurrencyLimit = field(default_factory=lambda: ConcurrencyLimit(MAILBOX_CONCURRENCY))


def throttles(state: DevTenantState) -> Throttles:
    """This devtenant's throttle bookkeeping, created on first use."""
    book = state.throttles.get("graph")
    if book is None:
        book = state.throttles["graph"] = Throttles()
        book.mailbox.service_time_s = state.config.mailbox_latency_ms / 1000
    return book


def check_reports_limit(req: GraphRequest) -> None:
    """Raise Graph's 429 when this app has used up its reports budget for the tenant."""
    wait = throttles(req.state).reports.admit(app_key(req.claims))
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
