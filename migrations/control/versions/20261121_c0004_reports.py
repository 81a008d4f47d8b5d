"""control: support-desk inquiries, releases and monthly reports (issue 9, monthly reports)

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c0004"
down_revision: str | Sequence[str] | None = "c0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_inquiries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('phone', 'email', 'web', 'visit', 'other')",
            name=op.f("ck_support_inquiries_channel"),
        ),
        sa.CheckConstraint(
            "category IN ('operation', 'failure', 'account', 'linkage', 'forms', 'data', 'request', 'other')",
            name=op.f("ck_support_inquiries_category"),
        ),
        sa.CheckConstraint(
            "closed_at IS NULL OR closed_at >= opened_at",
            name=op.f("ck_support_inquiries_closed_after_opened"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_inquiries")),
        schema="control",
    )
    op.create_index(
        op.f("ix_support_inquiries_opened_at"), "support_inquiries", ["opened_at"], schema="control"
    )
    op.create_index(
        op.f("ix_support_inquiries_tenant_id_opened_at"),
        "support_inquiries",
        ["tenant_id", "opened_at"],
        schema="control",
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approval_ref", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('application', 'infrastructure')", name=op.f("ck_releases_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
        sa.UniqueConstraint(
            "kind", "version", "released_at", name=op.f("uq_releases_kind_version_released_at")
        ),
        schema="control",
    )
    op.create_index(op.f("ix_releases_released_at"), "releases", ["released_at"], schema="control")
    op.create_table(
        "monthly_reports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("month", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("files", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.Text(), nullable=False),
        sa.Column("generations", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name=op.f("ck_monthly_reports_month_format")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monthly_reports")),
        sa.UniqueConstraint("month", "scope", name=op.f("uq_monthly_reports_month_scope")),
        schema="control",
    )
    op.create_table(
        "report_captures",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("month", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_captures")),
        sa.UniqueConstraint("month", "source", name=op.f("uq_report_captures_month_source")),
        schema="control",
    )


def downgrade() -> None:
    op.drop_table("report_captures", schema="control")
    op.drop_table("monthly_reports", schema="control")
    op.drop_table("releases", schema="control")
    op.drop_table("support_inquiries", schema="control")
