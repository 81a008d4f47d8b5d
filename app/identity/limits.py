"""Rate limits on sign-in (Flask-Limiter on Redis), failing CLOSED.

``swallow_errors`` is off and there is no in-memory fallback: Flask-Limiter with
``swallow_errors=True`` silently stops limiting when Redis is down (shared/notes/stack-findings.md),
which would reopen brute force exactly when nobody watches. Instead the storage error reaches
:func:`limiter_unavailable`, and the login answers 503 with a Japanese message. Only failed attempts
count (``deduct_when``), so a whole city hall behind one NAT address can still sign in at 8:30.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, g, request
from flask_limiter import Limiter
from werkzeug.wrappers import Response

from app.config import Settings
from app.identity.config import RateLimits, SecurityConfig

limiter = Limiter(
    key_func=lambda: request.remote_addr or "unknown",
    swallow_errors=False,
    in_memory_fallback_enabled=False,
    headers_enabled=False,
    strategy="moving-window",
    key_prefix="madoguchi-limits",
)

UNAVAILABLE_MESSAGE = (
    "ただいまログインを受け付けられません（不正ログイン対策の仕組みに接続できないため、安全のため停止しています）。"
    "しばらくしてから再度お試しください。続く場合は問い合わせ窓口へご連絡ください。"
)


def init_limiter(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url
    # wrap_exceptions: every storage failure arrives as limits.errors.StorageError.
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {
        "wrap_exceptions": True,
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
    }
    limiter.init_app(app)


def _tenant_security() -> SecurityConfig:
    from app.tenancy.service import registry

    tenant_id = g.get("tenant_id")
    record = registry.get(tenant_id) if tenant_id else None
    if record is None:
        return SecurityConfig()
    return registry.config(record).security


def _limits() -> RateLimits:
    return _tenant_security().rate_limits


def _address_key() -> str:
    return f"{g.get('tenant_id') or 'ops'}:addr:{request.remote_addr or 'unknown'}"


def _account_key() -> str:
    login = request.form.get("login", "").strip().lower()[:64]
    return f"{g.get('tenant_id') or 'ops'}:acct:{login}"


def _failed(response: Response) -> bool:
    """A sign-in step failed when it showed the form again (not a redirect onwards, not a 503/429)."""
    return response.status_code in (200, 400, 401, 403)


def _token_failed(response: Response) -> bool:
    return response.status_code in (400, 401)


def login_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Per-address and per-account limits on a password form (POST only)."""
    view = limiter.limit(
        lambda: _limits().per_account, key_func=_account_key, methods=["POST"], deduct_when=_failed
    )(view)
    return limiter.limit(
        lambda: _limits().per_address, key_func=_address_key, methods=["POST"], deduct_when=_failed
    )(view)


def step_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Per-address limit on the TOTP code form (POST only)."""
    return limiter.limit(
        lambda: _limits().per_address, key_func=_address_key, methods=["POST"], deduct_when=_failed
    )(view)


def callback_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Per-address limit on the OIDC callback (a GET from the identity provider)."""
    return limiter.limit(
        lambda: _limits().per_address, key_func=_address_key, methods=["GET"], deduct_when=_failed
    )(view)


def token_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Per-address limit on the OAuth2 token endpoint (client secrets are guessed there)."""
    return limiter.limit(
        lambda: _limits().per_address, key_func=_address_key, methods=["POST"], deduct_when=_token_failed
    )(view)
