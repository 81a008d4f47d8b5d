"""tenant: resident search locality: a birth-date search reads its first page in list order
(birth date, kana, id); residents can be stored in kana order (maintenance after large loads)

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
    # The rows of a 3-character kana search (~51 people) sit on ~51 different heap pages when the
    # table is in the core system's (宛名番号) order; stored in kana order they share a few pages.
    # Rewriting the table (CLUSTER) needs its owner and locks it while it runs (about two minutes at
    # Osaka scale), so it is an operator's maintenance step after a first load or a season of
    # imports (``residents reorder``), never part of an import. Owned by the schema owner like
    # analyze_import_tables; statistics are refreshed right after (the correlation changes).
    op.execute(
        """
        CREATE FUNCTION residents_reorder() RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            CLUSTER residents USING ix_residents_kana_search_id;
            ANALYZE residents;
            RETURN (SELECT count(*) FROM residents);
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION residents_reorder() FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION residents_reorder()")
    op.create_index(op.f("ix_residents_birth_date"), "residents", ["birth_date"])
    op.drop_index(op.f("ix_residents_birth_date_kana_search_id"), table_name="residents")
