"""Back-linkage export as a background job, retried with backoff while storage is down."""

from __future__ import annotations

from typing import Any

from rq import Retry

from app.forms.backlink import export
from app.jobs import JobContext, enqueue, tenant_job
from app.tenancy.service import registry

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
    return enqueue(
        export_applications,
        tenant_id,
        target_name,
        job_id=f"{tenant_id}__export__{target_name or 'all'}",
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
    )
