"""Import batches for the operator: progress while running, row-by-row reasons when rejected."""

from __future__ import annotations

from flask import abort, render_template

from app.audit import record
from app.identity.permissions import requires
from app.linkage import service
from app.linkage.models import ImportBatch
from app.tenancy.context import tenant_db
from app.web import tenant_web


@tenant_web.route("/linkage/batches")
@requires("linkage.batches.view")
def linkage_batches() -> str:
    batches = [service.batch_summary(b) for b in service.list_batches(tenant_db(), limit=100)]
    running = any(b["status"] in ("queued", "running") for b in batches)
    return render_template("linkage/batches.html", batches=batches, refresh=running)


@tenant_web.route("/linkage/batches/<int:batch_id>")
@requires("linkage.batches.view", "linkage.rejections.view")
def linkage_batch(batch_id: int) -> str:
    db = tenant_db()
    batch = db.get(ImportBatch, batch_id)
    if batch is None:
        abort(404)
    rows, total = service.rejections(db, batch_id, limit=1000)
    if rows:
        record(
            db,
            "linkage.rejections_viewed",
            subject_type="import_batch",
            subject_id=batch_id,
            details={"rows": len(rows)},
        )
        db.commit()
    summary = service.batch_summary(batch)
    return render_template(
        "linkage/batch.html",
        batch=summary,
        rejections=rows,
        total=total,
        refresh=summary["status"] in ("queued", "running"),
    )
