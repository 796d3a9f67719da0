"""What the database keeps of verification sessions (verification.VerificationSession) and their transcripts.

A transcript records what kind of question was asked, from which source, what it was worth and how
the caller did, never the question's answer or what the caller said: the table has no column for it.

State changes are conditional UPDATEs on `outcome = 'in_progress'`, so when two things race to end a
session (the last answer and the expiry sweep, or a cancel) exactly one wins and the other gets
SessionClosedError: a session cannot end twice with two different outcomes.

An open session may also hold its sealed question plan (a Fernet token from the bot: the store never sees
the answers in clear): written with the session, read when a process without it in memory continues the
session, deleted in the same transaction that ends it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Row, String, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.audit import AuditEvent, AuditLog
from store.clock import require_utc
from store.errors import SessionClosedError, StoreUnavailable
from store.lockouts import COUNTED_OUTCOMES, LockoutRule, counted, lock_if_reached, serialise
from store.secrets_guard import clean_json
from store.tables import TranscriptEntryRow, TurnProcessRow, VerificationPlanRow, VerificationSessionRow
from store.turns import CURRENT_ACTIVITY, conversation_key, dead_processes
from store.units import Units
from verification import MatchResult, Outcome, TranscriptEntry
from verification.clock import Clock
from verification.reset import (
    BLOCKED,
    CLAIM_EXPIRY,
    DEAD_OWNER_TAKEOVER,
    RESET_WINDOW,
    RESETTING,
    RETRYABLE,
    ResetClaim,
    ResetClaimResult,
    ResetOutcome,
)


@dataclass(frozen=True)
class SessionRecord:
    """A verification session's row: whom it verified for whom, how it ended, and its password reset's record."""

    session_id: str
    tenant_id: str
    target_user_id: str
    agent_id: str | None  # None for self-service
    outcome: Outcome
    required_bits: int
    earned_bits: int
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    risk_summary: Mapping[str, Any]
    policy_snapshot: Mapping[str, Any]
    # The password reset's record (see claim_reset): None never tried, else a verification.reset state.
    reset_state: str | None = None
    reset_attempt: int = 0
    reset_claimed_at: datetime | None = None
    reset_done_at: datetime | None = None
    reset_owner: str | None = None  # the process that holds (or last held) the reset's claim

    @property
    def is_open(self) -> bool:
        return self.outcome == Outcome.IN_PROGRESS


@dataclass(frozen=True)
class AbandonedReset:
    """A reset attempt whose claimant never recorded its outcome (killed, perhaps after Graph took the password),
    now recorded unknown by the sweep: the person is to be told a reset may have gone through."""

    session_id: str
    tenant_id: str
    target_user_id: str
    agent_id: str | None  # None for self-service: the person reset it themselves
    attempt: int
    claimed_at: datetime


@dataclass(frozen=True)
class TranscriptRecord:
    """A verification.TranscriptEntry as stored: what kind of question, how it went, never the answer."""

    position: int  # 1, 2, 3... in the order asked
    kind: str  # e.g. "meeting_partner"
    source: str  # e.g. "calendar"
    bits: int  # what this answer earned, in whole bits
    result: MatchResult
    at: datetime


@dataclass(frozen=True)
class Admission:
    """A session just opened, and how many attempts counted against the person before it (counted and opened in
    one transaction, serialised per person: see store/lockouts.py)."""

    session: SessionRecord
    counted_before: int


def _to_session(row: VerificationSessionRow | Row[Any]) -> SessionRecord:
    return SessionRecord(
        session_id=row.session_id,
        tenant_id=row.tenant_id,
        target_user_id=row.target_user_id,
        agent_id=row.agent_id,
        outcome=Outcome(row.outcome),
        required_bits=row.required_bits,
        earned_bits=row.earned_bits,
        created_at=row.created_at,
        expires_at=row.expires_at,
        ended_at=row.ended_at,
        risk_summary=row.risk_summary,
        policy_snapshot=row.policy_snapshot,
        reset_state=row.reset_state,
        reset_attempt=row.reset_attempt,
        reset_claimed_at=row.reset_claimed_at,
        reset_done_at=row.reset_done_at,
        reset_owner=row.reset_owner,
    )


def _refusal(conn: Connection, row: Row[Any] | None, by: str, now: datetime, window: timedelta,
             claim_expiry: timedelta) -> ResetClaimResult | None:
    """Why this request may not reset now, or None: it may claim the next attempt."""
    if row is None or row.outcome != Outcome.VERIFIED.value or by not in (row.agent_id, _self(row)):
        return ResetClaimResult(ResetClaim.NOT_ALLOWED, row.reset_attempt if row is not None else 0)
    if row.reset_state == BLOCKED:
        return ResetClaimResult(ResetClaim.BLOCKED, row.reset_attempt)
    if row.reset_state == ResetOutcome.DONE.value:
        return ResetClaimResult(ResetClaim.DONE, row.reset_attempt, row.reset_done_at)
    if row.reset_state == RESETTING and row.reset_claimed_at is not None and row.reset_claimed_at > now - claim_expiry \
            and not _owner_gone(conn, row, now):
        return ResetClaimResult(ResetClaim.BUSY, row.reset_attempt, _takeover_at(conn, row, now, claim_expiry))
    if row.ended_at is None or row.ended_at <= now - window:
        return ResetClaimResult(ResetClaim.EXPIRED, row.reset_attempt)
    return None


def _owner_gone(conn: Connection, row: Row[Any], now: datetime) -> bool:
    """The claim's process is dead (its heartbeat lapsed) and its fence is older than DEAD_OWNER_TAKEOVER: it can
    neither start a PATCH any more nor have one still in flight (verification/reset.py), so the claim is free."""
    return (row.reset_owner is not None and row.reset_claimed_at is not None
            and row.reset_claimed_at <= now - DEAD_OWNER_TAKEOVER
            and conn.execute(dead_processes(now).where(TurnProcessRow.owner == row.reset_owner)).first() is not None)


def _takeover_at(conn: Connection, row: Row[Any], now: datetime, claim_expiry: timedelta) -> datetime:
    """When a claim in progress may be taken over, as far as can be told now: its process already dead, once its
    fence is DEAD_OWNER_TAKEOVER old; else when it expires."""
    dead = row.reset_owner is not None and conn.execute(
        dead_processes(now).where(TurnProcessRow.owner == row.reset_owner)).first() is not None
    return row.reset_claimed_at + (DEAD_OWNER_TAKEOVER if dead else claim_expiry)


def _self(row: Row[Any]) -> str | None:
    """Self-service: the person verified themselves (no agent), so they are the one who may reset."""
    return row.target_user_id if row.agent_id is None else None


def _to_entry(row: TranscriptEntryRow) -> TranscriptRecord:
    return TranscriptRecord(
        position=row.position,
        kind=row.kind,
        source=row.source,
        bits=row.bits,
        result=MatchResult(row.result),
        at=row.at,
    )


# Core statements for the per-answer path (add_entry), built once: the ORM would triple their cost.
_ENTRY_RECORDED = select(TranscriptEntryRow.position).where(TranscriptEntryRow.session_id == bindparam("sid"),
                                                            TranscriptEntryRow.turn_key == bindparam("turn_key"))
# The score, unless this turn's entry is recorded already (a redelivery: see add_entry). A NULL turn_key matches no
# entry, so an entry recorded outside a turn always counts.
_ENTRY_SCORE = (update(VerificationSessionRow)
                .where(VerificationSessionRow.session_id == bindparam("sid"),
                       VerificationSessionRow.outcome == Outcome.IN_PROGRESS.value,
                       ~_ENTRY_RECORDED.exists())
                .values(earned_bits=bindparam("earned")))
_FINISH = (update(VerificationSessionRow)
           .where(VerificationSessionRow.session_id == bindparam("sid"),
                  VerificationSessionRow.outcome == Outcome.IN_PROGRESS.value)
           .returning(*VerificationSessionRow.__table__.c))
_DROP_PLAN = delete(VerificationPlanRow).where(VerificationPlanRow.session_id == bindparam("sid"))
# The next position is taken in the INSERT itself; the UPDATE above already locked the session row.
_ENTRY_INSERT = insert(TranscriptEntryRow).from_select(
    ["session_id", "position", "kind", "source", "bits", "result", "at", "turn_key"],
    select(bindparam("sid"), func.coalesce(func.max(TranscriptEntryRow.position), 0) + 1, bindparam("kind"),
           bindparam("source"), bindparam("bits"), bindparam("result"),
           bindparam("at", type_=TranscriptEntryRow.at.type), bindparam("turn_key", type_=String(64)))
    .where(TranscriptEntryRow.session_id == bindparam("sid")),
).returning(TranscriptEntryRow.position)
# ... and for the start's path (admit, attach_plan, own_resets, the sign-in risk kept), likewise.
_S = VerificationSessionRow
_OPEN = (_S.session_id == bindparam("sid"), _S.outcome == Outcome.IN_PROGRESS.value)
_ADMIT = insert(_S)
_PLAN_INSERT = insert(VerificationPlanRow)


def _restarted(agent: bool) -> Any:
    """The sessions of this person the same agent (or, self-service, the person: no agent) left open in the chat."""
    return (update(_S).where(_S.chat == bindparam("in_chat"), _S.tenant_id == bindparam("tenant"),
                             _S.target_user_id == bindparam("target"),
                             _S.agent_id == bindparam("agent") if agent else _S.agent_id.is_(None),
                             _S.outcome == Outcome.IN_PROGRESS.value)
            .values(outcome=Outcome.CANCELLED.value, ended_at=bindparam("now")).returning(_S.session_id))


_RESTARTED = {True: _restarted(True), False: _restarted(False)}
_ATTACH = update(_S).where(*_OPEN).values(required_bits=bindparam("bits"))
_ATTACH_AS_IS = update(_S).where(*_OPEN).values(earned_bits=_S.earned_bits)
_SEALED_PLAN = select(VerificationPlanRow.sealed).where(VerificationPlanRow.session_id == bindparam("sid"))
_KEEP_FINAL_RISK = update(_S).where(*_OPEN).values(final_risk=bindparam("risk"))
_FINAL_RISK = select(_S.final_risk).where(_S.session_id == bindparam("sid"))
_GET = select(*_S.__table__.c).where(_S.session_id == bindparam("sid"))
_OUTCOME = select(_S.outcome).where(_S.session_id == bindparam("sid"))
_OWN_RESETS = select(_S.reset_claimed_at, _S.reset_done_at).where(
    _S.tenant_id == bindparam("tenant"), _S.target_user_id == bindparam("user"),
    _S.reset_claimed_at >= bindparam("since"),
    _S.reset_state.in_((ResetOutcome.DONE.value, ResetOutcome.UNKNOWN.value, RESETTING)))


class SessionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, audit: AuditLog,
                 units: Units, owner: str | None = None) -> None:
        self._sessions = sessions
        # This process, as its heartbeat names it (store/turns.py): a reset claim records it, so that once the process
        # is dead the claim is taken over without waiting for it to expire. None: claims judged by expiry alone.
        self._owner = owner
        self._units = units
        self._clock = clock
        self._audit = audit

    async def admit(
        self,
        *,
        tenant_id: str,
        target_user_id: str,
        agent_id: str | None,
        required_bits: int,
        expires_at: datetime,
        risk_summary: Mapping[str, Any] | None = None,
        policy_snapshot: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        sealed_plan: str | None = None,
        chat: tuple[str, str] | None = None,
    ) -> Admission:
        """Count the attempts against the person and open the session (in_progress, so it counts too while
        open) in one transaction, serialised per person: concurrent admissions, across processes, each see a
        different count. The caller decides with the count (the policy's limit) and ends the session at once if
        it refuses. A secret-looking key in the risk summary or the policy snapshot raises ValueError.

        `chat` is (channel id, conversation id) of the chat it starts in. The same agent's (or, self-service, the
        same person's) sessions of this person still open in that chat end as cancelled first, in the same
        transaction, audited `verification.decided/cancelled` (reason `restarted`): a new verification in a chat
        cancels the one before it there (not counted), and the chat's state may not know of one a killed turn
        admitted. Without it, a `verify` turn killed after its admission (before its chat's state was saved) left
        a session open that nobody could reach, counted against the person until it expired: each kill cost the
        caller an attempt, and three made questions alone no longer enough."""
        if required_bits < 0:
            raise ValueError("required_bits must not be negative")
        values = dict(
            session_id=normalise_guid(session_id, "session_id") if session_id else str(uuid.uuid4()),
            tenant_id=normalise_guid(tenant_id, "tenant_id"),
            target_user_id=normalise_guid(target_user_id, "target_user_id"),
            agent_id=normalise_guid(agent_id, "agent_id") if agent_id else None,
            outcome=Outcome.IN_PROGRESS.value,
            required_bits=required_bits,
            earned_bits=0,
            created_at=None,  # stamped in admit(), below
            expires_at=require_utc(expires_at, "expires_at"),
            ended_at=None,
            risk_summary=clean_json(risk_summary, "risk_summary"),
            policy_snapshot=clean_json(policy_snapshot, "policy_snapshot"),
            reset_state=None, reset_attempt=0, reset_claimed_at=None, reset_done_at=None, reset_owner=None,
            chat=conversation_key(*chat) if chat is not None else None,
        )

        def admit(conn: Connection) -> int:
            restarted = serialise(conn, values["tenant_id"], values["target_user_id"])
            # Stamped once the person's counter is held, not before waiting for it: sessions' creation times
            # then follow the order they were counted in, which is what an auditor (and bench.faults) reads.
            values["created_at"] = admitted_at = self._clock()
            if values["chat"] is not None:
                self._cancel_restarted(conn, values, admitted_at)
            before = counted(conn, values["tenant_id"], values["target_user_id"], admitted_at, restarted)
            conn.execute(_ADMIT, values)
            if sealed_plan is not None:
                conn.execute(_PLAN_INSERT, {"session_id": values["session_id"], "sealed": sealed_plan})
            return before

        before = await self._audit.write(admit)
        return Admission(_to_session(SimpleNamespace(**values)), before)

    def _cancel_restarted(self, conn: Connection, values: Mapping[str, Any], now: datetime) -> None:
        """End as cancelled the sessions of this person that the same agent (or the person, self-service) left
        open in the same chat, and audit each (see admit)."""
        ended = conn.execute(_RESTARTED[values["agent_id"] is not None], {
            "in_chat": values["chat"], "tenant": values["tenant_id"], "target": values["target_user_id"],
            "agent": values["agent_id"], "now": now}).scalars().all()
        for session_id in ended:
            conn.execute(_DROP_PLAN, {"sid": session_id})
            self._audit.append_in(conn, AuditEvent(
                action="verification.decided", outcome=Outcome.CANCELLED.value, actor="watchword",
                subject=values["target_user_id"], tenant_id=values["tenant_id"],
                details={"session_id": session_id, "reason": "restarted",
                         "by": f"teams:{values['agent_id'] or values['target_user_id']}"}))

    async def attach_plan(self, session_id: str, sealed_plan: str, *, required_bits: int | None = None,
                          audit: AuditEvent | None = None) -> None:
        """Store the open session's sealed question plan (chosen after its admission), its final requirement,
        and `audit`, together. Raises SessionClosedError if it already ended; nothing is written then."""
        session_id = normalise_guid(session_id, "session_id")
        still_open, which = (_ATTACH_AS_IS, {"sid": session_id}) if required_bits is None else \
            (_ATTACH, {"sid": session_id, "bits": required_bits})

        def attach(conn: Connection) -> None:
            if conn.execute(still_open, which).rowcount != 1:
                raise SessionClosedError(session_id)
            conn.execute(_PLAN_INSERT, {"session_id": session_id, "sealed": sealed_plan})
            if audit is not None:
                self._audit.append_in(conn, audit)

        await self._audit.write(attach)

    async def sealed_plan(self, session_id: str) -> str | None:
        """The open session's sealed question plan; None once it ended (or if it never had one)."""
        which = {"sid": normalise_guid(session_id, "session_id")}
        return await self._units.read(lambda conn: conn.execute(_SEALED_PLAN, which).scalar())  # an answer's path

    async def keep_final_risk(self, session_id: str, risk: Mapping[str, Any]) -> bool:
        """Keep the open session's sign-in risk, weighed once the logs arrived, for whichever instance decides it.
        False if the session already ended. A secret-looking key raises ValueError."""
        which = {"sid": normalise_guid(session_id, "session_id"), "risk": clean_json(risk, "final_risk")}
        return bool(await self._audit.write(lambda conn: conn.execute(_KEEP_FINAL_RISK, which).rowcount == 1))

    async def final_risk(self, session_id: str) -> Mapping[str, Any] | None:
        """The sign-in risk kept by keep_final_risk; None while the logs have not arrived."""
        which = {"sid": normalise_guid(session_id, "session_id")}
        return await self._units.read(lambda conn: conn.execute(_FINAL_RISK, which).scalar_one_or_none())

    async def get(self, session_id: str) -> SessionRecord | None:
        which = {"sid": normalise_guid(session_id, "session_id")}

        def read(conn: Connection) -> SessionRecord | None:  # on a turn's path: a unit of work
            row = conn.execute(_GET, which).one_or_none()
            return _to_session(row) if row is not None else None

        return await self._units.read(read)

    async def audit_and_still_open(self, session_id: str, audit: AuditEvent) -> bool:
        """Append `audit` and tell whether the session is still open (in progress), in one unit of work: what a
        send for the session did (the code shown in the person's Teams) is audited, and the sender learns in the same
        hop whether the session ended while it was on its way (then its card must be closed)."""
        which = {"sid": normalise_guid(session_id, "session_id")}

        def audit_and_read(conn: Connection) -> bool:
            self._audit.append_in(conn, audit)
            return conn.execute(_OUTCOME, which).scalar_one_or_none() == Outcome.IN_PROGRESS.value

        return await self._audit.write(audit_and_read)

    async def transcript(self, session_id: str) -> tuple[TranscriptRecord, ...]:
        stmt = (
            select(TranscriptEntryRow)
            .where(TranscriptEntryRow.session_id == normalise_guid(session_id, "session_id"))
            .order_by(TranscriptEntryRow.position)
        )
        async with self._sessions() as session:
            return tuple(_to_entry(row) for row in (await session.scalars(stmt)).all())

    async def add_entry(self, session_id: str, entry: TranscriptEntry, *, earned_bits: float,
                        audit: AuditEvent | None = None, index: int | None = None) -> TranscriptRecord:
        """Record one answered (or skipped) question, or a factor's event, as a TranscriptRecord (its kind, source,
        bits earned and result), and the session's new running score (whole bits, rounded down), together, and
        `audit` with them when given (one transaction: the answer and its audit row exist both or neither).

        In a turn (store/turns.py CURRENT_ACTIVITY) with the entry's `index` in the session's transcript, the entry
        is keyed by both: Teams' redelivery of a turn killed after it recorded the entry (and before its chat's
        state was saved) runs again from that state, and its entry, found recorded, is not recorded again (nor
        audited, nor checked against the session still being open: the first recording stands).

        Raises SessionClosedError if the session has ended (or does not exist); nothing is written then.
        """
        session_id = normalise_guid(session_id, "session_id")
        now = self._clock()
        kind, source, bits, result = entry.kind, entry.source, round(entry.bits_earned), entry.match_result
        activity = CURRENT_ACTIVITY.get()
        turn_key = f"{activity[:48]}:{index}" if activity is not None and index is not None else None
        values = {"sid": session_id, "earned": math.floor(earned_bits), "kind": kind, "source": source, "bits": bits,
                  "result": result.value, "at": require_utc(now, "clock()"), "turn_key": turn_key}

        def record(conn: Connection) -> int:
            # Updating the session row first locks it, so concurrent entries get distinct positions.
            if conn.execute(_ENTRY_SCORE, values).rowcount != 1:
                if turn_key is not None:  # recorded by this message's earlier delivery, killed before its state saved
                    recorded = conn.execute(_ENTRY_RECORDED, values).scalar_one_or_none()
                    if recorded is not None:
                        return int(recorded)
                raise SessionClosedError(session_id)
            position = conn.execute(_ENTRY_INSERT, values).scalar_one()
            if audit is not None:
                self._audit.append_in(conn, audit)
            return int(position)

        position = await self._audit.write(record)
        return TranscriptRecord(position=int(position), kind=kind, source=source, bits=bits, result=result, at=now)

    async def finish(
        self, session_id: str, outcome: Outcome, *, earned_bits: float | None = None,
        audit: AuditEvent | None = None, lockout: LockoutRule | None = None,
    ) -> SessionRecord:
        """End an open session with `outcome` (and its final score, kept in whole bits rounded down), dropping its
        sealed plan, and append `audit` in the same transaction when given. With a `lockout` rule and an outcome
        that counts (failed, abandoned), the person is locked out in that transaction too once the rule's count is
        reached (store/lockouts.py). Raises SessionClosedError if it already ended; nothing is written then."""
        outcome = Outcome(outcome)
        if outcome == Outcome.IN_PROGRESS:
            raise ValueError("finish() needs a final outcome, not in_progress")
        values: dict[str, Any] = {"outcome": outcome.value, "ended_at": self._clock()}
        if earned_bits is not None:
            values["earned_bits"] = math.floor(earned_bits)
        session_id = normalise_guid(session_id, "session_id")
        close = _FINISH.values(**values)

        def end(conn: Connection) -> SessionRecord:
            row = conn.execute(close, {"sid": session_id}).one_or_none()
            if row is None:
                raise SessionClosedError(session_id)
            conn.execute(_DROP_PLAN, {"sid": session_id})
            if audit is not None:
                self._audit.append_in(conn, audit)
            if lockout is not None and outcome.value in COUNTED_OUTCOMES:
                lock_if_reached(conn, row.tenant_id, row.target_user_id, now=values["ended_at"], rule=lockout,
                                audit=self._audit, session_id=session_id)
            return _to_session(row)

        return await self._audit.write(end)

    # --- the password reset: written ahead, guarded here and nowhere else (verification/reset.py) ------------
    async def claim_reset(self, session_id: str, *, by: str, actor: str, window: timedelta = RESET_WINDOW,
                          claim_expiry: timedelta = CLAIM_EXPIRY) -> ResetClaimResult:
        """Compare-and-set the session's reset record to a new attempt for `by` (the verifying agent's Entra id,
        or the person themselves for self-service), and audit it as `actor`, in one transaction: the intent
        `password_reset/started` when claimed (after `password_reset/unknown` for an earlier attempt whose claim
        expired unsettled), else `password_reset/refused_<why>`."""
        session_id, by = normalise_guid(session_id, "session_id"), normalise_guid(by, "by")
        now = self._clock()

        def claim(conn: Connection) -> ResetClaimResult:
            row = conn.execute(select(*VerificationSessionRow.__table__.c).where(
                VerificationSessionRow.session_id == session_id)).one_or_none()
            result = _refusal(conn, row, by, now, window, claim_expiry)
            if result is None:
                assert row is not None
                result = self._take(conn, row, now)
            if row is not None and result.claim is not ResetClaim.NOT_ALLOWED:
                result = replace(result, target_id=row.target_user_id)
            subject, tenant = (row.target_user_id, row.tenant_id) if row is not None else (None, None)
            outcome = "started" if result.claim is ResetClaim.CLAIMED else f"refused_{result.claim.value}"
            self._audit.append_in(conn, AuditEvent(action="password_reset", outcome=outcome, actor=actor,
                                                   subject=subject, tenant_id=tenant,
                                                   details={"session_id": session_id, "attempt": result.attempt}))
            return result

        return await self._audit.write(claim)

    def _take(self, conn: Connection, row: Row[Any], now: datetime) -> ResetClaimResult:
        """The compare-and-set itself: only if nobody moved the record since it was read (nor fenced it: a process
        taken for dead that proves its claim just before this takes it over keeps it)."""
        taken = conn.execute(update(VerificationSessionRow).where(
            VerificationSessionRow.session_id == row.session_id,
            VerificationSessionRow.reset_attempt == row.reset_attempt,
            _same(VerificationSessionRow.reset_state, row.reset_state),
            _same(VerificationSessionRow.reset_claimed_at, row.reset_claimed_at),
        ).values(reset_state=RESETTING, reset_attempt=row.reset_attempt + 1, reset_claimed_at=now,
                 reset_done_at=None, reset_owner=self._owner)).rowcount == 1
        if not taken:  # another instance claimed it between our read and our write
            return ResetClaimResult(ResetClaim.BUSY, row.reset_attempt + 1, now + CLAIM_EXPIRY)
        if row.reset_state == RESETTING:  # its claimant never settled it (killed): the outcome is unknown
            self._audit.append_in(conn, AuditEvent(
                action="password_reset", outcome=ResetOutcome.UNKNOWN.value, actor="watchword",
                subject=row.target_user_id, tenant_id=row.tenant_id,
                details={"session_id": row.session_id, "attempt": row.reset_attempt,
                         "reason": "claim_expired" if row.reset_claimed_at <= now - CLAIM_EXPIRY else "owner_dead"}))
        return ResetClaimResult(ResetClaim.CLAIMED, row.reset_attempt + 1)

    async def fence_reset(self, session_id: str, attempt: int) -> bool:
        """Prove attempt `attempt` is still this process's claim, just before Graph's PATCH (compare-and-set on the
        attempt and its owner), and move its claim time to now: a take-over of a dead owner's claim is counted from
        here (verification/reset.py DEAD_OWNER_TAKEOVER), and a take-over racing this one fails its own compare.
        False: the claim was taken over (this process was taken for dead) and the PATCH must not be sent."""
        stmt = update(VerificationSessionRow).where(
            VerificationSessionRow.session_id == normalise_guid(session_id, "session_id"),
            VerificationSessionRow.reset_attempt == attempt, VerificationSessionRow.reset_state == RESETTING,
            _same(VerificationSessionRow.reset_owner, self._owner),
        ).values(reset_claimed_at=self._clock())
        return bool(await self._audit.write(lambda conn: conn.execute(stmt).rowcount == 1))

    async def holds_reset(self, session_id: str, attempt: int) -> bool:
        """Whether attempt `attempt` is still the session's latest (nobody took its claim over): checked before the
        password card is shown, so a process taken for dead shows no password a later attempt replaced."""
        stmt = select(VerificationSessionRow.reset_attempt).where(
            VerificationSessionRow.session_id == normalise_guid(session_id, "session_id"))
        return await self._units.read(lambda conn: conn.execute(stmt).scalar_one_or_none()) == attempt

    async def settle_reset(self, session_id: str, attempt: int, outcome: ResetOutcome, *, audit: AuditEvent,
                           blocked: bool = False) -> bool:
        """Record how attempt `attempt` ended (`blocked`: failed for good, no retry), with `audit`, in one
        transaction. Also moves a done attempt to unknown (the password never reached the agent). `audit` is
        appended even when the record moved on (the claim expired, or its process was taken for dead, and another
        attempt took it): what happened is recorded either way, as `superseded` (its own outcome kept in
        `recorded_as`), since a later attempt's outcome is the one that stands. False in that case."""
        session_id = normalise_guid(session_id, "session_id")
        state = BLOCKED if blocked else ResetOutcome(outcome).value
        stmt = update(VerificationSessionRow).where(
            VerificationSessionRow.session_id == session_id, VerificationSessionRow.reset_attempt == attempt,
            VerificationSessionRow.reset_state.in_((RESETTING, ResetOutcome.DONE.value)),
        ).values(reset_state=state, reset_done_at=self._clock())

        def settle(conn: Connection) -> bool:
            moved = conn.execute(stmt).rowcount == 1
            self._audit.append_in(conn, audit if moved else replace(
                audit, outcome="superseded", details={**audit.details, "recorded_as": audit.outcome}))
            return moved

        try:
            return await self._audit.write(settle)
        except (SQLAlchemyError, OSError) as err:  # the password may already be changed: let the caller say so
            raise StoreUnavailable(f"recording the outcome of reset attempt {attempt}: {type(err).__name__}") from err

    async def settle_abandoned_resets(self, *, claim_expiry: timedelta = CLAIM_EXPIRY) -> list[AbandonedReset]:
        """Record as unknown every reset attempt whose claim expired with no outcome, audited
        `password_reset/unknown` (reason `claim_expired`) in the same transaction, and return them: a
        compare-and-set on the claim still being there, so each is returned once, to one sweep, across instances
        (an agent who reset again first took the claim over, and audited it, in claim_reset). A claim whose process
        is dead counts as expired once its fence is DEAD_OWNER_TAKEOVER old (reason `owner_dead`)."""
        now = self._clock()
        cutoff = now - claim_expiry
        stmt = (update(VerificationSessionRow)
                .where(VerificationSessionRow.reset_state == RESETTING,
                       or_(VerificationSessionRow.reset_claimed_at <= cutoff,
                           (VerificationSessionRow.reset_claimed_at <= now - DEAD_OWNER_TAKEOVER)
                           & VerificationSessionRow.reset_owner.in_(dead_processes(now))))
                .values(reset_state=ResetOutcome.UNKNOWN.value)
                .returning(VerificationSessionRow.session_id, VerificationSessionRow.tenant_id,
                           VerificationSessionRow.target_user_id, VerificationSessionRow.agent_id,
                           VerificationSessionRow.reset_attempt, VerificationSessionRow.reset_claimed_at))

        def settle(conn: Connection) -> list[AbandonedReset]:
            abandoned = [AbandonedReset(*row) for row in conn.execute(stmt).all()]
            for reset in abandoned:
                self._audit.append_in(conn, AuditEvent(
                    action="password_reset", outcome=ResetOutcome.UNKNOWN.value, actor="watchword",
                    subject=reset.target_user_id, tenant_id=reset.tenant_id,
                    details={"session_id": reset.session_id, "attempt": reset.attempt,
                             "reason": "claim_expired" if _utc(reset.claimed_at) <= cutoff else "owner_dead"}))
            return abandoned

        return await self._audit.write(settle)

    async def block_reset(self, session_id: str) -> bool:
        """No (further) reset for this session: the person said "not me". A reset already done stays done.
        False if there was nothing to block."""
        stmt = update(VerificationSessionRow).where(
            VerificationSessionRow.session_id == normalise_guid(session_id, "session_id"),
            or_(VerificationSessionRow.reset_state.is_(None),
                VerificationSessionRow.reset_state.in_((*RETRYABLE, RESETTING))),
        ).values(reset_state=BLOCKED)
        return bool(await self._audit.write(lambda conn: conn.execute(stmt).rowcount == 1))

    async def own_resets(self, tenant_id: str, user_id: str, *, since: datetime) -> list[tuple[datetime, datetime]]:
        """When Watchword itself reset (or may have reset) the person's password since `since`: (claimed, settled)
        per verification, for telling its own resets apart from someone else's password change."""
        which = {"tenant": normalise_guid(tenant_id, "tenant_id"), "user": normalise_guid(user_id, "user_id"),
                 "since": require_utc(since, "since")}
        rows = await self._units.read(lambda conn: conn.execute(_OWN_RESETS, which).all())  # on a start's path
        return [(claimed, done or claimed + CLAIM_EXPIRY) for claimed, done in rows]

    async def expire_overdue(self) -> list[str]:
        """Mark open sessions past their `expires_at` as timed_out, and drop their plans. Returns their ids (each
        to exactly one caller, however many instances sweep at once: the update is the claim)."""
        now = self._clock()
        ended = select(VerificationSessionRow.session_id).where(
            VerificationSessionRow.outcome != Outcome.IN_PROGRESS.value)
        stmt = (
            update(VerificationSessionRow)
            .where(
                VerificationSessionRow.outcome == Outcome.IN_PROGRESS.value,
                VerificationSessionRow.expires_at <= now,
            )
            .values(outcome=Outcome.TIMED_OUT.value, ended_at=now)
            .returning(VerificationSessionRow.session_id)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            expired = list((await session.execute(stmt)).scalars())
            await session.execute(delete(VerificationPlanRow).where(VerificationPlanRow.session_id.in_(ended))
                                  .execution_options(synchronize_session=False))
            return expired

    async def list_for_user(
        self, tenant_id: str, target_user_id: str, *, limit: int = 20
    ) -> list[SessionRecord]:
        """The user's most recent sessions, newest first."""
        stmt = (
            select(VerificationSessionRow)
            .where(
                VerificationSessionRow.tenant_id == normalise_guid(tenant_id, "tenant_id"),
                VerificationSessionRow.target_user_id == normalise_guid(target_user_id, "target_user_id"),
            )
            .order_by(VerificationSessionRow.created_at.desc(), VerificationSessionRow.session_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_to_session(row) for row in (await session.scalars(stmt)).all()]



def _same(column: Any, value: Any) -> Any:
    """`column` still holds `value` (NULL included): a compare-and-set's condition."""
    return column.is_(None) if value is None else column == value


def _utc(moment: datetime) -> datetime:
    """A time read back from the database, in UTC (SQLite's driver returns it naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
