"""tenant: card reads remember the agent's Idempotency-Key (a retried post is one read)

Revision ID: t0007
Revises: t0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0007"
down_revision: str | Sequence[str] | None = "t0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("card_reads", sa.Column("idempotency_key", sa.Text(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_card_reads_reader_id_idempotency_key"), "card_reads", ["reader_id", "idempotency_key"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_card_reads_reader_id_idempotency_key"), "card_reads", type_="unique")
    op.drop_column("card_reads", "idempotency_key")
