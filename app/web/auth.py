"""Staff login and logout for one tenant."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import g, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.audit import Actor, record
from app.config import get_settings
from app.identity import sessions
from app.identity.context import SESSION_COOKIE, current_principal, terminal_of_request
from app.identity.service import authenticate
from app.tenancy.context import public_endpoint, tenant_config, tenant_db
from app.web import tenant_web


def _safe_next(target: str | None) -> str | None:
    """Only same-tenant relative paths; never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(f"/{g.tenant.id}/"):
        return None
    return target


@tenant_web.route("/login", methods=["GET", "POST"])
@public_endpoint
def login() -> Response | str:
    error = None
    if request.method == "POST":
        login_id = request.form.get("login", "").strip()
        password = request.form.get("password", "")
        if not login_id or not password:
            error = "ログインIDとパスワードを入力してください。"
        else:
            db = tenant_db()
            principal = authenticate(db, g.tenant.id, login_id, password)
            terminal = terminal_of_request()
            if principal is None:
                record(
                    db,
                    "auth.login_failed",
                    details={"login": login_id[:64]},
                    actor=Actor("staff", f"login:{login_id[:64]}", None, terminal),
                )
                db.commit()
                error = "ログインIDまたはパスワードが正しくありません。"
            else:
                record(db, "auth.login", actor=principal.actor(terminal))
                db.commit()
                response = redirect(_safe_next(request.args.get("next")) or url_for("web.home"))
                response.set_cookie(
                    SESSION_COOKIE,
                    sessions.create(principal),
                    httponly=True,
                    samesite="Lax",
                    secure=get_settings().session_cookie_secure,
                    path="/",
                )
                return response
    return render_template("tenant/login.html", config=tenant_config(), error=error)


@tenant_web.route("/logout", methods=["POST"])
def logout() -> Response:
    principal = current_principal()
    if principal is not None and principal.session_id:
        sessions.revoke(principal.session_id)
        db = tenant_db()
        record(db, "auth.logout")
        db.commit()
    response = make_response(redirect(url_for("web.login")))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
