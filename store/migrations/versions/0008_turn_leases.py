"""Turns of one conversation one at a time, and claims that a dead process gives up quickly.

`processed_activities` gains `owner` (which process claimed the activity: host, pid, start) and `lease_until`
(renewed while its turn runs): a claim that was never finished and whose lease ran out (its process died) is
taken over by Teams' redelivery. `conversation_turns` holds, per conversation (a SHA-256 of channel and
conversation id), the turn running now: its owner and lease. A turn takes it before it loads the conversation's
state and gives it up in the transaction that saves that state. Written by hand in the style of 0001.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_activities") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "conversation_turns",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_conversation_turns")),
    )


def downgrade() -> None:
    op.drop_table("conversation_turns")
    with op.batch_alter_table("processed_activities") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")
