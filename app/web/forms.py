"""Forms at the counter: open a form filled from the records, correct it, preview, file it, sign it.

Pages:
- ``/residents/<id>/forms``: the forms in use, those the guidance named first;
- ``/residents/<id>/forms/<form>``: the filled form, every field editable, problems beside fields;
- ``/applications`` and ``/applications/<id>``: filed applications, acceptance, delivery status;
- ``/tablet`` and ``/applications/<id>/sign``: the pen tablet shows the form and takes the signature.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for

from app.audit.service import actor_var
from app.dates import JST
from app.forms import service
from app.forms.definition import FormDefinition
from app.forms.fill import FormSubject
from app.forms.jobs import export_soon
from app.forms.models import Application
from app.forms.service import FormInputError
from app.forms.signature import SignatureError, decode_signature
from app.identity.permissions import requires
from app.pdf import PageImageError, page_images
from app.tenancy.context import current_tenant, tenant_config, tenant_db
from app.web import tenant_web

STATUS_LABELS = {
    "submitted": "受付（未受理）",
    "accepted": "受理済み",
    "returned": "返戻",
    "withdrawn": "取下げ",
}
DELIVERY_LABELS = {"pending": "送付待ち", "delivered": "送付済み", "failed": "送付失敗（再試行します）"}


def _actor_id() -> str:
    actor = actor_var.get()
    return actor.id if actor else "unknown"


def _context_args(source: Any) -> dict[str, Any]:
    """Event and answers carried over from the guidance page (``event``, ``event_date``, ``q_*``)."""
    answers: dict[str, Any] = {}
    for key in source:
        if key.startswith("q_"):
            values = [v for v in source.getlist(key) if v != ""]
            if values:
                answers[key[2:]] = values if len(values) > 1 else values[0]
    event_date = None
    text = source.get("event_date", "")
    if text:
        try:
            event_date = dt.date.fromisoformat(text)
        except ValueError:
            event_date = None
    return {"answers": answers, "event_date": event_date, "event_name": source.get("event_name", "")}


def _corrections(definition: FormDefinition, form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in definition.fields:
        if spec.source == "computed":
            continue
        if spec.type == "checkbox":
            values[spec.id] = "1" if form.get(f"v_{spec.id}") else "0"
        elif f"v_{spec.id}" in form:
            values[spec.id] = form.get(f"v_{spec.id}", "")
    return values


@tenant_web.route("/residents/<int:resident_id>/forms")
@requires("forms.use")
def resident_forms(resident_id: int) -> str:
    db = tenant_db()
    try:
        service.subject_for_resident(db, tenant_config(), resident_id)
    except FormInputError:
        abort(404)
    named = request.args.getlist("form")
    forms = service.list_forms(db)
    forms.sort(key=lambda f: (f.definition.id not in named, f.definition.name))
    return render_template(
        "forms/list.html",
        resident_id=resident_id,
        forms=forms,
        named=set(named),
        carry=[(k, v) for k in request.args if k != "form" for v in request.args.getlist(k)],
    )


@tenant_web.route("/residents/<int:resident_id>/forms/<form_id>", methods=["GET", "POST"])
@requires("forms.use")
def resident_form(resident_id: int, form_id: str) -> str | Response:
    db, config = tenant_db(), tenant_config()
    source = request.form if request.method == "POST" else request.args
    try:
        subject = service.subject_for_resident(db, config, resident_id, **_context_args(source))
        form = service.active_form(db, form_id)
    except FormInputError:
        abort(404)
    return fill_page(form, subject, resident_id=resident_id, case_ref=request.values.get("case_ref") or None,
                     back=url_for("web.resident_forms", resident_id=resident_id))  # fmt: skip


def fill_page(
    form: service.ActiveForm,
    subject: FormSubject,
    *,
    resident_id: int | None,
    case_ref: str | None,
    back: str,
) -> str | Response:
    """The form screen (GET: as filled; POST: check, preview or file), for a resident or a case."""
    db, config = tenant_db(), tenant_config()
    form_id = form.definition.id
    source = request.form if request.method == "POST" else request.args
    corrections = _corrections(form.definition, request.form) if request.method == "POST" else None
    action = request.form.get("action", "") if request.method == "POST" else ""
    error = None
    if action == "preview":
        _, pdf = service.print_form(db, config, form_id, subject, corrections, resident_id)
        db.commit()
        return Response(
            pdf,
            mimetype="application/pdf",
            headers={"Content-Disposition": f"inline; filename={form_id}.pdf"},
        )
    if action == "submit":
        try:
            application = service.submit(
                db, current_tenant(), config, form_id, subject,
                created_by=_actor_id(), corrections=corrections, resident_id=resident_id, case_ref=case_ref,
            )  # fmt: skip
        except FormInputError as exc:
            error = str(exc)
        else:
            db.commit()
            return redirect(url_for("web.application_detail", application_id=application.id))  # type: ignore[return-value]
    _, filled = service.prepare(db, form_id, subject, corrections)
    if resident_id is not None:
        service.record_fill(db, form_id, resident_id)
    db.commit()
    return render_template(
        "forms/fill.html",
        back=back,
        form=form.definition,
        filled=filled,
        show_problems=request.method == "POST",
        error=error,
        carry=[(k, v) for k in source if k.startswith("q_") or k in ("event_date", "event_name", "case_ref")
               for v in source.getlist(k)],
    )  # fmt: skip


@tenant_web.route("/applications")
@requires("forms.use")
def applications() -> str:
    status = request.args.get("status", "")
    db = tenant_db()
    rows = service.list_applications(db, status=status or None)
    db.commit()  # the listing's operation-log entry
    return render_template(
        "forms/applications.html",
        rows=rows,
        status=status,
        status_labels=STATUS_LABELS,
        names=service.form_names(tenant_db()),
    )


def _application_or_404(application_id: int) -> Application:
    application = tenant_db().get(Application, application_id)
    if application is None:
        abort(404)
    return application


@tenant_web.route("/applications/<int:application_id>")
@requires("forms.use")
def application_detail(application_id: int) -> str:
    db = tenant_db()
    application = _application_or_404(application_id)
    definition, _ = service.stored_form(db, application)
    service.record_application_view(db, application)
    db.commit()
    return render_template(
        "forms/application.html",
        application=application,
        definition=definition,
        values=application.data.get("values", {}),
        tables=application.data.get("tables", {}),
        deliveries=service.deliveries_of(db, application.id),
        status_labels=STATUS_LABELS,
        delivery_labels=DELIVERY_LABELS,
        error=request.args.get("error"),
    )


@tenant_web.route("/applications/<int:application_id>/accept", methods=["POST"])
@requires("forms.accept")
def application_accept(application_id: int) -> Response:
    """受理: the application may leave by the back linkage."""
    db = tenant_db()
    _application_or_404(application_id)
    try:
        service.accept(db, application_id, _actor_id())
    except FormInputError as exc:
        db.rollback()
        return redirect(url_for("web.application_detail", application_id=application_id, error=str(exc)))  # type: ignore[return-value]
    db.commit()
    export_soon(current_tenant().id)
    return redirect(url_for("web.application_detail", application_id=application_id))  # type: ignore[return-value]


@tenant_web.route("/applications/<int:application_id>/pdf")
@requires("forms.use")
def application_pdf(application_id: int) -> Response:
    try:
        pdf = service.application_document(tenant_db(), application_id)
    except FormInputError:
        abort(404)
    tenant_db().commit()
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f"inline; filename=application-{application_id}.pdf"},
    )


@tenant_web.route("/tablet")
@requires("forms.sign")
def tablet() -> str:
    """The pen tablet's home: applications filed today that still wait for a signature."""
    since = dt.datetime.now(JST).replace(hour=0, minute=0, second=0, microsecond=0)
    waiting = service.awaiting_signature(tenant_db(), since)
    return render_template("forms/tablet.html", waiting=waiting)


@tenant_web.route("/applications/<int:application_id>/sign", methods=["GET", "POST"])
@requires("forms.sign")
def application_sign(application_id: int) -> str | Response:
    db = tenant_db()
    application = _application_or_404(application_id)
    definition, _ = service.stored_form(db, application)
    error = None
    if request.method == "POST":
        try:
            signature = decode_signature(request.form.get("signature", ""))
            service.sign(db, current_tenant(), tenant_config(), application_id, signature)
        except (SignatureError, FormInputError) as exc:
            db.rollback()
            error = str(exc)
        else:
            db.commit()
            return render_template("forms/signed.html", application=application, definition=definition)
    pages: list[str] = []
    if application.signature_key is None and application.status == "submitted":
        try:
            pdf = service.application_document(db, application_id, purpose="署名のための表示")
            pages = [
                "data:image/png;base64," + base64.b64encode(png).decode() for png in page_images(pdf, dpi=80)
            ]
        except PageImageError:
            error = "様式の画像を作れませんでした。職員にお声かけください"
        db.commit()
    return render_template(
        "forms/sign.html", application=application, definition=definition, pages=pages, error=error
    )
