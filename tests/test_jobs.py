"""Background jobs always run for exactly one, explicit tenant."""

from __future__ import annotations

import pytest
from rq import Worker
from rq.job import JobStatus
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.jobs import TenantRequired, enqueue, queue
from app.kv import get_redis
from tests import jobs_for_tests
from tests.conftest import tenant_session


def _run_worker() -> None:
    Worker([queue()], connection=get_redis()).work(burst=True, with_scheduler=False)


def test_enqueue_without_a_tenant_is_refused(provisioned: object) -> None:
    with pytest.raises(TenantRequired):
        enqueue(jobs_for_tests.count_markers, None)  # type: ignore[arg-type]
    with pytest.raises(TenantRequired):
        enqueue(jobs_for_tests.count_markers, "")
    with pytest.raises(TenantRequired, match="atlantis"):
        enqueue(jobs_for_tests.count_markers, "atlantis")
    assert queue().count == 0


def test_only_tenant_jobs_can_be_enqueued(provisioned: object) -> None:
    with pytest.raises(TypeError):
        enqueue(print, "gobo")


def test_job_ids_carry_the_tenant(provisioned: object) -> None:
    with pytest.raises(ValueError, match="start with the tenant"):
        enqueue(jobs_for_tests.count_markers, "gobo", job_id="osaka__count")


def test_a_job_smuggled_in_without_a_tenant_fails_in_the_worker(committed: object) -> None:
    # Bypass enqueue(): the job itself still refuses to run without a tenant.
    job = queue().enqueue(jobs_for_tests.count_markers, None)
    _run_worker()
    job.refresh()
    assert job.get_status() == JobStatus.FAILED
    assert "TenantRequired" in (job.latest_result().exc_string or "")  # type: ignore[union-attr]


def test_a_gobo_job_in_a_forked_worker_never_touches_osaka(committed: object) -> None:
    job = enqueue(
        jobs_for_tests.write_marker_and_probe_osaka, "gobo", "from-gobo", job_id="gobo__test__probe"
    )
    _run_worker()
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED, job.latest_result()
    result = job.return_value()
    assert result["tenant"] == "gobo"
    assert result["search_path"] == "t_302058"
    assert "permission denied for schema t_271004" in result["denied"]
    with tenant_session("gobo") as gobo:
        markers = gobo.scalars(select(AuditEntry).where(AuditEntry.action == "test.marker")).all()
        assert [m.details["marker"] for m in markers] == ["from-gobo"]
        assert markers[0].actor_id == "job:write_marker_and_probe_osaka"
    with tenant_session("osaka") as osaka:
        assert osaka.scalar(select(AuditEntry.id)) is None
