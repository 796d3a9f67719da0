"""The schema, as SQLAlchemy 2 typed declarative models.

These classes stay inside store/: repositories turn rows into frozen dataclasses before returning.
The migrations in store/migrations/versions are the source of truth for the database; a test checks
that these models and the migrations agree (alembic's autogenerate finds no difference).

Portability rules followed here (SQLite by default, PostgreSQL to scale out):
- datetimes go through `UtcDateTime`: aware UTC in Python, `timestamptz` on PostgreSQL, naive-UTC text
  on SQLite (which has no time zones), so comparisons and ordering work the same on both;
- JSON uses the generic `JSON` type (text-preserving `json` on PostgreSQL), which keeps audit details
  byte-for-byte as hashed;
- ids from Entra are GUID strings, lower-cased by the repositories.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

GUID_LEN = 36
# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Names for constraints and indexes, so migrations can refer to them (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on the Python side whatever the database does with time zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite stores text without an offset: store UTC wall time so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class TenantRow(Base):
    """A customer tenant that consented to Watchword. Disconnecting keeps the row (status 'disconnected')."""

    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32), index=True)
    consented_at: Mapped[datetime]
    granted_permissions: Mapped[list[Any]]
    sp_object_id: Mapped[str | None] = mapped_column(String(GUID_LEN))
    sp_directory_roles: Mapped[list[Any]]
    last_checked_at: Mapped[datetime | None]
    disconnected_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProtectedUserRow(Base):
    """A user synced from Entra whom the helpdesk may verify. Rows go when the tenant disconnects."""

    __tablename__ = "protected_users"

    tenant_id: Mapped[str] = mapped_column(
        String(GUID_LEN), ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    upn: Mapped[str] = mapped_column(String(320))
    # Lower-cased UPN for lookups (Entra UPNs are case-insensitive). Not unique: a delta sync can see a
    # rename before the rename that freed the name, and must not fail on it.
    upn_lower: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(256))
    department: Mapped[str | None] = mapped_column(String(256))
    job_title: Mapped[str | None] = mapped_column(String(256))
    resettable: Mapped[bool] = mapped_column(Boolean)
    not_resettable_reasons: Mapped[list[Any]]
    included: Mapped[bool] = mapped_column(Boolean)
    # Set by an admin, never by sync: an upsert from sync leaves it alone.
    excluded: Mapped[bool] = mapped_column(Boolean)
    # The sync cycle that last saw this user; a completed full cycle removes rows it did not see.
    seen_in_cycle: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]

    __table_args__ = (Index(None, "tenant_id", "upn_lower"),)


class DirectorySyncRow(Base):
    """Per-tenant progress of the Entra user sync, written in the same transaction as each page."""

    __tablename__ = "directory_sync_state"

    tenant_id: Mapped[str] = mapped_column(
        String(GUID_LEN), ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    cycle: Mapped[int] = mapped_column(Integer)
    full: Mapped[bool] = mapped_column(Boolean)
    in_progress: Mapped[bool] = mapped_column(Boolean)
    delta_link: Mapped[str | None] = mapped_column(Text)
    next_link: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int] = mapped_column(Integer)
    users_upserted: Mapped[int] = mapped_column(Integer)
    users_removed: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class TenantPolicyRow(Base):
    """A tenant's verification policy and access settings, as an admin last saved them in the console."""

    __tablename__ = "tenant_policies"

    tenant_id: Mapped[str] = mapped_column(
        String(GUID_LEN), ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    # verification.Policy.to_dict(): every knob, so a stored policy reads the same after defaults change.
    policy: Mapped[dict[str, Any]]
    # store.policies.TenantAccess: helpdesk group, self-service, the protected users' group scope.
    access: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(256))


class DirectorySyncLeaseRow(Base):
    """Who is running a tenant's directory sync (one at a time, across processes), until when."""

    __tablename__ = "directory_sync_leases"

    tenant_id: Mapped[str] = mapped_column(
        String(GUID_LEN), ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class VerificationSessionRow(Base):
    """One attempt to verify a caller. Holds outcomes and scores, never answers."""

    __tablename__ = "verification_sessions"

    session_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(GUID_LEN))
    target_user_id: Mapped[str] = mapped_column(String(GUID_LEN))
    # The helpdesk agent's Entra object id; NULL when the caller verifies themselves (self-service).
    agent_id: Mapped[str | None] = mapped_column(String(GUID_LEN))
    outcome: Mapped[str] = mapped_column(String(32))
    required_bits: Mapped[int] = mapped_column(Integer)
    earned_bits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    risk_summary: Mapped[dict[str, Any]]
    # The sign-in risk weighed once the logs arrived (after the start: dialogs/session_keeper.py); NULL until then.
    final_risk: Mapped[dict[str, Any] | None]
    policy_snapshot: Mapped[dict[str, Any]]
    # The password reset's record (verification/reset.py): the one place that guards a reset of this session.
    # NULL never tried; resetting, done, failed, unknown or blocked. Every claim is a compare-and-set on
    # `reset_attempt`; an unsettled claim (a killed process) expires after CLAIM_EXPIRY from `reset_claimed_at`, or
    # once its process (`reset_owner`, a turn_processes heartbeat) is dead and DEAD_OWNER_TAKEOVER has passed.
    # `reset_claimed_at` moves to the fence (just before Graph's PATCH), the time a take-over is counted from.
    reset_state: Mapped[str | None] = mapped_column(String(16))
    reset_attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    reset_claimed_at: Mapped[datetime | None]
    reset_done_at: Mapped[datetime | None]
    reset_owner: Mapped[str | None] = mapped_column(String(128))
    # The chat it was started in (store/turns.py conversation_key); NULL if not known.
    chat: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "tenant_id", "target_user_id", "created_at"),
        # The expiry sweep looks for open sessions past their deadline.
        Index(None, "outcome", "expires_at"),
    )


