"""Tenant information and the service calendar."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.dates import JST
from app.identity.permissions import requires
from app.tenancy.config import format_minutes
from app.tenancy.context import current_tenant, tenant_config, tenant_db
from app.tenancy.service import tenant_calendars


class CounterSchema(Schema):
    id = fields.String()
    name = fields.String()
    ticket_prefix = fields.String()


class OfficeSchema(Schema):
    id = fields.String()
    name = fields.String()
    postal_code = fields.String()
    address = fields.String()
    counters = fields.List(fields.Nested(CounterSchema))


class TenantInfoSchema(Schema):
    id = fields.String()
    code = fields.String(metadata={"description": "全国地方公共団体コード"})
    name = fields.String()
    prefecture = fields.String()
    open_now = fields.Boolean(metadata={"description": "窓口が開庁中か"})
    support_desk_open_now = fields.Boolean()
    offices = fields.List(fields.Nested(OfficeSchema))


class CalendarQuerySchema(Schema):
    start = fields.Date(load_default=None, metadata={"description": "開始日 (既定: 本日)"})
    days = fields.Integer(load_default=14, validate=validate.Range(min=1, max=366))


class DaySchema(Schema):
    date = fields.Date()
    hours = fields.List(fields.String(), metadata={"description": "開庁時間帯 (HH:MM-HH:MM, JST)"})
    support_desk_hours = fields.List(fields.String())
    closed_reason = fields.String(allow_none=True, metadata={"description": "祝日名・年末年始・休庁日"})
    overrides = fields.List(fields.Dict(), metadata={"description": "臨時開庁・臨時閉庁"})


def _spans(intervals: list[tuple[int, int]]) -> list[str]:
    return [f"{format_minutes(s)}-{format_minutes(e)}" for s, e in intervals]


@tenant_api.route("/tenant")
@requires("calendar.view")
@tenant_api.response(200, TenantInfoSchema)
def tenant_info() -> dict[str, Any]:
    """自治体の基本情報と現在の開庁状況"""
    config = tenant_config()
    service, desk = tenant_calendars(tenant_db(), config)
    now = dt.datetime.now(JST)
    ident = config.tenant
    return {
        "id": current_tenant().id,
        "code": ident.code,
        "name": ident.name,
        "prefecture": ident.prefecture,
        "open_now": service.is_open(now),
        "support_desk_open_now": desk.is_open(now),
        "offices": [o.model_dump() for o in ident.offices],
    }


@tenant_api.route("/calendar")
@requires("calendar.view")
@tenant_api.arguments(CalendarQuerySchema, location="query")
@tenant_api.response(200, DaySchema(many=True))
def calendar(args: dict[str, Any]) -> list[dict[str, Any]]:
    """開庁カレンダー（祝日・年末年始・臨時開庁を反映）"""
    service, desk = tenant_calendars(tenant_db(), tenant_config())
    now = dt.datetime.now(JST)
    start: dt.date = args["start"] or now.date()
    out = []
    for i in range(args["days"]):
        day = start + dt.timedelta(days=i)
        status = service.day_status(day, as_of=now)
        out.append(
            {
                "date": day,
                "hours": _spans(status.hours),
                "support_desk_hours": _spans(desk.hours_on(day, as_of=now)),
                "closed_reason": status.closed_reason,
                "overrides": [
                    {"kind": o.kind, "hours": _spans([o.hours]) if o.hours else [], "reason": o.reason}
                    for o in status.overrides
                ],
            }
        )
    return out
