"""Staff web UI (Jinja + htmx), under ``/<tenant>/``. Views stay thin: logic lives in domain services."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from app.identity.context import current_principal
from app.tenancy.context import enter_tenant, is_public

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
    enter_tenant(g.tenant_id)
    view = current_app.view_functions.get(request.endpoint or "")
    if is_public(view):
        return None
    principal = current_principal()
    if principal is None:
        return redirect(url_for("web.login", next=request.path))
    if principal.tenant_id != g.tenant.id:
        abort(404)
    return None


def register(app: Flask) -> None:
    from app.web import audit, auth, guidance, linkage, pages, residents  # noqa: F401  (views register on the blueprints)

    app.register_blueprint(root_web)
    app.register_blueprint(tenant_web)
