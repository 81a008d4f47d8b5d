"""Sessions bound to exactly one tenant (or to ``control``).

At the start of every transaction the session sets, transaction-locally, the search path to the
tenant's schema only and the role to the tenant's NOLOGIN role. Both revert at COMMIT/ROLLBACK, so
nothing survives the connection's return to the pool. A query aimed at another schema fails with
"permission denied" instead of leaking; see docs/adr/0001-tenancy.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction

from app.config import get_settings
from app.db.engine import get_engine
from app.db.names import DbBinding

# The transaction's context, sent by psycopg directly (not through SQLAlchemy's execute).
SET_CONTEXT = (
    "SELECT set_config('search_path', %s, true), set_config('role', %s, true),"
    " set_config('statement_timeout', %s, true)"
)


def context_params(binding: DbBinding) -> tuple[str, str, str]:
    """Parameters of ``SET_CONTEXT`` for ``binding``."""
    return binding.search_path, binding.role, str(get_settings().db_statement_timeout_ms)


_translated: dict[tuple[int, str], Engine] = {}


def _engine_for(binding: DbBinding) -> Engine:
    """The shared engine with a cached, per-schema ``schema_translate_map``."""
    base = get_engine()
    key = (id(base), binding.schema)
    engine = _translated.get(key)
    if engine is None:
        engine = base.execution_options(schema_translate_map={None: binding.schema})
        _translated[key] = engine
    return engine


class _Isolation:
    """Test support: sessions join an outer transaction per binding that the test rolls back."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}

    def connection_for(self, binding: DbBinding) -> Connection:
        conn = self.connections.get(binding.key)
        if conn is None:
            conn = _engine_for(binding).connect()
            conn.begin()
            self.connections[binding.key] = conn
        return conn

    def close(self) -> None:
        for conn in self.connections.values():
            conn.rollback()
            conn.close()
        self.connections.clear()


_isolation: _Isolation | None = None


def begin_test_isolation() -> None:
    global _isolation
    if _isolation is not None:
        raise RuntimeError("test isolation already active")
    _isolation = _Isolation()


def end_test_isolation() -> None:
    global _isolation
    if _isolation is not None:
        _isolation.close()
        _isolation = None


def new_session(binding: DbBinding, isolation_level: str | None = None) -> Session:
    """A new Session for one binding. Never re-point it at another tenant: make another one.

    ``isolation_level`` (e.g. ``"REPEATABLE READ"``: one snapshot for a long consistent read) is
    ignored under test isolation, where every session joins the test's outer transaction.
    """
    if _isolation is not None:
        return Session(
            bind=_isolation.connection_for(binding),
            join_transaction_mode="create_savepoint",
            info={"binding": binding},
            expire_on_commit=False,
        )
    engine = _engine_for(binding)
    if isolation_level is not None:
        engine = engine.execution_options(isolation_level=isolation_level)
    return Session(bind=engine, info={"binding": binding}, expire_on_commit=False)


@contextmanager
def session_scope(binding: DbBinding) -> Iterator[Session]:
    """Commit on success, roll back on error, always close."""
    session = new_session(binding)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@event.listens_for(Session, "after_begin")
def _set_transaction_context(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    """The context, as the transaction's first statement: straight through psycopg, which costs a
    fraction of SQLAlchemy's statement execution (no compilation, result or event machinery)."""
    binding: DbBinding | None = session.info.get("binding")
    if binding is None:
        return
    raw: Any = connection.connection.driver_connection
    try:
        raw.execute(SET_CONTEXT, context_params(binding))
    except psycopg.Error as exc:  # as SQLAlchemy raises it for a statement it ran
        raise DBAPIError.instance(SET_CONTEXT, None, exc, psycopg.Error) from exc
