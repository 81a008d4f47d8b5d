"""Madoguchi: multi-tenant SaaS for Japanese city-hall counters (自治体窓口DX SaaS)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFProtect
from limits.errors import StorageError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from app import inputs
from app.audit.service import actor_var
from app.config import Settings, get_settings
from app.logs import configure_logging, request_id_var, tenant_var

csrf = CSRFProtect()
access_log = logging.getLogger("madoguchi.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")

ERROR_TEXT = {
    400: ("入力に誤りがあります", "入力内容を確認してください。"),
    401: ("ログインが必要です", "ログインしてから操作してください。"),
    403: ("操作できません", "この操作を行う権限がありません。"),
    404: ("ページが見つかりません", "お探しのページは見つかりませんでした。"),
    405: ("操作できません", "この方法では操作できません。"),
    409: ("更新が競合しました", "他の職員が先に更新しました。画面を開き直してください。"),
    413: (
        "送信内容が大きすぎます",
        "一度に送れる大きさ（4 MB）を超えています。内容を小さくしてください。",
    ),
    422: ("入力に誤りがあります", "入力内容を確認してください。"),
    429: ("しばらくお待ちください", "短時間に操作が集中しました。少し待ってから再度お試しください。"),
    500: ("エラーが発生しました", "システムでエラーが発生しました。問い合わせ窓口へご連絡ください。"),
    503: ("ただいま利用できません", "システムが一時的に利用できません。"),
}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value() or _dev_secret(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=settings.session_cookie_secure,
        API_TITLE="Madoguchi API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    inputs.use_id_converter(app)
    inputs.limit_bodies(app)
    csrf.init_app(app)

    from app import api, web
    from app.identity.limits import init_limiter
    from app.observability.health import health
    from app.tenancy.context import close_tenant_db

    init_limiter(app, settings)
    app.register_blueprint(health)
    from app.observability import ops

    ops.register(app)  # /ops/incidents (provider staff sign-in) and the Alertmanager webhook
    from app.reports import web as reports_web

    reports_web.register(app)  # /ops/reports, /ops/inquiries, /ops/releases (provider staff sign-in)
    web.register(app)
    api.register(app)
    csrf.exempt(api.tenant_api)  # API writes authenticate by token (issue 5), not by cookie alone
    app.teardown_appcontext(close_tenant_db)
    app.before_request(_start_request)
    app.before_request(inputs.check_request)
    app.after_request(_finish_request)
    app.teardown_request(_clear_request_context)
    if settings.metrics_enabled:
        from app.observability.metrics import instrument

        instrument(app)  # registered last, so its after-request hook runs first (status as sent)
    # Registered after flask-smorest's own handler so HTML pages get HTML errors.
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StorageError, _limiter_unavailable)
    app.register_error_handler(Exception, _unexpected_error)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    return app


def _dev_secret(settings: Settings) -> str:
    if settings.env == "production":
        raise RuntimeError("MADOGUCHI_SECRET_KEY must be set in production")
    return "development-only-secret"


def _request_id(incoming: str) -> str:
    """The caller's id if well-formed, else a new one. The id goes into every log line and audit
    entry, so it never carries twelve digits in a row: a caller's could be a My Number, and a
    random hex id has such a run now and then, which the audit log would then mask as one."""
    if _REQUEST_ID.fullmatch(incoming) and not _TWELVE_DIGITS.search(incoming.replace("-", "")):
        return incoming
    while True:
        generated = uuid.uuid4().hex
        if not _TWELVE_DIGITS.search(generated):
            return generated


def _start_request() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = _request_id(incoming)
    _clear_request_context()  # whatever ran last in this thread (a job, a CLI command) leaves nothing
    request_id_var.set(g.request_id)


def _clear_request_context(_error: BaseException | None = None) -> None:
    """The thread may next run a job or a CLI command: it must not log or audit under this request's
    id, tenant or actor."""
    request_id_var.set(None)
    tenant_var.set(None)
    actor_var.set(None)


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self';"
        " form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    if get_settings().session_cookie_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if g.get("tenant") is not None:
        response.headers["Cache-Control"] = "no-store"  # pages may hold personal data
    # The query string is never logged: searches carry names and birth dates.
    access_log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
        },
    )
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def _error_response(code: int, detail: Any = None, message: str | None = None) -> Response:
    title, default_message = ERROR_TEXT.get(code, ERROR_TEXT[500] if code >= 500 else ERROR_TEXT[400])
    message = message or default_message
    if _wants_json():
        body: dict[str, Any] = {"code": code, "status": title, "message": message}
        if detail:
            body["errors"] = detail
        response = jsonify(body)
    else:
        response = make_response(render_template("errors/error.html", title=title, message=message))
    response.status_code = code
    return response


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    detail = None
    message = None
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        # webargs/marshmallow field errors, or our own (message, errors) from flask_smorest.abort
        detail = data.get("messages") or data.get("errors")
        message = data.get("message") if isinstance(data.get("message"), str) else None
    response = _error_response(code, detail, message)
    if code == 401 and _wants_json():
        response.headers["WWW-Authenticate"] = 'Bearer realm="madoguchi"'
    if code == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _limiter_unavailable(exc: StorageError) -> Response:
    """The rate limiter's store (Redis) is unreachable: sign-in refuses rather than run unguarded."""
    from app.identity.limits import UNAVAILABLE_MESSAGE

    logging.getLogger("madoguchi.error").error("rate limit storage unavailable: login refused (%s)", exc)
    return _error_response(503, message=UNAVAILABLE_MESSAGE)


def _unexpected_error(exc: Exception) -> Response:
    logging.getLogger("madoguchi.error").exception("unhandled error")
    return _error_response(500)
