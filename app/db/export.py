"""Reading a whole tenant schema out as CSV, for the contract-end hand-over (app/tenancy/export.py).

Raw SQL lives here (SPEC: only in app/db/). Table and column names come from the tenant metadata,
never from input, and are checked and quoted again before they reach a statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.names import quoted


def copy_table_csv(
    session: Session, table: str, columns: Sequence[str], order_by: Sequence[str], out: BinaryIO
) -> int:
    """Write ``table``'s ``columns`` as CSV with a header line (UTF-8, RFC 4180, NULL as an empty
    unquoted field, an empty string as ``""``) in ``order_by`` order; return the number of rows.

    Runs in ``session``'s transaction, so every table of one export reads the same snapshot.
    """
    driver = session.connection().connection.driver_connection
    assert driver is not None
    cols = ", ".join(quoted(c) for c in columns)
    order = ", ".join(quoted(c) for c in order_by) or "1"
    statement = (
        f"COPY (SELECT {cols} FROM {quoted(table)} ORDER BY {order}) "
        "TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    )
    with driver.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for block in copy:
                out.write(bytes(block))
        return int(cursor.rowcount)


def schema_revision(session: Session) -> str | None:
    """The tenant schema's migration revision (Alembic's version table in the schema)."""
    row = session.execute(text("SELECT version_num FROM alembic_version LIMIT 1")).first()
    return None if row is None else str(row[0])
