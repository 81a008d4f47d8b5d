"""SQL of the front-linkage import: staging by COPY, then set-based apply in one transaction.

All statements run in a Session bound to one tenant: unqualified names resolve to its schema and the
tenant role's rights apply. Applying is set-based — a full Osaka extract is ~3 million rows — and
skips rows whose hash is unchanged, so a nightly full extract rewrites only what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import CursorResult, TextClause, text
from sqlalchemy.orm import Session

# Resident columns copied from staging to residents (all but the bookkeeping ones).
_RESIDENT_VALUES = (
    "household_no", "household_order", "name", "name_search", "kana", "kana_search", "kana_confirmed",
    "former_surname", "birth", "birth_date", "sex", "relation", "postal_code", "address", "address_extra",
    "address_search", "became_resident", "address_set", "status", "kind", "change_reason", "change",
    "change_date", "core_updated_at", "row_hash", "source_hash",
)  # fmt: skip


def _changed(session: Session, statement: TextClause, params: dict[str, Any] | None = None) -> int:
    """Run a data-changing statement; how many rows it changed."""
    result = session.execute(statement, params or {})
    assert isinstance(result, CursorResult)
    return result.rowcount


def lock_imports(session: Session, kind: str, statement_timeout_ms: int) -> None:
    """Serialise imports of one kind per tenant (changes must apply in order; staging is shared).

    Also lifts the statement timeout for this transaction: the COPY of a big file is one statement.
    """
    session.execute(
        text(
            "SELECT set_config('statement_timeout', :t, true),"
            " pg_advisory_xact_lock(hashtext(current_schema()), hashtext(:kind))"
        ),
        {"kind": kind, "t": str(statement_timeout_ms)},
    )


def truncate_staging(session: Session, kind: str) -> None:
    if kind == "residents":
        session.execute(text("TRUNCATE import_staging_residents, import_staging_households"))
    else:
        session.execute(text("TRUNCATE import_staging_attributes"))


class DuplicateKey(Exception):
    """COPY hit a unique constraint (a repeated 宛名番号 in a first load)."""


def copy_lines(session: Session, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """COPY text-format lines (tab-separated, ``\\N`` for NULL) into a staging table, streaming.

    Lines are sent in ~1 MB chunks; PostgreSQL parses them on its own core while Python reads on.
    """
    if table not in ("import_staging_residents", "import_staging_attributes", "residents"):
        raise ValueError(f"not a table imports may COPY into: {table}")
    driver = session.connection().connection.driver_connection
    assert driver is not None
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            chunk: list[str] = []
            size = 0
            for line in lines:
                chunk.append(line)
                size += len(line)
                if size > 1 << 19:
                    copy.write("".join(chunk))
                    chunk.clear()
                    size = 0
            if chunk:
                copy.write("".join(chunk))
    except psycopg.errors.UniqueViolation as exc:
        raise DuplicateKey(str(exc)) from exc


def analyze(session: Session, what: str) -> None:
    """Refresh planner statistics of the import tables (see the migration's analyze_import_tables)."""
    session.execute(text("SELECT analyze_import_tables(:w)"), {"w": what})


def residents_empty(session: Session) -> bool:
    return session.execute(text("SELECT NOT EXISTS (SELECT 1 FROM residents)")).scalar_one() is True


def duplicate_records(session: Session, batch_id: int) -> list[tuple[str, int, int]]:
    """(宛名番号, record, line) of every row whose 宛名番号 occurs more than once in the batch."""
    rows = session.execute(
        text(
            "SELECT atena_no, record, line FROM import_staging_residents s"
            " WHERE batch_id = :b AND atena_no IN ("
            "   SELECT atena_no FROM import_staging_residents WHERE batch_id = :b"
            "   GROUP BY atena_no HAVING count(*) > 1)"
            " ORDER BY atena_no, record"
        ),
        {"b": batch_id},
    )
    return [(r[0], r[1], r[2]) for r in rows]


def drop_staged_records(session: Session, table: str, batch_id: int, records: Sequence[int]) -> None:
    if table not in ("import_staging_residents", "import_staging_attributes"):
        raise ValueError(f"not a staging table: {table}")
    session.execute(
        text(f"DELETE FROM {table} WHERE batch_id = :b AND record = ANY(:r)"),
        {"b": batch_id, "r": list(records)},
    )


def prefer_index_lookups(session: Session) -> None:
    """For the rest of the transaction, price random reads as on SSD storage (random_page_cost
    1.1, the usual setting there): a few thousand people are then looked up by their unique
    宛名番号 instead of reading the whole residents table to join them (as at the default of 4, for
    spinning disks), about twice as fast at Osaka's size."""
    session.execute(text("SELECT set_config('random_page_cost', '1.1', true)"))


def apply_residents(
    session: Session, batch_id: int, mode: str, count_missing: bool = True, few: bool = False
) -> dict[str, int]:
    """Apply staged residents; returns counts (inserted, updated, unchanged, missing).

    ``few``: the staged people are a small part of the residents (a nightly file's changes), see
    ``prefer_index_lookups``.
    """
    if few:
        prefer_index_lookups(session)
    # For a changes file, a person may appear more than once: the latest 異動日 wins (then file order).
    latest = (
        "SELECT DISTINCT ON (atena_no) * FROM import_staging_residents WHERE batch_id = :b"
        " ORDER BY atena_no, change_date DESC NULLS LAST, record DESC"
    )
    params = {"b": batch_id}
    # Households to re-derive: the old and the new one of each person staged whose household
    # number, place or relation in it, address or status differs from the row (or who is new). A
    # changed 方書 or name touches no household.
    session.execute(
        text(
            "INSERT INTO import_staging_households (batch_id, household_no)"
            " SELECT DISTINCT :b, v.household_no FROM import_staging_residents s"
            " LEFT JOIN residents r ON r.atena_no = s.atena_no"
            " CROSS JOIN LATERAL (VALUES (s.household_no), (r.household_no)) v(household_no)"
            " WHERE s.batch_id = :b AND v.household_no IS NOT NULL AND (r.atena_no IS NULL OR"
            "  (s.household_no, s.household_order, s.relation, s.postal_code, s.address, s.status)"
            "  IS DISTINCT FROM (r.household_no, r.household_order, r.relation, r.postal_code, r.address, r.status))"
            " ON CONFLICT DO NOTHING"
        ),
        params,
    )
    assignments = ", ".join(f"{c} = l.{c}" for c in _RESIDENT_VALUES)
    changed = "r.row_hash <> l.row_hash"
    # One pass over the people staged: rows whose values changed, and rows with the same values
    # made from other bytes (read again: a changes file made them, or the rules changed), whose
    # source hash and derived columns are brought up to date but which count as unchanged.
    updated = session.execute(
        text(
            f"WITH u AS (UPDATE residents r SET {assignments},"
            f" last_batch_id = CASE WHEN {changed} THEN :b ELSE r.last_batch_id END,"
            f" updated_at = CASE WHEN {changed} THEN now() ELSE r.updated_at END"
            f" FROM ({latest}) l WHERE r.atena_no = l.atena_no AND ({changed} OR (l.source_hash IS NOT NULL"
            " AND r.source_hash IS DISTINCT FROM l.source_hash))"
            " RETURNING r.last_batch_id = :b AS changed)"
            " SELECT count(*) FILTER (WHERE changed) FROM u"
        ),
        params,
    ).scalar_one()
    columns = ", ".join(_RESIDENT_VALUES)
    inserted = _changed(
        session,
        text(
            f"INSERT INTO residents (atena_no, {columns}, last_batch_id)"
            f" SELECT l.atena_no, {', '.join('l.' + c for c in _RESIDENT_VALUES)}, :b FROM ({latest}) l"
            " WHERE NOT EXISTS (SELECT 1 FROM residents r WHERE r.atena_no = l.atena_no)"
        ),
        params,
    )
    distinct = session.execute(
        text("SELECT count(DISTINCT atena_no) FROM import_staging_residents WHERE batch_id = :b"), params
    ).scalar_one()
    missing = 0
    if mode == "full" and count_missing:
        missing = session.execute(
            text(
                "SELECT count(*) FROM residents r WHERE r.status = '住民' AND NOT EXISTS ("
                " SELECT 1 FROM import_staging_residents s WHERE s.batch_id = :b AND s.atena_no = r.atena_no)"
            ),
            params,
        ).scalar_one()
    _refresh_households(session, batch_id)
    return {
        "inserted": inserted,
        "updated": updated,
        "unchanged": distinct - inserted - updated,
        "missing": missing,
    }


def begin_direct_load(session: Session) -> int:
    """Before COPY straight into the empty residents table: drop its plain (search) indexes.

    They are rebuilt by ``finish_direct_load`` in the same transaction (a sorted build, much
    cheaper than maintaining them row by row); a rollback restores them as they were. Returns how
    many were dropped. See migration t0009.
    """
    return int(session.execute(text("SELECT residents_bulk_load('begin')")).scalar_one())


def reorder_residents(session: Session) -> int:
    """Rewrite the residents table in kana order (CLUSTER on the kana search index) and refresh its
    statistics; how many residents it holds. Locks the table until the transaction ends: searches
    of the tenant wait. See migration t0011."""
    return int(session.execute(text("SELECT residents_reorder()")).scalar_one())


def finish_direct_load(session: Session) -> None:
    """After a first load COPYed straight into the empty residents table: rebuild the indexes
    ``begin_direct_load`` dropped, then derive every household."""
    session.execute(text("SELECT residents_bulk_load('end')"))
    session.execute(text("DELETE FROM households"))
    order = "(r.relation = '世帯主') DESC, r.household_order, r.atena_no"
    session.execute(
        text(
            "INSERT INTO households (household_no, head_atena_no, postal_code, address, member_count)"
            f" SELECT r.household_no, (array_agg(r.atena_no ORDER BY {order}))[1],"
            f" (array_agg(r.postal_code ORDER BY {order}))[1], (array_agg(r.address ORDER BY {order}))[1],"
            " count(*) FROM residents r WHERE r.status = '住民' GROUP BY r.household_no"
        )
    )


def _refresh_households(session: Session, batch_id: int) -> None:
    """Re-derive the touched households from their members still resident (世帯主 first).

    Only households whose head, address or size changed are written, and those left without a
    resident member deleted: a nightly file touches tens of thousands of households at Osaka's
    scale, and rewriting each of them (delete and insert) was a third of applying it.
    """
    params = {"b": batch_id}
    order = "(r.relation = '世帯主') DESC, r.household_order, r.atena_no"
    session.execute(
        text(
            "INSERT INTO households AS h (household_no, head_atena_no, postal_code, address, member_count)"
            f" SELECT r.household_no, (array_agg(r.atena_no ORDER BY {order}))[1],"
            f" (array_agg(r.postal_code ORDER BY {order}))[1], (array_agg(r.address ORDER BY {order}))[1],"
            " count(*) FROM residents r JOIN import_staging_households t"
            "   ON t.household_no = r.household_no AND t.batch_id = :b"
            " WHERE r.status = '住民' GROUP BY r.household_no"
            " ON CONFLICT (household_no) DO UPDATE SET head_atena_no = excluded.head_atena_no,"
            " postal_code = excluded.postal_code, address = excluded.address,"
            " member_count = excluded.member_count, updated_at = now()"
            " WHERE (h.head_atena_no, h.postal_code, h.address, h.member_count)"
            " IS DISTINCT FROM (excluded.head_atena_no, excluded.postal_code, excluded.address, excluded.member_count)"
        ),
        params,
    )
    session.execute(
        text(
            "DELETE FROM households h USING import_staging_households t"
            " WHERE t.batch_id = :b AND h.household_no = t.household_no AND NOT EXISTS"
            " (SELECT 1 FROM residents r WHERE r.household_no = h.household_no AND r.status = '住民')"
        ),
        params,
    )


def apply_attributes(session: Session, batch_id: int, mode: str) -> dict[str, int]:
    """Full: the file replaces every fact. Changes: it replaces the facts of each person it names."""
    params = {"b": batch_id}
    if mode == "full":
        removed = _changed(session, text("DELETE FROM resident_attributes"))
    else:
        removed = _changed(
            session,
            text(
                "DELETE FROM resident_attributes a USING (SELECT DISTINCT atena_no FROM import_staging_attributes"
                " WHERE batch_id = :b) s WHERE a.atena_no = s.atena_no"
            ),
            params,
        )
    inserted = _changed(
        session,
        text(
            "INSERT INTO resident_attributes (atena_no, item, value, start_date, end_date, last_batch_id)"
            " SELECT atena_no, item, value, start_date, end_date, :b FROM import_staging_attributes"
            " WHERE batch_id = :b ORDER BY record"
        ),
        params,
    )
    unknown = session.execute(
        text(
            "SELECT count(DISTINCT s.atena_no) FROM import_staging_attributes s WHERE s.batch_id = :b"
            " AND NOT EXISTS (SELECT 1 FROM residents r WHERE r.atena_no = s.atena_no)"
        ),
        params,
    ).scalar_one()
    return {"inserted": inserted, "removed": removed, "unknown_residents": unknown}


# Residents' source hashes are read a range of heap pages at a time: one aggregated string each
# (a row per resident, even in a binary COPY, cost the client as much again as the query).
_PAGES_PER_CHUNK = 16384  # 128 MB of heap
# A resident a record of the batch names: source hash, key (big-endian bigints), still resident.
_NAMED = np.dtype([("source", ">i8"), ("key", ">i8"), ("resident", "u1")])


def load_resident_sources(session: Session) -> tuple[np.ndarray, np.ndarray, int]:
    """The source hash of every resident, sorted (0 where a row has none); the source hashes of
    those whose status is no longer 住民; how many have status 住民.

    Read in chunks of heap pages, then sorted in place: the memory needed is the result's (8 bytes
    a resident, ~24 MB at Osaka's 2.9 million), twice for a moment. Residents change only under the
    import lock, so chunks read in separate statements add up to one state.
    """
    driver = session.connection().connection.driver_connection
    assert driver is not None
    chunks: list[np.ndarray] = []
    departed: list[np.ndarray] = []
    residents = 0
    with driver.cursor(binary=True) as cursor:
        row = cursor.execute(
            "SELECT pg_relation_size('residents') / current_setting('block_size')::bigint"
        ).fetchone()
        pages = int(row[0]) if row else 0
        for first in range(0, pages, _PAGES_PER_CHUNK):
            row = cursor.execute(
                "SELECT string_agg(int8send(coalesce(source_hash, 0)), ''::bytea),"
                " string_agg(int8send(source_hash), ''::bytea) FILTER (WHERE status <> '住民' AND source_hash IS NOT NULL),"
                " count(*) FILTER (WHERE status = '住民')"
                " FROM residents WHERE ctid >= CAST('(' || %s::bigint || ',0)' AS tid)"
                " AND ctid < CAST('(' || %s::bigint || ',0)' AS tid) AND length(atena_no) <= 16",
                (first, first + _PAGES_PER_CHUNK),
            ).fetchone()
            if row is None or row[0] is None:
                continue
            chunks.append(np.frombuffer(row[0], dtype=">i8").astype(np.int64))
            if row[1] is not None:
                departed.append(np.frombuffer(row[1], dtype=">i8").astype(np.int64))
            residents += int(row[2])
    sources = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    del chunks
    sources.sort()
    return sources, np.concatenate(departed) if departed else np.zeros(0, dtype=np.int64), residents


def staged_duplicate_atena(session: Session, batch_id: int, rejected: Sequence[str]) -> list[str]:
    """宛名番号 given more than once by the records of the batch staged or ``rejected``."""
    rows = session.execute(
        text(
            "SELECT a FROM (SELECT atena_no AS a FROM import_staging_residents WHERE batch_id = :b"
            " UNION ALL SELECT unnest(CAST(:r AS text[]))) x GROUP BY a HAVING count(*) > 1"
        ),
        {"b": batch_id, "r": list(rejected)},
    )
    return [r[0] for r in rows]


def atena_with_sources(session: Session, sources: Sequence[int]) -> list[str]:
    """宛名番号 of the residents made from records with these source hashes."""
    rows = session.execute(
        text("SELECT atena_no FROM residents WHERE source_hash = ANY(CAST(:s AS bigint[]))"),
        {"s": list(sources)},
    )
    return [r[0] for r in rows]


def residents_named(
    session: Session, batch_id: int, rejected: Sequence[str], few: bool = False
) -> Iterator[np.ndarray]:
    """(source hash (0: none), key, still resident) of each resident whose 宛名番号 a record of the
    batch gives (staged, or among ``rejected``), in chunks of about 1/64 of them.

    ``few``: as for ``apply_residents``, look them up one by one by 宛名番号."""
    if few:
        prefer_index_lookups(session)
    driver = session.connection().connection.driver_connection
    assert driver is not None
    query = (
        # The key as app.linkage.fingerprints.atena_key computes it.
        "SELECT string_agg(int8send(coalesce(r.source_hash, 0)) || int8send(r.atena_no::bigint * 100"
        " + length(r.atena_no)) || CASE WHEN r.status = '住民' THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea)"
        " FROM residents r WHERE length(r.atena_no) <= 16 AND r.atena_no IN ("
        " SELECT unnest(%s::text[]) UNION SELECT atena_no FROM import_staging_residents WHERE batch_id = %s)"
        " GROUP BY hashtext(r.atena_no) & 63"
    )
    with driver.cursor(binary=True) as cursor:
        for (chunk,) in cursor.stream(query, (list(rejected), batch_id)):
            yield np.frombuffer(chunk, dtype=_NAMED)


def drop_staged_atena(session: Session, batch_id: int, atena_numbers: Sequence[str]) -> None:
    session.execute(
        text("DELETE FROM import_staging_residents WHERE batch_id = :b AND atena_no = ANY(:a)"),
        {"b": batch_id, "a": list(atena_numbers)},
    )
