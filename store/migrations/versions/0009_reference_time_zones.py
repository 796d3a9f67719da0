"""The person's time zone beside their conversation reference, for the times in notices Watchword sends them.

`conversation_references.time_zone`: the IANA name Teams sent on the person's own latest activity that named one
(`localTimezone`), NULL when none ever did (notices then give UTC, and say so). Written by hand in the style of 0001.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_references") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_references") as batch:
        batch.drop_column("time_zone")
