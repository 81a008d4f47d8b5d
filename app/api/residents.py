"""Residents: search and one resident with their household (every call is audit-logged)."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_smorest import abort as api_abort
from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.identity.permissions import requires
from app.residents import service
from app.residents.service import SearchInputError, SearchQuery
from app.tenancy.context import tenant_config, tenant_db


class ResidentQuerySchema(Schema):
    kana = fields.String(load_default="", metadata={"description": "フリガナ（前方一致・ひらがな・半角可）"})
    name = fields.String(load_default="", metadata={"description": "氏名（前方一致・旧字体可）"})
    birth = fields.String(
        load_default="", metadata={"description": "生年月日（2026-05-01 / 令和8年5月1日 / R080501）"}
    )
    address = fields.String(load_default="", metadata={"description": "住所（前方一致、市名は省略可）"})
    include_left = fields.Boolean(load_default=False, metadata={"description": "転出・死亡なども含める"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=service.MAX_LIMIT))
    purpose = fields.String(load_default=None, metadata={"description": "事務種別（監査ログに記録）"})


class ResidentSummarySchema(Schema):
    id = fields.Integer()
    atena_no = fields.String(metadata={"description": "宛名番号"})
    name = fields.String()
    kana = fields.String(allow_none=True)
    birth = fields.Date(allow_none=True)
    birth_wareki = fields.String()
    sex = fields.Integer(metadata={"description": "ISO 5218: 1 男, 2 女, 9 適用不能"})
    relation = fields.String(metadata={"description": "続柄"})
    household_no = fields.String(metadata={"description": "世帯番号"})
    postal_code = fields.String(allow_none=True)
    address = fields.String()
    address_extra = fields.String(allow_none=True, metadata={"description": "方書"})
    status = fields.String(metadata={"description": "住民状態"})


class SearchResultSchema(Schema):
    residents = fields.List(fields.Nested(ResidentSummarySchema))
    more = fields.Boolean(metadata={"description": "件数の上限を超えて該当あり"})


class AttributeSchema(Schema):
    item = fields.String(metadata={"description": "項目（国保、児童手当 ...）"})
    value = fields.String()
    start_date = fields.Date(allow_none=True)
    end_date = fields.Date(allow_none=True)


class HouseholdSchema(Schema):
    household_no = fields.String()
    head_atena_no = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    member_count = fields.Integer()
    members = fields.List(fields.Nested(ResidentSummarySchema))


class ResidentDetailSchema(ResidentSummarySchema):
    former_surname = fields.String(allow_none=True, metadata={"description": "旧氏"})
    kana_confirmed = fields.Boolean()
    kind = fields.String(metadata={"description": "住民種別"})
    household = fields.Nested(HouseholdSchema)
    attributes = fields.List(fields.Nested(AttributeSchema))


@tenant_api.route("/residents")
@requires("residents.search")
@tenant_api.arguments(ResidentQuerySchema, location="query")
@tenant_api.response(200, SearchResultSchema)
def search_residents(args: dict[str, Any]) -> dict[str, Any]:
    """住民検索（フリガナ・氏名・生年月日・住所）"""
    purpose = args.pop("purpose")
    try:
        result = service.search(tenant_db(), tenant_config(), SearchQuery(**args), purpose=purpose)
    except SearchInputError as exc:
        api_abort(422, message=str(exc), errors={"query": {exc.field: [str(exc)]}})
    tenant_db().commit()
    return {"residents": [service.summary(r) for r in result.residents], "more": result.more}


class PurposeSchema(Schema):
    purpose = fields.String(load_default=None)


@tenant_api.route("/residents/<int:resident_id>")
@requires("residents.view")
@tenant_api.arguments(PurposeSchema, location="query")
@tenant_api.response(200, ResidentDetailSchema)
def get_resident(args: dict[str, Any], resident_id: int) -> dict[str, Any]:
    """住民1人と世帯員・資格"""
    shown = service.view(tenant_db(), resident_id, purpose=args["purpose"])
    if shown is None:
        abort(404)
    tenant_db().commit()
    r = shown.resident
    detail = service.summary(r)
    detail.update(
        former_surname=r.former_surname,
        kana_confirmed=r.kana_confirmed,
        kind=r.kind,
        household={
            "household_no": r.household_no,
            "head_atena_no": shown.household.head_atena_no if shown.household else None,
            "address": shown.household.address if shown.household else r.address,
            "member_count": len(shown.members),
            "members": [service.summary(m) for m in shown.members],
        },
        attributes=[
            {"item": a.item, "value": a.value, "start_date": a.start_date, "end_date": a.end_date}
            for a in shown.attributes
        ],
    )
    return detail
