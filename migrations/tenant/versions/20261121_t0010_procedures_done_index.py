"""tenant: index case procedures by status and completion time (today's finished work, found
without reading a season of finished procedures)

Revision ID: t0010
Revises: t0009
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0010"
down_revision: str | Sequence[str] | None = "t0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_case_procedures_status_done_at"), "case_procedures", ["status", "done_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_case_procedures_status_done_at"), table_name="case_procedures")
