"""Back-linkage export as a background job, retried with backoff while storage is down."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from redis.exceptions import RedisError
from rq import Retry

from app.forms.backlink import export
from app.jobs import JobContext, enqueue, tenant_job
from app.tenancy.service import registry

log = logging.getLogger(__name__)
RETRY_INTERVALS = [30, 120, 600, 1800, 3600]  # seconds: storage outages are usually short


class ExportIncomplete(Exception):
    """Some batch could not be uploaded; raising makes RQ retry the job with backoff."""


@tenant_job
def export_applications(ctx: JobContext, target_name: str | None = None) -> list[dict[str, Any]]:
    config = registry.config(ctx.tenant)
    gaiji = dict(config.linkage.residents.gaiji)
    results: list[dict[str, Any]] = []
    for target in config.linkage.outbound:
        if target_name is not None and target.name != target_name:
            continue
        results.extend(r.__dict__ for r in export(ctx.session, target, ctx.tenant.id, gaiji))
    if any(r["status"] == "failed" for r in results):
        raise ExportIncomplete(f"{ctx.tenant.id}: {[r for r in results if r['status'] == 'failed']}")
    return results


def schedule_export(tenant_id: str, target_name: str | None = None) -> Any:
    # One job per tenant and minute: acceptances in the same minute share it; a later one runs again
    # (harmless: each application is delivered once whatever the number of runs).
    minute = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M")
    return enqueue(
        export_applications,
        tenant_id,
        target_name,
        job_id=f"{tenant_id}__export__{target_name or 'all'}__{minute}",
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
    )


def export_soon(tenant_id: str) -> bool:
    """After an acceptance: queue the export, or leave it to the next sweep if Redis is unreachable."""
    try:
        schedule_export(tenant_id)
    except RedisError:
        log.warning(
            "export of %s not queued (Redis unreachable); the next `forms export` sweep sends it", tenant_id
        )
        return False
    return True
