"""Staff sign-in for one tenant: ID + password (+ TOTP where required) or the city's OIDC provider."""

from __future__ import annotations

from flask import g, make_response, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.audit import Actor, record
from app.config import get_settings
from app.identity import oidc, sessions
from app.identity.context import PENDING_COOKIE, SESSION_COOKIE, current_principal, terminal_of_request
from app.identity.limits import callback_limits, login_limits, step_limits
from app.identity.models import LoginAccount, StaffUser
from app.identity.permissions import is_privileged, signed_in
from app.identity.service import AccountInputError, change_password, permissions_of
from app.tenancy.context import public_endpoint, tenant_config, tenant_db
from app.web import tenant_web
from app.web.signin import (
    Flow,
    complete,
    has_pending,
    password_step,
    pending_enrolment,
    safe_next,
    totp_step,
)

OIDC_COOKIE = "madoguchi_oidc"


def _flow() -> Flow:
    config = tenant_config()
    security = config.security
    db = tenant_db()

    def totp_required(account: LoginAccount) -> bool:
        rule = security.totp.required_for
        if rule == "all":
            return True
        if rule == "privileged":
            return is_privileged(permissions_of(db, int(account.id)) or ())
        return False

    return Flow(
        kind="staff",
        tenant_id=g.tenant.id,
        db=db,
        model=StaffUser,
        security=security,
        totp_issuer=f"窓口支援システム {config.tenant.name}",
        totp_url=url_for("web.login_totp"),
        login_url=url_for("web.login"),
        home_url=url_for("web.home"),
        cookie_path=f"/{g.tenant.id}/login",
        idle_seconds=security.sessions.idle_minutes * 60,
        absolute_seconds=security.sessions.absolute_hours * 3600,
        totp_required=totp_required,
        password_url=url_for("web.password_change"),
    )


def _next() -> str | None:
    return safe_next(request.args.get("next"), f"/{g.tenant.id}/")


def _login_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    config = tenant_config()
    return (
        render_template("tenant/login.html", config=config, oidc=config.security.oidc, error=error),
        status,
    )


@tenant_web.route("/login", methods=["GET", "POST"])
@public_endpoint
@login_limits
def login() -> Response | tuple[str, int]:
    oidc_config = tenant_config().security.oidc
    if request.method == "POST":
        if oidc_config is not None and not oidc_config.password_login:
            return _login_page("この自治体では庁内の認証基盤からログインしてください。", 400)
        login_id = request.form.get("login", "").strip()
        password = request.form.get("password", "")
        if not login_id or not password:
            return _login_page("ログインIDとパスワードを入力してください。", 400)
        outcome = password_step(_flow(), login_id, password, _next())
        if isinstance(outcome, str):
            return _login_page(outcome)
        return outcome
    return _login_page()


@tenant_web.route("/login/totp", methods=["GET", "POST"])
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
    return render_template("tenant/totp.html", enrolment=pending_enrolment(flow), error=error), 200


@tenant_web.route("/login/oidc")
@public_endpoint
def oidc_start() -> Response | tuple[str, int]:
    config = tenant_config().security.oidc
    if config is None:
        return _login_page("この自治体では認証基盤によるログインは設定されていません。", 404)
    try:
        url, state = oidc.start(config, url_for("web.oidc_callback", _external=True))
    except oidc.OidcError as exc:
        return _login_page(str(exc), 503)
    pending = sessions.PendingLogin("oidc", g.tenant.id, 0, "", next_url=_next(), extra=state)
    response = make_response(redirect(url))
    response.set_cookie(
        OIDC_COOKIE,
        sessions.start_pending(pending),
        httponly=True,
        samesite="Lax",  # the provider sends the browser back with a top-level GET
        secure=get_settings().session_cookie_secure,
        path=f"/{g.tenant.id}/login",
    )
    return response


@tenant_web.route("/login/oidc/callback")
@public_endpoint
@callback_limits
def oidc_callback() -> Response | tuple[str, int]:
    config = tenant_config().security.oidc
    token = request.cookies.get(OIDC_COOKIE)
    pending = sessions.load_pending(token)
    sessions.drop_pending(token)  # one use only
    if config is None or pending is None or pending.kind != "oidc" or pending.tenant_id != g.tenant.id:
        return _login_page("ログインの手続きが時間切れになりました。もう一度お試しください。", 400)
    flow = _flow()
    db = tenant_db()
    try:
        identity = oidc.finish(
            config, pending.extra, request.args.to_dict(), url_for("web.oidc_callback", _external=True)
        )
    except oidc.OidcError as exc:
        flow.audit("auth.oidc_refused", "oidc", {"reason": str(exc)[:200]})
        db.commit()
        return _login_page(str(exc), 401)
    user = db.scalar(
        select(StaffUser)
        .where(StaffUser.oidc_issuer == identity.issuer, StaffUser.oidc_subject == identity.subject)
        .with_for_update()
    )
    if user is None or not user.is_active:
        record(
            db,
            "auth.oidc_unknown",
            details={"issuer": identity.issuer, "subject": identity.subject[:128]},
            actor=Actor("staff", f"oidc:{identity.subject[:64]}", identity.name, terminal_of_request()),
        )
        db.commit()
        return _login_page(
            "この認証基盤のアカウントは職員として登録されていないか、無効になっています。管理者へ連絡してください。",
            403,
        )
    response = complete(flow, user, "oidc", pending.next_url)
    response.delete_cookie(OIDC_COOKIE, path=f"/{g.tenant.id}/login")
    return response


@tenant_web.route("/logout", methods=["POST"])
@signed_in
def logout() -> Response:
    principal = current_principal()
    if principal is not None and principal.session_id:
        sessions.revoke(principal.session_id)
        db = tenant_db()
        record(db, "auth.logout")
        db.commit()
    response = make_response(redirect(url_for("web.login")))
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(PENDING_COOKIE, path=f"/{g.tenant.id}/login")
    return response


@tenant_web.route("/password", methods=["GET", "POST"])
@signed_in
def password_change() -> Response | tuple[str, int]:
    principal = current_principal()
    if principal is None or principal.kind != "staff":
        return redirect(url_for("web.home"))
    db = tenant_db()
    user = db.get(StaffUser, int(principal.subject_id))
    if user is None or user.password_hash is None:
        return redirect(url_for("web.home"))
    error = None
    if request.method == "POST":
        from app.identity.passwords import verify_password

        current, new, again = (request.form.get(k, "") for k in ("current", "new", "again"))
        ok, _ = verify_password(current, user.password_hash)
        if not ok:
            error = "現在のパスワードが正しくありません。"
        elif new != again:
            error = "新しいパスワードが一致しません。"
        elif new == current:
            error = "新しいパスワードは現在のものと変えてください。"
        else:
            try:
                change_password(db, user, new, tenant_config().security.password.min_length)
            except AccountInputError as exc:
                error = str(exc)
            else:
                record(db, "auth.password_changed", subject_type="staff_user", subject_id=user.id)
                db.commit()
                return redirect(url_for("web.home"))
    return render_template("tenant/password.html", user=user, error=error), 200 if error is None else 400
