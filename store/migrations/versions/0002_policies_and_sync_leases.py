"""Per-tenant verification policy (with the console's access settings) and the directory sync lease.

`tenant_policies` holds one row per tenant that has saved a policy in the admin console: the policy as
JSON (verification.Policy.to_dict()), the access settings (helpdesk group, self-service, the protected
users' group scope) and who saved it when. `directory_sync_leases` lets one process at a time run a
tenant's directory sync (the console's "Sync now" and `python -m admin sync` may run side by side).
Written by hand in the style of 0001 (plain DateTime(timezone=True), no application imports).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUID = sa.String(length=36)


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenant_policies",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("access", sa.JSON(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_tenant_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_policies")),
    )
    op.create_table(
        "directory_sync_leases",
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_directory_sync_leases_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_directory_sync_leases")),
    )


def downgrade() -> None:
    op.drop_table("directory_sync_leases")
    op.drop_table("tenant_policies")
