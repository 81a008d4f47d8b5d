"""Card reads from the counter PCs' reader agents (agent/): ``POST /api/v1/<tenant>/card-reads``.

The agent is not a staff member or an API client: it holds a per-device token the tenant's
administrator issued (``/admin/card-readers``). The view is public to the generic guard and checks
the device token itself, before the body is parsed; an unknown, revoked or other city's token gets
the same 401. Every address is rate limited, as for any endpoint reachable without a session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, jsonify, request
from flask_smorest import abort as api_abort
from marshmallow import Schema, fields

from app.api import tenant_api
from app.audit import Actor
from app.audit.service import actor_var
from app.counter import cards
from app.counter.service import CounterError
from app.identity.context import bearer_token, terminal_of_request
from app.ratelimit import limit_per_address
from app.tenancy.context import public_endpoint, tenant_db

F = TypeVar("F", bound=Callable[..., Any])


class CardReadSchema(Schema):
    name = fields.String(required=True, metadata={"description": "券面の氏名（UTF-8 のまま）"})
    address = fields.String(required=True)
    birth = fields.String(load_default=None, metadata={"description": "YYYY-MM-DD"})
    sex = fields.String(load_default="9", metadata={"description": "ISO 5218: 1・2・9"})
    outside_jis0208 = fields.Boolean(
        load_default=False, metadata={"description": "JIS X 0208 外の文字を含む"}
    )
    reader = fields.String(load_default=None, metadata={"description": "PC/SC のリーダー名"})
    read_at = fields.String(load_default=None, metadata={"description": "ISO 8601（タイムゾーン付き）"})


class CardReadCreatedSchema(Schema):
    id = fields.Integer()


def device_token_required(view: F) -> F:
    """Authenticate the reader device before anything else (401 comes before any 422)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        limit_per_address("card-reads", per_minute=60, per_hour=1200)
        token = bearer_token()
        reader = cards.authenticate_reader(tenant_db(), token) if token else None
        if reader is None:
            response = jsonify(
                code=401,
                message="装置のトークンが無効か、失効しています。管理者に装置の登録を依頼してください",
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="card-reader"'
            return response
        g.card_reader = reader
        actor_var.set(Actor("device", f"card-reader:{reader.id}", reader.name, terminal_of_request()))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@tenant_api.route("/card-reads", methods=["POST"])
@public_endpoint
@device_token_required
@tenant_api.arguments(CardReadSchema)
@tenant_api.response(201, CardReadCreatedSchema)
@tenant_api.doc(security=[{"device_token": []}])
def post_card_read(args: dict[str, Any]) -> dict[str, Any]:
    """マイナンバーカードの券面事項（4情報）を受け取る（カード読取エージェント用）"""
    db = tenant_db()
    key = (request.headers.get("Idempotency-Key") or "").strip()[:80] or None
    try:
        face = cards.parse_card_face(args)
        read = cards.receive_read(db, g.card_reader, face, idempotency_key=key)
    except CounterError as exc:
        db.rollback()
        api_abort(422, message=str(exc), errors={"json": {exc.field: [str(exc)]}})
    db.commit()
    return {"id": read.id}
