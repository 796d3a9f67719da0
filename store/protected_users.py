"""Protected users (the tenant's users as last synced from Entra) and the resumable sync state.

A sync cycle follows Graph's `/users/delta`: pages linked by `@odata.nextLink`, ending with an
`@odata.deltaLink` to start the next cycle from. `apply_sync_page()` writes a page's users *and* the
link to the next page in one transaction, so a sync that stops (crash, restart, throttling) resumes at
the first page not yet stored, and never skips or half-applies one.

A cycle that starts without a delta link enumerates everyone ("full"): when it completes, users it did
not see are removed. A delta cycle only reports changes, including removals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import dialect_insert, normalise_guid
from store.errors import TenantNotFoundError
from store.tables import DirectorySyncRow, ProtectedUserRow, TenantRow
from store.tenants import TenantStatus
from store.units import Units
from verification.clock import Clock


class UserFilter(StrEnum):
    """Which users `search()` lists."""

    ALL = "all"
    NOT_RESETTABLE = "not_resettable"
    OUT_OF_SCOPE = "out_of_scope"  # outside the group scope, or excluded by an admin


@dataclass(frozen=True)
class UserSnapshot:
    """One user as the sync saw it. `not_resettable_reasons` empty means Watchword may reset them;
    otherwise codes such as "privileged_admin" or "federated". `included` is the scope rule's verdict."""

    user_id: str
    upn: str
    display_name: str
    department: str | None = None
    job_title: str | None = None
    not_resettable_reasons: tuple[str, ...] = ()
    included: bool = True


@dataclass(frozen=True)
class ProtectedUser:
    tenant_id: str
    user_id: str
    upn: str
    display_name: str
    department: str | None
    job_title: str | None
    resettable: bool
    not_resettable_reasons: tuple[str, ...]
    included: bool
    excluded: bool  # set by an admin; sync never changes it
    updated_at: datetime

    @property
    def in_scope(self) -> bool:
        return self.included and not self.excluded


@dataclass(frozen=True)
class SyncState:
    """Where a tenant's sync stands. To continue: if `in_progress`, fetch `next_link` (or, when it is
    None, restart this cycle from `delta_link`, or from scratch when `full`); otherwise call
    `begin_sync()` for a new cycle."""

    tenant_id: str
    cycle: int
    full: bool
    in_progress: bool
    delta_link: str | None
    next_link: str | None
    pages: int
    users_upserted: int
    users_removed: int
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime


# Built once: every start reads them (Core, not ORM loads: a third of the CPU for the same rows).
_ANY_STORED = select(ProtectedUserRow.user_id).where(ProtectedUserRow.tenant_id == bindparam("tenant")).limit(1)
_GET = select(*ProtectedUserRow.__table__.c).where(ProtectedUserRow.tenant_id == bindparam("tenant"),
                                                   ProtectedUserRow.user_id == bindparam("user"))


def _to_user(row: ProtectedUserRow | Row[Any]) -> ProtectedUser:
    return ProtectedUser(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        upn=row.upn,
        display_name=row.display_name,
        department=row.department,
        job_title=row.job_title,
        resettable=row.resettable,
        not_resettable_reasons=tuple(row.not_resettable_reasons),
        included=row.included,
        excluded=row.excluded,
        updated_at=row.updated_at,
    )


def _to_state(row: DirectorySyncRow) -> SyncState:
    return SyncState(
        tenant_id=row.tenant_id,
        cycle=row.cycle,
        full=row.full,
        in_progress=row.in_progress,
        delta_link=row.delta_link,
        next_link=row.next_link,
        pages=row.pages,
        users_upserted=row.users_upserted,
        users_removed=row.users_removed,
        started_at=row.started_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
    )


class ProtectedUserRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, units: Units) -> None:
        self._sessions = sessions
        self._units = units
        self._clock = clock

    # --- reading -------------------------------------------------------------------------------

    async def get(self, tenant_id: str, user_id: str) -> ProtectedUser | None:
        key = (normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id"))

        def read(conn: Connection) -> ProtectedUser | None:  # on a start's path: a unit of work
            row = conn.execute(_GET, {"tenant": key[0], "user": key[1]}).one_or_none()
            return _to_user(row) if row is not None else None

        return await self._units.read(read)

    async def find_by_upn(self, tenant_id: str, upn: str) -> ProtectedUser | None:
        """Case-insensitive. If a rename left two rows with one UPN, the latest updated wins."""
        stmt = (
            select(ProtectedUserRow)
            .where(
                ProtectedUserRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
                ProtectedUserRow.upn_lower == upn.strip().lower(),
            )
            .order_by(ProtectedUserRow.updated_at.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            row = (await session.scalars(stmt)).first()
            return _to_user(row) if row is not None else None

    async def list_users(
        self, tenant_id: str, *, limit: int = 100, after_user_id: str | None = None
    ) -> list[ProtectedUser]:
        """A page of users ordered by user id; pass the last one's id as `after_user_id` for the next."""
        stmt = select(ProtectedUserRow).where(
            ProtectedUserRow.tenant_id == normalise_guid(tenant_id, "tenant_id")
        )
        if after_user_id is not None:
            stmt = stmt.where(ProtectedUserRow.user_id > normalise_guid(after_user_id, "after_user_id"))
        stmt = stmt.order_by(ProtectedUserRow.user_id).limit(limit)
        async with self._sessions() as session:
            return [_to_user(row) for row in (await session.scalars(stmt)).all()]

    async def search(
        self,
        tenant_id: str,
        text: str = "",
        *,
        show: UserFilter = UserFilter.ALL,
        limit: int = 50,
        after: tuple[str, str] | None = None,
        before: tuple[str, str] | None = None,
    ) -> list[ProtectedUser]:
        """Users whose display name or UPN starts with `text` (case-insensitive), ordered by display name.

        Keyset paging: pass the last row's `(display_name, user_id)` as `after` for the next page, or the
        first row's as `before` for the previous one (rows still come back in display-name order).
        """
        if after is not None and before is not None:
            raise ValueError("give after or before, not both")
        stmt = self._matching(select(ProtectedUserRow), tenant_id, text, show)
        name, uid = ProtectedUserRow.display_name, ProtectedUserRow.user_id
        if after is not None:
            stmt = stmt.where(or_(name > after[0], and_(name == after[0], uid > after[1])))
        if before is not None:
            stmt = stmt.where(or_(name < before[0], and_(name == before[0], uid < before[1])))
            stmt = stmt.order_by(name.desc(), uid.desc())
        else:
            stmt = stmt.order_by(name, uid)
        async with self._sessions() as session:
            rows = [_to_user(row) for row in (await session.scalars(stmt.limit(limit))).all()]
        return rows[::-1] if before is not None else rows

    async def count_matching(self, tenant_id: str, text: str = "", *, show: UserFilter = UserFilter.ALL) -> int:
        """How many users `search()` would page through."""
        stmt = self._matching(select(func.count()).select_from(ProtectedUserRow), tenant_id, text, show)
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())

    @staticmethod
    def _matching(stmt: Select[Any], tenant_id: str, text: str, show: UserFilter) -> Select[Any]:
        stmt = stmt.where(ProtectedUserRow.tenant_id == normalise_guid(tenant_id, "tenant_id"))
        prefix = text.strip().lower()
        if prefix:
            pattern = _like_escape(prefix) + "%"
            stmt = stmt.where(or_(func.lower(ProtectedUserRow.display_name).like(pattern, escape="\\"),
                                  ProtectedUserRow.upn_lower.like(pattern, escape="\\")))
        if show == UserFilter.NOT_RESETTABLE:
            stmt = stmt.where(ProtectedUserRow.resettable.is_(False))
        elif show == UserFilter.OUT_OF_SCOPE:
            stmt = stmt.where(or_(ProtectedUserRow.included.is_(False), ProtectedUserRow.excluded.is_(True)))
        return stmt

    async def count(self, tenant_id: str) -> int:
        stmt = select(func.count()).where(ProtectedUserRow.tenant_id == normalise_guid(tenant_id, "tenant_id"))
        return await self._units.read(lambda conn: int(conn.execute(stmt).scalar_one()))

    async def lookup(self, tenant_id: str, user_id: str) -> tuple[bool, ProtectedUser | None]:
        """(whether the tenant has any protected user stored, the user if stored), in one unit of work: what a
        start asks (bot/records.py protection), one transaction rather than any_stored's and get's two."""
        return await self._units.read(self.reading_lookup(tenant_id, user_id))

    @staticmethod
    def reading_lookup(tenant_id: str, user_id: str) -> Callable[[Connection], tuple[bool, ProtectedUser | None]]:
        """`lookup`'s read, as a step for a unit of work that reads more with it (bot/records.py start_checks)."""
        which = {"tenant": normalise_guid(tenant_id, "tenant_id"), "user": normalise_guid(user_id, "user_id")}

        def read(conn: Connection) -> tuple[bool, ProtectedUser | None]:
            row = conn.execute(_GET, which).one_or_none()
            if row is not None:
                return True, _to_user(row)
            return conn.execute(_ANY_STORED, which).first() is not None, None

        return read

    async def any_stored(self, tenant_id: str) -> bool:
        """Whether the tenant has any protected user stored (its first sync did): on every start's path, so one
        row of the primary key's index is read, not all of them as `count` does (3 ms at 50,000 people)."""
        which = {"tenant": normalise_guid(tenant_id, "tenant_id")}
        return await self._units.read(lambda conn: conn.execute(_ANY_STORED, which).first() is not None)

    # --- admin ---------------------------------------------------------------------------------

    async def set_excluded(self, tenant_id: str, user_id: str, excluded: bool) -> bool:
        """An admin's explicit exclusion (or its removal). False if the user is unknown."""
        stmt = (
            update(ProtectedUserRow)
            .where(
                ProtectedUserRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
                ProtectedUserRow.user_id == normalise_guid(user_id, "user_id"),
            )
            .values(excluded=excluded, updated_at=self._clock())
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            return (await session.execute(stmt)).rowcount == 1

    # --- sync ----------------------------------------------------------------------------------

    async def get_sync_state(self, tenant_id: str) -> SyncState | None:
        async with self._sessions() as session:
            row = await session.get(DirectorySyncRow, normalise_guid(tenant_id, "tenant_id"))
            return _to_state(row) if row is not None else None

    async def begin_sync(self, tenant_id: str) -> SyncState:
        """Start a new cycle, or return the unfinished one so it can be resumed."""
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        now = self._clock()
        async with self._sessions.begin() as session:
            await _require_connected(session, tenant_id)
            row = await session.get(DirectorySyncRow, tenant_id, with_for_update=True)
            if row is None:
                row = DirectorySyncRow(tenant_id=tenant_id, cycle=0, delta_link=None)
                session.add(row)
            if not row.in_progress:
                row.cycle += 1
                row.full = row.delta_link is None
                row.in_progress = True
                row.next_link = None
                row.pages = row.users_upserted = row.users_removed = 0
                row.started_at = now
                row.completed_at = None
            row.updated_at = now
        return _to_state(row)

    async def apply_sync_page(
        self,
        tenant_id: str,
        *,
        upserts: Sequence[UserSnapshot] = (),
        removed_user_ids: Sequence[str] = (),
        next_link: str | None = None,
        delta_link: str | None = None,
    ) -> SyncState:
        """Store one page of the current cycle with its link, atomically.

        Exactly one of `next_link` (more pages follow) or `delta_link` (the cycle is complete) is given,
        as in Graph's answer. Completing a full cycle removes the users it did not see.
        """
        if (next_link is None) == (delta_link is None):
            raise ValueError("give exactly one of next_link or delta_link")
        tenant_id = normalise_guid(tenant_id, "tenant_id")
        now = self._clock()
        async with self._sessions.begin() as session:
            state = await session.get(DirectorySyncRow, tenant_id, with_for_update=True)
            if state is None or not state.in_progress:
                raise ValueError(f"no sync in progress for tenant {tenant_id}: call begin_sync() first")
            state.users_upserted += await self._upsert(session, tenant_id, upserts, state.cycle, now)
            removed = await self._remove(session, tenant_id, removed_user_ids)
            state.pages += 1
            state.next_link = next_link
            if delta_link is not None:
                removed += await self._finish_cycle(session, state, delta_link, now)
            state.users_removed += removed
            state.updated_at = now
        return _to_state(state)

    async def reset_sync(self, tenant_id: str) -> None:
        """Forget the links (e.g. Graph answered 410 Gone for an expired delta token): the next
        begin_sync() starts a full cycle. Users stay until that cycle completes."""
        stmt = (
            update(DirectorySyncRow)
            .where(DirectorySyncRow.tenant_id == normalise_guid(tenant_id, "tenant_id"))
            .values(delta_link=None, next_link=None, in_progress=False, updated_at=self._clock())
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            await session.execute(stmt)

    async def _upsert(
        self,
        session: AsyncSession,
        tenant_id: str,
        users: Sequence[UserSnapshot],
        cycle: int,
        now: datetime,
    ) -> int:
        # De-duplicate by id (last one wins): one INSERT ... ON CONFLICT cannot touch a row twice.
        by_id = {normalise_guid(user.user_id, "user_id"): user for user in users}
        values = [_row_values(tenant_id, user_id, user, cycle, now) for user_id, user in by_id.items()]
        if not values:
            return 0
        # One constant statement run with many rows (Core, not ORM bulk): compiled once and cached, and
        # SQLAlchemy's "insertmanyvalues" sends it as multi-row INSERTs within each backend's parameter limit.
        stmt = dialect_insert(session, ProtectedUserRow.__table__)
        # `excluded` is an admin's decision: keep it when sync updates a user.
        updated = {name: stmt.excluded[name] for name in values[0] if name not in _KEY_AND_ADMIN_COLUMNS}
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "user_id"], set_=updated)
        for start in range(0, len(values), _UPSERT_CHUNK):
            await session.execute(stmt, values[start : start + _UPSERT_CHUNK])
        return len(values)

    async def _remove(self, session: AsyncSession, tenant_id: str, user_ids: Sequence[str]) -> int:
        if not user_ids:
            return 0
        ids = {normalise_guid(user_id, "user_id") for user_id in user_ids}
        stmt = (
            delete(ProtectedUserRow)
            .where(ProtectedUserRow.tenant_id == tenant_id, ProtectedUserRow.user_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        return (await session.execute(stmt)).rowcount

    async def _finish_cycle(
        self, session: AsyncSession, state: DirectorySyncRow, delta_link: str, now: datetime
    ) -> int:
        removed = 0
        if state.full:
            stale = (
                delete(ProtectedUserRow)
                .where(ProtectedUserRow.tenant_id == state.tenant_id, ProtectedUserRow.seen_in_cycle < state.cycle)
                .execution_options(synchronize_session=False)
            )
            removed = (await session.execute(stale)).rowcount
        state.delta_link = delta_link
        state.in_progress = False
        state.completed_at = now
        return removed


def _like_escape(text: str) -> str:
    """`text` as a literal LIKE prefix: its own % and _ (and the escape character) match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_KEY_AND_ADMIN_COLUMNS = frozenset({"tenant_id", "user_id", "excluded"})
_UPSERT_CHUNK = 500


def _row_values(tenant_id: str, user_id: str, user: UserSnapshot, cycle: int, now: datetime) -> dict[str, object]:
    reasons = sorted(set(user.not_resettable_reasons))
    return {
        "tenant_id": tenant_id,
        "user_id": user_id,
        "upn": user.upn,
        "upn_lower": user.upn.strip().lower(),
        "display_name": user.display_name,
        "department": user.department,
        "job_title": user.job_title,
        # Derived here, in one place, so the flag and the reasons cannot disagree.
        "resettable": not reasons,
        "not_resettable_reasons": reasons,
        "included": user.included,
        "excluded": False,
        "seen_in_cycle": cycle,
        "updated_at": now,
    }


async def _require_connected(session: AsyncSession, tenant_id: str) -> None:
    status = await session.scalar(select(TenantRow.status).where(TenantRow.tenant_id == tenant_id))
    if status is None or status == TenantStatus.DISCONNECTED:
        raise TenantNotFoundError(tenant_id)
