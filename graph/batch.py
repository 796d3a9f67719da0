"""JSON batching (`POST /$batch`): many Graph reads in one round trip.

msgraph-sdk's own batch helpers cannot parse JSON item bodies (kiota-python #737) and pull in an
undeclared package, so we build the payload ourselves and parse each item's body with kiota's
JSON parse node into the same SDK models a direct call returns. Items that come back throttled
(429) or unavailable (503/504) are retried on their own, after their Retry-After, while the
verification's time budget allows.

The batch request itself is sent without msgraph-core's retry middleware (which would wait on
Retry-After regardless of our budget): when the whole request is throttled, fails, or hangs past
its share of the budget (QUICK_ATTEMPT_S for the profile alone, which everything waits on), every item of it gets
that status and goes through the same per-item retries. Only a batch Graph refuses outright (400, 401...) raises
`BatchError`, as does a $batch answer that is not the JSON envelope Graph documents.

Answers are decoded with orjson, from the response's bytes: a start's $batch answer is ~65 KB (its sign-in logs' ~45),
and the standard library's decoder took 0.32 ms of the event loop for each, orjson 0.14 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
from kiota_abstractions.serialization import Parsable
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY
from kiota_http.middleware.options import RetryHandlerOption
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

from graph.tokens import GraphTokenProvider

MAX_BATCH = 20  # Graph's limit per $batch request
RETRYABLE = {429, 503, 504}
MAX_ROUNDS = 4  # a first try and at most three retries of the items still throttled
TIMED_OUT = "Timeout"  # the error code of an item whose batch request ran out of time (our own)
CONNECTION_FAILED = "ConnectionFailed"
POOL_BUSY = "ConnectionPoolBusy"  # no free connection in our own pool in time: Watchword's load, not Graph's (our own)
# One attempt may use at most this share of the remaining budget, so a hung request leaves time to retry.
ATTEMPT_SHARE = 0.5
MIN_ATTEMPT_S = 2.0
# A small read the agent waits on (the profile) answers well within a second at Graph: one still
# silent after this long is hung (Graph's gateway gives up only at 30 s or so), so it is asked again at once rather
# than after half the 8 s budget, which left too little for the retries a 20% fault rate needs (issue 9).
QUICK_ATTEMPT_S = 2.0

T = TypeVar("T", bound=Parsable)


@dataclass(frozen=True)
class Deadline:
    """A total time budget shared by every Graph call of one verification."""

    expires_at: float

    @staticmethod
    def after(seconds: float) -> Deadline:
        return Deadline(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())


@dataclass(frozen=True)
class BatchItem:
    id: str
    url: str  # relative to the Graph base, e.g. "/users/{id}/calendarView?startDateTime=..."
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = True  # False: a throttled answer comes back as it is (sign-in logs: their reader decides)


@dataclass(frozen=True)
class BatchResult:
    id: str
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code", ""))
        return ""

    @property
    def next_link(self) -> str | None:
        if isinstance(self.body, dict):
            link = self.body.get("@odata.nextLink")
            return str(link) if link else None
        return None

    def parse(self, model: type[T]) -> T:
        """The body as an SDK model (`result.parse(EventCollectionResponse)`), exactly as a direct call would
        have returned it; kiota picks the subtype from @odata.type (create_from_discriminator_value)."""
        node = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(self.body).encode())
        return node.get_object_value(model)


@dataclass
class BatchStats:
    """What a caller's batches cost: HTTP requests sent and sequential rounds (parallel chunks count once)."""

    requests: int = 0
    rounds: int = 0


class GraphCalls(Protocol):
    """Where each Graph request's result is counted (observability/metrics.py's Metrics)."""

    def graph_call(self, source: str, status: str) -> None: ...


def source_of(url: str) -> str:
    """What a Graph URL reads, for counting: its last path segment made of letters only ("calendarView",
    "signIns", "transitiveMembers", "users"), so ids, addresses, `$count` and casts never become a label."""
    for part in reversed(urlsplit(url).path.split("/")):
        if part.isascii() and part.isalpha():
            return part
    return "other"


