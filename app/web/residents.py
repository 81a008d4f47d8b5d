"""Resident search and the household view for clerks (every search and view is audit-logged)."""

from __future__ import annotations

from flask import abort, render_template, request

from app.identity.permissions import requires
from app.residents import service
from app.residents.service import SearchInputError, SearchQuery
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web


@tenant_web.route("/residents")
@requires("residents.search")
def residents_search() -> str:
    args = request.args
    query = SearchQuery(
        kana=args.get("kana", ""),
        name=args.get("name", ""),
        birth=args.get("birth", ""),
        address=args.get("address", ""),
        include_left=args.get("include_left") == "1",
    )
    result, error, error_field = None, None, None
    if query.criteria():
        try:
            result = service.search(tenant_db(), tenant_config(), query, purpose=args.get("purpose") or None)
            tenant_db().commit()
        except SearchInputError as exc:
            error, error_field = str(exc), exc.field
    return render_template(
        "residents/search.html",
        query=query,
        result=result,
        rows=[service.summary(r) for r in result.residents] if result else [],
        error=error,
        error_field=error_field,
    )


@tenant_web.route("/residents/<int:resident_id>")
@requires("residents.view")
def resident_detail(resident_id: int) -> str:
    shown = service.view(tenant_db(), resident_id, purpose=request.args.get("purpose") or None)
    if shown is None:
        abort(404)
    tenant_db().commit()
    return render_template(
        "residents/detail.html",
        person=service.summary(shown.resident),
        resident=shown.resident,
        members=[service.summary(m) for m in shown.members],
        attributes=shown.attributes,
    )
