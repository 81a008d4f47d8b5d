"""tenant: catalogue versions

Revision ID: t0003
Revises: t0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0003"
down_revision: str | Sequence[str] | None = "t0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalogue_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_versions")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_catalogue_versions_content_hash")),
    )
    op.create_index(
        op.f("ix_catalogue_versions_effective_from"), "catalogue_versions", ["effective_from"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_catalogue_versions_effective_from"), table_name="catalogue_versions")
    op.drop_table("catalogue_versions")
