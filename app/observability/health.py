"""``/healthz`` (the process answers) and ``/readyz`` (its database and Redis answer)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint

from app.db.checks import ping_database
from app.kv import get_redis

health = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@health.route("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@health.route("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    checks: dict[str, str] = {}
    for name, probe in (("database", ping_database), ("redis", lambda: get_redis().ping())):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
