"""Access history of one resident for the auditor (特定個人情報保護評価), as a page and as CSV.

Needs ``audit.read`` (監査担当, 管理者). Every view and download is itself written to the operation log.
"""

from __future__ import annotations

from flask import Response, abort, render_template, request

from app.audit import pia
from app.identity.permissions import requires
from app.inputs import bounded_int
from app.residents import service as residents
from app.residents.models import Resident
from app.tenancy.context import current_tenant, tenant_db
from app.web import tenant_web


def _resident(resident_id: int) -> Resident:
    resident = tenant_db().get(Resident, resident_id)
    if resident is None:
        abort(404)
    return resident


def _before_seq() -> int | None:
    return request.args.get("before_seq", type=bounded_int)


@tenant_web.route("/audit/residents/<int:resident_id>")
@requires("audit.read")
def resident_accesses(resident_id: int) -> str:
    resident = _resident(resident_id)
    purpose = request.args.get("purpose") or None
    history = pia.resident_accesses(tenant_db(), resident_id, purpose=purpose, before_seq=_before_seq())
    tenant_db().commit()
    return render_template(
        "audit/resident.html", person=residents.summary(resident), history=history, purpose=purpose
    )


@tenant_web.route("/audit/residents/<int:resident_id>.csv")
@requires("audit.read")
def resident_accesses_csv(resident_id: int) -> Response:
    _resident(resident_id)
    history = pia.resident_accesses(
        tenant_db(),
        resident_id,
        purpose=request.args.get("purpose") or None,
        limit=pia.MAX_LIMIT,
        before_seq=_before_seq(),
        export=True,
    )
    tenant_db().commit()
    name = f"access-history-{current_tenant().id}-{resident_id}.csv"
    return Response(
        pia.to_csv(history.accesses),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
