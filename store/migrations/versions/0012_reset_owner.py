"""A reset claim names the process that holds it, so a killed process's claim is taken over once its heartbeat
has lapsed (and the claim is older than any PATCH it could still have in flight), not after the 3-minute expiry.

`verification_sessions.reset_owner` is the claiming process's owner name (store/turns.py `process_owner`: the key of
its `turn_processes` heartbeat row); NULL for a claim from before 0012, which is judged by its expiry alone.
`verification_sessions.chat` is the chat the session was started in (a SHA-256 of channel and conversation id, as
`conversation_turns.key`): a new verification of the person by the same agent in the same chat cancels one left open
there by a killed turn (store/sessions.py admit). NULL: not known (from before 0012). Written by hand in the style
of 0001.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verification_sessions") as batch:
        batch.add_column(sa.Column("reset_owner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("chat", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verification_sessions") as batch:
        batch.drop_column("chat")
        batch.drop_column("reset_owner")
