"""Raw SQL of the operation log: appending under the chain lock, streaming, archival deletion.

The functions called here live in every tenant schema (migration t0004):

``audit_append(early, entries)``
    SECURITY DEFINER since t0013 (the runtime role has SELECT on ``audit_log``, no INSERT: no row
    reaches the log around the chain lock). Refuses any isolation level but READ COMMITTED, takes the tenant's transaction-level advisory
    lock, reads the newest entry (or the last archival cut) in a statement of its own, so with a
    snapshot taken after the lock was granted, then inserts the entries with the next ``seq``
    numbers, ``clock_timestamp()`` and their hashes — one round trip while the lock is held. With
    ``early`` it sets ``synchronous_commit = off`` for the transaction: see ``durability_barrier``.
``audit_flush()``
    SECURITY DEFINER: writes one WAL record (``setval`` on ``audit_flush_seq``), see
    ``durability_barrier``.
``audit_delete_archived(...)``
    SECURITY DEFINER, owned by the schema owner: the only way entries leave ``audit_log``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import ClientCursor, IsolationLevel
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Literal
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, Row, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.audit.canonical import PG_TIME_FORMAT
from app.db.engine import get_engine
from app.db.names import DbBinding
from app.db.session import SET_CONTEXT

# Two-key advisory locks (class, tenant code) never collide with the single-key migration lock.
AUDIT_LOCK_CLASS = 0x61756474  # "audt"

_APPEND = text(
    "SELECT entry_id, entry_seq, entry_prev, entry_hash, entry_at FROM audit_append(:early, :entries)"
).bindparams(bindparam("entries", type_=JSONB))

# Column order of ``stream_entries`` rows (app.audit.verify reads them by position).
STREAM_COLUMNS = (
    "seq",
    "prev_hash",
    "hash",
    "at",
    "actor_type",
    "actor_id",
    "actor_name",
    "terminal",
    "action",
    "subject_type",
    "subject_id",
    "purpose",
    "request_id",
    "details",
    "id",
)
_STREAM = (
    "SELECT seq, prev_hash, hash, to_char(occurred_at AT TIME ZONE 'UTC', %(fmt)s),"
    " actor_type, actor_id, actor_name, terminal, action, subject_type, subject_id, purpose,"
    " request_id, details::text, id FROM audit_log"
    " WHERE seq >= %(lo)s AND seq <= %(hi)s ORDER BY seq"
)


def append_entries(
    session: Session, early_lock_release: bool, entries: list[dict[str, Any]]
) -> list[Row[Any]]:
    """Chain and insert ``entries`` (template fragments ``c0``..``c3`` and the columns); returns
    (id, seq, prev hash, hash, time) per entry, in order. The lock is held until the transaction
    ends."""
    return list(session.execute(_APPEND, {"early": early_lock_release, "entries": entries}))


# One query string, several statements (the simple query protocol; parameters are bound on the
# client by psycopg's ClientCursor, with libpq's quoting): the server receives the whole exchange in
# one message, so the chain lock, taken by audit_append(), is released by the COMMIT that is
# already waiting behind it, never held while this process waits for a CPU.
_APPEND_MANY = (
    "SELECT entry_id, entry_seq, entry_prev, entry_hash, entry_at FROM audit_append(%s, %s); COMMIT"
)
_BARRIER_MANY = (
    "; BEGIN; SELECT set_config('search_path', %s, true), set_config('role', %s, true);"
    " SELECT audit_flush(); COMMIT"
)


def append_and_commit(
    raw: Any, binding: DbBinding, early_lock_release: bool, entries: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Chain ``entries`` and commit the transaction open on ``raw`` (psycopg), in one round trip.

    One message: ``audit_append()``, ``COMMIT``, and with early lock release the flush barrier
    (``durability_barrier``) as a transaction of its own. The transaction's other work was flushed
    before. On an error the server runs nothing after it and the transaction is left for the
    caller to roll back. Returns (id, seq, prev hash, hash, time) per entry, in order.
    """
    query, params = _APPEND_MANY, [early_lock_release, Jsonb(entries)]
    if early_lock_release:
        query += _BARRIER_MANY
        params += [binding.search_path, binding.role]
    return _run(raw, query, params, 0)


def append_in_own_transaction(
    engine: Engine,
    binding: DbBinding,
    context: Sequence[Any],
    early_lock_release: bool,
    entries: list[dict[str, Any]],
) -> list[tuple[Any, ...]]:
    """``append_and_commit`` for a session that has not touched the database: a pooled
    connection, and the whole transaction (``BEGIN``, the tenant context ``context`` as
    ``app.db.session.SET_CONTEXT`` takes it, append, commit, flush barrier) in one round trip.
    psycopg would send its own ``BEGIN`` and wait for the answer first: the connection is in
    autocommit mode meanwhile, with an explicit ``BEGIN`` in the message."""
    query = f"BEGIN; {SET_CONTEXT}; {_APPEND_MANY}"
    params = [*context, early_lock_release, Jsonb(entries)]
    if early_lock_release:
        query += _BARRIER_MANY
        params += [binding.search_path, binding.role]
    pooled = engine.raw_connection()
    raw: Any = pooled.driver_connection
    restored = False
    try:
        raw.autocommit = True
        try:
            rows = _run(raw, query, params, 2)
        finally:
            if raw.info.transaction_status != TransactionStatus.IDLE:
                raw.execute("ROLLBACK")
            raw.autocommit = False
            restored = True
    finally:
        if not restored:  # the connection's state is unknown: never back into the pool
            pooled.invalidate()
        pooled.close()
    return rows


