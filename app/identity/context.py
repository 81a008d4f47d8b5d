"""The principal of the current request: a session cookie (staff, provider) or, on the API only, a
bearer token of an API client."""

from __future__ import annotations

from flask import g, request

from app.audit.service import actor_var
from app.identity import sessions
from app.identity.principal import Principal

SESSION_COOKIE = "madoguchi_sid"
PENDING_COOKIE = "madoguchi_pending"


def current_principal() -> Principal | None:
    """The request's principal as the guard resolved it (permissions included), else from the cookie."""
    if "principal" not in g:
        principal = None
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            principal = sessions.load(sid)
        set_principal(principal)
    result: Principal | None = g.principal
    return result


def set_principal(principal: Principal | None) -> None:
    g.principal = principal
    actor_var.set(principal.actor(terminal_of_request()) if principal is not None else None)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def terminal_of_request() -> str:
    """Where the request came from, for the audit log (device registration refines this later)."""
    return request.headers.get("X-Madoguchi-Terminal", "")[:64] or (request.remote_addr or "unknown")
