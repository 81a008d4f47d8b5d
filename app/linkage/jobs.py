"""Background imports: the operator starts an import and watches its batch row fill up."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from app.jobs import JobContext, Scheduled, enqueue, ensure_repeating, tenant_job
from app.linkage import webhooks
from app.linkage.importer import import_local_file
from app.linkage.models import ImportBatch
from app.linkage.sources import local_copy
from app.tenancy.service import registry

log = logging.getLogger(__name__)


@tenant_job
def import_source(
    ctx: JobContext,
    source: str,
    batch_id: int,
    kind: str | None = None,
    mode: str | None = None,
    standard_layout: bool = False,
) -> dict[str, Any]:
    """Import ``source`` (path or s3://) into the batch created when the job was queued."""
    with local_copy(source) as (path, name):
        outcome = import_local_file(
            ctx.tenant,
            path,
            actor=ctx.actor,
            file_name=name,
            source="job",
            source_ref=source,
            kind=kind,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            standard_layout=standard_layout,
            batch_id=batch_id,
        )
    return outcome.as_dict()


def start_import(
    ctx_session: Any,
    tenant_id: str,
    source: str,
    created_by: str,
    kind: str | None = None,
    mode: str | None = None,
    standard_layout: bool = False,
) -> ImportBatch:
    """Create a queued batch and enqueue its job (the batch id makes the job id, so it runs once)."""
    batch = ImportBatch(
        kind=kind or "residents",
        mode=mode or "full",
        layout="standard" if standard_layout else "tenant",
        policy="reject_all",
        source="job",
        source_ref=source,
        file_name=source.rsplit("/", 1)[-1],
        status="queued",
        created_by=created_by,
    )
    ctx_session.add(batch)
    ctx_session.flush()
    job = enqueue(
        import_source,
        tenant_id,
        source,
        batch.id,
        kind,
        mode,
        standard_layout,
        job_id=f"{tenant_id}__import__{batch.id}",
    )
    batch.job_id = job.id
    ctx_session.commit()
    return batch


# --- signed webhooks ---------------------------------------------------------------------------------

WEBHOOK_INTERVAL = 60  # seconds: the repeating run that sends retries when they fall due


@tenant_job
def deliver_webhooks(ctx: JobContext) -> dict[str, Any]:
    """Send the tenant's due webhook deliveries (app.linkage.webhooks); queue another run if the
    time limit stopped this one with deliveries still due."""
    webhooks.kicked_run_started(ctx.tenant.id)
    config = registry.config(ctx.tenant)
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        report = webhooks.deliver_due(ctx.session, config, ctx.tenant.id, client)
    if report.more:
        enqueue_webhook_delivery(ctx.tenant.id)
    return {"tenant": ctx.tenant.id, **report.__dict__}


def enqueue_webhook_delivery(tenant_id: str) -> Any:
    # Its own id, so that it never replaces the repeating run (``<tenant>__webhooks``); two runs at
    # once are harmless: each delivery is locked while it is sent.
    return enqueue(deliver_webhooks, tenant_id, job_id=f"{tenant_id}__webhooks__now")


def schedule_webhook_jobs() -> list[Scheduled]:
    """At worker start-up: a repeating delivery run for every active tenant with endpoints."""
    return [
        ensure_repeating(
            deliver_webhooks, record.id, job_id=f"{record.id}__webhooks", interval=WEBHOOK_INTERVAL
        )
        for record in registry.all()
        if record.status == "active" and registry.config(record).linkage.webhooks
    ]
