"""Sign-in steps shared by city staff (``/<tenant>/login``) and provider staff (``/ops/login``):
password with lockout, then TOTP (enrolment on first use) where required, then a session."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import make_response, redirect, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.audit import Actor, record
from app.config import get_settings
from app.db.base import utcnow
from app.identity import sessions, totp
from app.identity.config import SecurityConfig
from app.identity.context import PENDING_COOKIE, SESSION_COOKIE, terminal_of_request
from app.identity.models import LoginAccount
from app.identity.principal import Principal
from app.identity.service import check_password, record_failure, record_success

FAILED = "ログインIDまたはパスワードが正しくありません。続けて間違えると、しばらくログインできなくなります。"
TOTP_FAILED = "確認コードが正しくありません。認証アプリに表示されている6桁の数字を入力してください。"
TOTP_EXPIRED = "時間切れです。もう一度ログインIDとパスワードを入力してください。"
MAX_TOTP_ATTEMPTS = 5

ops_log = logging.getLogger("madoguchi.ops")


@dataclass
class Flow:
    kind: str  # "staff" | "provider"
    tenant_id: str | None
    db: Session
    model: type[LoginAccount]
    security: SecurityConfig
    totp_issuer: str
    totp_url: str
    login_url: str
    home_url: str
    cookie_path: str
    idle_seconds: int
    absolute_seconds: int
    totp_required: Callable[[LoginAccount], bool]
    password_url: str | None = None  # where an account with a one-time password goes first

    def audit(self, action: str, login: str, details: dict[str, object] | None = None) -> None:
        """City staff: the city's operation log. Provider staff: the service log (no tenant)."""
        if self.kind == "staff":
            record(
                self.db,
                action,
                details={"login": login[:64], **(details or {})},
                actor=Actor("staff", f"login:{login[:64]}", None, terminal_of_request()),
            )
        else:
            ops_log.info(
                "%s %s",
                action,
                login[:64],
                extra={
                    "action": action,
                    "login": login[:64],
                    "terminal": terminal_of_request(),
                    **(details or {}),
                },
            )


def safe_next(target: str | None, prefix: str) -> str | None:
    """Only relative paths under ``prefix``; never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(prefix) or "\\" in target:
        return None
    return target


def password_step(flow: Flow, login_id: str, password: str, next_url: str | None) -> Response | str:
    """Response to go on with, or the error message for the form."""
    check = check_password(flow.db, flow.model, login_id, password, flow.security.lockout)
    if not check.ok or check.account is None:
        flow.audit("auth.login_failed", login_id, {"locked": check.locked} if check.locked else None)
        flow.db.commit()
        return FAILED
    account = check.account
    if flow.totp_required(account) or account.totp_secret is not None:
        flow.db.commit()  # a rehashed password is kept; the failure count waits for the code
        pending = sessions.PendingLogin(
            flow.kind,
            flow.tenant_id,
            int(account.id),
            account.login,
            next_url=next_url,
        )
        if account.totp_secret is None:
            pending.enroll_secret = totp.seal(totp.new_secret())
        response = redirect(flow.totp_url)
        _set_cookie(response, PENDING_COOKIE, sessions.start_pending(pending), flow.cookie_path)
        return response
    return complete(flow, account, "password", next_url)


def totp_step(flow: Flow, code: str) -> Response | str:
    token = request.cookies.get(PENDING_COOKIE)
    pending = sessions.load_pending(token)
    if pending is None or pending.kind != flow.kind or pending.tenant_id != flow.tenant_id:
        return redirect(flow.login_url)
    account = flow.db.get(flow.model, pending.account_id, with_for_update=True)
    now = utcnow()
    if account is None or not account.is_active or (account.locked_until and account.locked_until > now):
        sessions.drop_pending(token)
        return redirect(flow.login_url)
    ok = False
    if pending.enroll_secret is not None:
        secret = totp.unseal(pending.enroll_secret)
        step = totp.matching_step(secret, code, None) if secret else None
        if step is not None:
            account.totp_secret, account.totp_last_step, ok = pending.enroll_secret, step, True
            flow.audit("auth.totp_enrolled", account.login)
    else:
        ok = totp.verify(account, code, now)
    if ok:
        sessions.drop_pending(token)
        response = complete(flow, account, "totp", pending.next_url)
        response.delete_cookie(PENDING_COOKIE, path=flow.cookie_path)
        return response
    record_failure(account, flow.security.lockout, now)
    flow.audit("auth.totp_failed", account.login)
    flow.db.commit()
    assert token is not None
    pending.attempts += 1
    if pending.attempts >= MAX_TOTP_ATTEMPTS or account.locked_until is not None:
        sessions.drop_pending(token)
        return redirect(flow.login_url)
    sessions.save_pending(token, pending)
    return TOTP_FAILED


def pending_enrolment(flow: Flow) -> tuple[str, str] | None:
    """(secret, otpauth URI) while the pending login enrols its first TOTP device."""
    pending = sessions.load_pending(request.cookies.get(PENDING_COOKIE))
    if pending is None or pending.enroll_secret is None:
        return None
    secret = totp.unseal(pending.enroll_secret)
    if secret is None:
        return None
    return secret, totp.provisioning_uri(secret, pending.login, flow.totp_issuer)


def has_pending(flow: Flow) -> bool:
    pending = sessions.load_pending(request.cookies.get(PENDING_COOKIE))
    return pending is not None and pending.kind == flow.kind and pending.tenant_id == flow.tenant_id


def complete(flow: Flow, account: LoginAccount, method: str, next_url: str | None) -> Response:
    """Record the login, open a session and go on."""
    record_success(account)
    principal = Principal(flow.kind, flow.tenant_id, str(account.id), account.display_name)
    if flow.kind == "staff":
        record(
            flow.db, "auth.login", details={"method": method}, actor=principal.actor(terminal_of_request())
        )
    else:
        ops_log.info("auth.login %s", account.login, extra={"action": "auth.login", "method": method})
    flow.db.commit()
    session_id = sessions.create(
        principal, idle_seconds=flow.idle_seconds, absolute_seconds=flow.absolute_seconds, auth_method=method
    )
    target = next_url or flow.home_url
    if flow.password_url and getattr(account, "must_change_password", False):
        target = flow.password_url
    response = make_response(redirect(target))
    _set_cookie(response, SESSION_COOKIE, session_id, "/")
    return response


def _set_cookie(response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="Lax", secure=get_settings().session_cookie_secure, path=path
    )
