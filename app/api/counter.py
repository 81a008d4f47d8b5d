"""Counter API: tickets, cases (one screen = one call), hand-over, department queues.

A case answer carries everything the case screen shows — visitor, household, events, answers,
guidance, procedures with their departments' status, applications — so a portal or a 行政CRM reads
a case's state in one request. Changes name the version they were made from; a stale one gets 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from flask import abort
from flask_smorest import abort as api_abort
from marshmallow import Schema, fields, validate

from app.api import tenant_api
from app.audit.service import actor_var
from app.counter import service
from app.counter.models import Case, Ticket
from app.counter.service import Conflict, CounterError, NotFound
from app.forms import service as forms
from app.identity.permissions import requires
from app.residents import service as residents
from app.tenancy.context import tenant_config, tenant_db


def _clerk() -> str:
    actor = actor_var.get()
    return actor.id if actor else "api"


def _fail(exc: CounterError) -> NoReturn:
    if isinstance(exc, NotFound):
        abort(404)
    api_abort(
        409 if isinstance(exc, Conflict) else 422, message=str(exc), errors={"json": {exc.field: [str(exc)]}}
    )
    raise AssertionError  # unreachable: api_abort raises


class TicketRequestSchema(Schema):
    office_id = fields.String(load_default=None)
    counter_id = fields.String(required=True)


class TicketSchema(Schema):
    id = fields.Integer()
    label = fields.String()
    counter_id = fields.String()
    status = fields.String()
    issued_at = fields.DateTime()
    called_at = fields.DateTime(allow_none=True)
    desk = fields.String(allow_none=True)


class OpenCaseSchema(Schema):
    office_id = fields.String(load_default=None)
    counter_id = fields.String(load_default=None)
    ticket_id = fields.Integer(load_default=None)


class VersionedSchema(Schema):
    version = fields.Integer(
        required=True, metadata={"description": "画面に表示していた案件の版（楽観的排他）"}
    )


class IdentifySchema(VersionedSchema):
    by = fields.String(load_default="search", validate=validate.OneOf(["card", "qr", "search", "manual"]))
    resident_id = fields.Integer(load_default=None)
    household = fields.List(
        fields.Dict(), load_default=None, metadata={"description": "記録にない世帯（転入など）"}
    )


class EventsSchema(VersionedSchema):
    events = fields.List(fields.String(), required=True)
    event_date = fields.Date(load_default=None)
    answers = fields.Dict(load_default=dict)


class HandOverSchema(VersionedSchema):
    procedures = fields.List(
        fields.Dict(),
        load_default=None,
        metadata={"description": "[{procedure, member_key}]。省略時は必要な手続きすべて"},
    )


class StatusSchema(VersionedSchema):
    action = fields.String(required=True, validate=validate.OneOf(["pause", "close", "resume"]))
    note = fields.String(load_default=None)


class ProcedureActionSchema(VersionedSchema):
    action = fields.String(required=True, validate=validate.OneOf(["start", "done", "cancel", "reopen"]))
    note = fields.String(load_default=None)


class CaseScreenSchema(Schema):
    case = fields.Dict()
    ticket = fields.Dict(allow_none=True)
    visitor = fields.Dict(allow_none=True)
    household = fields.List(fields.Dict())
    guidance = fields.Dict(allow_none=True)
    procedures = fields.List(fields.Dict())
    applications = fields.List(fields.Dict())


class CaseSummarySchema(Schema):
    id = fields.Integer()
    status = fields.String()
    visitor_name = fields.String(allow_none=True)
    events = fields.List(fields.String())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class QueueItemSchema(Schema):
    procedure_id = fields.Integer()
    version = fields.Integer()
    case_id = fields.Integer()
    visitor_name = fields.String(allow_none=True)
    name = fields.String()
    member_name = fields.String(allow_none=True)
    status = fields.String()
    confirm = fields.Boolean()
    handed_over_at = fields.DateTime(allow_none=True)
    waiting_minutes = fields.Integer()


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value else None


def case_screen(case: Case) -> dict[str, Any]:
    """Everything the case screen shows (reading the visitor's household is audit-logged)."""
    db = tenant_db()
    visitor, household = None, []
    if case.resident_id is not None:
        shown = residents.view(db, case.resident_id, purpose=f"案件{case.id}", details=False)
        if shown is not None:
            visitor = _person(residents.summary(shown.resident))
            household = [_person(residents.summary(m)) for m in shown.members]
    elif case.household:
        household = list(case.household)
    guidance: dict[str, Any] | None = None
    try:
        found = service.guidance_for(db, case)
    except CounterError as exc:
        guidance = {"error": str(exc)}
    else:
        if found is not None:
            guidance = {
                "catalogue_version_id": found.catalogue_version_id,
                "procedures": [e.as_dict() for e in found.needed],
                "to_confirm": [e.as_dict() for e in found.confirm],
                "open_questions": [q.__dict__ for q in found.open_questions],
            }
    ticket = db.get(Ticket, case.ticket_id) if case.ticket_id else None
    return {
        "case": {
            "id": case.id, "version": case.version, "status": case.status, "events": case.events,
            "event_date": _iso(case.event_date), "answers": case.answers, "identified_by": case.identified_by,
            "visitor_name": case.visitor_name, "office_id": case.office_id, "counter_id": case.counter_id,
            "created_at": _iso(case.created_at), "updated_at": _iso(case.updated_at), "closed_at": _iso(case.closed_at),
            "note": case.note,
        },
        "ticket": {"id": ticket.id, "label": ticket.label, "status": ticket.status, "issued_at": _iso(ticket.issued_at),
                   "called_at": _iso(ticket.called_at)} if ticket else None,
        "visitor": visitor,
        "household": household,
        "guidance": guidance,
        "procedures": [
            {"id": p.id, "version": p.version, "procedure": p.procedure_id, "name": p.name,
             "department": p.department, "member_key": p.member_key, "member_name": p.member_name,
             "status": p.status, "confirm": p.confirm, "handed_over_at": _iso(p.handed_over_at),
             "started_at": _iso(p.started_at), "done_at": _iso(p.done_at)}
            for p in service.procedures_of(db, case.id)
        ],
        "applications": [
            {"id": a.id, "form_id": a.form_id, "status": a.status, "signed": a.signature_key is not None}
            for a in forms.applications_of_case(db, str(case.id))
        ],
    }  # fmt: skip


def _person(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in summary.items()}


def _office_id(value: str | None) -> str:
    return value or tenant_config().tenant.offices[0].id


@tenant_api.route("/tickets", methods=["POST"])
@requires("counter.reception")
@tenant_api.arguments(TicketRequestSchema)
@tenant_api.response(201, TicketSchema)
def issue_ticket(args: dict[str, Any]) -> Ticket:
    """番号札を発行"""
    try:
        ticket = service.issue_ticket(
            tenant_db(), tenant_config(), _office_id(args["office_id"]), args["counter_id"]
        )
    except CounterError as exc:
        _fail(exc)
    tenant_db().commit()
    return ticket


@tenant_api.route("/cases", methods=["POST"])
@requires("counter.cases")
@tenant_api.arguments(OpenCaseSchema)
@tenant_api.response(201, CaseScreenSchema)
def open_case(args: dict[str, Any]) -> dict[str, Any]:
    """案件を開始（番号札があればその番号札で）"""
    try:
        case = service.open_case(tenant_db(), tenant_config(), _clerk(), office_id=_office_id(args["office_id"]),
                                 counter_id=args["counter_id"], ticket_id=args["ticket_id"])  # fmt: skip
    except CounterError as exc:
        _fail(exc)
    screen = case_screen(case)
    tenant_db().commit()
    return screen


@tenant_api.route("/cases")
@requires("counter.cases")
@tenant_api.response(200, CaseSummarySchema(many=True))
def list_cases() -> list[Case]:
    """案件の一覧（状態・来庁者名・受付日で絞り込み）"""
    from flask import request

    day = None
    if request.args.get("day"):
        try:
            day = dt.date.fromisoformat(request.args["day"])
        except ValueError:
            api_abort(
                422, message="day は YYYY-MM-DD で指定してください", errors={"query": {"day": ["日付の形式"]}}
            )
    db = tenant_db()
    cases = service.find_cases(db, status=request.args.get("status") or None,
                               name=request.args.get("name") or None, day=day)  # fmt: skip
    db.commit()
    return cases


@tenant_api.route("/cases/<int:case_id>")
@requires("counter.cases")
@tenant_api.response(200, CaseScreenSchema)
def get_case(case_id: int) -> dict[str, Any]:
    """案件の画面一式（来庁者・世帯・案内・手続きの状況・申請）"""
    case = tenant_db().get(Case, case_id)
    if case is None:
        abort(404)
    screen = case_screen(case)
    tenant_db().commit()
    return screen


def _then_screen(case_id: int) -> dict[str, Any]:
    db = tenant_db()
    case = service.get_case(db, case_id)
    screen = case_screen(case)
    db.commit()
    return screen


@tenant_api.route("/cases/<int:case_id>/identify", methods=["POST"])
@requires("counter.cases")
@tenant_api.arguments(IdentifySchema)
@tenant_api.response(200, CaseScreenSchema)
def identify(args: dict[str, Any], case_id: int) -> dict[str, Any]:
    """本人確認（住民または記録にない世帯）"""
    try:
        service.identify(tenant_db(), case_id, args["version"], _clerk(), by=args["by"],
                         resident_id=args["resident_id"], household=args["household"])  # fmt: skip
    except CounterError as exc:
        _fail(exc)
    return _then_screen(case_id)


@tenant_api.route("/cases/<int:case_id>/events", methods=["POST"])
@requires("counter.cases")
@tenant_api.arguments(EventsSchema)
@tenant_api.response(200, CaseScreenSchema)
def set_events(args: dict[str, Any], case_id: int) -> dict[str, Any]:
    """ライフイベントと回答"""
    try:
        case = service.set_events(tenant_db(), case_id, args["version"], _clerk(), events=args["events"],
                                  event_date=args["event_date"], answers=args["answers"])  # fmt: skip
        service.guidance_for(tenant_db(), case)
    except CounterError as exc:
        _fail(exc)
    return _then_screen(case_id)


@tenant_api.route("/cases/<int:case_id>/hand-over", methods=["POST"])
@requires("counter.cases")
@tenant_api.arguments(HandOverSchema)
@tenant_api.response(200, CaseScreenSchema)
def hand_over(args: dict[str, Any], case_id: int) -> dict[str, Any]:
    """担当課へ回付"""
    selected = None
    if args["procedures"] is not None:
        selected = [(str(p.get("procedure", "")), str(p.get("member_key") or "")) for p in args["procedures"]]
    try:
        service.hand_over(tenant_db(), case_id, args["version"], _clerk(), selected=selected)
    except CounterError as exc:
        _fail(exc)
    return _then_screen(case_id)


@tenant_api.route("/cases/<int:case_id>/status", methods=["POST"])
@requires("counter.cases")
@tenant_api.arguments(StatusSchema)
@tenant_api.response(200, CaseScreenSchema)
def case_status(args: dict[str, Any], case_id: int) -> dict[str, Any]:
    """中断・終了・再開"""
    db = tenant_db()
    try:
        if args["action"] == "pause":
            service.pause(db, case_id, args["version"], _clerk(), note=args["note"])
        elif args["action"] == "close":
            service.close(db, case_id, args["version"], _clerk())
        else:
            service.resume(db, tenant_config(), case_id, _clerk())
    except CounterError as exc:
        _fail(exc)
    return _then_screen(case_id)


@tenant_api.route("/queues/<department>")
@requires("counter.queue")
@tenant_api.response(200, QueueItemSchema(many=True))
def department_queue(department: str) -> list[dict[str, Any]]:
    """担当課の処理待ち（古い順）"""
    db = tenant_db()
    items = service.department_queue(db, department)
    service.record_queue_view(db, department, items)
    db.commit()
    return [
        {"procedure_id": i.procedure.id, "version": i.procedure.version, "case_id": i.case.id,
         "visitor_name": i.case.visitor_name, "name": i.procedure.name, "member_name": i.procedure.member_name,
         "status": i.procedure.status, "confirm": i.procedure.confirm, "handed_over_at": i.procedure.handed_over_at,
         "waiting_minutes": i.waiting_minutes}
        for i in items
    ]  # fmt: skip


@tenant_api.route("/procedures/<int:procedure_id>", methods=["POST"])
@requires("counter.queue")
@tenant_api.arguments(ProcedureActionSchema)
@tenant_api.response(200, QueueItemSchema)
def procedure_action(args: dict[str, Any], procedure_id: int) -> dict[str, Any]:
    """手続きの着手・完了・取消・差戻し"""
    db = tenant_db()
    try:
        p = service.update_procedure(db, procedure_id, args["version"], _clerk(), action=args["action"],
                                     note=args["note"])  # fmt: skip
    except CounterError as exc:
        _fail(exc)
    case = service.get_case(db, p.case_id)
    db.commit()
    return {"procedure_id": p.id, "version": p.version, "case_id": p.case_id, "visitor_name": case.visitor_name,
            "name": p.name, "member_name": p.member_name, "status": p.status, "confirm": p.confirm,
            "handed_over_at": p.handed_over_at, "waiting_minutes": 0}  # fmt: skip
