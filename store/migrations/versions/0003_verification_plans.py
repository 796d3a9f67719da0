"""A verification's sealed question plan, stored once per session instead of in every turn's state.

`verification_plans` holds, per open session, the Fernet token of its question plan (the bot seals it; the
store never sees it in clear). Rows are deleted when the session ends. Written by hand in the style of 0001.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "verification_plans",
        sa.Column("session_id", GUID, nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["verification_sessions.session_id"],
            name=op.f("fk_verification_plans_session_id_verification_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_verification_plans")),
    )


def downgrade() -> None:
    op.drop_table("verification_plans")
