"""The sign-in risk weighed once the sign-in logs arrived, on the session's row, for any instance to decide on.

`verification_sessions.final_risk`: the RiskAssessment's `to_dict()` (level, signals, extra bits, block), written by
the instance that read the sign-ins in the background; NULL until then (or when the logs never came). An instance
that takes a later turn of the session, and never read the sign-ins, reads the risk here instead of deciding on the
policy's "sign-ins unavailable" rule. Written by hand in the style of 0001.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verification_sessions") as batch:
        batch.add_column(sa.Column("final_risk", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verification_sessions") as batch:
        batch.drop_column("final_risk")
