"""tenant: a birth-date search reads its first page in list order (birth date, kana, id)

Revision ID: t0011
Revises: t0010
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0011"
down_revision: str | Sequence[str] | None = "t0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A search by birth date lists people in kana order. With an index on birth_date alone,
    # PostgreSQL fetched every person born that day (~130 at Osaka scale, one heap page each) to
    # sort them; in (birth_date, kana_search, id) order it stops after the page it shows. The
    # leading birth_date still serves range conditions on it. kana_search is a "C" collation column,
    # so the index column inherits it and matches the search's ORDER BY.
    op.create_index(
        op.f("ix_residents_birth_date_kana_search_id"), "residents", ["birth_date", "kana_search", "id"]
    )
    op.drop_index(op.f("ix_residents_birth_date"), table_name="residents")


def downgrade() -> None:
    op.create_index(op.f("ix_residents_birth_date"), "residents", ["birth_date"])
    op.drop_index(op.f("ix_residents_birth_date_kana_search_id"), table_name="residents")
