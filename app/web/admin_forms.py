"""Form editing for municipal staff (様式の管理): edit, live preview, save as draft, approve.

The editor posts the definition and template to ``preview`` as the user types; the answer is the
first page as a PNG thumbnail (and, on request, the whole PDF), or the problems with their lines.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from app.audit.service import actor_var
from app.dates import JST
from app.forms import editing, service
from app.forms.definition import FormDefinition
from app.forms.editing import FormEditError
from app.identity.permissions import requires
from app.inputs import bounded_int
from app.pdf import PageImageError, page_images
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web

_FORM_ID = re.compile(r"^[a-z][a-z0-9_]{1,60}$")
STATUS_LABELS = {"draft": "下書き", "approved": "承認済み", "withdrawn": "取下げ"}


def _actor_id() -> str:
    actor = actor_var.get()
    return actor.id if actor else "unknown"


def _skeleton(form_id: str) -> str:
    tomorrow = dt.datetime.now(JST).date() + dt.timedelta(days=1)
    return (
        f'id: {form_id}\nname: 新しい様式\nversion: "{tomorrow.year}.1"\neffective_from: {tomorrow.isoformat()}\n'
        "intro: 市長 様\nfields:\n  - {id: applicant_name, label: 届出人 氏名, source: resident.name, required: true}\n"
        "  - {id: address, label: 住所, source: resident.address}\n"
    )


@tenant_web.route("/admin/forms")
@requires("admin.forms")
def admin_forms(error: str | None = None) -> str:
    db = tenant_db()
    active = {f.definition.id: f for f in service.list_forms(db)}
    rows = editing.form_overview(db)
    return render_template(
        "admin/forms.html", rows=rows, active=active, status_labels=STATUS_LABELS, error=error
    )


@tenant_web.route("/admin/forms/new")
@requires("admin.forms")
def admin_form_new() -> str | Response:
    form_id = request.args.get("form_id", "").strip()
    if not _FORM_ID.fullmatch(form_id):
        return admin_forms(error="様式の ID は英小文字で始め、英小文字・数字・_ で2〜61文字にしてください")
    return redirect(url_for("web.admin_form_edit", form_id=form_id))  # type: ignore[return-value]


@tenant_web.route("/admin/forms/<form_id>", methods=["GET", "POST"])
@requires("admin.forms")
def admin_form_edit(form_id: str) -> str | Response:
    if not _FORM_ID.fullmatch(form_id):
        abort(404)
    db = tenant_db()
    definition_text, template_text, latest = editing.current_text(db, form_id)
    problems: list[editing.EditProblem] = []
    saved = None
    if request.method == "POST":
        definition_text = request.form.get("definition", "")
        template_text = request.form.get("template", "")
        try:
            saved = editing.save_draft(
                db, tenant_config(), form_id, definition_text, template_text, _actor_id()
            )
        except FormEditError as exc:
            db.rollback()
            problems = exc.problems
        else:
            db.commit()
            return redirect(url_for("web.admin_form_edit", form_id=form_id, saved=saved.id))  # type: ignore[return-value]
    if latest is None and not definition_text:
        definition_text = _skeleton(form_id)
    return render_template(
        "admin/form_edit.html",
        form_id=form_id,
        definition_text=definition_text,
        template_text=template_text,
        generic=editing.generic_template_text(),
        versions=editing.versions(db, form_id),
        problems=problems,
        saved=request.args.get("saved", type=bounded_int),
        status_labels=STATUS_LABELS,
        today=dt.datetime.now(JST).date(),
        name=FormDefinition.model_validate(latest.definition).name if latest else form_id,
    )


@tenant_web.route("/admin/forms/<form_id>/preview", methods=["POST"])
@requires("admin.forms")
def admin_form_preview(form_id: str) -> Response:
    """Live preview of the text in the editor: JSON with a PNG of page 1, or the PDF itself."""
    if not _FORM_ID.fullmatch(form_id):
        abort(404)
    try:
        source = editing.parse_draft(
            form_id, request.form.get("definition", ""), request.form.get("template")
        )
        pdf = editing.preview_pdf(tenant_config(), source)
    except FormEditError as exc:
        return jsonify(ok=False, problems=[str(p) for p in exc.problems])
    if request.form.get("format") == "pdf":
        return Response(
            pdf, mimetype="application/pdf", headers={"Content-Disposition": "inline; filename=preview.pdf"}
        )
    try:
        pages = page_images(pdf, dpi=50)
    except PageImageError:
        return jsonify(ok=False, problems=["プレビュー画像を作れませんでした"])
    return jsonify(
        ok=True,
        pages=len(pages),
        png="data:image/png;base64," + base64.b64encode(pages[0]).decode() if pages else None,
    )


@tenant_web.route("/admin/forms/versions/<int:row_id>", methods=["POST"])
@requires("admin.forms")
def admin_form_version(row_id: int) -> Response:
    """承認 or 取下げ of one version."""
    db = tenant_db()
    action = request.form.get("action")
    try:
        if action == "approve":
            row = editing.approve(db, row_id, _actor_id())
        elif action == "withdraw":
            row = editing.withdraw(db, row_id, _actor_id())
        else:
            abort(400)
    except FormEditError as exc:
        db.rollback()
        form_id = editing.form_of_version(db, row_id)
        if form_id is None:
            abort(404)
        return render_template(  # type: ignore[return-value]
            "admin/form_version_error.html", form_id=form_id, problems=exc.problems
        )
    db.commit()
    return redirect(url_for("web.admin_form_edit", form_id=row.form_id))  # type: ignore[return-value]
