"""Card reader devices (カード読取装置): the administrator registers a counter PC's agent, sees its
token once, and revokes it when the PC is replaced or lost."""

from __future__ import annotations

from flask import render_template, request

from app.audit.service import actor_var
from app.counter import cards
from app.counter.service import CounterError
from app.identity.permissions import requires
from app.inputs import form_int
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web


@tenant_web.route("/admin/card-readers", methods=["GET", "POST"])
@requires("admin.devices")
def admin_card_readers() -> str:
    db, config = tenant_db(), tenant_config()
    actor = actor_var.get()
    issued, error = None, None
    if request.method == "POST":
        try:
            if request.form.get("action") == "revoke":
                cards.revoke_reader(
                    db, form_int(request.form, "reader_id", 0), actor.id if actor else "unknown"
                )
            else:
                office_id, _, counter_id = request.form.get("counter", "").partition("/")
                reader, token = cards.register_reader(
                    db, config, name=request.form.get("name", ""), office_id=office_id,
                    counter_id=counter_id or None, created_by=actor.id if actor else "unknown",
                )  # fmt: skip
                issued = (reader, token)
            db.commit()
        except (CounterError, ValueError) as exc:
            db.rollback()
            error = str(exc)
    return render_template(
        "admin/card_readers.html",
        readers=cards.readers(db),
        offices=config.tenant.offices,
        issued=issued,
        error=error,
    )
