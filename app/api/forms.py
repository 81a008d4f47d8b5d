"""Forms, applications, certificate requests and back-linkage deliveries."""

from __future__ import annotations

from typing import Any

from flask import Response, abort
from flask_smorest import abort as api_abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from app.api import tenant_api
from app.audit.service import actor_var
from app.forms import service
from app.forms.fill import FormSubject
from app.forms.jobs import export_soon
from app.forms.models import Application, ExportBatch
from app.forms.service import FormInputError
from app.forms.signature import SignatureError, decode_signature
from app.identity.permissions import requires
from app.tenancy.context import current_tenant, tenant_config, tenant_db


class FormSummarySchema(Schema):
    id = fields.String()
    name = fields.String()
    version = fields.String()
    effective_from = fields.Date()
    fields_ = fields.List(fields.Dict(), data_key="fields")


class FillRequestSchema(Schema):
    resident_id = fields.Integer(load_default=None)
    household = fields.List(fields.Dict(), load_default=None)
    answers = fields.Dict(load_default=dict)
    event_date = fields.Date(load_default=None)
    event_name = fields.String(load_default="")
    values = fields.Dict(load_default=dict, metadata={"description": "職員が訂正・追記した値（項目ID: 値）"})


class SubmitRequestSchema(FillRequestSchema):
    form_id = fields.String(required=True)
    case_ref = fields.String(load_default=None)
    signature_png = fields.String(
        load_default=None, metadata={"description": "ペンタブレットの署名（PNG, base64）"}
    )


class FilledSchema(Schema):
    form_id = fields.String()
    version = fields.String()
    values = fields.Dict()
    tables = fields.Dict()
    problems = fields.Dict(metadata={"description": "項目ごとの誤り（日本語）"})


class ApplicationSchema(Schema):
    id = fields.Integer()
    form_id = fields.String()
    form_version = fields.String()
    resident_id = fields.Integer(allow_none=True)
    case_ref = fields.String(allow_none=True)
    status = fields.String()
    values = fields.Dict()
    created_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    signed = fields.Boolean(metadata={"description": "署名が添付されている"})
    delivered_to = fields.List(fields.Dict(), metadata={"description": "後方連携の送付先と状態"})


class CertificateRequestSchema(Schema):
    certificate = fields.String(required=True, metadata={"description": "証明書（手数料表の項目）"})
    requester_name = fields.String(required=True)
    requester_relation = fields.String(required=True, validate=validate.OneOf(service.RELATIONS))
    proxy_document = fields.Boolean(load_default=False, metadata={"description": "委任状あり"})
    purpose = fields.String(required=True)
    copies = fields.Integer(required=True)
    subject_resident_id = fields.Integer(load_default=None)
    application_id = fields.Integer(load_default=None)


class CertificateRequestResultSchema(Schema):
    id = fields.Integer()
    certificate = fields.String()
    copies = fields.Integer()
    unit_fee = fields.Integer()
    total_fee = fields.Integer()


class ExportBatchSchema(Schema):
    id = fields.Integer()
    target = fields.String()
    file_key = fields.String()
    rows = fields.Integer()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)


def _fail(exc: FormInputError) -> None:
    errors: dict[str, Any] = {exc.field: [str(exc)]}
    errors.update({f"values.{k}": [v] for k, v in exc.problems.items()})
    api_abort(422, message=str(exc), errors={"json": errors})


def _subject(args: dict[str, Any]) -> FormSubject:
    if (args["resident_id"] is None) == (args["household"] is None):
        raise FormInputError(
            "resident_id", "住民（resident_id）か世帯の内容（household）のどちらか一方を指定してください"
        )
    extra = {"answers": args["answers"], "event_date": args["event_date"], "event_name": args["event_name"]}
    if args["resident_id"] is not None:
        return service.subject_for_resident(tenant_db(), tenant_config(), args["resident_id"], **extra)
    return service.subject_for_household(tenant_config(), args["household"], **extra)


@tenant_api.route("/forms")
@requires("forms.use")
@tenant_api.response(200, FormSummarySchema(many=True))
def list_forms() -> list[dict[str, Any]]:
    """使用できる様式と現在の版"""
    return [
        {
            "id": f.definition.id,
            "name": f.definition.name,
            "version": f.definition.version,
            "effective_from": f.definition.effective_from,
            "fields_": [
                {"id": x.id, "label": x.label, "type": x.type, "source": x.source, "required": x.required}
                for x in f.definition.fields
            ],
        }
        for f in service.list_forms(tenant_db())
    ]


@tenant_api.route("/forms/<form_id>/fill", methods=["POST"])
@requires("forms.use")
@tenant_api.arguments(FillRequestSchema)
@tenant_api.response(200, FilledSchema)
def fill_form(args: dict[str, Any], form_id: str) -> dict[str, Any]:
    """住民記録・世帯・回答から様式を記入（誤りは項目ごと）"""
    try:
        form, filled = service.prepare(tenant_db(), form_id, _subject(args), args["values"])
    except FormInputError as exc:
        _fail(exc)
    if args["resident_id"] is not None:
        service.record_fill(tenant_db(), form_id, args["resident_id"])
        tenant_db().commit()
    return {"form_id": form_id, "version": form.definition.version, "values": filled.values,
            "tables": filled.tables, "problems": filled.problems}  # fmt: skip


