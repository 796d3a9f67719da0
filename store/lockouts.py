"""Attempt counting and lockouts per (tenant, user).

The store counts and records; the policy (how many attempts, how long a lockout) lives in the domain.
Attempts are rows with a timestamp rather than a counter, so "in the last 24 hours" is a true rolling
window and concurrent recorders never lose an increment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import dialect_insert, normalise_guid
from store.clock import Clock, require_utc
from store.tables import UserLockoutRow, VerificationAttemptRow

ATTEMPT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Lockout:
    tenant_id: str
    user_id: str
    locked_until: datetime
    locked_at: datetime
    reason: str


def _to_lockout(row: UserLockoutRow) -> Lockout:
    return Lockout(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        locked_until=row.locked_until,
        locked_at=row.locked_at,
        reason=row.reason,
    )


class LockoutRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def record_attempt(
        self, tenant_id: str, user_id: str, *, outcome: str, session_id: str | None = None
    ) -> None:
        row = VerificationAttemptRow(
            tenant_id=normalise_guid(tenant_id, "tenant_id"),
            user_id=normalise_guid(user_id, "user_id"),
            at=self._clock(),
            outcome=outcome,
            session_id=normalise_guid(session_id, "session_id") if session_id else None,
        )
        async with self._sessions.begin() as session:
            session.add(row)

    async def count_recent_attempts(
        self, tenant_id: str, user_id: str, *, window: timedelta = ATTEMPT_WINDOW
    ) -> int:
        """Attempts recorded for the user within `window` before now (24 hours by default)."""
        since = self._clock() - window
        stmt = select(func.count()).where(
            VerificationAttemptRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
            VerificationAttemptRow.user_id == normalise_guid(user_id, "user_id"),
            VerificationAttemptRow.at > since,
        )
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def lock(self, tenant_id: str, user_id: str, *, until: datetime, reason: str) -> Lockout:
        """Lock the user until `until`. An existing lockout is replaced (extended or shortened)."""
        lockout = Lockout(
            tenant_id=normalise_guid(tenant_id, "tenant_id"),
            user_id=normalise_guid(user_id, "user_id"),
            locked_until=require_utc(until, "until"),
            locked_at=self._clock(),
            reason=reason,
        )
        async with self._sessions.begin() as session:
            stmt = dialect_insert(session, UserLockoutRow).values(asdict(lockout))
            stmt = stmt.on_conflict_do_update(
                index_elements=["tenant_id", "user_id"],
                set_={name: stmt.excluded[name] for name in ("locked_until", "locked_at", "reason")},
            )
            await session.execute(stmt)
        return lockout

    async def active_lockout(self, tenant_id: str, user_id: str) -> Lockout | None:
        """The user's lockout if it has not yet run out, else None."""
        key = (normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id"))
        async with self._sessions() as session:
            row = await session.get(UserLockoutRow, key)
        if row is None or row.locked_until <= self._clock():
            return None
        return _to_lockout(row)

    async def unlock(self, tenant_id: str, user_id: str) -> bool:
        """Lift a lockout early (an admin's decision). False if there was none."""
        stmt = delete(UserLockoutRow).where(
            UserLockoutRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
            UserLockoutRow.user_id == normalise_guid(user_id, "user_id"),
        )
        async with self._sessions.begin() as session:
            return (await session.execute(stmt)).rowcount == 1

    async def prune(self, *, older_than: timedelta = ATTEMPT_WINDOW) -> int:
        """Housekeeping: delete attempts older than `older_than` and lockouts that have run out."""
        now = self._clock()
        async with self._sessions.begin() as session:
            attempts = await session.execute(
                delete(VerificationAttemptRow).where(VerificationAttemptRow.at <= now - older_than)
            )
            await session.execute(delete(UserLockoutRow).where(UserLockoutRow.locked_until <= now))
        return attempts.rowcount
