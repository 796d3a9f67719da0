"""Initial schema: tenants, protected users and their sync, verification sessions and transcripts,
attempts and lockouts, the SDK's conversation state, conversation references, and the audit chain.

Generated with autogenerate from store/tables.py, then edited by hand: plain DateTime(timezone=True)
instead of the project's TypeDecorator (a migration must not import application code that can change),
the audit chain's genesis row, and triggers that make audit_log append-only.
tests/store/test_migrations.py checks that this revision and store/tables.py still agree.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUID = sa.String(length=36)
# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    _tenants_and_directory()
    _sessions_and_lockouts()
    _bot_state()
    _audit()


def _tenants_and_directory() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("consented_at", _time(), nullable=False),
        sa.Column("granted_permissions", sa.JSON(), nullable=False),
        sa.Column("sp_object_id", GUID, nullable=True),
        sa.Column("sp_directory_roles", sa.JSON(), nullable=False),
        sa.Column("last_checked_at", _time(), nullable=True),
        sa.Column("disconnected_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenants")),
    )
    op.create_index(op.f("ix_tenants_status"), "tenants", ["status"])

    op.create_table(
        "protected_users",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("upn", sa.String(length=320), nullable=False),
        sa.Column("upn_lower", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("department", sa.String(length=256), nullable=True),
        sa.Column("job_title", sa.String(length=256), nullable=True),
        sa.Column("resettable", sa.Boolean(), nullable=False),
        sa.Column("not_resettable_reasons", sa.JSON(), nullable=False),
        sa.Column("included", sa.Boolean(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("seen_in_cycle", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_protected_users_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_protected_users")),
    )
    op.create_index(
        op.f("ix_protected_users_tenant_id_upn_lower"), "protected_users", ["tenant_id", "upn_lower"]
    )

    op.create_table(
        "directory_sync_state",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("in_progress", sa.Boolean(), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("next_link", sa.Text(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("users_upserted", sa.Integer(), nullable=False),
        sa.Column("users_removed", sa.Integer(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("completed_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_directory_sync_state_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_directory_sync_state")),
    )


def _sessions_and_lockouts() -> None:
    op.create_table(
        "verification_sessions",
        sa.Column("session_id", GUID, nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("target_user_id", GUID, nullable=False),
        sa.Column("agent_id", GUID, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("required_bits", sa.Integer(), nullable=False),
        sa.Column("earned_bits", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.Column("ended_at", _time(), nullable=True),
        sa.Column("risk_summary", sa.JSON(), nullable=False),
        sa.Column("policy_snapshot", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_verification_sessions")),
    )
    op.create_index(
        op.f("ix_verification_sessions_tenant_id_target_user_id_created_at"),
        "verification_sessions",
        ["tenant_id", "target_user_id", "created_at"],
    )
    op.create_index(
        op.f("ix_verification_sessions_outcome_expires_at"),
        "verification_sessions",
        ["outcome", "expires_at"],
    )

    op.create_table(
        "transcript_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", GUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["verification_sessions.session_id"],
            name=op.f("fk_transcript_entries_session_id_verification_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_entries")),
        sa.UniqueConstraint(
            "session_id", "position", name=op.f("uq_transcript_entries_session_id_position")
        ),
    )

    op.create_table(
        "verification_attempts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("session_id", GUID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_attempts")),
    )
    op.create_index(
        op.f("ix_verification_attempts_tenant_id_user_id_at"),
        "verification_attempts",
        ["tenant_id", "user_id", "at"],
    )

    op.create_table(
        "user_lockouts",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("locked_until", _time(), nullable=False),
        sa.Column("locked_at", _time(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_user_lockouts")),
    )


def _bot_state() -> None:
    op.create_table(
        "conversation_state",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_conversation_state")),
    )
    op.create_table(
        "conversation_references",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_conversation_references")),
    )


def _audit() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", _time(), nullable=False),
        sa.Column("tenant_id", GUID, nullable=True),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_tenant_id_seq"), "audit_log", ["tenant_id", "seq"])
    op.create_index(op.f("ix_audit_log_subject_seq"), "audit_log", ["subject", "seq"])
    op.create_index(op.f("ix_audit_log_actor_seq"), "audit_log", ["actor", "seq"])
    op.create_index(op.f("ix_audit_log_time"), "audit_log", ["time"])

    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    # The one head row appenders lock; seq 1 links to the genesis hash.
    op.execute(
        sa.text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, :genesis)").bindparams(
            genesis=GENESIS_HASH
        )
    )
    _make_audit_append_only()


def _make_audit_append_only() -> None:
    """Refuse UPDATE and DELETE on audit_log in the database itself (the hash chain detects the rest)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_log CASCADE")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.drop_table("audit_log")
    for table in (
        "audit_chain_head",
        "conversation_references",
        "conversation_state",
        "user_lockouts",
        "verification_attempts",
        "transcript_entries",
        "verification_sessions",
        "directory_sync_state",
        "protected_users",
        "tenants",
    ):
        op.drop_table(table)
