"""Staff web UI (Jinja + htmx), under ``/<tenant>/``. Views stay thin: logic lives in domain services."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g
from werkzeug.wrappers import Response

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


def register(app: Flask) -> None:
    from app.web import admin, auth, guidance, linkage, ops, pages, residents  # noqa: F401  (views register on the blueprints)

    app.register_blueprint(root_web)
    app.register_blueprint(tenant_web)
    app.register_blueprint(ops.ops_web)
