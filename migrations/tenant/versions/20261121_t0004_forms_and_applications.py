"""tenant: form versions, applications, certificate requests, export batches, deliveries

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0004"
down_revision: str | Sequence[str] | None = "t0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("form_id", sa.Text(), nullable=False),
        sa.Column("form_version_id", sa.BigInteger(), nullable=False),
        sa.Column("form_version", sa.Text(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("case_ref", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="submitted", nullable=False),
        sa.Column("pdf_key", sa.Text(), nullable=True),
        sa.Column("pdf_sha256", sa.Text(), nullable=True),
        sa.Column("signature_key", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('submitted', 'accepted', 'returned', 'withdrawn')",
            name=op.f("ck_applications_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    op.create_index(op.f("ix_applications_resident_id"), "applications", ["resident_id"], unique=False)
    op.create_index(
        op.f("ix_applications_status_accepted_at"), "applications", ["status", "accepted_at"], unique=False
    )
    op.create_table(
        "certificate_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=True),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("subject_resident_id", sa.BigInteger(), nullable=True),
        sa.Column("requester_name", sa.Text(), nullable=False),
        sa.Column("requester_relation", sa.Text(), nullable=False),
        sa.Column("proxy_document", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("copies", sa.SmallInteger(), nullable=False),
        sa.Column("unit_fee", sa.Integer(), nullable=False),
        sa.Column("total_fee", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "requester_relation <> '代理人' OR proxy_document",
            name=op.f("ck_certificate_requests_proxy_needs_mandate"),
        ),
        sa.CheckConstraint(
            "requester_relation IN ('本人', '同一世帯', '代理人')",
            name=op.f("ck_certificate_requests_relation"),
        ),
        sa.CheckConstraint("copies BETWEEN 1 AND 99", name=op.f("ck_certificate_requests_copies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_requests")),
    )
    op.create_index(
        op.f("ix_certificate_requests_application_id"),
        "certificate_requests",
        ["application_id"],
        unique=False,
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("export_batch_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("application_id", "target", name=op.f("uq_deliveries_application_id_target")),
    )
    op.create_index(op.f("ix_deliveries_export_batch_id"), "deliveries", ["export_batch_id"], unique=False)
    op.create_table(
        "export_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("file_key", sa.Text(), nullable=False),
        sa.Column("manifest_key", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_export_batches_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_batches")),
    )
    op.create_index(
        op.f("ix_export_batches_target_created_at"), "export_batches", ["target", "created_at"], unique=False
    )
    op.create_table(
        "form_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("form_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="approved", nullable=False),
        sa.Column("origin", sa.Text(), server_default="file", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("approved_by", sa.Text(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("origin IN ('file', 'admin')", name=op.f("ck_form_versions_origin")),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'withdrawn')", name=op.f("ck_form_versions_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_versions")),
        sa.UniqueConstraint("form_id", "content_hash", name=op.f("uq_form_versions_form_id_content_hash")),
    )
    op.create_index(
        op.f("ix_form_versions_form_id_effective_from"),
        "form_versions",
        ["form_id", "effective_from"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_form_versions_form_id_effective_from"), table_name="form_versions")
    op.drop_table("form_versions")
    op.drop_index(op.f("ix_export_batches_target_created_at"), table_name="export_batches")
    op.drop_table("export_batches")
    op.drop_index(op.f("ix_deliveries_export_batch_id"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_certificate_requests_application_id"), table_name="certificate_requests")
    op.drop_table("certificate_requests")
    op.drop_index(op.f("ix_applications_status_accepted_at"), table_name="applications")
    op.drop_index(op.f("ix_applications_resident_id"), table_name="applications")
    op.drop_table("applications")
