"""Front-linkage batches: what was imported, progress, and the row-by-row rejection report."""

from __future__ import annotations

from typing import Any

from flask import abort
from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.audit import record
from app.identity.permissions import requires
from app.linkage import service, webhooks
from app.linkage.config import WEBHOOK_EVENTS
from app.linkage.models import ImportBatch
from app.linkage.webhooks import TEST_EVENT
from app.tenancy.context import current_tenant, tenant_db


class PageSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class BatchSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "residents（住民）/ attributes（資格・受給）"})
    mode = fields.String(metadata={"description": "full（全件）/ changes（異動分）"})
    layout = fields.String()
    policy = fields.String()
    source = fields.String()
    source_ref = fields.String()
    file_name = fields.String()
    status = fields.String()
    status_ja = fields.String()
    progress = fields.Float(allow_none=True, metadata={"description": "0〜1（読み込んだバイト数の割合）"})
    rows_read = fields.Integer()
    rows_rejected = fields.Integer()
    rows_inserted = fields.Integer()
    rows_updated = fields.Integer()
    rows_unchanged = fields.Integer()
    rows_missing = fields.Integer(metadata={"description": "全件ファイルに無かった住民（状態は変えない）"})
    message = fields.String(allow_none=True)
    duplicate_of = fields.Integer(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class RejectionSchema(Schema):
    line = fields.Integer(allow_none=True, metadata={"description": "ファイルの行番号"})
    record = fields.Integer(allow_none=True)
    column = fields.String(allow_none=True, metadata={"description": "標準レイアウトの列名"})
    value = fields.String(allow_none=True)
    code = fields.String()
    reason = fields.String()


class BatchDetailSchema(BatchSchema):
    rejections = fields.List(fields.Nested(RejectionSchema))
    rejections_total = fields.Integer()


@tenant_api.route("/linkage/batches")
@requires("linkage.batches.view")
@tenant_api.arguments(PageSchema, location="query")
@tenant_api.response(200, BatchSchema(many=True))
def list_batches(args: dict[str, Any]) -> list[dict[str, Any]]:
    """取込バッチの一覧（新しい順）"""
    return [
        service.batch_summary(b) for b in service.list_batches(tenant_db(), args["limit"], args["offset"])
    ]


@tenant_api.route("/linkage/batches/<int:batch_id>")
@requires("linkage.batches.view", "linkage.rejections.view")
@tenant_api.arguments(PageSchema, location="query")
@tenant_api.response(200, BatchDetailSchema)
def get_batch(args: dict[str, Any], batch_id: int) -> dict[str, Any]:
    """取込バッチの結果と、行ごとの取込不可の理由"""
    db = tenant_db()
    batch = db.get(ImportBatch, batch_id)
    if batch is None:
        abort(404)
    rows, total = service.rejections(db, batch_id, args["limit"], args["offset"])
    if rows:
        # Rejected values may be names and addresses: reading the report is a read of personal data.
        record(
            db,
            "linkage.rejections_viewed",
            subject_type="import_batch",
            subject_id=batch_id,
            details={"rows": len(rows), "offset": args["offset"]},
        )
        db.commit()
    detail = service.batch_summary(batch)
    detail["rejections"] = [
        {
            "line": r.line,
            "record": r.record,
            "column": r.column,
            "value": r.value,
            "code": r.code,
            "reason": r.reason,
        }
        for r in rows
    ]
    detail["rejections_total"] = total
    return detail


class EventsQuerySchema(Schema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={"description": "前回の最後の seq（続きから）"},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    type = fields.String(
        load_default=None,
        validate=validate.OneOf([*WEBHOOK_EVENTS, TEST_EVENT]),
        metadata={"description": "イベントの種類で絞り込む"},
    )


class EventSchema(Schema):
    seq = fields.Integer(metadata={"description": "並び順（次の after に渡す）"})
    id = fields.String(metadata={"description": "Webhook の webhook-id（再送でも同じ）"})
    type = fields.String(
        metadata={"description": ", ".join(f"{k}（{v}）" for k, v in WEBHOOK_EVENTS.items())}
    )
    timestamp = fields.DateTime()
    data = fields.Dict(metadata={"description": "番号のみ（氏名・住所などは含まない）"})


@tenant_api.route("/webhooks/events")
@requires("webhooks.events.view")
@tenant_api.arguments(EventsQuerySchema, location="query")
@tenant_api.response(200, EventSchema(many=True))
def list_webhook_events(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Webhook で通知したイベント（30日分、古い順）。受信側が停止していた間の分を取り直すために使う"""
    return webhooks.events_after(tenant_db(), current_tenant().id, args["after"], args["limit"], args["type"])
