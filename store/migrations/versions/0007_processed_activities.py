"""Turns processed once per activity: the activities claimed by turns, so a redelivery is not processed again.

`processed_activities` holds, per incoming activity, a SHA-256 of (channel, conversation, activity id), when a
turn claimed it, and when its state was saved (`done_at`, set in the same transaction). Written by hand in the
style of 0001.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_activities",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_activities")),
    )
    op.create_index(op.f("ix_processed_activities_claimed_at"), "processed_activities", ["claimed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_activities_claimed_at"), table_name="processed_activities")
    op.drop_table("processed_activities")
