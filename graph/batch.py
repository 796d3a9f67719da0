"""JSON batching (`POST /$batch`): many Graph reads in one round trip.

msgraph-sdk's own batch helpers cannot parse JSON item bodies (kiota-python #737) and pull in an
undeclared package, so we build the payload ourselves and parse each item's body with kiota's
JSON parse node into the same SDK models a direct call returns. Items that come back throttled
(429) or unavailable (503/504) are retried on their own, after their Retry-After, while the
verification's time budget allows.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from kiota_abstractions.serialization import Parsable, ParseNode
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

from graph.tokens import GraphTokenProvider

MAX_BATCH = 20  # Graph's limit per $batch request
RETRYABLE = {429, 503, 504}
MAX_ROUNDS = 4  # a first try and at most three retries of the items still throttled

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

    def parse(self, factory: Callable[[ParseNode], T]) -> T:
        """The body as an SDK model, exactly as a direct call would have returned it."""
        node = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(self.body).encode())
        return node.get_object_value(factory)


class BatchError(Exception):
    """The batch request itself failed (transport error or a non-200 answer)."""


async def send_batch(
    http: httpx.AsyncClient,
    graph_url: str,
    tokens: GraphTokenProvider,
    items: Sequence[BatchItem],
    deadline: Deadline,
) -> dict[str, BatchResult]:
    """Send the items (in chunks of 20) and return every item's final result by id."""
    results: dict[str, BatchResult] = {}
    pending = list(items)
    for _round in range(MAX_ROUNDS):
        chunks = [pending[i : i + MAX_BATCH] for i in range(0, len(pending), MAX_BATCH)]
        answers = await asyncio.gather(*(_post(http, graph_url, tokens, c, deadline) for c in chunks))
        for answer in answers:
            results.update(answer)
        pending = [i for i in pending if results[i.id].status in RETRYABLE]
        wait = max((_retry_after(results[i.id]) for i in pending), default=0.0)
        if not pending or wait >= deadline.remaining():
            break
        # Never retry at once: Graph asks for the wait, and without one we back off.
        await asyncio.sleep(max(wait, 0.2 * 2**_round))
    return results


async def _post(
    http: httpx.AsyncClient, graph_url: str, tokens: GraphTokenProvider, chunk: Sequence[BatchItem], deadline: Deadline
) -> dict[str, BatchResult]:
    token = await tokens.get_authorization_token(graph_url)
    payload = {"requests": [{"id": i.id, "method": "GET", "url": i.url, "headers": i.headers} for i in chunk]}
    try:
        response = await http.post(
            f"{graph_url.rstrip('/')}/$batch",
            json=payload,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=max(0.5, deadline.remaining()),
        )
    except httpx.HTTPError as exc:
        raise BatchError(f"$batch request failed: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise BatchError(f"$batch answered {response.status_code}")
    return {
        str(r["id"]): BatchResult(str(r["id"]), int(r["status"]), dict(r.get("headers") or {}), r.get("body"))
        for r in response.json().get("responses", [])
    }


def _retry_after(result: BatchResult) -> float:
    """Seconds to wait before retrying an item; Graph may omit Retry-After, then back off a little."""
    for key, value in result.headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    return 1.0
