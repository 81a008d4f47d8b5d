"""``GET /metrics``: public, no personal data (see app.observability.metrics)."""

from __future__ import annotations

from flask import Blueprint, Response

from app.observability.collector import AppCollector
from app.observability.metrics import exposition

metrics_web = Blueprint("metrics", __name__)
_collector = AppCollector()


@metrics_web.route("/metrics")
def metrics() -> Response:
    body, content_type, _ = exposition([_collector])
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
