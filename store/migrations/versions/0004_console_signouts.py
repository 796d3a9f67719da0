"""Signed-out admin console sessions, so a kept copy of the cookie is refused by every instance.

`console_signouts` holds, per signed-out console session, a SHA-256 of its id (never the id) and the time
after which the row may be deleted (when the cookie would have expired anyway). Written by hand in the
style of 0001 (plain DateTime(timezone=True), no application imports).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_signouts",
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid_hash", name=op.f("pk_console_signouts")),
    )
    op.create_index(op.f("ix_console_signouts_until"), "console_signouts", ["until"])


def downgrade() -> None:
    op.drop_index(op.f("ix_console_signouts_until"), table_name="console_signouts")
    op.drop_table("console_signouts")
