"""Conversation references: where to reach a user later (proactive messages after a reset, say).

The reference is the SDK's `ConversationReference` dumped to JSON by the caller (`model_dump(mode="json",
by_alias=True)`); the store keeps it opaque so it does not depend on the SDK's model. Beside it, the person's time
zone (the IANA name Teams sends as `localTimezone` on their own activities), so what Watchword tells them later gives
times as their clock shows them; an activity that names no zone leaves the one kept before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.secrets_guard import clean_json
from store.tables import ConversationReferenceRow
from store.units import Units
from verification.clock import Clock

MAX_ZONE_NAME = 64  # the longest IANA names are about 30 characters
# Built once: a start reads the person's (can they be sent a code?).
_GET = select(ConversationReferenceRow.reference, ConversationReferenceRow.updated_at,
              ConversationReferenceRow.time_zone).where(ConversationReferenceRow.tenant_id == bindparam("tenant"),
                                                        ConversationReferenceRow.user_id == bindparam("user"))


@dataclass(frozen=True)
class StoredConversationReference:
    tenant_id: str
    user_id: str  # the user's Entra (AAD) object id
    reference: Mapping[str, Any]
    updated_at: datetime
    time_zone: str | None = None  # IANA name ("Europe/Paris"), None when the person's Teams never sent one


def _upsert(dialect: str) -> Any:
    """Insert or replace a user's reference, keeping the time zone kept before when none is given: built once, with
    bound parameters (built per call, with its values in it, SQLAlchemy made and cache-keyed a new statement each
    time: more CPU than running it, on the first turn of every conversation)."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(ConversationReferenceRow)
    return insert.on_conflict_do_update(index_elements=["tenant_id", "user_id"], set_={
        "reference": insert.excluded.reference, "updated_at": insert.excluded.updated_at,
        "time_zone": func.coalesce(insert.excluded.time_zone, ConversationReferenceRow.time_zone)})


class ConversationReferenceRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, units: Units) -> None:
        self._sessions = sessions
        self._units = units
        self._clock = clock
        self._upsert = _upsert(units.dialect)

    async def save(self, tenant_id: str, user_id: str, reference: Mapping[str, Any],
                   time_zone: str | None = None) -> StoredConversationReference:
        """Insert or replace the user's reference (the latest conversation is the one to use), and their time zone
        when given (without one, the zone kept before stays)."""
        if time_zone is not None and not 0 < len(time_zone) <= MAX_ZONE_NAME:
            raise ValueError(f"time_zone must be 1 to {MAX_ZONE_NAME} characters")
        saved = StoredConversationReference(
            tenant_id=normalise_guid(tenant_id, "tenant_id"),
            user_id=normalise_guid(user_id, "user_id"),
            reference=clean_json(reference, "conversation reference"),
            updated_at=self._clock(),
            time_zone=time_zone,
        )
        values = {"tenant_id": saved.tenant_id, "user_id": saved.user_id, "reference": saved.reference,
                  "updated_at": saved.updated_at, "time_zone": time_zone}
        await self._units.write(lambda conn: conn.execute(self._upsert, values))  # a conversation's first turn: a unit
        return saved

    async def get(self, tenant_id: str, user_id: str) -> StoredConversationReference | None:
        key = (normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id"))

        def read(conn: Connection) -> StoredConversationReference | None:  # on a start's path: a unit of work
            row = conn.execute(_GET, {"tenant": key[0], "user": key[1]}).one_or_none()
            if row is None:
                return None
            return StoredConversationReference(key[0], key[1], row.reference, row.updated_at, row.time_zone)

        return await self._units.read(read)

    async def delete(self, tenant_id: str, user_id: str) -> bool:
        stmt = delete(ConversationReferenceRow).where(
            ConversationReferenceRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
            ConversationReferenceRow.user_id == normalise_guid(user_id, "user_id"),
        )
        async with self._sessions.begin() as session:
            return (await session.execute(stmt)).rowcount == 1
