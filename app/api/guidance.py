"""Procedure guidance: determine procedures for a household and print the guidance sheet."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import abort as api_abort
from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.dates import JST
from app.guidance.catalogue import EVENT_CODES
from app.guidance.service import GuidanceInputError, active_catalogue, as_json, guide
from app.identity.permissions import requires
from app.tenancy.context import tenant_config, tenant_db


class MemberSchema(Schema):
    name = fields.String(required=True, metadata={"description": "氏名"})
    kana = fields.String(load_default=None)
    birth = fields.String(
        required=True, metadata={"description": "生年月日（2026-05-01 / 令和8年5月1日 / R080501）"}
    )
    sex = fields.Raw(load_default=9, metadata={"description": "1 男, 2 女, 9"})
    relation = fields.String(required=True, metadata={"description": "続柄（世帯主、妻、子 …）"})
    attributes = fields.Dict(load_default=None, metadata={"description": "資格・受給 {項目: 値}"})
    subject = fields.Boolean(
        load_default=None,
        metadata={"description": "イベントの対象の方（亡くなった方・生まれた子・氏が変わる方）なら true"},
    )


class GuidanceRequestSchema(Schema):
    event = fields.String(
        required=True, validate=validate.OneOf(EVENT_CODES), metadata={"description": "ライフイベント"}
    )
    event_date = fields.Date(load_default=None, metadata={"description": "異動日など（既定: 本日）"})
    resident_id = fields.Integer(load_default=None, metadata={"description": "住民（世帯は住民記録から）"})
    household = fields.List(
        fields.Nested(MemberSchema), load_default=None, metadata={"description": "転入など記録にない世帯"}
    )
    answers = fields.Dict(
        load_default=dict,
        metadata={"description": "質問ID: 回答（counts 型は {選択肢: 通数}。subject は subjects と同じ）"},
    )
    subjects = fields.List(
        fields.Raw(),
        load_default=None,
        metadata={
            "description": "イベントの対象の方: 住民ID（resident_id の世帯）または世帯の key（m1 …）。"
            '["none"] は該当者なし。既定では resident_id の方を対象とはしません'
        },
    )
    catalogue_version = fields.Integer(
        load_default=None, metadata={"description": "途中の案件はその版で判定"}
    )
    purpose = fields.String(load_default=None)


class EntrySchema(Schema):
    procedure = fields.String()
    name = fields.String()
    department = fields.String()
    department_name = fields.String()
    counter = fields.String()
    status = fields.String(metadata={"description": "needed / confirm（要確認）/ not_needed"})
    reason = fields.String()
    member = fields.String(allow_none=True)
    member_key = fields.String(allow_none=True)
    deadline = fields.String(allow_none=True)
    deadline_text = fields.String(allow_none=True)
    fee = fields.Integer(allow_none=True, metadata={"description": "手数料（quantity があれば1通あたり）"})
    fee_text = fields.String(allow_none=True)
    quantity = fields.Integer(allow_none=True, metadata={"description": "通数"})
    unit = fields.String(allow_none=True)
    fee_total = fields.Integer(allow_none=True, metadata={"description": "手数料 × 通数"})
    bring = fields.List(fields.String())
    forms = fields.List(fields.String())
    notes = fields.String(allow_none=True)
    questions = fields.List(fields.String())


class QuestionSchema(Schema):
    id = fields.String()
    text = fields.String()
    type = fields.String()
    choices = fields.List(fields.Dict())
    help = fields.String(allow_none=True)
    decides = fields.List(fields.String())


class GuidanceResultSchema(Schema):
    catalogue_version = fields.String()
    catalogue_version_id = fields.Integer()
    event = fields.String()
    event_name = fields.String()
    event_date = fields.String()
    members = fields.List(fields.Dict())
    procedures = fields.List(fields.Nested(EntrySchema), metadata={"description": "必要な手続き"})
    to_confirm = fields.List(fields.Nested(EntrySchema), metadata={"description": "回答待ちで要確認"})
    not_needed = fields.List(
        fields.Nested(EntrySchema), metadata={"description": "検討して不要と判定したもの"}
    )
    open_questions = fields.List(fields.Nested(QuestionSchema))
    subject_label = fields.String(
        allow_none=True, metadata={"description": "対象の方の呼び方（亡くなった方 …）"}
    )
    subjects = fields.List(
        fields.String(), allow_none=True, metadata={"description": "対象の方の氏名（未指定なら null）"}
    )
    fee_total = fields.Integer(allow_none=True, metadata={"description": "手数料の合計"})


def _run(args: dict[str, Any]) -> Any:
    try:
        result = guide(tenant_db(), **args)
    except GuidanceInputError as exc:
        api_abort(422, message=str(exc), errors={"json": {exc.field: [str(exc)]}})
    tenant_db().commit()
    return result


@tenant_api.route("/guidance", methods=["POST"])
@requires("guidance.use")
@tenant_api.arguments(GuidanceRequestSchema)
@tenant_api.response(200, GuidanceResultSchema)
def determine_guidance(args: dict[str, Any]) -> dict[str, Any]:
    """ライフイベントと世帯から必要な手続きを判定（理由・期限・持ち物つき）"""
    return as_json(_run(args))


@tenant_api.route("/guidance/sheet", methods=["POST"])
@requires("guidance.use")
@tenant_api.arguments(GuidanceRequestSchema)
@tenant_api.response(200, content_type="application/pdf")
def guidance_sheet(args: dict[str, Any]) -> Response:
    """手続案内書（PDF, A4）"""
    from app.guidance.sheet import render_sheet  # WeasyPrint loads on first use, not at start-up

    result = _run(args)
    pdf = render_sheet(tenant_config(), result)
    return Response(
        pdf, mimetype="application/pdf", headers={"Content-Disposition": "inline; filename=guidance.pdf"}
    )


class CatalogueSchema(Schema):
    id = fields.Integer()
    version = fields.String()
    effective_from = fields.Date()
    events = fields.List(fields.Dict())
    questions = fields.List(fields.Dict())
    departments = fields.List(fields.Dict())


@tenant_api.route("/guidance/catalogue")
@requires("guidance.use")
@tenant_api.response(200, CatalogueSchema)
def current_catalogue() -> dict[str, Any]:
    """現在有効な手続きカタログの版・ライフイベント・質問"""
    import datetime as dt

    try:
        active = active_catalogue(tenant_db(), dt.datetime.now(JST).date())
    except GuidanceInputError:
        api_abort(404, message="この自治体には有効な手続きカタログがありません")
    catalogue = active.compiled.catalogue
    return {
        "id": active.id,
        "version": active.version,
        "effective_from": active.effective_from,
        "events": [e.model_dump() for e in catalogue.events],
        "questions": [q.model_dump(exclude={"ask_when"}) for q in catalogue.questions],
        "departments": [d.model_dump() for d in catalogue.departments],
    }
