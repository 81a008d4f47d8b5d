"""control: tenant_decommissions, the record of cities whose data was handed over and deleted

Revision ID: c0005
Revises: c0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c0005"
down_revision: str | Sequence[str] | None = "c0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_decommissions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("schema_name", sa.Text(), nullable=False),
        sa.Column(
            "decommissioned_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("decommissioned_by", sa.Text(), nullable=False),
        sa.Column("export_manifest_sha256", sa.Text(), nullable=False),
        sa.Column("certificate", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_decommissions")),
        schema="control",
    )


def downgrade() -> None:
    op.drop_table("tenant_decommissions", schema="control")
