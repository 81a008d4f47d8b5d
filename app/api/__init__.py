"""JSON API (OpenAPI 3 via flask-smorest) under ``/api/v1/<tenant>/``; spec at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask_smorest import Api, Blueprint

from app.identity.authz import admit

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
    """Tenant, principal (bearer token or session) and declared permissions (app.identity.authz)."""
    admit(api=True)


def register(app: Flask) -> None:
    from app.api import (  # noqa: F401  (routes register on the blueprint)
        audit,
        cardreads,
        counter,
        forms,
        guidance,
        linkage,
        oauth,
        residents,
        tenant,
    )
    from app.identity.api_clients import init_token_endpoint
    from app.observability.ops import ops_api

    init_token_endpoint(app)
    api.init_app(app)
    api.register_blueprint(tenant_api)
    api.register_blueprint(ops_api)  # provider operations (事業者), documented beside the cities' API
