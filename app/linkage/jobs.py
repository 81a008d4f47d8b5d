"""Background imports: the operator starts an import and watches its batch row fill up."""

from __future__ import annotations

import logging
from typing import Any

from app.jobs import JobContext, enqueue, tenant_job
from app.linkage.importer import import_local_file
from app.linkage.models import ImportBatch
from app.linkage.sources import local_copy

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
