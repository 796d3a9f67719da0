"""The audit log: append-only, hash-chained, and safe under concurrent appenders.

Each row's `hash` is SHA-256 over a canonical JSON of its fields and the previous row's hash, so
changing, removing or reordering a row breaks the chain from that row on; `verify_chain()` finds where.

Appends are serialised on the single `audit_chain_head` row: the first statement of every append is
`UPDATE audit_chain_head SET last_seq = last_seq + 1 ... RETURNING last_seq, last_hash`. On PostgreSQL
that row lock is held until commit (what SELECT ... FOR UPDATE would do, in one round trip); on SQLite a
write as the first statement takes the database write lock before anything is read, so two processes
cannot both read the same head. Inside one process an append is part of a unit of work (store/units.py) that
runs whole, never awaiting while it holds SQLite's lock, so appenders wait briefly if at all (an asyncio.Lock
queues them for in-memory SQLite, where units run on the async engine). Either way no two rows can share a
prev_hash.

An event appended while a request is served (a Teams turn, a console action) or during a pass of background work
carries its correlation id in its details (`correlation_id`, observability/correlation.py), the id on its log
lines and its Graph requests' headers; like every detail it is hashed, and rows written before it existed verify
as they always did.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from observability import correlation
from store._sql import normalise_guid
from store.clock import require_utc
from store.secrets_guard import clean_json
from store.tables import AuditChainHeadRow, AuditRow
from store.units import Units
from verification.clock import Clock

T = TypeVar("T")

GENESIS_HASH = "0" * 64
_HEAD_ID = 1
# Column limits, checked before writing so an over-long value fails the same way on SQLite
# (which would accept it) as on PostgreSQL (which would reject it mid-transaction).
_LIMITS = {"actor": 256, "subject": 256, "action": 64, "outcome": 32}
# Core statements, built once: an append is on every turn's path, and the ORM would triple its cost.
_CLAIM = (update(AuditChainHeadRow).where(AuditChainHeadRow.id == _HEAD_ID)
          .values(last_seq=AuditChainHeadRow.last_seq + 1)
          .returning(AuditChainHeadRow.last_seq, AuditChainHeadRow.last_hash))
_INSERT = insert(AuditRow)
_SET_HASH = update(AuditChainHeadRow).where(AuditChainHeadRow.id == _HEAD_ID)


@dataclass(frozen=True)
class AuditEvent:
    """An event to append (see `AuditLog.append`), checked when made: secret-looking detail keys or malformed
    fields raise ValueError here, before any transaction starts."""

    action: str
    outcome: str
    actor: str
    subject: str | None = None
    tenant_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_fields(action=self.action, outcome=self.outcome, actor=self.actor, subject=self.subject)
        details = clean_json(self.details, "audit details")
        # Taken where the event is made: the append itself may run on the store's writer thread, outside the request.
        if (correlation_id := correlation.current()) is not None:
            details = {**details, "correlation_id": correlation_id}
        object.__setattr__(self, "details", details)
        if self.tenant_id is not None:
            object.__setattr__(self, "tenant_id", normalise_guid(self.tenant_id, "tenant_id"))


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: datetime
    tenant_id: str | None
    actor: str
    subject: str | None
    action: str
    outcome: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilter:
    """Conditions for `AuditLog.query`; None means "any". `since` is inclusive, `until` exclusive.
    `subject`, `actor`, `action` and `outcome` also take a tuple: any of those values (one person's UPN and
    object id, say)."""

    tenant_id: str | None = None
    subject: str | tuple[str, ...] | None = None
    actor: str | tuple[str, ...] | None = None
    action: str | tuple[str, ...] | None = None
    outcome: str | tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    """Newest first. Pass `next_before_seq` back as `before_seq` for the next page; None means no more."""

    entries: tuple[AuditEntry, ...]
    next_before_seq: int | None


class ChainBreak(StrEnum):
    HASH_MISMATCH = "hash_mismatch"  # the row's fields no longer produce its hash: the row was edited
    BROKEN_LINK = "broken_link"  # prev_hash is not the previous row's hash: rows edited, removed or moved
    MISSING_ROW = "missing_row"  # a seq number is absent: a row was deleted
    TRUNCATED = "truncated"  # the chain head records rows (or a hash) the table no longer has
    HEAD_MISMATCH = "head_mismatch"  # the row at a head kept earlier (or elsewhere) is not that head: rewritten


@dataclass(frozen=True)
class ChainHead:
    """The last appended seq and hash. Copy it somewhere else now and then: an attacker who rewrites
    the whole chain from some row onwards can only be caught by comparing with an older head."""

    seq: int
    hash: str


@dataclass(frozen=True)
class AuditChainCheck:
    ok: bool
    rows_checked: int
    first_broken_seq: int | None = None
    reason: ChainBreak | None = None
    explanation: str = field(default="")
    head: ChainHead | None = None  # the head a passing check reached: where the next check may start


def entry_hash(
    *,
    seq: int,
    time: datetime,
    tenant_id: str | None,
    actor: str,
    subject: str | None,
    action: str,
    outcome: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of a row: sorted keys, no spaces, UTF-8, UTC microseconds."""
    payload = {
        "seq": seq,
        "time": time.astimezone(UTC).isoformat(timespec="microseconds"),
        "tenant_id": tenant_id,
        "actor": actor,
        "subject": subject,
        "action": action,
        "outcome": outcome,
        "details": details,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_fields(**values: str | None) -> None:
    for name, value in values.items():
        if value is None:
            continue
        if not value.strip():
            raise ValueError(f"audit {name} must not be empty")
        if len(value) > _LIMITS[name]:
            raise ValueError(f"audit {name} is longer than {_LIMITS[name]} characters")


def _to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        time=row.time,
        tenant_id=row.tenant_id,
        actor=row.actor,
        subject=row.subject,
        action=row.action,
        outcome=row.outcome,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], units: Units, clock: Clock) -> None:
        self._sessions = sessions
        self._units = units
        self._clock = clock
        # Only SQLite on the async engine (in-memory) needs an in-process queue: a SQLite file's units run whole,
        # and PostgreSQL's row lock lets appenders wait server-side.
        self._append_lock: asyncio.Lock | None = (
            asyncio.Lock() if units.dialect == "sqlite" and not units.threaded else None)

    async def append(
        self,
        *,
        action: str,
        outcome: str,
        actor: str,
        subject: str | None = None,
        tenant_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one event. Raises ValueError for secret-looking detail keys or malformed fields."""
        return await self.append_event(AuditEvent(action, outcome, actor, subject, tenant_id, details or {}))

    async def append_event(self, event: AuditEvent) -> AuditEntry:
        """Append an event already made (one also meant to go along with another write, which did not happen)."""
        return await self.write(lambda conn: self.append_in(conn, event))

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, a unit of work (store/units.py) that may append (`append_in`) along with other writes of
        the store, all committed together. Queued behind other appenders where needed (see the module doc)."""
        if self._append_lock is None:
            return await self._units.write(work)
        async with self._append_lock:
            return await self._units.write(work)

    def append_in(self, conn: Connection, event: AuditEvent) -> AuditEntry:
        """Append `event` inside the transaction of a unit of work run by `write()`."""
        seq, prev_hash = conn.execute(_CLAIM).one()
        # Taken under the lock, so times never go backwards along the chain (unless the clock does).
        time = require_utc(self._clock(), "clock()")
        fields = dict(seq=seq, time=time, tenant_id=event.tenant_id, actor=event.actor, subject=event.subject,
                      action=event.action, outcome=event.outcome, details=dict(event.details), prev_hash=prev_hash)
        digest = entry_hash(**fields)
        conn.execute(_INSERT, {**fields, "hash": digest})
        conn.execute(_SET_HASH, {"last_hash": digest})
        return AuditEntry(**fields, hash=digest)

    async def head(self) -> ChainHead:
        async with self._sessions() as session:
            row = await session.get_one(AuditChainHeadRow, _HEAD_ID)
            return ChainHead(seq=row.last_seq, hash=row.last_hash)

    async def query(
        self, where: AuditFilter | None = None, *, limit: int = 50, before_seq: int | None = None
    ) -> AuditPage:
        """Rows matching `where`, newest first, at most `limit` (1..1000) per page."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        stmt = _filtered(select(AuditRow), where or AuditFilter())
        if before_seq is not None:
            stmt = stmt.where(AuditRow.seq < before_seq)
        stmt = stmt.order_by(AuditRow.seq.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        entries = tuple(_to_entry(row) for row in rows[:limit])
        more = len(rows) > limit
        return AuditPage(entries=entries, next_before_seq=entries[-1].seq if more else None)

    async def verify_chain(self, *, since: ChainHead | None = None, batch_size: int = 1000) -> AuditChainCheck:
        """Walk the chain and report the first row that does not verify: from seq 1, or from `since`, a head
        an earlier check verified (its row is checked again first, so a checkpoint cannot be edited away;
        rows before it are not read: only a check from the start covers them).

        Reads the head first and checks only rows up to it, so appends running meanwhile do not
        confuse the check. Reads in batches so a long log is never held in memory at once.
        """
        head = await self.head()
        expected_seq, prev_hash = 1, GENESIS_HASH
        if since is not None and since.seq > 0:
            kept = await self._kept_row(since, head)
            if isinstance(kept, AuditChainCheck):
                return kept
            expected_seq, prev_hash = since.seq + 1, since.hash
        checked = 0
        while expected_seq <= head.seq:
            rows = await self._batch(expected_seq, head.seq, batch_size)
            if not rows:
                break
            for row in rows:
                broken = _check_row(row, expected_seq, prev_hash)
                if broken is not None:
                    return AuditChainCheck(False, checked, *broken)
                checked += 1
                expected_seq, prev_hash = row.seq + 1, row.hash
        return _check_head(head, expected_seq - 1, checked, prev_hash)

    async def verify_against(self, kept: ChainHead) -> AuditChainCheck:
        """Check the whole chain, and that it still holds `kept`, a head copied out of the database earlier
        (the console's head export, a daily webhook): the only way to notice a tail rewritten consistently."""
        check = await self.verify_chain()
        if not check.ok or kept.seq == 0:
            return check
        kept_row = await self._kept_row(kept, await self.head())
        return kept_row if isinstance(kept_row, AuditChainCheck) else check

    async def _kept_row(self, kept: ChainHead, head: ChainHead) -> AuditRow | AuditChainCheck:
        """The row at `kept.seq`, if it is still the one `kept` describes; otherwise the failed check."""
        if kept.seq > head.seq:
            return AuditChainCheck(False, 0, head.seq + 1, ChainBreak.TRUNCATED,
                                   f"the log ends at #{head.seq}, but #{kept.seq} was recorded before")
        rows = await self._batch(kept.seq, kept.seq, 1)
        if not rows:
            return AuditChainCheck(False, 0, kept.seq, ChainBreak.MISSING_ROW, f"seq {kept.seq} is missing")
        row = rows[0]
        if _recomputed(row) != row.hash:
            return AuditChainCheck(False, 0, row.seq, ChainBreak.HASH_MISMATCH,
                                   "the row's contents do not match its hash")
        if row.hash != kept.hash:
            return AuditChainCheck(False, 0, row.seq, ChainBreak.HEAD_MISMATCH,
                                   f"#{row.seq} is not the entry recorded before: the log was rewritten from there")
        return row

    async def _batch(self, from_seq: int, to_seq: int, size: int) -> list[AuditRow]:
        stmt = (
            select(AuditRow)
            .where(AuditRow.seq >= from_seq, AuditRow.seq <= to_seq)
            .order_by(AuditRow.seq)
            .limit(size)
        )
        async with self._sessions() as session:
            return list((await session.scalars(stmt)).all())


def _filtered(stmt: Select[tuple[AuditRow]], where: AuditFilter) -> Select[tuple[AuditRow]]:
    tenant_id = normalise_guid(where.tenant_id, "tenant_id") if where.tenant_id else None
    equal = (
        (AuditRow.tenant_id, tenant_id),
        (AuditRow.subject, where.subject),
        (AuditRow.actor, where.actor),
        (AuditRow.action, where.action),
        (AuditRow.outcome, where.outcome),
    )
    for column, value in equal:
        if isinstance(value, tuple):
            stmt = stmt.where(column.in_(value))
        elif value is not None:
            stmt = stmt.where(column == value)
    if where.since is not None:
        stmt = stmt.where(AuditRow.time >= require_utc(where.since, "since"))
    if where.until is not None:
        stmt = stmt.where(AuditRow.time < require_utc(where.until, "until"))
    return stmt


def _check_row(row: AuditRow, expected_seq: int, prev_hash: str) -> tuple[int, ChainBreak, str] | None:
    if row.seq != expected_seq:
        return expected_seq, ChainBreak.MISSING_ROW, f"seq {expected_seq} is missing (next row is {row.seq})"
    if row.prev_hash != prev_hash:
        return row.seq, ChainBreak.BROKEN_LINK, "prev_hash does not match the previous row's hash"
    if _recomputed(row) != row.hash:
        return row.seq, ChainBreak.HASH_MISMATCH, "the row's contents do not match its hash"
    return None


def _recomputed(row: AuditRow) -> str:
    return entry_hash(seq=row.seq, time=row.time, tenant_id=row.tenant_id, actor=row.actor, subject=row.subject,
                      action=row.action, outcome=row.outcome, details=row.details, prev_hash=row.prev_hash)


def _check_head(head: ChainHead, last_seq: int, checked: int, last_hash: str) -> AuditChainCheck:
    if last_seq < head.seq:
        return AuditChainCheck(
            False,
            checked,
            last_seq + 1,
            ChainBreak.TRUNCATED,
            f"the chain head records {head.seq} rows but only {last_seq} exist",
        )
    if head.hash != last_hash:
        return AuditChainCheck(
            False, checked, head.seq, ChainBreak.TRUNCATED, "the last row's hash is not the chain head's"
        )
    return AuditChainCheck(True, checked, head=head)
