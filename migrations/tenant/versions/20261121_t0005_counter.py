"""tenant: counter — tickets, cases, case procedures, card readers and reads, pre-applications

Revision ID: t0005
Revises: t0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0005"
down_revision: str | Sequence[str] | None = "t0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_readers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("office_id", sa.Text(), nullable=False),
        sa.Column("counter_id", sa.Text(), nullable=True),
        sa.Column("token_prefix", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_readers")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_card_readers_token_hash")),
    )
    op.create_table(
        "card_reads",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("birth", sa.Date(), nullable=True),
        sa.Column("sex", sa.Text(), nullable=False),
        sa.Column("outside_jis0208", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("claimed_case_id", sa.BigInteger(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_reads")),
    )
    op.create_index(
        op.f("ix_card_reads_reader_id_received_at"), "card_reads", ["reader_id", "received_at"], unique=False
    )
    op.create_table(
        "case_procedures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("procedure_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("counter", sa.Text(), nullable=True),
        sa.Column("member_key", sa.Text(), server_default="", nullable=False),
        sa.Column("member_name", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("confirm", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_by", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'handed_over', 'in_progress', 'done', 'cancelled')",
            name=op.f("ck_case_procedures_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_procedures")),
        sa.UniqueConstraint(
            "case_id",
            "procedure_id",
            "member_key",
            name=op.f("uq_case_procedures_case_id_procedure_id_member_key"),
        ),
    )
    op.create_index(op.f("ix_case_procedures_case_id"), "case_procedures", ["case_id"], unique=False)
    op.create_index(
        op.f("ix_case_procedures_department_status_handed_over_at"),
        "case_procedures",
        ["department", "status", "handed_over_at"],
        unique=False,
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("office_id", sa.Text(), nullable=False),
        sa.Column("counter_id", sa.Text(), nullable=True),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("household_no", sa.Text(), nullable=True),
        sa.Column("visitor_name", sa.Text(), nullable=True),
        sa.Column("household", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("identified_by", sa.Text(), nullable=True),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("catalogue_version_id", sa.BigInteger(), nullable=True),
        sa.Column("pre_application_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "identified_by IS NULL OR identified_by IN ('card', 'qr', 'search', 'manual')",
            name=op.f("ck_cases_identified_by"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'handed_over', 'paused', 'closed')", name=op.f("ck_cases_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_index(op.f("ix_cases_resident_id"), "cases", ["resident_id"], unique=False)
    op.create_index(op.f("ix_cases_status_updated_at"), "cases", ["status", "updated_at"], unique=False)
    op.create_index(op.f("ix_cases_ticket_id"), "cases", ["ticket_id"], unique=False)
    op.create_table(
        "pre_applications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("applicant", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("household", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column(
            "certificates", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pre_applications")),
        sa.UniqueConstraint("ref", name=op.f("uq_pre_applications_ref")),
    )
    op.create_index(op.f("ix_pre_applications_expires_at"), "pre_applications", ["expires_at"], unique=False)
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("office_id", sa.Text(), nullable=False),
        sa.Column("counter_id", sa.Text(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="waiting", nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("called_by", sa.Text(), nullable=True),
        sa.Column("desk", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'called', 'serving', 'done', 'no_show', 'cancelled')",
            name=op.f("ck_tickets_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint(
            "office_id",
            "counter_id",
            "issued_on",
            "number",
            name=op.f("uq_tickets_office_id_counter_id_issued_on_number"),
        ),
    )
    op.create_index(
        op.f("ix_tickets_office_id_counter_id_issued_on_status"),
        "tickets",
        ["office_id", "counter_id", "issued_on", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_office_id_counter_id_issued_on_status"), table_name="tickets")
    op.drop_table("tickets")
    op.drop_index(op.f("ix_pre_applications_expires_at"), table_name="pre_applications")
    op.drop_table("pre_applications")
    op.drop_index(op.f("ix_cases_ticket_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_status_updated_at"), table_name="cases")
    op.drop_index(op.f("ix_cases_resident_id"), table_name="cases")
    op.drop_table("cases")
    op.drop_index(op.f("ix_case_procedures_department_status_handed_over_at"), table_name="case_procedures")
    op.drop_index(op.f("ix_case_procedures_case_id"), table_name="case_procedures")
    op.drop_table("case_procedures")
    op.drop_index(op.f("ix_card_reads_reader_id_received_at"), table_name="card_reads")
    op.drop_table("card_reads")
    op.drop_table("card_readers")
