"""A transcript entry names the message that recorded it, so a redelivery does not record it twice.

`transcript_entries.turn_key` is the recording turn's activity key (store/turns.py `activity_key`, cut to 48
characters) and the entry's index in the session's transcript: a turn killed after it recorded an answer and
before its chat's state was saved is redelivered by Teams and runs again from that state; its entries then carry
the same keys, and the store keeps the first. A hash and a number: nothing of the answer. NULL: recorded outside a
turn, or before 0013. Written by hand in the style of 0001.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transcript_entries") as batch:
        batch.add_column(sa.Column("turn_key", sa.String(length=64), nullable=True))
    op.create_index("ix_transcript_entries_turn_key", "transcript_entries", ["session_id", "turn_key"])


def downgrade() -> None:
    op.drop_index("ix_transcript_entries_turn_key", table_name="transcript_entries")
    with op.batch_alter_table("transcript_entries") as batch:
        batch.drop_column("turn_key")
