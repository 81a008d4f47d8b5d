"""Front-linkage batches: what was imported, progress, and the row-by-row rejection report."""

from __future__ import annotations

from typing import Any

from flask import abort
from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.audit import record
from app.identity.permissions import requires
from app.linkage import service
from app.linkage.models import ImportBatch
from app.tenancy.context import tenant_db


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
