"""Provider staff screens under ``/ops/``: sign-in (always with TOTP) and break-glass requests.

Nothing here shows residents' personal data. With a grant the city approved, the provider opens the
city's own pages (``/<tenant>/...``), where the tenant guard admits them for the grant's permissions
and time only, and logs every request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.audit import record
from app.config import get_settings
from app.db.base import utcnow
from app.db.names import control_binding
from app.db.session import new_session
from app.identity import breakglass, sessions
from app.identity.breakglass import DURATIONS_MINUTES, GrantInputError
from app.identity.config import SecurityConfig
from app.identity.context import PENDING_COOKIE, SESSION_COOKIE, current_principal
from app.identity.limits import login_limits, step_limits
from app.identity.models import LoginAccount, ProviderStaff
from app.identity.permissions import BREAKGLASS_PERMISSIONS, PERMISSIONS, declared, signed_in
from app.tenancy.context import is_public, public_endpoint
from app.tenancy.service import registry
from app.web.signin import Flow, has_pending, password_step, pending_enrolment, safe_next, totp_step

ops_web = Blueprint("ops", __name__, url_prefix="/ops")


def ops_db() -> Session:
    session: Session | None = g.get("ops_db")
    if session is None:
        session = new_session(control_binding(get_settings().role_prefix))
        g.ops_db = session
    return session


@ops_web.teardown_app_request
def _close(exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("ops_db", None)
    if session is not None:
        session.close()


def require_provider(*, api: bool = False) -> Response | None:
    """Signed-in, active provider staff, or: pages → the ops login, API → 401. Used by every /ops area."""
    principal = current_principal()
    if principal is not None and principal.kind == "provider":
        # A session of its own, closed before the view runs: views open theirs on the same schema.
        with new_session(control_binding(get_settings().role_prefix)) as session:
            account = session.get(ProviderStaff, int(principal.subject_id))
            active = account is not None and account.is_active
        if active:
            return None
        if principal.session_id:
            sessions.revoke(principal.session_id)
    if api:
        abort(401)
    return redirect(url_for("ops.login", next=request.path))


@ops_web.before_request
def _guard() -> Response | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if is_public(view):
        return None
    refused = require_provider()
    if refused is not None:
        return refused
    if declared(view) is None:
        abort(403)  # fail closed, as on tenant routes
    return None


def _flow() -> Flow:
    settings = get_settings()
    return Flow(
        kind="provider",
        tenant_id=None,
        db=ops_db(),
        model=ProviderStaff,
        security=SecurityConfig(),
        totp_issuer="窓口支援システム 運用",
        totp_url=url_for("ops.login_totp"),
        login_url=url_for("ops.login"),
        home_url=url_for("ops.home"),
        cookie_path="/ops/login",
        idle_seconds=settings.ops_idle_minutes * 60,
        absolute_seconds=settings.session_lifetime_minutes * 60,
        totp_required=_always,
    )


def _always(account: LoginAccount) -> bool:
    return True  # provider staff reach every city: a second factor, always


@ops_web.route("/login", methods=["GET", "POST"])
@public_endpoint
@login_limits
def login() -> Response | tuple[str, int]:
    error = None
    if request.method == "POST":
        login_id = request.form.get("login", "").strip()
        password = request.form.get("password", "")
        if login_id and password:
            outcome = password_step(_flow(), login_id, password, safe_next(request.args.get("next"), "/ops/"))
            if not isinstance(outcome, str):
                return outcome
            error = outcome
        else:
            error = "ログインIDとパスワードを入力してください。"
    return render_template("ops/login.html", error=error), 200


@ops_web.route("/login/totp", methods=["GET", "POST"])
@public_endpoint
@step_limits
def login_totp() -> Response | tuple[str, int]:
    flow = _flow()
    if not has_pending(flow):
        return redirect(flow.login_url)
    error = None
    if request.method == "POST":
        outcome = totp_step(flow, request.form.get("code", ""))
        if not isinstance(outcome, str):
            return outcome
        error = outcome
    return render_template("ops/totp.html", enrolment=pending_enrolment(flow), error=error), 200


@ops_web.route("/logout", methods=["POST"])
@signed_in
def logout() -> Response:
    principal = current_principal()
    if principal is not None and principal.session_id:
        sessions.revoke(principal.session_id)
    response = redirect(url_for("ops.login"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(PENDING_COOKIE, path="/ops/login")
    return response


@ops_web.route("/")
@signed_in
def home() -> str:
    principal = current_principal()
    assert principal is not None
    now = utcnow()
    mine: list[dict[str, Any]] = []
    for tenant in registry.all():
        if tenant.status != "active":
            continue
        session = new_session(tenant.binding)
        try:
            for grant in breakglass.list_grants(session, principal.subject_id, limit=20):
                mine.append({"tenant": tenant, "grant": grant, "active": grant.active_at(now)})
        finally:
            session.close()  # rolls back; the loaded grants stay readable
    mine.sort(key=lambda x: x["grant"].requested_at, reverse=True)
    return render_template(
        "ops/home.html",
        tenants=[t for t in registry.all() if t.status == "active"],
        grants=mine,
        scopes=[(p, PERMISSIONS[p].label) for p in BREAKGLASS_PERMISSIONS],
        durations=DURATIONS_MINUTES,
    )


@ops_web.route("/breakglass", methods=["POST"])
@signed_in
def request_breakglass() -> Response:
    principal = current_principal()
    assert principal is not None
    tenant = registry.get(request.form.get("tenant", ""))
    if tenant is None:
        flash("自治体を選んでください。")
        return redirect(url_for("ops.home"))
    duration = request.form.get("duration_minutes", "")
    session = new_session(tenant.binding)
    try:
        grant = breakglass.request_grant(
            session,
            provider_id=principal.subject_id,
            provider_name=principal.display_name,
            reason=request.form.get("reason", ""),
            scope=request.form.getlist("scope"),
            duration_minutes=int(duration) if duration.isdigit() else 0,
        )
        record(
            session,
            "breakglass.requested",
            subject_type="breakglass_grant",
            subject_id=grant.id,
            details={"scope": grant.scope, "minutes": grant.duration_minutes},
        )
        session.commit()
    except GrantInputError as exc:
        session.rollback()
        flash(str(exc))
    else:
        flash(
            f"{tenant.name}に緊急アクセスを申請しました（申請番号 {grant.id}）。自治体の管理者の承認を待ってください。"
        )
    finally:
        session.close()
    return redirect(url_for("ops.home"))
