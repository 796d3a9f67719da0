"""Time, for everything that decides by it: one `Clock` for the whole product, injected so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Now, timezone-aware UTC. `utc_now` below in production; a test's fake clock is any object with this call."""

    def __call__(self) -> datetime: ...


def utc_now() -> datetime:
    return datetime.now(UTC)
