"""Rationing Graph's tightest budget, and remembering what need not be read twice.

Sign-in logs (the reports API) allow 5 requests per 10 s per app per tenant. Watchword keeps its own
sliding window per tenant, slightly stricter than Graph's (a request we send at t arrives a little
later, so our window is longer), and never sends a request the window refuses. Sign-ins are also
cached per user for a few minutes, so a second verification of the same person reads no logs at all.

These live in one process: several Watchword processes share Graph's budget but not this bookkeeping, so Graph may
still answer 429; its Retry-After then holds this process's window for the tenant too (`hold`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cachetools import TTLCache

REPORTS_LIMIT = 5
REPORTS_WINDOW_S = 10.0
WINDOW_MARGIN_S = 1.0  # arrival at Graph lags our send time; keep clear of its window edge

V = TypeVar("V")


@dataclass
class SlidingWindowLimiter:
    """At most `limit` acquisitions per key in any `window_s` seconds."""

    limit: int = REPORTS_LIMIT
    window_s: float = REPORTS_WINDOW_S + WINDOW_MARGIN_S
    clock: Callable[[], float] = time.monotonic
    _hits: dict[Hashable, deque[float]] = field(default_factory=dict)
    _held_until: dict[Hashable, float] = field(default_factory=dict)

    def try_acquire(self, key: Hashable) -> float:
        """Take a slot: 0.0 when granted (and counted), else the seconds until one frees (nothing counted)."""
        now = self.clock()
        held = self._held_until.get(key)
        if held is not None:
            if held > now:
                return held - now
            del self._held_until[key]
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(hits[0] + self.window_s - now, 0.001)
        hits.append(now)
        return 0.0

    def hold(self, key: Hashable, seconds: float) -> None:
        """Graph answered 429 with Retry-After `seconds`: it counts every process's requests, as they arrive, so no
        slot is granted before then, whatever this process's own count says."""
        self._held_until[key] = max(self._held_until.get(key, 0.0), self.clock() + seconds)


class TtlCache(Generic[V]):
    """A small dictionary whose entries expire `ttl_s` seconds after they were put; when full, expired entries go
    first, then the least recently used (cachetools' TTLCache). `age` says how long ago an entry was put.

    Full means `max_entries` entries, or, with `sizeof` (an estimate of a value's bytes), `max_bytes` of values: for
    values whose size varies with what Graph answered (one person's sign-ins, ten or a thousand), a count says nothing
    about the memory held. A value larger than `max_bytes` on its own is not kept."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic, *,
                 max_bytes: int | None = None, sizeof: Callable[[V], int] | None = None) -> None:
        self.clock = clock
        if (max_bytes is None) != (sizeof is None):
            raise ValueError("max_bytes and sizeof go together")
        self._entries: TTLCache[Hashable, tuple[float, V]] = (
            TTLCache(max_entries, ttl_s, timer=clock) if sizeof is None or max_bytes is None else
            TTLCache(max_bytes, ttl_s, timer=clock, getsizeof=lambda entry: max(1, sizeof(entry[1]))))

    @property
    def size(self) -> int:
        """What the cache holds now: entries, or with `sizeof` their estimated bytes (expired ones included until
        the next write lets them go)."""
        return int(self._entries.currsize)

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def age(self, key: Hashable) -> float | None:
        """Seconds since the entry was put; None when absent or expired."""
        entry = self._entries.get(key)
        return None if entry is None else self.clock() - entry[0]

    def put(self, key: Hashable, value: V) -> None:
        try:
            self._entries[key] = (self.clock(), value)
        except ValueError:  # larger than the whole budget: not kept (and an older value of it is gone)
            self._entries.pop(key, None)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)
