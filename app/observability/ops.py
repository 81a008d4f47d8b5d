"""Provider operations for incidents: the Alertmanager webhook, staff pages and a JSON API.

- ``POST /ops/alertmanager/webhook``: Alertmanager only, authenticated by a shared bearer token
  (secret reference ``MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN_REF``, default
  ``env:MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN``); no cookie, no CSRF.
- ``/ops/incidents...``: pages to acknowledge, resolve and write the report (CSRF-protected forms).
- ``/api/ops/incidents...``: the same as JSON (writes must be ``application/json``, which a
  cross-site form cannot send).

Pages and JSON API need signed-in provider staff (``app.web.ops.require_provider``, TOTP always);
the acting person recorded on an incident is the signed-in one unless the form names someone else.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_smorest import Blueprint as ApiBlueprint
from werkzeug.wrappers import Response as WerkzeugResponse

from app.config import get_settings
from app.dates import JST
from app.identity.context import current_principal
from app.identity.permissions import signed_in
from app.observability import incidents as svc
from app.observability.models import INCIDENT_STATUSES
from app.secrets import SecretError, resolve
from app.tenancy.context import is_public, public_endpoint
from app.web.ops import require_provider

log = logging.getLogger(__name__)
ops_web = Blueprint("ops_incidents", __name__, url_prefix="/ops", template_folder="templates")
# In the OpenAPI document beside the cities' API (app.api registers it with flask-smorest).
ops_api = ApiBlueprint(
    "ops_api", __name__, url_prefix="/api/ops", description="事業者の運用 API（障害の一覧・初動・解決・報告）"
)
STATUS_JA = {"open": "未対応", "acknowledged": "対応中", "resolved": "復旧済み"}


def _acting(given: str) -> str:
    """Who acts: the name typed in the form, else the signed-in provider staff member."""
    principal = current_principal()
    return given.strip() or (principal.display_name if principal else "")


@ops_web.before_request
def _guard_pages() -> WerkzeugResponse | None:
    if is_public(current_app.view_functions.get(request.endpoint or "")):
        return None  # the webhook: authenticated by its bearer token
    return require_provider()


@ops_api.before_request
def _guard_api() -> None:
    require_provider(api=True)
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not request.is_json:
        abort(415)


# --- webhook ------------------------------------------------------------------------------------


def _expected_token() -> str | None:
    try:
        return resolve(get_settings().alertmanager_webhook_token_ref)
    except SecretError as exc:
        log.error("alertmanager webhook token unavailable: %s", exc)
        return None


@ops_web.route("/alertmanager/webhook", methods=["POST"])
@public_endpoint  # Alertmanager authenticates with its bearer token, checked in the view
def alertmanager_webhook() -> tuple[Response, int]:
    expected = _expected_token()
    if expected is None:
        return jsonify({"status": "unavailable", "message": "通知の認証情報が設定されていません"}), 503
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), expected.encode()):
        return jsonify({"status": "unauthorized"}), 401
    payload = request.get_json(silent=True)
    with svc.control_session() as session:
        try:
            touched = svc.receive_alertmanager(session, payload)
        except svc.IncidentInputError as exc:
            return jsonify({"status": "rejected", "message": str(exc)}), 400
        session.commit()
        ids = [i.id for i in touched]
    log.info("alertmanager notification applied to incidents %s", ids)
    return jsonify({"status": "ok", "incidents": ids}), 200


# --- pages --------------------------------------------------------------------------------------


def _jst(moment: dt.datetime | None) -> str:
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M") if moment else "—"


@ops_web.route("/incidents")
@signed_in
def incident_list() -> str:
    status = request.args.get("status") or None
    if status not in (None, "unresolved", *INCIDENT_STATUSES):
        abort(400)
    with svc.control_session() as session:
        rows = svc.list_incidents(session, tenant=request.args.get("tenant") or None, status=status)
        items = [(i, svc.compliance(i)) for i in rows]
    return render_template("ops/incidents.html", items=items, status=status, jst=_jst, status_ja=STATUS_JA)


@ops_web.route("/incidents/<int:incident_id>")
@signed_in
def incident_detail(incident_id: int) -> str:
    with svc.control_session() as session:
        try:
            incident = svc.get(session, incident_id)
        except svc.IncidentNotFound:
            abort(404)
        return render_template(
            "ops/incident.html",
            incident=incident,
            compliance=svc.compliance(incident),
            jst=_jst,
            status_ja=STATUS_JA,
            error=request.args.get("error"),
        )


def _act(incident_id: int, action: str) -> WerkzeugResponse:
    form = request.form
    with svc.control_session() as session:
        try:
            if action == "ack":
                svc.acknowledge(session, incident_id, _acting(form.get("by", "")))
            elif action == "resolve":
                svc.resolve(session, incident_id, _acting(form.get("by", "")))
            else:
                svc.write_report(
                    session,
                    incident_id,
                    _acting(form.get("by", "")),
                    cause=form.get("cause", ""),
                    recovery=form.get("recovery", ""),
                    prevention=form.get("prevention", ""),
                    log_excerpts=form.get("log_excerpts", ""),
                )
            session.commit()
        except svc.IncidentNotFound:
            abort(404)
        except svc.IncidentInputError as exc:
            return redirect(url_for("ops_incidents.incident_detail", incident_id=incident_id, error=str(exc)))
    return redirect(url_for("ops_incidents.incident_detail", incident_id=incident_id))


@ops_web.route("/incidents/<int:incident_id>/ack", methods=["POST"])
@signed_in
def incident_ack(incident_id: int) -> WerkzeugResponse:
    return _act(incident_id, "ack")


@ops_web.route("/incidents/<int:incident_id>/resolve", methods=["POST"])
@signed_in
def incident_resolve(incident_id: int) -> WerkzeugResponse:
    return _act(incident_id, "resolve")


@ops_web.route("/incidents/<int:incident_id>/report", methods=["POST"])
@signed_in
def incident_report(incident_id: int) -> WerkzeugResponse:
    return _act(incident_id, "report")


@ops_web.route("/incidents/<int:incident_id>/report.pdf")
@signed_in
def incident_report_pdf(incident_id: int) -> Response:
    with svc.control_session() as session:
        try:
            incident = svc.get(session, incident_id)
        except svc.IncidentNotFound:
            abort(404)
        pdf = svc.render_report(incident)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="incident-{incident_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- JSON API -----------------------------------------------------------------------------------


@ops_api.route("/incidents")
def api_list() -> Response:
    """障害の一覧（`status`: unresolved または状態、`tenant`: 自治体で絞り込み）"""
    status = request.args.get("status") or None
    if status not in (None, "unresolved", *INCIDENT_STATUSES):
        abort(400)
    with svc.control_session() as session:
        rows = svc.list_incidents(session, tenant=request.args.get("tenant") or None, status=status)
        return jsonify({"incidents": [svc.as_dict(i) for i in rows]})


@ops_api.route("/incidents/<int:incident_id>")
def api_get(incident_id: int) -> Response:
    """障害の詳細（経過・SLA の期限と遵守状況）"""
    with svc.control_session() as session:
        try:
            return jsonify(svc.as_dict(svc.get(session, incident_id)))
        except svc.IncidentNotFound:
            abort(404)


def _json_act(incident_id: int, action: str) -> tuple[Response, int]:
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return _refused("本文は JSON のオブジェクト（{...}）で送ってください。")
    by = str(body.get("by", ""))
    at = body.get("at")
    if at is not None and not isinstance(at, str):
        return _refused("「at」は ISO 8601 形式の日時の文字列で送ってください。")
    with svc.control_session() as session:
        try:
            if action == "ack":
                incident = svc.acknowledge(session, incident_id, by)
            elif action == "resolve":
                incident = svc.resolve(session, incident_id, by, _instant(at) if at else None)
            else:
                fields = {k: body.get(k) for k in ("cause", "recovery", "prevention", "log_excerpts")}
                incident = svc.write_report(
                    session, incident_id, by, **{k: v for k, v in fields.items() if isinstance(v, str)}
                )
            data = svc.as_dict(incident)
            session.commit()
        except svc.IncidentNotFound:
            abort(404)
        except ValueError as exc:  # IncidentInputError and the service's other refusals
            return _refused(str(exc))
    return jsonify(data), 200


def _refused(message: str) -> tuple[Response, int]:
    return jsonify({"code": 422, "status": "入力に誤りがあります", "message": message}), 422


def _instant(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise svc.IncidentInputError(
            f"「at」の日時「{text[:40]}」が読めません（例: 2026-11-21T10:00:00+09:00）。"
        ) from None


@ops_api.route("/incidents/<int:incident_id>/ack", methods=["POST"])
def api_ack(incident_id: int) -> tuple[Response, int]:
    """初動（受付）の記録。本文 `{"by": "担当者"}`"""
    return _json_act(incident_id, "ack")


@ops_api.route("/incidents/<int:incident_id>/resolve", methods=["POST"])
def api_resolve(incident_id: int) -> tuple[Response, int]:
    """解決の記録。本文 `{"by": "担当者", "at": "ISO 8601 の日時（省略時は現在）"}`"""
    return _json_act(incident_id, "resolve")


@ops_api.route("/incidents/<int:incident_id>/report", methods=["PUT"])
def api_report(incident_id: int) -> tuple[Response, int]:
    """報告書（原因・復旧・再発防止・ログ抜粋）の記入。本文の各項目は文字列"""
    return _json_act(incident_id, "report")


def register(app: Flask) -> None:
    from app import csrf

    app.register_blueprint(ops_web)  # ops_api: registered by app.api, in the OpenAPI document
    csrf.exempt(alertmanager_webhook)
    csrf.exempt(ops_api)
