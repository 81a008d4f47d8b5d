"""Readiness probes."""

from __future__ import annotations

from sqlalchemy import text

from app.db.engine import get_engine


def ping_database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
