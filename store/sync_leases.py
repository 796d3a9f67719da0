"""One directory sync per tenant at a time, across processes: a lease with an expiry.

The console's "Sync now" and `python -m admin sync` may run in different processes against the same
database. A runner takes the tenant's lease before it starts, renews it while it runs and releases it
when done; a lease whose holder died simply expires. Taking a lease is a single conditional UPDATE (or
an INSERT that the primary key lets only one process win), so it is atomic on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.protected_users import _require_connected
from store.tables import DirectorySyncLeaseRow
from verification.clock import Clock


@dataclass(frozen=True)
class SyncLease:
    tenant_id: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


class SyncLeaseRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def acquire(self, tenant_id: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew the tenant's lease for `ttl`. False while another holder's lease is unexpired.

        Raises TenantNotFoundError unless the tenant is connected.
        """
        if not holder or len(holder) > 128:
            raise ValueError("holder must be 1 to 128 characters")
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        now = self._clock()
        take = (
            update(DirectorySyncLeaseRow)
            .where(
                DirectorySyncLeaseRow.tenant_id == tenant_id,
                or_(DirectorySyncLeaseRow.holder == holder, DirectorySyncLeaseRow.expires_at <= now),
            )
            .values(
                acquired_at=case((DirectorySyncLeaseRow.holder == holder, DirectorySyncLeaseRow.acquired_at),
                                 else_=now),
                holder=holder,
                expires_at=now + ttl,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            await _require_connected(session, tenant_id)
            if (await session.execute(take)).rowcount == 1:
                return True
        try:
            async with self._sessions.begin() as session:
                session.add(DirectorySyncLeaseRow(tenant_id=tenant_id, holder=holder, acquired_at=now,
                                                  expires_at=now + ttl))
        except IntegrityError:
            return False  # the row exists and is someone else's (or another process just inserted it)
        return True

    async def release(self, tenant_id: str, holder: str) -> None:
        """Give the lease up (only if `holder` still has it)."""
        stmt = (
            delete(DirectorySyncLeaseRow)
            .where(DirectorySyncLeaseRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
                   DirectorySyncLeaseRow.holder == holder)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            await session.execute(stmt)

    async def get(self, tenant_id: str) -> SyncLease | None:
        """The tenant's unexpired lease, if any."""
        async with self._sessions() as session:
            row = await session.get(DirectorySyncLeaseRow, normalise_guid(tenant_id, "tenant_id"))
            if row is None or row.expires_at <= self._clock():
                return None
            return SyncLease(row.tenant_id, row.holder, row.acquired_at, row.expires_at)
