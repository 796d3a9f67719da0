"""Each tenant's verification policy, and the access settings an admin saves with it.

The policy is the domain's own `verification.Policy`, stored as its `to_dict()` JSON. Next to it sits
`TenantAccess`: settings about *who* Watchword serves in the tenant (the helpdesk group, whether people
may reset their own password, which groups' members are protected), which are tenant configuration
rather than knobs of a verification. A tenant that never saved a policy has no row: `get()` answers
None and callers use `Policy()`'s defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.protected_users import _require_connected
from store.tables import TenantPolicyRow
from store.units import Units
from verification.clock import Clock
from verification.policy import Policy


def _group_ids(ids: Iterable[str], name: str) -> tuple[str, ...]:
    # Canonical GUIDs, de-duplicated and sorted, so equal settings compare (and diff) equal.
    return tuple(sorted({normalise_guid(i, name) for i in ids}))


@dataclass(frozen=True)
class TenantAccess:
    """Who Watchword serves in a tenant.

    `include_group_ids` empty means everyone is protected; otherwise only (transitive) members of at
    least one of them. Members of any `exclude_group_ids` group are never protected.
    """

    helpdesk_group_id: str | None = None
    self_service: bool = False
    include_group_ids: tuple[str, ...] = ()
    exclude_group_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.helpdesk_group_id is not None:
            object.__setattr__(self, "helpdesk_group_id", normalise_guid(self.helpdesk_group_id, "helpdesk_group_id"))
        object.__setattr__(self, "include_group_ids", _group_ids(self.include_group_ids, "include_group_ids"))
        object.__setattr__(self, "exclude_group_ids", _group_ids(self.exclude_group_ids, "exclude_group_ids"))

    @property
    def scoped(self) -> bool:
        return bool(self.include_group_ids or self.exclude_group_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "helpdesk_group_id": self.helpdesk_group_id,
            "self_service": self.self_service,
            "include_group_ids": list(self.include_group_ids),
            "exclude_group_ids": list(self.exclude_group_ids),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TenantAccess:
        return cls(
            helpdesk_group_id=d.get("helpdesk_group_id") or None,
            self_service=bool(d.get("self_service", False)),
            include_group_ids=tuple(d.get("include_group_ids") or ()),
            exclude_group_ids=tuple(d.get("exclude_group_ids") or ()),
        )


@dataclass(frozen=True)
class StoredPolicy:
    tenant_id: str
    policy: Policy
    access: TenantAccess
    updated_at: datetime
    updated_by: str


# Built once: every start reads it (Core, not an ORM load: a third of the CPU for the same row).
_STORED = select(*TenantPolicyRow.__table__.c).where(TenantPolicyRow.tenant_id == bindparam("tenant"))


def _to_stored(row: TenantPolicyRow | Row[Any]) -> StoredPolicy:
    return StoredPolicy(
        tenant_id=row.tenant_id,
        policy=Policy.from_dict(row.policy),
        access=TenantAccess.from_dict(row.access),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


class PolicyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, units: Units) -> None:
        self._sessions = sessions
        self._units = units
        self._clock = clock

    async def get(self, tenant_id: str) -> Policy | None:
        """The tenant's saved policy, or None when it never saved one (use `Policy()`)."""
        stored = await self.get_stored(tenant_id)
        return stored.policy if stored is not None else None

    async def get_access(self, tenant_id: str) -> TenantAccess:
        """The tenant's access settings; the defaults (everyone protected, no self-service) when unsaved."""
        stored = await self.get_stored(tenant_id)
        return stored.access if stored is not None else TenantAccess()

    async def get_stored(self, tenant_id: str) -> StoredPolicy | None:
        """The tenant's saved policy and access settings, read from the database on every call: not cached in the
        process. A start reads it once (one prebuilt select, a quarter of a millisecond), so a cache would save one
        small transaction a start, and buy a window in which an admin's tightened policy (more bits, fewer attempts,
        block on high risk) is not yet in force on the other instances sharing the database; as it is, it applies
        to every verification admitted after the save commits, on every instance. (bot/access.py keeps the helpdesk
        group, which it reads through here, for a minute: who is an agent, checked against Graph's member list that
        is itself cached for minutes.)"""
        return await self._units.read(self.reading_stored(tenant_id))

    @staticmethod
    def reading_stored(tenant_id: str) -> Callable[[Connection], StoredPolicy | None]:
        """`get_stored`'s read, as a step for a unit of work that reads more with it (bot/records.py start_checks)."""
        key = {"tenant": normalise_guid(tenant_id, "tenant_id")}

        def read(conn: Connection) -> StoredPolicy | None:  # on every start's path: a unit of work
            row = conn.execute(_STORED, key).one_or_none()
            return _to_stored(row) if row is not None else None

        return read

    async def put(self, tenant_id: str, policy: Policy, actor: str) -> tuple[Policy | None, Policy]:
        """Save the policy (access settings unchanged); returns (before, after). Before is None if unsaved."""
        before, after = await self.save(tenant_id, policy, actor)
        return (before.policy if before is not None else None), after.policy

    async def save(
        self, tenant_id: str, policy: Policy, actor: str, access: TenantAccess | None = None
    ) -> tuple[StoredPolicy | None, StoredPolicy]:
        """Save the policy and (unless None, which keeps them) the access settings, in one transaction.

        Returns (before, after); before is None when the tenant had not saved a policy yet.
        Raises TenantNotFoundError unless the tenant is connected.
        """
        if not actor.strip() or len(actor) > 256:
            raise ValueError("actor must be 1 to 256 characters")
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        now = self._clock()
        async with self._sessions.begin() as session:
            await _require_connected(session, tenant_id)
            row = await session.get(TenantPolicyRow, tenant_id, with_for_update=True)
            before = _to_stored(row) if row is not None else None
            if row is None:
                row = TenantPolicyRow(tenant_id=tenant_id, access=TenantAccess().to_dict())
                session.add(row)
            row.policy = policy.to_dict()
            if access is not None:
                row.access = access.to_dict()
            row.updated_at = now
            row.updated_by = actor
            after = _to_stored(row)
        return before, after
