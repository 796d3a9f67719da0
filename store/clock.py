"""Time for the store: always timezone-aware UTC (the clock itself is verification.clock's)."""

from __future__ import annotations

from datetime import UTC, datetime


def require_utc(value: datetime, name: str) -> datetime:
    """Refuse naive datetimes: a naive value would be silently read as local time somewhere."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime)")
    return value.astimezone(UTC)
