"""The one place a tenant request is admitted: principal, tenant match, permissions.

Both tenant blueprints (web ``/<tenant>/`` and API ``/api/v1/<tenant>/``) call :func:`admit` from
their ``before_request``. Order of the checks, and what each answers:

1. public view (``@public_endpoint``): admitted without a principal;
2. no principal: web → login page, API → 401;
3. principal of another tenant, API token naming another tenant, provider staff without a grant in
   force here, disabled account: 404, the same answer as an unknown tenant;
4. view without a declaration (``@requires`` / ``@signed_in``): 403, fail closed;
5. declared permissions missing: 403.

Provider staff under a break-glass grant: every admitted request is written to the city's operation
log (actor type ``provider``), and the grant's permissions are all they get.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from flask import abort, current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from app.audit import record
from app.db.base import utcnow
from app.identity import sessions
from app.identity.api_clients import claimed_tenant, token_principal
from app.identity.breakglass import active_grant
from app.identity.context import bearer_token, current_principal, set_principal
from app.identity.permissions import BREAKGLASS_PERMISSIONS, declared
from app.identity.principal import Principal
from app.identity.service import permissions_of
from app.tenancy.context import enter_tenant, is_public, tenant_db

log = logging.getLogger("madoguchi.authz")


def view_of_request() -> Any:
    return current_app.view_functions.get(request.endpoint or "")


def admit(*, api: bool) -> Response | None:
    tenant = enter_tenant(g.tenant_id)
    view = view_of_request()
    if is_public(view):
        return None
    token = bearer_token() if api else None
    if token is not None:
        if claimed_tenant(token) != tenant.id:
            abort(404)
        principal = token_principal(tenant_db(), tenant.id, token)
        if principal is None:
            abort(401)
        set_principal(principal)
    else:
        principal = current_principal()
        if principal is None:
            if api:
                abort(401)
            return redirect(url_for("web.login", next=request.path))
        resolved = _resolve(principal, tenant.id)
        if resolved is None:
            if principal.kind == "staff" and principal.tenant_id == tenant.id and principal.session_id:
                sessions.revoke(principal.session_id)  # disabled meanwhile: the session is over
                set_principal(None)
                if api:
                    abort(401)
                return redirect(url_for("web.login", next=request.path))
            abort(404)
        principal = resolved
        set_principal(principal)
    required = declared(view)
    allowed = required is not None and required <= principal.permissions
    if principal.kind == "provider":
        _log_breakglass_access(principal, allowed)  # refused attempts too: the city sees them all
    if required is None:
        log.error("view %s declares no permissions: refused", request.endpoint)
        abort(403)
    if not allowed:
        abort(403)
    return None


def _resolve(principal: Principal, tenant_id: str) -> Principal | None:
    """The principal with this request's permissions, or None if it has no business here."""
    if principal.kind == "staff":
        if principal.tenant_id != tenant_id:
            return None
        permissions = permissions_of(tenant_db(), int(principal.subject_id))
        if permissions is None:
            return None
        return replace(principal, permissions=permissions)
    if principal.kind == "provider":
        grant = active_grant(tenant_db(), principal.subject_id, utcnow())
        if grant is None:
            return None
        allowed = frozenset(grant.scope) & frozenset(BREAKGLASS_PERMISSIONS)
        return replace(principal, permissions=allowed, grant_id=grant.id)
    return None


def _log_breakglass_access(principal: Principal, allowed: bool) -> None:
    db = tenant_db()
    record(
        db,
        "breakglass.access",
        subject_type="breakglass_grant",
        subject_id=principal.grant_id,
        details={
            "method": request.method,
            "endpoint": request.endpoint,
            "path": request.path,  # never the query string: searches carry names
            "allowed": allowed,
        },
    )
    db.commit()
