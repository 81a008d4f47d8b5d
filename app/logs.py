"""Structured JSON logs carrying the request id and the tenant.

The context lives in ``contextvars`` so web requests, RQ jobs and CLI commands share one mechanism.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
tenant_var: ContextVar[str | None] = ContextVar("tenant", default=None)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.tenant = tenant_var.get()
        return True


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    from app.audit.mynumber import MyNumberFilter  # here: app.audit imports this module

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(MyNumberFilter())  # a My Number never reaches a log line
    formatter: logging.Formatter
    if json_output:
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s [%(tenant)s %(request_id)s] %(name)s: %(message)s"
        )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_madoguchi", False):
            root.removeHandler(existing)
    handler._madoguchi = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
