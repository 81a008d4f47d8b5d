"""tenant: residents' structured dates stored as the delivered text instead of JSONB documents; a
birth-date search reads its first page in list order (birth date, kana, id); residents can be stored
in kana order (maintenance after large loads)

Revision ID: t0011
Revises: t0010
Create Date: 2026-11-21
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.dates.japanese import DateError, parse

revision: str = "t0011"
down_revision: str | Sequence[str] | None = "t0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DATE_COLUMNS = ("birth", "became_resident", "address_set", "change")
TABLES = ("residents", "import_staging_residents")


def upgrade() -> None:
    # The four structured dates were JSONB documents of ~140 bytes each (text, era, year, month,
    # day, qualifier, date): over half of a residents row, and most of what PostgreSQL parsed when
    # an import COPYed a row. The delivered text alone determines the structure (it parsed when it
    # was imported, and parses the same again: app.residents.models.StructuredDate), so only that
    # is kept; birth_date and change_date stay beside it. One rewrite of each table.
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ALTER COLUMN {c} TYPE text USING {c} ->> 'text'" for c in DATE_COLUMNS)
        )
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
    # Rewriting the table (CLUSTER) needs its owner and locks it while it runs (one to two minutes at
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
    # Back to JSONB documents: each distinct text is parsed once here (dates repeat a lot), and the
    # columns are rebuilt from that mapping.
    bind = op.get_bind()
    texts: set[str] = set()
    for column in DATE_COLUMNS:
        texts.update(
            t
            for (t,) in bind.execute(
                sa.text(f"SELECT DISTINCT {column} FROM residents WHERE {column} IS NOT NULL")  # noqa: S608 (constant names)
            )
        )
    op.execute("CREATE TEMP TABLE t0011_dates (text text PRIMARY KEY, doc jsonb NOT NULL) ON COMMIT DROP")
    rows = []
    for text in texts:
        try:
            doc = parse(text).to_json()
        except DateError:
            doc = {
                "text": text,
                "era": None,
                "year": None,
                "month": None,
                "day": None,
                "qualifier": None,
                "date": None,
            }
        rows.append({"t": text, "d": json.dumps(doc, ensure_ascii=False)})
    if rows:
        bind.execute(sa.text("INSERT INTO t0011_dates VALUES (:t, CAST(:d AS jsonb))"), rows)
    op.execute("TRUNCATE import_staging_residents")
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ALTER COLUMN {c} TYPE jsonb USING to_jsonb({c})" for c in DATE_COLUMNS)
        )
    for column in DATE_COLUMNS:
        op.execute(
            f"UPDATE residents r SET {column} = d.doc FROM t0011_dates d"  # noqa: S608 (constant names)
            f" WHERE r.{column} #>> '{{}}' = d.text"
        )
    op.create_index(op.f("ix_residents_birth_date"), "residents", ["birth_date"])
    op.drop_index(op.f("ix_residents_birth_date_kana_search_id"), table_name="residents")
