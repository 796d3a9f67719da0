"""The password reset's record, on the verified session's own row: the one place that guards a reset.

`reset_state` (NULL: never tried; resetting, done, failed, unknown, blocked), `reset_attempt` (the number of the
latest attempt: every claim is a compare-and-set on it), `reset_claimed_at` (when the latest attempt was
claimed; an unsettled claim expires) and `reset_done_at` (when the latest attempt was settled). Replaces the
"reset ledger" the bot kept in conversation storage. Written by hand in the style of 0001.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verification_sessions") as batch:
        batch.add_column(sa.Column("reset_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("reset_attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reset_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reset_done_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verification_sessions") as batch:
        batch.drop_column("reset_done_at")
        batch.drop_column("reset_claimed_at")
        batch.drop_column("reset_attempt")
        batch.drop_column("reset_state")