def _run(raw: Any, query: str, params: list[Any], result_index: int) -> list[tuple[Any, ...]]:
    cursor = ClientCursor(raw)
    try:
        cursor.execute(query, params)
        for _ in range(result_index):
            cursor.nextset()
        return list(cursor.fetchall())
    except psycopg.Error as exc:  # as SQLAlchemy raises it for a statement it ran
        raise DBAPIError.instance(query, None, exc, psycopg.Error) from exc
    finally:
        cursor.close()


def durability_barrier(connection: Connection, binding: DbBinding) -> None:
    """Return once every commit before this call is flushed to disk (and to synchronous standbys).

    Writers chain with ``synchronous_commit = off``, so the lock is released as soon as their
    commit record is written, not when it is flushed. ``audit_flush()`` writes a WAL record and
    gives this transaction an xid (``setval``), so its synchronous commit flushes the WAL up to its
    own commit record, which lies after the writer's: the writer's entry is durable when this
    returns. Concurrent barriers share one flush (group commit). A transaction that only took an
    xid would not do: PostgreSQL skips the flush when a transaction wrote no WAL of its own.

    Runs on the connection the writer just committed on (idle between its commit and its return
    to the pool), as one pipelined round trip: tenant context, ``audit_flush()``, COMMIT.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.pipeline():
        raw.execute(
            "SELECT set_config('search_path', %s, true), set_config('role', %s, true)",
            (binding.search_path, binding.role),
        )
        raw.execute("SELECT audit_flush()")
        raw.commit()


def flush_wal(session: Session) -> None:
    """Commit ``session`` synchronously with a WAL record of its own: every earlier commit is durable."""
    session.execute(text("SELECT audit_flush()"))
    session.commit()


def stream_entries(
    session: Session, first_seq: int = 1, last_seq: int | None = None, batch: int = 20_000
) -> Iterator[Sequence[Any]]:
    """Entries in ``seq`` order through a server-side cursor (constant memory), as rows in
    ``STREAM_COLUMNS`` order, the time already in the canonical text form.

    ``details`` travels as text and is parsed here by the C JSON scanner: psycopg's jsonb loader
    (``json.loads`` on bytes, which first sniffs the encoding) made verifying a million entries
    take 31 s instead of 20. Rows come as plain tuples (psycopg's C fast path) and are rebuilt
    here: a Python row factory, called from the loader for every row, cost twice as much.
    """
    raw = session.connection().connection.driver_connection
    assert raw is not None
    yield from _stream(raw, first_seq, last_seq, batch)


def _stream(raw: Any, first_seq: int, last_seq: int | None, batch: int) -> Iterator[Sequence[Any]]:
    params = {"fmt": PG_TIME_FORMAT, "lo": first_seq, "hi": last_seq if last_seq is not None else 2**62}
    scan = _scan_json
    with raw.cursor(name="audit_stream") as cursor:
        cursor.itersize = batch
        cursor.execute(_STREAM, params)
        for r in cursor:
            yield (*r[:13], scan(r[13], 0)[0], r[14])


# json.loads without its whitespace checks (PostgreSQL's jsonb text has none around the value);
# scan_once is set in JSONDecoder.__init__, which typeshed does not declare.
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def seq_range(session: Session, first_seq: int = 1, last_seq: int | None = None) -> tuple[int, int] | None:
    """The lowest and highest ``seq`` in the table within the bounds (None when there is none)."""
    row = session.execute(
        text("SELECT min(seq), max(seq) FROM audit_log WHERE seq >= :lo AND seq <= :hi"),
        {"lo": first_seq, "hi": last_seq if last_seq is not None else 2**62},
    ).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def export_snapshot(session: Session) -> str:
    """The snapshot of ``session``'s transaction, for other connections to read exactly what it
    sees (``stream_in_snapshot``); valid while that transaction stays open."""
    return str(session.execute(text("SELECT pg_export_snapshot()")).scalar_one())


@contextmanager
def stream_in_snapshot(
    binding: DbBinding, snapshot: str, first_seq: int, last_seq: int, batch: int = 20_000
) -> Iterator[Iterator[Sequence[Any]]]:
    """``stream_entries`` on a connection of its own that imports ``snapshot`` (REPEATABLE READ,
    read only, tenant role and search path): for worker processes verifying one range each.
    Opens its own connection; call it in the process that uses it (after ``fork``)."""
    raw = get_engine().raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute(SQL("SET TRANSACTION SNAPSHOT {}").format(Literal(snapshot)))
        conn.execute(
            "SELECT set_config('search_path', %s, true), set_config('role', %s, true)",
            (binding.search_path, binding.role),
        )
        yield _stream(conn, first_seq, last_seq, batch)
        conn.rollback()
    finally:
        raw.invalidate()  # isolation and read-only were changed on it: never back to the pool


def delete_archived(
    session: Session, last_seq: int, last_hash: str, object_key: str, manifest_sha256: str
) -> int:
    """Delete entries up to ``last_seq`` (archived and read back by the caller); rows deleted."""
    deleted = session.execute(
        text("SELECT audit_delete_archived(:seq, :hash, :key, :sha)"),
        {"seq": last_seq, "hash": last_hash, "key": object_key, "sha": manifest_sha256},
    ).scalar_one()
    return int(deleted)