class VerificationPlanRow(Base):
    """A verification's question plan, accepted answers included, as a Fernet token the bot sealed (the store
    never sees it in clear). Written once when the session starts, deleted the moment it ends, so a
    restarted or second instance can continue the session; each turn moves only the small progress."""

    __tablename__ = "verification_plans"

    session_id: Mapped[str] = mapped_column(
        String(GUID_LEN), ForeignKey("verification_sessions.session_id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[str] = mapped_column(Text)


class TranscriptEntryRow(Base):
    """What was asked and how it went. Deliberately has no column that could hold an answer."""

    __tablename__ = "transcript_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(GUID_LEN), ForeignKey("verification_sessions.session_id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    bits: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    # The recording turn's activity key (cut) and the entry's index in the session's transcript: a redelivered turn
    # records nothing twice (store/sessions.py add_entry). A hash and a number, never an answer.
    turn_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("session_id", "position"),
                      Index("ix_transcript_entries_turn_key", "session_id", "turn_key"))


class AttemptCounterRow(Base):
    """Per person: the row every admission and every decision updates first, so counting the person's attempts
    and acting on the count cannot be raced (a row lock on PostgreSQL; SQLite has one writer anyway)."""

    __tablename__ = "attempt_counters"

    tenant_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    # Attempts before this do not count: set when a lockout is imposed (it consumed them) or lifted by an admin.
    counted_since: Mapped[datetime | None]


class UserLockoutRow(Base):
    """A user no one may verify until `locked_until`."""

    __tablename__ = "user_lockouts"

    tenant_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    locked_until: Mapped[datetime]
    locked_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(64))


class ConversationStateRow(Base):
    """The Agents SDK's key/value storage: one JSON document per key, with an etag for concurrency."""

    __tablename__ = "conversation_state"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    document: Mapped[dict[str, Any]]
    etag: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class ConversationReferenceRow(Base):
    """Where to reach a user proactively (the SDK's ConversationReference as JSON)."""

    __tablename__ = "conversation_references"

    tenant_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(GUID_LEN), primary_key=True)
    reference: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA name from their latest localTimezone


class AuditRow(Base):
    """One audit event, chained to the previous one by `prev_hash`. Never updated or deleted.

    `seq` is assigned from the chain head (not an autoincrement) so it has no gaps: a missing number
    means a deleted row.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime]
    tenant_id: Mapped[str | None] = mapped_column(String(GUID_LEN))
    actor: Mapped[str] = mapped_column(String(256))
    subject: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "tenant_id", "seq"),
        Index(None, "subject", "seq"),
        Index(None, "actor", "seq"),
        Index(None, "time"),
    )


class AuditChainHeadRow(Base):
    """The single row appenders lock to take the next seq; it also records the last hash."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class ProcessedActivityRow(Base):
    """An incoming activity claimed by a turn (store/turns.py): a redelivery finds it and is not processed again.
    `key` is a SHA-256 of channel, conversation and activity id; `done_at` is set with the turn's state."""

    __tablename__ = "processed_activities"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(index=True)
    done_at: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(128))  # the claiming process (host, pid, start)
    lease_until: Mapped[datetime | None]  # renewed while its turn runs; once past, a redelivery takes it over


class ConversationTurnRow(Base):
    """The turn running now in a conversation (store/turns.py): the next one waits until it is given up (with the
    state it saved) or its lease runs out (its process died). `key` is a SHA-256 of channel and conversation id."""

    __tablename__ = "conversation_turns"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))  # the turn that has it (its process and a number)
    lease_until: Mapped[datetime]
    process: Mapped[str | None] = mapped_column(String(128))  # that turn's process (NULL: from before 0011)


class TurnProcessRow(Base):
    """A process that runs turns (store/turns.py), and until when its last heartbeat says it is alive: once that
    has passed (it was killed), its claims and conversations are taken over without waiting for their leases."""

    __tablename__ = "turn_processes"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    alive_until: Mapped[datetime]


class ConsoleSignoutRow(Base):
    """A signed-out admin console session: its id's SHA-256 (never the id), kept until its cookie has expired."""

    __tablename__ = "console_signouts"

    sid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # After this the cookie is refused for its age anyway, and the row may go.
    until: Mapped[datetime] = mapped_column(index=True)
