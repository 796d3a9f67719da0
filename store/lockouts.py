"""Counted attempts and lockouts per (tenant, user).

The store counts and records; the policy (how many failed attempts, how long a lockout) lives in the domain
and arrives here as a `LockoutRule`. What counts as an attempt is one rule, here: the person's verification
sessions that failed (`not_verified`), were abandoned (`timed_out`) or are still open (`in_progress`: each may
yet fail), created in the last 24 hours and since the count last restarted. Verified, cancelled by the agent,
and ended by Watchword itself (not enough data, privileged, blocked by risk, refused at start) do not count.

Counting and acting on the count are serialised per person: `serialise()` updates the person's
`attempt_counters` row first, which on PostgreSQL holds a row lock until commit and on SQLite happens under
the single writer's lock (units begin IMMEDIATE; in-memory SQLite queues on the audit log's lock). So six
simultaneous `verify` of one person, on one instance or two, see six different counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.audit import AuditEvent, AuditLog
from store.clock import require_utc
from store.tables import AttemptCounterRow, UserLockoutRow, VerificationSessionRow
from store.units import Units
from verification import Outcome
from verification.clock import Clock

ATTEMPT_WINDOW = timedelta(hours=24)
# Session outcomes that count against the person (see the module doc), as stored.
COUNTED_OUTCOMES = tuple(o.value for o in (Outcome.IN_PROGRESS, Outcome.NOT_VERIFIED, Outcome.TIMED_OUT))


@dataclass(frozen=True)
class Lockout:
    tenant_id: str
    user_id: str
    locked_until: datetime
    locked_at: datetime
    reason: str


@dataclass(frozen=True)
class LockoutRule:
    """From the tenant's policy: lock the person for `duration` once `max_failed` attempts count against them.
    `actor` is who is recorded as having caused the lockout (the agent whose verification failed)."""

    max_failed: int
    duration: timedelta
    actor: str


def _to_lockout(row: UserLockoutRow | Row[Any]) -> Lockout:
    return Lockout(tenant_id=row.tenant_id, user_id=row.user_id, locked_until=row.locked_until,
                   locked_at=row.locked_at, reason=row.reason)


# --- inside a unit of work (store/units.py) -------------------------------------------------------------------
def _serialise_statement(dialect: Any) -> Any:
    insert = dialect.insert(AttemptCounterRow)
    return insert.on_conflict_do_update(index_elements=["tenant_id", "user_id"],
                                        set_={"version": AttemptCounterRow.version + 1}
                                        ).returning(AttemptCounterRow.counted_since)


# Built once, per dialect: every admission runs them.
_SERIALISE = {"postgresql": _serialise_statement(postgresql), "sqlite": _serialise_statement(sqlite)}
_COUNTED = select(func.count()).where(
    VerificationSessionRow.tenant_id == bindparam("tenant"), VerificationSessionRow.target_user_id == bindparam("user"),
    VerificationSessionRow.created_at > bindparam("since"), VerificationSessionRow.outcome.in_(COUNTED_OUTCOMES))
_ACTIVE = select(*UserLockoutRow.__table__.c).where(
    UserLockoutRow.tenant_id == bindparam("tenant"), UserLockoutRow.user_id == bindparam("user"),
    UserLockoutRow.locked_until > bindparam("now"))


def serialise(conn: Connection, tenant_id: str, user_id: str) -> datetime | None:
    """Take the person's counter row (creating it), so no one else counts or locks them until commit; returns
    the time the count restarted, if it ever did."""
    return conn.execute(_SERIALISE[conn.dialect.name], {"tenant_id": tenant_id, "user_id": user_id, "version": 1,
                                                        "counted_since": None}).scalar_one()


def _since(now: datetime, restarted: datetime | None) -> datetime:
    since = now - ATTEMPT_WINDOW
    return restarted if restarted is not None and restarted > since else since


def counted(conn: Connection, tenant_id: str, user_id: str, now: datetime, restarted: datetime | None) -> int:
    """The attempts that count against the person now (see the module doc)."""
    return int(conn.execute(_COUNTED, {"tenant": tenant_id, "user": user_id,
                                       "since": _since(now, restarted)}).scalar_one())


def impose(conn: Connection, tenant_id: str, user_id: str, *, now: datetime, until: datetime, reason: str) -> None:
    """Lock the person until `until`; the attempts that led here are consumed (the count restarts now)."""
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(UserLockoutRow)
    values = {"tenant_id": tenant_id, "user_id": user_id, "locked_until": until, "locked_at": now, "reason": reason}
    conn.execute(insert.values(values).on_conflict_do_update(
        index_elements=["tenant_id", "user_id"],
        set_={name: values[name] for name in ("locked_until", "locked_at", "reason")}))
    _restart_count(conn, tenant_id, user_id, now)


def _restart_count(conn: Connection, tenant_id: str, user_id: str, now: datetime) -> None:
    conn.execute(update(AttemptCounterRow).where(AttemptCounterRow.tenant_id == tenant_id,
                                                 AttemptCounterRow.user_id == user_id)
                 .values(counted_since=now))


def lock_if_reached(conn: Connection, tenant_id: str, user_id: str, *, now: datetime, rule: LockoutRule,
                    audit: AuditLog, session_id: str) -> datetime | None:
    """After a counted outcome: lock the person when the rule's count is reached (audited in the same
    transaction). Returns the lockout's end, or None."""
    restarted = serialise(conn, tenant_id, user_id)
    failed = counted(conn, tenant_id, user_id, now, restarted)
    if failed < rule.max_failed:
        return None
    until = now + rule.duration
    impose(conn, tenant_id, user_id, now=now, until=until,
           reason=f"{failed} failed or abandoned verifications in 24 hours")
    audit.append_in(conn, AuditEvent(action="verification.locked", outcome="locked", actor=rule.actor,
                                     subject=user_id, tenant_id=tenant_id,
                                     details={"session_id": session_id, "until": until.isoformat(),
                                              "failed_attempts": failed}))
    return until


class LockoutRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, audit: AuditLog,
                 units: Units) -> None:
        self._sessions = sessions
        self._units = units
        self._clock = clock
        self._audit = audit

    async def counted_attempts(self, tenant_id: str, user_id: str) -> int:
        """The attempts counting against the person now (a plain read: the admission itself counts again,
        atomically; see SessionRepository.admit)."""
        tenant_id, user_id = normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id")
        async with self._sessions() as session:
            restarted = await session.scalar(select(AttemptCounterRow.counted_since).where(
                AttemptCounterRow.tenant_id == tenant_id, AttemptCounterRow.user_id == user_id))
            since = _since(self._clock(), restarted)
            return int(await session.scalar(_COUNTED, {"tenant": tenant_id, "user": user_id, "since": since}) or 0)

    async def apply(self, tenant_id: str, user_id: str, rule: LockoutRule, *, session_id: str) -> datetime | None:
        """Lock the person out if `rule`'s count is reached now (a session that ended elsewhere, such as "not
        me" in Teams, was just decided). Returns the lockout's end, or None."""
        tenant_id, user_id = normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id")
        now = self._clock()
        if await self.active_lockout(tenant_id, user_id) is not None:
            return None  # already locked: this session's failure was counted into it
        return await self._audit.write(lambda conn: lock_if_reached(conn, tenant_id, user_id, now=now, rule=rule,
                                                                    audit=self._audit, session_id=session_id))

    async def lock(self, tenant_id: str, user_id: str, *, until: datetime, reason: str) -> Lockout:
        """Lock the user until `until`. An existing lockout is replaced (extended or shortened)."""
        tenant_id, user_id = normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id")
        until, now = require_utc(until, "until"), self._clock()

        def write(conn: Connection) -> None:
            serialise(conn, tenant_id, user_id)
            impose(conn, tenant_id, user_id, now=now, until=until, reason=reason)

        await self._audit.write(write)
        return Lockout(tenant_id=tenant_id, user_id=user_id, locked_until=until, locked_at=now, reason=reason)

    async def active_lockout(self, tenant_id: str, user_id: str) -> Lockout | None:
        """The user's lockout if it has not yet run out, else None."""
        return await self._units.read(self.reading_active(tenant_id, user_id))

    def reading_active(self, tenant_id: str, user_id: str) -> Callable[[Connection], Lockout | None]:
        """`active_lockout`'s read (as of now), as a step for a unit of work that reads more with it (bot/records.py
        start_checks)."""
        which = {"tenant": normalise_guid(tenant_id, "tenant_id"), "user": normalise_guid(user_id, "user_id"),
                 "now": self._clock()}

        def read(conn: Connection) -> Lockout | None:  # on every start's path: a unit of work
            row = conn.execute(_ACTIVE, which).one_or_none()
            return _to_lockout(row) if row is not None else None

        return read

    async def active_lockouts(self, tenant_id: str, *, limit: int = 200) -> list[Lockout]:
        """The tenant's people locked out now, the longest remaining first."""
        stmt = (select(UserLockoutRow)
                .where(UserLockoutRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
                       UserLockoutRow.locked_until > self._clock())
                .order_by(UserLockoutRow.locked_until.desc(), UserLockoutRow.user_id).limit(limit))
        async with self._sessions() as session:
            return [_to_lockout(row) for row in (await session.scalars(stmt)).all()]

    async def unlock(self, tenant_id: str, user_id: str, *, audit: AuditEvent | None = None) -> bool:
        """Lift a lockout early (an admin's decision): the count restarts too, so the person is not locked again
        by the attempts that locked them, and `audit` is appended, all in one transaction. False (and nothing
        written) if there was no lockout to lift."""
        tenant_id, user_id = normalise_guid(tenant_id, "tenant_id"), normalise_guid(user_id, "user_id")
        now = self._clock()

        def lift(conn: Connection) -> bool:
            serialise(conn, tenant_id, user_id)
            lifted = conn.execute(delete(UserLockoutRow).where(
                UserLockoutRow.tenant_id == tenant_id, UserLockoutRow.user_id == user_id,
                UserLockoutRow.locked_until > now)).rowcount == 1
            if lifted:
                _restart_count(conn, tenant_id, user_id, now)
                if audit is not None:
                    self._audit.append_in(conn, audit)
            return lifted

        return await self._audit.write(lift)

    async def prune(self) -> int:
        """Housekeeping: delete lockouts that have run out, and counters with nothing left to count. Returns how
        many lockouts went."""
        now = self._clock()
        recent = select(VerificationSessionRow.session_id).where(
            VerificationSessionRow.tenant_id == AttemptCounterRow.tenant_id,
            VerificationSessionRow.target_user_id == AttemptCounterRow.user_id,
            VerificationSessionRow.created_at > now - ATTEMPT_WINDOW)
        locked = select(UserLockoutRow.user_id).where(
            UserLockoutRow.tenant_id == AttemptCounterRow.tenant_id,
            UserLockoutRow.user_id == AttemptCounterRow.user_id, UserLockoutRow.locked_until > now)
        async with self._sessions.begin() as session:
            lockouts = await session.execute(delete(UserLockoutRow).where(UserLockoutRow.locked_until <= now))
            await session.execute(delete(AttemptCounterRow).where(
                and_(~recent.exists(), ~locked.exists()),
                or_(AttemptCounterRow.counted_since.is_(None), AttemptCounterRow.counted_since <= now - ATTEMPT_WINDOW))
                .execution_options(synchronize_session=False))
        return lockouts.rowcount
