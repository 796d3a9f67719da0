"""Connected tenants: who consented, what was granted, and whether the connection still works.

Disconnecting is a soft delete: the tenant row stays with status 'disconnected' (audit rows and past
sessions name the tenant, and the admin console shows when and that it was disconnected), while the
tenant's copy of directory data (protected users, sync state) is removed in the same transaction,
because without consent Watchword has no business keeping it. Connecting again revives the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.errors import TenantNotFoundError
from store.tables import DirectorySyncRow, ProtectedUserRow, TenantRow
from store.units import Units
from verification.clock import Clock


class TenantStatus(StrEnum):
    CONNECTED = "connected"
    NEEDS_ATTENTION = "needs_attention"  # consented, but a permission or the reset role is missing
    CONSENT_REVOKED = "consent_revoked"  # a token request for the tenant is refused
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    status: TenantStatus
    consented_at: datetime
    granted_permissions: tuple[str, ...]
    sp_object_id: str | None
    sp_directory_roles: tuple[str, ...]
    last_checked_at: datetime | None
    disconnected_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_connected(self) -> bool:
        return self.status != TenantStatus.DISCONNECTED


# Built once: read on a tenant's turns (cached for a minute by bot/access.py).
_GET = select(*TenantRow.__table__.c).where(TenantRow.tenant_id == bindparam("tenant"))


def _to_tenant(row: TenantRow | Row[Any]) -> Tenant:
    return Tenant(
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        status=TenantStatus(row.status),
        consented_at=row.consented_at,
        granted_permissions=tuple(row.granted_permissions),
        sp_object_id=row.sp_object_id,
        sp_directory_roles=tuple(row.sp_directory_roles),
        last_checked_at=row.last_checked_at,
        disconnected_at=row.disconnected_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _names(values: Iterable[str]) -> list[str]:
    # Sorted and de-duplicated, so two checks that found the same grants store identical lists.
    return sorted(set(values))


class TenantRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, units: Units) -> None:
        self._sessions = sessions
        self._units = units
        self._clock = clock

    async def connect(
        self,
        tenant_id: str,
        *,
        display_name: str,
        granted_permissions: Iterable[str],
        sp_object_id: str | None = None,
        sp_directory_roles: Iterable[str] = (),
        status: TenantStatus = TenantStatus.CONNECTED,
    ) -> Tenant:
        """Record a (re)consent: creates the tenant or revives a disconnected one."""
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        sp_id = normalise_guid(sp_object_id, "sp_object_id") if sp_object_id else None
        now = self._clock()
        async with self._sessions.begin() as session:
            row = await session.get(TenantRow, tenant_id, with_for_update=True)
            if row is None:
                row = TenantRow(tenant_id=tenant_id, created_at=now)
                session.add(row)
            row.display_name = display_name
            row.status = TenantStatus(status).value
            row.consented_at = now
            row.granted_permissions = _names(granted_permissions)
            row.sp_object_id = sp_id
            row.sp_directory_roles = _names(sp_directory_roles)
            row.last_checked_at = now
            row.disconnected_at = None
            row.updated_at = now
        return _to_tenant(row)

    async def record_check(
        self,
        tenant_id: str,
        *,
        status: TenantStatus,
        granted_permissions: Iterable[str],
        sp_directory_roles: Iterable[str],
    ) -> Tenant:
        """Store the result of a periodic health check of a connected tenant."""
        if status == TenantStatus.DISCONNECTED:
            raise ValueError("use disconnect() to disconnect a tenant")
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        now = self._clock()
        async with self._sessions.begin() as session:
            row = await session.get(TenantRow, tenant_id, with_for_update=True)
            if row is None or row.status == TenantStatus.DISCONNECTED:
                raise TenantNotFoundError(tenant_id)
            row.status = TenantStatus(status).value
            row.granted_permissions = _names(granted_permissions)
            row.sp_directory_roles = _names(sp_directory_roles)
            row.last_checked_at = now
            row.updated_at = now
        return _to_tenant(row)

    async def disconnect(self, tenant_id: str) -> bool:
        """Mark the tenant disconnected and delete its directory copy. False if it was not connected."""
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        now = self._clock()
        async with self._sessions.begin() as session:
            row = await session.get(TenantRow, tenant_id, with_for_update=True)
            if row is None or row.status == TenantStatus.DISCONNECTED:
                return False
            row.status = TenantStatus.DISCONNECTED.value
            row.disconnected_at = now
            row.updated_at = now
            # Explicit deletes rather than relying on ON DELETE CASCADE: the tenant row is kept.
            await session.execute(delete(ProtectedUserRow).where(ProtectedUserRow.tenant_id == tenant_id))
            await session.execute(delete(DirectorySyncRow).where(DirectorySyncRow.tenant_id == tenant_id))
        return True

    async def get(self, tenant_id: str) -> Tenant | None:
        which = {"tenant": normalise_guid(tenant_id, "tenant_id")}

        def read(conn: Connection) -> Tenant | None:  # on every activity's path: a unit of work
            row = conn.execute(_GET, which).one_or_none()
            return _to_tenant(row) if row is not None else None

        return await self._units.read(read)

    async def list_tenants(self, *, include_disconnected: bool = False) -> list[Tenant]:
        stmt = select(TenantRow).order_by(TenantRow.display_name, TenantRow.tenant_id)
        if not include_disconnected:
            stmt = stmt.where(TenantRow.status != TenantStatus.DISCONNECTED.value)
        async with self._sessions() as session:
            return [_to_tenant(row) for row in (await session.scalars(stmt)).all()]
