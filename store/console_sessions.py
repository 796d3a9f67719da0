"""Signed-out admin console sessions, so sign-out holds on every instance and across restarts.

The console's session lives in an encrypted cookie (admin.session), readable by any instance holding the same
WATCHWORD_SESSION_KEY; nothing about a live session is stored. Signing out records the session id here until
the cookie could no longer be accepted anyway, and the console refuses cookies whose id is recorded.

Only a SHA-256 of the id is kept: the id is random and grants nothing once ended, but a database reader should
not be able to match rows to cookies still in use. Rows past `until` are purged whenever a session ends.

The same table keeps the one-time values the console hands out in a cookie (the admin consent's `state`) once
they are used (`use_once`): a copy of the cookie saved before then is refused too, on every instance.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import dialect_insert
from store.clock import require_utc
from store.tables import ConsoleSignoutRow
from verification.clock import Clock

MAX_SID_LEN = 256
_ONCE = "once:"  # one-time values never share a hash with a session id


def _digest(sid: str) -> str:
    if not isinstance(sid, str) or not 0 < len(sid) <= MAX_SID_LEN:
        raise ValueError(f"sid must be 1 to {MAX_SID_LEN} characters")
    return hashlib.sha256(sid.encode()).hexdigest()


class ConsoleSessionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def end(self, sid: str, until: datetime) -> None:
        """Record that session `sid` has ended; forget it after `until`. Ending it again keeps the later `until`."""
        row = {"sid_hash": _digest(sid), "until": require_utc(until, "until")}
        async with self._sessions.begin() as session:
            stmt = dialect_insert(session, ConsoleSignoutRow).values(**row)
            stmt = stmt.on_conflict_do_update(
                index_elements=["sid_hash"], set_={"until": stmt.excluded.until},
                where=ConsoleSignoutRow.until < stmt.excluded.until,
            )
            await session.execute(stmt)
            await self._purge(session)

    async def use_once(self, value: str, until: datetime) -> bool:
        """Mark a one-time value used; False when it already was (here or on another instance). Atomic."""
        row = {"sid_hash": _digest(_ONCE + value), "until": require_utc(until, "until")}
        async with self._sessions.begin() as session:
            stmt = dialect_insert(session, ConsoleSignoutRow).values(**row).on_conflict_do_nothing(
                index_elements=["sid_hash"])
            used_now = (await session.execute(stmt)).rowcount == 1
            await self._purge(session)
        return used_now

    async def is_ended(self, sid: str) -> bool:
        """Whether `sid` was ended (and not yet purged: a purged session's cookie has expired by then)."""
        stmt = select(ConsoleSignoutRow.sid_hash).where(ConsoleSignoutRow.sid_hash == _digest(sid))
        async with self._sessions() as session:
            return (await session.execute(stmt)).first() is not None

    async def purge_expired(self) -> int:
        """Delete the rows past their `until`; returns how many."""
        async with self._sessions.begin() as session:
            return await self._purge(session)

    async def _purge(self, session: AsyncSession) -> int:
        stmt = (
            delete(ConsoleSignoutRow)
            .where(ConsoleSignoutRow.until < self._clock())
            .execution_options(synchronize_session=False)
        )
        return (await session.execute(stmt)).rowcount