@tenant_api.route("/forms/<form_id>/preview", methods=["POST"])
@requires("forms.use")
@tenant_api.arguments(FillRequestSchema)
@tenant_api.response(200, content_type="application/pdf")
def preview_form(args: dict[str, Any], form_id: str) -> Response:
    """記入済みの様式（PDF, A4）— 印刷・プレビュー"""
    try:
        _, pdf = service.print_form(
            tenant_db(), tenant_config(), form_id, _subject(args), args["values"], args["resident_id"]
        )
    except FormInputError as exc:
        _fail(exc)
    tenant_db().commit()
    return Response(
        pdf, mimetype="application/pdf", headers={"Content-Disposition": f"inline; filename={form_id}.pdf"}
    )


def _as_data_url(value: str) -> str:
    return value if value.startswith("data:") else "data:image/png;base64," + value


def _application_json(application: Application) -> dict[str, Any]:
    return {
        "id": application.id,
        "form_id": application.form_id,
        "form_version": application.form_version,
        "resident_id": application.resident_id,
        "case_ref": application.case_ref,
        "status": application.status,
        "values": application.data.get("values", {}),
        "created_at": application.created_at,
        "accepted_at": application.accepted_at,
        "signed": application.signature_key is not None,
        "delivered_to": service.deliveries_of(tenant_db(), application.id),
    }


@tenant_api.route("/applications", methods=["POST"])
@requires("forms.use")
@tenant_api.arguments(SubmitRequestSchema)
@tenant_api.response(201, ApplicationSchema)
def submit_application(args: dict[str, Any]) -> dict[str, Any]:
    """申請を登録（PDFを保存）"""
    signature = None
    if args["signature_png"]:
        try:
            signature = decode_signature(_as_data_url(args["signature_png"]))
        except SignatureError as exc:
            api_abort(422, message=str(exc), errors={"json": {"signature_png": [str(exc)]}})
    actor = actor_var.get()
    try:
        application = service.submit(
            tenant_db(), current_tenant(), tenant_config(), args["form_id"], _subject(args),
            created_by=actor.id if actor else "api", corrections=args["values"],
            resident_id=args["resident_id"], case_ref=args["case_ref"], signature_png=signature,
        )  # fmt: skip
    except FormInputError as exc:
        _fail(exc)
    tenant_db().commit()
    return _application_json(application)


@tenant_api.route("/applications/<int:application_id>")
@requires("forms.use")
@tenant_api.response(200, ApplicationSchema)
def get_application(application_id: int) -> dict[str, Any]:
    """申請と後方連携の状況"""
    db = tenant_db()
    application = db.get(Application, application_id)
    if application is None:
        abort(404)
    service.record_application_view(db, application)
    db.commit()
    return _application_json(application)


@tenant_api.route("/applications/<int:application_id>/accept", methods=["POST"])
@requires("forms.accept")
@tenant_api.response(200, ApplicationSchema)
def accept_application(application_id: int) -> dict[str, Any]:
    """受理（後方連携の対象にする）"""
    actor = actor_var.get()
    try:
        application = service.accept(tenant_db(), application_id, actor.id if actor else "api")
    except FormInputError as exc:
        if exc.field == "application_id" and "見つかりません" in str(exc):
            abort(404)
        _fail(exc)
    tenant_db().commit()
    export_soon(current_tenant().id)
    return _application_json(application)


@tenant_api.route("/applications/<int:application_id>/pdf")
@requires("forms.use")
@tenant_api.response(200, content_type="application/pdf")
def application_pdf(application_id: int) -> Response:
    """申請時に印刷した PDF"""
    try:
        pdf = service.application_document(tenant_db(), application_id)
    except FormInputError:
        abort(404)
    tenant_db().commit()
    return Response(pdf, mimetype="application/pdf")


class SignatureSchema(Schema):
    signature_png = fields.String(
        required=True, metadata={"description": "ペンタブレットの署名（PNG, data URL または base64）"}
    )


@tenant_api.route("/applications/<int:application_id>/signature", methods=["POST"])
@requires("forms.sign")
@tenant_api.arguments(SignatureSchema)
@tenant_api.response(200, ApplicationSchema)
def sign_application(args: dict[str, Any], application_id: int) -> dict[str, Any]:
    """署名を添付（PDF を署名入りで作り直す）"""
    if tenant_db().get(Application, application_id) is None:
        abort(404)
    try:
        signature = decode_signature(_as_data_url(args["signature_png"]))
        application = service.sign(tenant_db(), current_tenant(), tenant_config(), application_id, signature)
    except SignatureError as exc:
        api_abort(422, message=str(exc), errors={"json": {"signature_png": [str(exc)]}})
    except FormInputError as exc:
        _fail(exc)
    tenant_db().commit()
    return _application_json(application)


@tenant_api.route("/certificate-requests", methods=["POST"])
@requires("forms.use")
@tenant_api.arguments(CertificateRequestSchema)
@tenant_api.response(201, CertificateRequestResultSchema)
def certificate_request(args: dict[str, Any]) -> dict[str, Any]:
    """証明書交付請求（手数料を計算）"""
    try:
        request = service.request_certificate(tenant_db(), tenant_config(), **args)
    except FormInputError as exc:
        _fail(exc)
    tenant_db().commit()
    return {"id": request.id, "certificate": request.certificate, "copies": request.copies,
            "unit_fee": request.unit_fee, "total_fee": request.total_fee}  # fmt: skip


@tenant_api.route("/deliveries")
@requires("forms.use")
@tenant_api.response(200, ExportBatchSchema(many=True))
def list_deliveries() -> list[ExportBatch]:
    """後方連携の送付（ファイル）一覧"""
    return list(tenant_db().scalars(select(ExportBatch).order_by(ExportBatch.id.desc()).limit(200)))