def status_of(status: int) -> str:
    """How a Graph call ended, for counting: ok, throttled (429), timed_out (504, also what a batch item whose
    request ran out of time gets), not_found (404: someone without a manager, a deleted user; the data, not a
    problem to fix), refused (Graph said no: the other 4xx, a permission or a bad request) or failed (Graph's
    other errors; no connection)."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "throttled"
    if status == 504:
        return "timed_out"
    if status == 404:
        return "not_found"
    return "refused" if 400 <= status < 500 else "failed"


class BatchError(Exception):
    """Graph refused the batch request itself (a malformed batch, or an invalid token)."""


async def send_batch(
    http: httpx.AsyncClient,
    graph_url: str,
    tokens: GraphTokenProvider,
    items: Sequence[BatchItem],
    deadline: Deadline,
    stats: BatchStats | None = None,
    calls: GraphCalls | None = None,
    attempt_s: float | None = None,
) -> dict[str, BatchResult]:
    """Send the items (in parallel chunks of 20) and return every item's final result by id. Each item's
    every attempt is counted in `calls`. `attempt_s` caps one attempt (QUICK_ATTEMPT_S for a small read);
    without it an attempt may use half the remaining budget (a large batch may be slow, not hung)."""
    stats = stats if stats is not None else BatchStats()
    results: dict[str, BatchResult] = {}
    pending = list(items)
    for _round in range(MAX_ROUNDS):
        chunks = [pending[i : i + MAX_BATCH] for i in range(0, len(pending), MAX_BATCH)]
        stats.rounds += 1
        stats.requests += len(chunks)
        answers = await asyncio.gather(*(_post(http, graph_url, tokens, c, deadline, attempt_s) for c in chunks))
        for answer in answers:
            results.update(answer)
        if calls is not None:  # what Graph answered: an item our own pool never sent is not a Graph call
            for item in pending:
                if results[item.id].error_code != POOL_BUSY:
                    calls.graph_call(source_of(item.url), status_of(results[item.id].status))
        pending = [i for i in pending if i.retry and results[i.id].status in RETRYABLE]
        wait = max((retry_after(results[i.id]) for i in pending), default=0.0)
        if not pending or wait >= deadline.remaining():
            break
        # Never retry at once: Graph asks for the wait, and without one we back off.
        await asyncio.sleep(max(wait, 0.2 * 2**_round))
    return results


def attempt_timeout(remaining: float, attempt_s: float | None = None) -> float:
    """How long one attempt may take: `attempt_s` when given, else half the remaining budget (at least
    MIN_ATTEMPT_S); never more than what remains."""
    share = attempt_s if attempt_s is not None else max(MIN_ATTEMPT_S, remaining * ATTEMPT_SHARE)
    return min(remaining, share)


def _everyone(chunk: Sequence[BatchItem], status: int, code: str, headers: dict[str, str]) -> dict[str, BatchResult]:
    body = {"error": {"code": code, "message": "The batch request failed as a whole."}}
    return {i.id: BatchResult(i.id, status, dict(headers), body) for i in chunk}


async def _post(
    http: httpx.AsyncClient, graph_url: str, tokens: GraphTokenProvider, chunk: Sequence[BatchItem], deadline: Deadline,
    attempt_s: float | None = None,
) -> dict[str, BatchResult]:
    remaining = deadline.remaining()
    if remaining <= 0:
        return _everyone(chunk, 504, TIMED_OUT, {})
    token = await tokens.get_authorization_token(graph_url)
    payload = {"requests": [{"id": i.id, "method": "GET", "url": i.url, "headers": i.headers} for i in chunk]}
    timeout = attempt_timeout(remaining, attempt_s)
    try:
        response = await http.post(
            f"{graph_url.rstrip('/')}/$batch",
            json=payload,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            # Our own retries below honour the deadline; the middleware's would not.
            extensions={REQUEST_OPTIONS_KEY: {RetryHandlerOption.get_key(): RetryHandlerOption(0, 0, False)}},
        )
    except httpx.PoolTimeout:  # never sent: every connection of the shared client was busy
        return _everyone(chunk, 503, POOL_BUSY, {})
    except httpx.TimeoutException:
        return _everyone(chunk, 504, TIMED_OUT, {})
    except httpx.HTTPError:
        return _everyone(chunk, 503, CONNECTION_FAILED, {})
    if response.status_code in RETRYABLE:
        return _everyone(chunk, response.status_code, "BatchThrottled" if response.status_code == 429 else
                         "BatchUnavailable", {k: v for k, v in response.headers.items() if k.lower() == "retry-after"})
    if response.status_code != 200:
        raise BatchError(f"$batch answered {response.status_code}")
    answered = {
        str(r["id"]): BatchResult(str(r["id"]), int(r["status"]), dict(r.get("headers") or {}), r.get("body"))
        for r in _envelope(response).get("responses", [])
    }
    # An item Graph left out of the answer is treated as unavailable (and retried).
    return {i.id: answered.get(i.id) or BatchResult(i.id, 503, {}, None) for i in chunk}


def _envelope(response: httpx.Response) -> Any:
    """The decoded $batch answer (`{"responses": [...]}`). orjson reads the bytes as they came (UTF-8, as JSON must
    be); an answer it cannot read is Graph's fault and is said so, not left to surface as a decoder's traceback."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise BatchError(f"$batch answered {response.status_code} with a body that is not JSON") from None


def retry_after(result: BatchResult) -> float:
    """Seconds to wait before retrying an item; Graph may omit Retry-After, then back off a little."""
    for key, value in result.headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    return 1.0 if result.error_code != TIMED_OUT else 0.0
