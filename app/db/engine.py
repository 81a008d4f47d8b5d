"""One engine and pool per database URL, per process.

Engines are disposed (without closing the parent's sockets) in every forked child, because a
connection inherited across ``fork()`` is shared with the parent and breaks both (RQ work horses,
gunicorn workers started after import).

Connections are checked before use when they sat idle in the pool for more than
``IDLE_PING_SECONDS`` (and always for a closed or broken socket psycopg already knows of): the
same empty-statement ping as SQLAlchemy's ``pool_pre_ping``, which would cost a round trip on
every checkout, most of them seconds or milliseconds after the connection's last good use. A
server that went away in between is found by the next statement instead, whose disconnect error
invalidates the whole pool (SQLAlchemy's optimistic handling), so one request fails, not more.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from app.config import get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
IDLE_PING_SECONDS = 10.0
_IDLE_SINCE = "idle_since"


def get_engine(url: str | None = None) -> Engine:
    settings = get_settings()
    url = url or settings.database_url
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(
                url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_recycle=settings.db_pool_recycle_seconds,
                connect_args={"application_name": "madoguchi"},
            )
            _ping_idle_connections(engine)
            _engines[url] = engine
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)  # None: connected just now
        if dbapi_connection.closed or dbapi_connection.broken:
            raise DisconnectionError("connection closed or broken")
        if idle_since is not None and time.monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:  # the pool replaces the connection and tries again
                raise DisconnectionError(f"ping failed: {exc}") from exc


def admin_engine() -> Engine:
    url = get_settings().admin_database_url
    if not url:
        raise RuntimeError("MADOGUCHI_ADMIN_DATABASE_URL is not set (needed for provisioning)")
    return get_engine(url)


def dispose_all(close: bool = True) -> None:
    for engine in list(_engines.values()):
        engine.dispose(close=close)
    if close:
        _engines.clear()


def _after_fork_in_child() -> None:
    # close=False: leave the parent's connections alone, just forget them here.
    for engine in list(_engines.values()):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
