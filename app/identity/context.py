"""The principal of the current request (staff session cookie; API tokens come with issue 5)."""

from __future__ import annotations

from flask import g, request

from app.audit.service import actor_var
from app.identity import sessions
from app.identity.principal import Principal

SESSION_COOKIE = "madoguchi_sid"


def current_principal() -> Principal | None:
    if "principal" not in g:
        principal = None
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            principal = sessions.load(sid)
        g.principal = principal
        if principal is not None:
            actor_var.set(principal.actor(terminal_of_request()))
    result: Principal | None = g.principal
    return result


def terminal_of_request() -> str:
    """Where the request came from, for the audit log (device registration refines this later)."""
    return request.headers.get("X-Madoguchi-Terminal", "")[:64] or (request.remote_addr or "unknown")
