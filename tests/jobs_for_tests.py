"""Tenant jobs used by the tests (importable by RQ's forked work horse)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from app.audit import record
from app.audit.models import AuditEntry
from app.jobs import JobContext, tenant_job


@tenant_job
def write_marker_and_probe_osaka(ctx: JobContext, marker: str) -> dict[str, Any]:
    """Write an audit marker in the job's tenant, then try (and fail) to read Osaka's log."""
    record(ctx.session, "test.marker", details={"marker": marker})
    ctx.session.flush()
    denied = None
    try:
        with ctx.session.begin_nested():
            ctx.session.execute(text("SELECT count(*) FROM t_271004.audit_log")).scalar()
    except ProgrammingError as exc:
        denied = str(exc.orig)
    path = ctx.session.execute(text("SELECT current_setting('search_path')")).scalar()
    return {"tenant": ctx.tenant.id, "search_path": path, "denied": denied}


@tenant_job
def count_markers(ctx: JobContext) -> int:
    return len(ctx.session.scalars(select(AuditEntry).where(AuditEntry.action == "test.marker")).all())
