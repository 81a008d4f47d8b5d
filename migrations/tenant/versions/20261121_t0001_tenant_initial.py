"""tenant: audit log, staff users, calendar overrides

Revision ID: t0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_type", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("terminal", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=True),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint(
            "actor_type IN ('staff', 'provider', 'api_client', 'system', 'device', 'resident', 'cli')",
            name=op.f("ck_audit_log_actor_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_occurred_at"), "audit_log", ["occurred_at"])
    op.create_index(op.f("ix_audit_log_subject_type_subject_id"), "audit_log", ["subject_type", "subject_id"])

    op.create_table(
        "staff_users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("login", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("login", name=op.f("uq_staff_users_login")),
    )

    op.create_table(
        "calendar_overrides",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("calendar", sa.Text(), server_default="service", nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("opens_min", sa.SmallInteger(), nullable=True),
        sa.Column("closes_min", sa.SmallInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('open', 'closed')", name=op.f("ck_calendar_overrides_kind")),
        sa.CheckConstraint("calendar IN ('service')", name=op.f("ck_calendar_overrides_calendar")),
        sa.CheckConstraint(
            "(opens_min IS NULL) = (closes_min IS NULL)"
            " AND (opens_min IS NULL OR (0 <= opens_min AND opens_min < closes_min AND closes_min <= 1440))",
            name=op.f("ck_calendar_overrides_hours"),
        ),
        sa.CheckConstraint(
            "kind = 'closed' OR opens_min IS NOT NULL", name=op.f("ck_calendar_overrides_open_has_hours")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_overrides")),
    )
    op.create_index(op.f("ix_calendar_overrides_on_date"), "calendar_overrides", ["on_date"])


def downgrade() -> None:
    op.drop_table("calendar_overrides")
    op.drop_table("staff_users")
    op.drop_table("audit_log")
