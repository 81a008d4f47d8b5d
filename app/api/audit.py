"""Operation log: the access history of one resident (特定個人情報保護評価). Reading it is logged.

Needs ``audit.read`` (監査担当, 管理者).
"""

from __future__ import annotations

from typing import Any

from flask import abort
from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.audit import pia
from app.identity.permissions import requires
from app.residents.models import Resident
from app.tenancy.context import tenant_db


class AccessQuerySchema(Schema):
    purpose = fields.String(load_default=None, metadata={"description": "事務種別（この閲覧の記録に残る）"})
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=pia.MAX_LIMIT))
    before_seq = fields.Integer(
        load_default=None, metadata={"description": "この連番より前を取得（続きの取得）"}
    )


class ActorSchema(Schema):
    type = fields.String(metadata={"description": "staff, api_client, system, cli ..."})
    id = fields.String()
    name = fields.String(allow_none=True)


class SubjectSchema(Schema):
    type = fields.String(allow_none=True)
    id = fields.String(allow_none=True)


class AccessSchema(Schema):
    seq = fields.Integer(metadata={"description": "操作ログの連番"})
    at = fields.DateTime(metadata={"description": "日時（UTC）"})
    action = fields.String()
    action_ja = fields.String(metadata={"description": "操作（日本語）"})
    relation = fields.String(
        metadata={"description": "本人が対象 / 検索結果に表示 / 世帯員として表示 / 手続案内の対象"}
    )
    actor = fields.Nested(ActorSchema)
    terminal = fields.String(allow_none=True, metadata={"description": "端末"})
    purpose = fields.String(allow_none=True, metadata={"description": "事務種別"})
    subject = fields.Nested(SubjectSchema)
    request_id = fields.String(allow_none=True)
    details = fields.Dict()


class AccessHistorySchema(Schema):
    resident_id = fields.Integer()
    accesses = fields.List(fields.Nested(AccessSchema), metadata={"description": "新しい順"})
    more = fields.Boolean(metadata={"description": "さらに古い記録あり（before_seq で続きを取得）"})


@tenant_api.route("/audit/subjects/resident/<int:resident_id>")
@requires("audit.read")
@tenant_api.arguments(AccessQuerySchema, location="query")
@tenant_api.response(200, AccessHistorySchema)
def resident_accesses(args: dict[str, Any], resident_id: int) -> dict[str, Any]:
    """住民1人へのアクセス履歴（特定個人情報保護評価）"""
    db = tenant_db()
    if db.get(Resident, resident_id) is None:
        abort(404)
    history = pia.resident_accesses(db, resident_id, **args)
    db.commit()
    return {
        "resident_id": resident_id,
        "accesses": [a.as_dict() for a in history.accesses],
        "more": history.more,
    }
