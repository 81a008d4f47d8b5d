"""Provider pages under ``/ops/``: the monthly reports with download links, support-desk inquiries,
releases. Provider staff sign-in (TOTP) is required for every page (``require_provider``)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from botocore.exceptions import ClientError
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from app.dates import JST
from app.identity.context import current_principal
from app.identity.permissions import signed_in
from app.reports import records
from app.reports.models import CATEGORIES, CHANNELS, RELEASE_KINDS
from app.reports.period import Month, MonthInputError
from app.reports.service import control_session, find_file, list_reports
from app.tenancy.context import is_public
from app.tenancy.service import registry
from app.web.ops import require_provider

log = logging.getLogger(__name__)
ops_reports = Blueprint("ops_reports", __name__, url_prefix="/ops", template_folder="templates")


@ops_reports.before_request
def _guard() -> WerkzeugResponse | None:
    if is_public(current_app.view_functions.get(request.endpoint or "")):
        return None
    return require_provider()


def _me() -> str:
    principal = current_principal()
    return principal.display_name if principal else ""


def download(month: str, scope: str, name: str) -> Response:
    """A stored report file, only under the exact month, scope and name the report lists."""
    try:
        Month.parse(month)
    except MonthInputError:
        abort(404)
    with control_session() as session:
        try:
            found = find_file(session, month, scope, name)
        except ClientError:  # listed but gone from storage: the same answer as never stored
            log.warning("report file missing from storage: %s/%s/%s", month, scope, name)
            found = None
    if found is None:
        abort(404)
    meta, data = found
    response = Response(data, mimetype=meta["media_type"].split(";")[0])
    if meta["media_type"].startswith("text/csv"):
        response.headers["Content-Type"] = meta["media_type"]
    filename = name.rsplit("/", 1)[-1]
    if name.startswith("csv/"):
        filename = f"{month}-{scope}-{filename}"
    disposition = "inline" if filename.endswith(".pdf") else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@ops_reports.route("/reports")
@signed_in
def report_list() -> str:
    with control_session() as session:
        rows = list_reports(session)
        months: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        names = {r.id: r.name for r in registry.all()}
        for row in rows:
            months.setdefault(row.month, []).append(
                {
                    "scope": row.scope,
                    "name": "デジタル庁向け（サービス全体）"
                    if row.scope == "service"
                    else names.get(row.scope, row.scope),
                    "files": row.files,
                    "generated_at": row.generated_at.astimezone(JST).strftime("%Y-%m-%d %H:%M"),
                    "generations": row.generations,
                    "sha": row.content_sha256[:12],
                }
            )
    return render_template("ops_reports/reports.html", months=months)


@ops_reports.route("/reports/<month>/<scope>/<path:name>")
@signed_in
def report_file(month: str, scope: str, name: str) -> Response:
    return download(month, scope, name)


@ops_reports.route("/inquiries", methods=["GET", "POST"])
@signed_in
def inquiry_list() -> tuple[str, int] | WerkzeugResponse:
    error = None
    if request.method == "POST":
        form = request.form
        with control_session() as session:
            try:
                row = records.add_inquiry(
                    session,
                    tenant_id=form.get("tenant") or None,
                    channel=form.get("channel", ""),
                    category=form.get("category", ""),
                    summary=form.get("summary", ""),
                    opened_at=form.get("opened_at") or None,
                    closed_at=form.get("closed_at") or None,
                    by=_me(),
                )
                session.commit()
                flash(f"問い合わせ #{row.id} を記録しました。")
                return redirect(url_for("ops_reports.inquiry_list"))
            except records.RecordInputError as exc:
                session.rollback()
                error = str(exc)
    with control_session() as session:
        rows = records.list_inquiries(session)
        return render_template(
            "ops_reports/inquiries.html",
            rows=rows,
            error=error,
            channels=CHANNELS,
            categories=CATEGORIES,
            tenants=[t for t in registry.all() if t.status == "active"],
            jst=lambda m: m.astimezone(JST).strftime("%Y-%m-%d %H:%M") if m else "—",
        ), 200 if error is None else 422


@ops_reports.route("/inquiries/<int:inquiry_id>/close", methods=["POST"])
@signed_in
def inquiry_close(inquiry_id: int) -> WerkzeugResponse:
    with control_session() as session:
        try:
            records.close_inquiry(session, inquiry_id, request.form.get("closed_at") or None)
            session.commit()
        except records.RecordInputError as exc:
            session.rollback()
            flash(str(exc))
    return redirect(url_for("ops_reports.inquiry_list"))


@ops_reports.route("/releases")
@signed_in
def release_list() -> str:
    with control_session() as session:
        rows = records.list_releases(session)
        return render_template(
            "ops_reports/releases.html",
            rows=rows,
            kinds=RELEASE_KINDS,
            jst=lambda m: m.astimezone(JST).strftime("%Y-%m-%d %H:%M"),
        )


def register(app: Flask) -> None:
    app.register_blueprint(ops_reports)
