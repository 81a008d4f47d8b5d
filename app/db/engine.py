"""One engine and pool per database URL, per process.

Engines are disposed (without closing the parent's sockets) in every forked child, because a
connection inherited across ``fork()`` is shared with the parent and breaks both (RQ work horses,
gunicorn workers started after import).
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import Engine, create_engine

from app.config import get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


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
                pool_pre_ping=True,
                connect_args={"application_name": "madoguchi"},
            )
            _engines[url] = engine
    return engine


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
