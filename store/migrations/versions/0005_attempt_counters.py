"""Attempts counted from the sessions themselves, serialised per person.

`attempt_counters` has one row per (tenant, user) that anyone verified: every admission of a new verification
and every decision updates it first, which serialises them per person across processes (a row lock on
PostgreSQL, SQLite's single writer), so "count, then start" cannot be raced. `counted_since` restarts the count
when a lockout is imposed or an admin lifts one. The counted attempts are the person's verification sessions
themselves (failed, abandoned, or still open), so `verification_attempts`, a second copy of that rule, goes.
Written by hand in the style of 0001.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "attempt_counters",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("counted_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_attempt_counters")),
    )
    op.drop_index(op.f("ix_verification_attempts_tenant_id_user_id_at"), table_name="verification_attempts")
    op.drop_table("verification_attempts")


def downgrade() -> None:
    op.create_table(
        "verification_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("session_id", GUID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_attempts")),
    )
    op.create_index(op.f("ix_verification_attempts_tenant_id_user_id_at"), "verification_attempts",
                    ["tenant_id", "user_id", "at"])
    op.drop_table("attempt_counters")
