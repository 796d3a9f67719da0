"""A dead process's turns taken over as soon as its heartbeat lapses, not when their 15 s leases do.

`turn_processes` holds, per process that runs turns (its owner name: host, pid, start), until when its last
heartbeat says it is alive; a running process writes it every 2 s, good for 6 s. `conversation_turns.process` names
the process of the turn that has the conversation (its `owner` is that turn), so a waiting turn can see the holder's
process is gone. A claim's `processed_activities.owner` is its process already. Written by hand in the style of 0001.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "turn_processes",
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_turn_processes")),
    )
    with op.batch_alter_table("conversation_turns") as batch:
        batch.add_column(sa.Column("process", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_turns") as batch:
        batch.drop_column("process")
    op.drop_table("turn_processes")
