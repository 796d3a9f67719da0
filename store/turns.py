"""Turns processed once per activity: Teams redelivers a slow turn, and the same activity can arrive twice at
once, on one instance or two. Each incoming activity is claimed by its id before the turn does anything; the
mark that it is done is committed in the same transaction as the conversation state the turn saves (with its
e_tag check), so "processed" means "its state is saved".

A claim is one row, keyed by a SHA-256 of (channel, conversation, activity id) so any id fits. A second delivery
finds the row: done, or still running (another turn has it), and is skipped. A claim that was never finished
(its process was killed) may be taken again once `TURN_LEASE` has passed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.tables import ProcessedActivityRow
from store.units import Units
from verification.clock import Clock

TURN_LEASE = timedelta(seconds=60)  # longer than any turn takes; a killed turn's activity can be redone after
KEEP = timedelta(days=1)  # Teams redelivers within minutes: a day of keys is plenty

# Units of work to commit with the next conversation-state write of this turn (see SqlStorage.write).
WITH_STATE: ContextVar[tuple[Callable[[Connection], None], ...]] = ContextVar("watchword_with_state", default=())


class TurnClaim(StrEnum):
    FIRST = "first"  # this delivery processes the activity
    DUPLICATE = "duplicate"  # processed already, or being processed by another turn right now


def activity_key(channel_id: str, conversation_id: str, activity_id: str) -> str:
    joined = "\x1f".join((channel_id, conversation_id, activity_id))
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


class TurnRepository:
    def __init__(self, units: Units, clock: Clock) -> None:
        self._units = units
        self._clock = clock

    async def claim(self, key: str) -> TurnClaim:
        """Claim the activity for this turn (compare-and-set), or say it is a duplicate."""
        now = self._clock()

        def claim(conn: Connection) -> TurnClaim:
            row = conn.execute(select(ProcessedActivityRow.claimed_at, ProcessedActivityRow.done_at)
                               .where(ProcessedActivityRow.key == key)).one_or_none()
            if row is None:  # first seen; a concurrent first delivery's insert wins over ours, or ours over it
                inserted = conn.execute(_insert(conn).values(key=key, claimed_at=now, done_at=None)
                                        .on_conflict_do_nothing(index_elements=["key"])).rowcount == 1
                return TurnClaim.FIRST if inserted else TurnClaim.DUPLICATE
            if row.done_at is not None or row.claimed_at > now - TURN_LEASE:
                return TurnClaim.DUPLICATE
            taken = conn.execute(update(ProcessedActivityRow).where(
                ProcessedActivityRow.key == key, ProcessedActivityRow.claimed_at == row.claimed_at,
                ProcessedActivityRow.done_at.is_(None)).values(claimed_at=now)).rowcount == 1
            return TurnClaim.FIRST if taken else TurnClaim.DUPLICATE

        return await self._units.write(claim)

    def done_with_state(self, key: str) -> None:
        """Mark the activity done in the transaction of this turn's next conversation-state write."""
        stmt = update(ProcessedActivityRow).where(ProcessedActivityRow.key == key).values(done_at=self._clock())
        WITH_STATE.set((*WITH_STATE.get(), lambda conn: conn.execute(stmt)))

    async def prune(self) -> int:
        """Housekeeping: forget activities older than `KEEP`."""
        stmt = delete(ProcessedActivityRow).where(ProcessedActivityRow.claimed_at <= self._clock() - KEEP)
        return int(await self._units.write(lambda conn: conn.execute(stmt).rowcount))


def _insert(conn: Connection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(ProcessedActivityRow)
