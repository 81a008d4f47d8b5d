"""JSON API (OpenAPI 3 via flask-smorest) under ``/api/v1/<tenant>/``; spec at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, current_app, g, request
from flask_smorest import Api, Blueprint

from app.identity.context import current_principal
from app.tenancy.context import enter_tenant, is_public

api = Api()

tenant_api = Blueprint(
    "tenant_api", __name__, url_prefix="/api/v1/<tenant>", description="自治体（テナント）ごとの API"
)


@tenant_api.url_value_preprocessor
def _take_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values is not None and "tenant" in values:
        g.tenant_id = values.pop("tenant")


@tenant_api.before_request
def _guard() -> None:
    enter_tenant(g.tenant_id)
    if is_public(current_app.view_functions.get(request.endpoint or "")):
        return
    principal = current_principal()
    if principal is None:
        abort(401)
    if principal.tenant_id != g.tenant.id:
        abort(404)


def register(app: Flask) -> None:
    from app.api import audit, guidance, linkage, residents, tenant  # noqa: F401  (routes register on the blueprint)

    api.init_app(app)
    api.register_blueprint(tenant_api)
