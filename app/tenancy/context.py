"""The tenant of the current request: taken from the URL prefix, checked against the principal.

Unknown tenant, suspended tenant, or a principal of another tenant all give the same 404, so the
answer never tells an outsider whether the thing exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, g
from sqlalchemy.orm import Session

from app.db.session import new_session
from app.logs import tenant_var
from app.tenancy.config import TenantConfig
from app.tenancy.service import TenantRecord, registry

F = TypeVar("F", bound=Callable[..., Any])


def public_endpoint(view: F) -> F:
    """Mark a tenant-scoped view that needs no principal (login page, resident pre-application)."""
    view._madoguchi_public = True  # type: ignore[attr-defined]
    return view


def is_public(view: Callable[..., Any] | None) -> bool:
    return bool(getattr(view, "_madoguchi_public", False))


def enter_tenant(tenant_id: str) -> TenantRecord:
    record = registry.get(tenant_id)
    if record is None:
        abort(404)
    g.tenant = record
    tenant_var.set(record.id)
    return record


def current_tenant() -> TenantRecord:
    record: TenantRecord | None = g.get("tenant")
    if record is None:
        raise RuntimeError("no tenant in this request")
    return record


def tenant_config() -> TenantConfig:
    return registry.config(current_tenant())


def tenant_db() -> Session:
    """The request's one Session, bound to the URL's tenant; closed at the end of the request."""
    session: Session | None = g.get("tenant_db")
    if session is None:
        session = new_session(current_tenant().binding)
        g.tenant_db = session
    return session


def close_tenant_db(exc: BaseException | None = None) -> None:
    """Teardown of the app context (g lives there; the request context is already gone)."""
    session: Session | None = g.pop("tenant_db", None)
    if session is not None:
        session.close()  # uncommitted work is rolled back
