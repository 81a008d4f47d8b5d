"""Scheduled audit work per tenant: sealing the chain head and the daily retention archive.

Both are repeating RQ jobs with deterministic ids (``<tenant>__audit_seal``,
``<tenant>__audit_archive``), kept by ``app.jobs.ensure_repeating`` when ``madoguchi worker``
starts. Both are idempotent: a head already sealed is not sealed again, and an archive run finds
nothing left to archive.
"""

from __future__ import annotations

import logging
from typing import Any

from app.audit.archive import ArchiveRefused, archive
from app.audit.sealing import seal
from app.jobs import JobContext, Scheduled, ensure_repeating, tenant_job
from app.tenancy.service import registry

log = logging.getLogger(__name__)

ARCHIVE_INTERVAL = 24 * 3600
ARCHIVE_JOB_TIMEOUT = 3 * 3600


@tenant_job
def seal_job(ctx: JobContext) -> dict[str, Any]:
    result = seal(ctx.tenant, ctx.session)
    if result.action == "sealed":
        log.info("audit %s sealed at seq %s", ctx.tenant.id, result.seq)
    return result.as_dict()


@tenant_job
def archive_job(ctx: JobContext) -> dict[str, Any]:
    try:
        result = archive(ctx.tenant, ctx.session)
    except ArchiveRefused as exc:
        ctx.session.rollback()
        log.error("audit archive refused for %s: %s", ctx.tenant.id, exc)
        return {"tenant": ctx.tenant.id, "action": "refused", "message": str(exc)}
    return result.as_dict()


def schedule_audit_jobs() -> list[Scheduled]:
    """At worker start-up: one pending seal and one pending archive run per active tenant."""
    done: list[Scheduled] = []
    for record in registry.all():
        if record.status != "active":
            continue
        minutes = registry.config(record).sla.audit.seal_minutes
        done.append(
            ensure_repeating(seal_job, record.id, job_id=f"{record.id}__audit_seal", interval=minutes * 60)
        )
        done.append(
            ensure_repeating(
                archive_job,
                record.id,
                job_id=f"{record.id}__audit_archive",
                interval=ARCHIVE_INTERVAL,
                job_timeout=ARCHIVE_JOB_TIMEOUT,
            )
        )
    return done
