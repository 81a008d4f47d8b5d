"""Staff web UI (Jinja + htmx), under ``/<tenant>/``. Views stay thin: logic lives in domain services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Flask, g
from werkzeug.wrappers import Response

from app.dates import JST
from app.dates.wareki import format_wareki
from app.identity.authz import admit

tenant_web = Blueprint("web", __name__, url_prefix="/<tenant>")
root_web = Blueprint("root", __name__)


@tenant_web.url_value_preprocessor
def _take_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values is not None and "tenant" in values:
        g.tenant_id = values.pop("tenant")


@tenant_web.url_defaults
def _add_tenant(endpoint: str, values: dict[str, Any]) -> None:
    if "tenant" not in values and g.get("tenant") is not None:
        values["tenant"] = g.tenant.id


@tenant_web.before_request
def _guard() -> Response | None:
    """Tenant, principal and the view's declared permissions (app.identity.authz)."""
    return admit(api=False)


def jst(value: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) timestamp as the counter reads it: Japan time."""
    return "" if value is None else value.astimezone(JST).strftime(pattern)


def minutes_since(value: dt.datetime | None) -> int:
    return 0 if value is None else int((dt.datetime.now(dt.UTC) - value).total_seconds() // 60)


def wareki(value: dt.date | None) -> str:
    return "" if value is None else format_wareki(value)


def register(app: Flask) -> None:
    from app.web import (  # noqa: F401  (views register on the blueprints)
        admin,
        admin_devices,
        admin_forms,
        admin_webhooks,
        audit,
        auth,
        counter,
        forms,
        guidance,
        linkage,
        ops,
        pages,
        preapply,
        reports,
        residents,
    )

    app.add_template_filter(jst, "jst")
    app.add_template_filter(wareki, "wareki")
    app.add_template_global(minutes_since, "minutes_since")
    app.register_blueprint(root_web)
    app.register_blueprint(tenant_web)
    app.register_blueprint(ops.ops_web)
