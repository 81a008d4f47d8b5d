"""Scheduled counter work per tenant: deleting pre-applications whose QR codes have expired.

A repeating RQ job with a deterministic id (``<tenant>__preapply_purge``), kept by
``app.jobs.ensure_repeating`` when ``madoguchi worker`` starts; idempotent (a second run finds
nothing left to delete).
"""

from __future__ import annotations

from typing import Any

from app.counter.preapply import purge_expired
from app.jobs import JobContext, Scheduled, ensure_repeating, tenant_job
from app.tenancy.service import registry

PURGE_INTERVAL = 24 * 3600


@tenant_job
def purge_pre_applications(ctx: JobContext) -> dict[str, Any]:
    return {"tenant": ctx.tenant.id, "deleted": purge_expired(ctx.session)}


def schedule_counter_jobs() -> list[Scheduled]:
    """At worker start-up: one pending purge run per active tenant."""
    return [
        ensure_repeating(
            purge_pre_applications, record.id, job_id=f"{record.id}__preapply_purge", interval=PURGE_INTERVAL
        )
        for record in registry.all()
        if record.status == "active"
    ]
