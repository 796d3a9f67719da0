"""Time for the store: always timezone-aware UTC, and injectable so tests can move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_utc(value: datetime, name: str) -> datetime:
    """Refuse naive datetimes: a naive value would be silently read as local time somewhere."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime)")
    return value.astimezone(UTC)
