"""Small helpers shared by the repositories (not part of the public API)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def normalise_guid(value: str, name: str) -> str:
    """Entra object and tenant ids are GUIDs; store one canonical (lower-case, hyphenated) spelling."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{name} must be a GUID, got {value!r}") from None


def dialect_insert(session: AsyncSession, model: Any) -> Any:
    """INSERT for the session's dialect, so `.on_conflict_do_update()` is available on both backends."""
    bind = session.bind
    if bind.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)
