"""Background jobs (RQ) that always run for exactly one tenant.

A job function is declared with ``@tenant_job`` and receives a ``JobContext`` (the tenant, its one
Session and an audit actor). It is enqueued with ``enqueue(func, tenant_id, ...)``; both sides refuse
a missing or unknown tenant, so no job can run "for nobody" or fall back to another schema.
RQ delivers at least once: jobs must be idempotent (deterministic job ids help, see ``enqueue``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast

from rq import Queue, Repeat, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy.orm import Session

from app.audit.service import Actor, actor_var
from app.db.session import session_scope
from app.kv import get_redis
from app.logs import tenant_var
from app.tenancy.service import TenantRecord, registry

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
QUEUE_NAME = "madoguchi"
REPEAT_TIMES = 1_000_000_000  # RQ's Repeat wants a count; this one outlives any deployment


class TenantRequired(Exception):
    """A tenant job was enqueued or started without a valid tenant."""


@dataclass(frozen=True)
class JobContext:
    tenant: TenantRecord
    session: Session
    actor: Actor


def _resolve(tenant_id: object, job_name: str) -> TenantRecord:
    if not isinstance(tenant_id, str) or not tenant_id:
        raise TenantRequired(f"job {job_name} needs a tenant id as its first argument, got {tenant_id!r}")
    record = registry.get(tenant_id)
    if record is None:
        raise TenantRequired(f"job {job_name}: no active tenant {tenant_id!r}")
    return record


def tenant_job(func: Callable[Concatenate[JobContext, P], R]) -> Callable[Concatenate[str, P], R]:
    """Make ``func(ctx, ...)`` into the RQ callable ``job(tenant_id, ...)``."""
    name = f"{func.__module__}.{func.__qualname__}"

    @functools.wraps(func)
    def run(tenant_id: str, *args: P.args, **kwargs: P.kwargs) -> R:
        record = _resolve(tenant_id, name)
        actor = Actor("system", f"job:{func.__name__}", None, "worker")
        tenant_token, actor_token = tenant_var.set(record.id), actor_var.set(actor)
        try:
            with session_scope(record.binding) as session:
                return func(JobContext(record, session, actor), *args, **kwargs)
        finally:
            tenant_var.reset(tenant_token)
            actor_var.reset(actor_token)

    run._madoguchi_tenant_job = True  # type: ignore[attr-defined]
    return cast(Callable[Concatenate[str, P], R], run)


def queue(name: str = QUEUE_NAME) -> Queue:
    return Queue(name, connection=get_redis())


def _checked(func: Callable[..., Any], tenant_id: str, job_id: str | None) -> TenantRecord:
    if not getattr(func, "_madoguchi_tenant_job", False):
        raise TypeError(f"{func!r} is not a @tenant_job")
    record = _resolve(tenant_id, getattr(func, "__name__", repr(func)))
    if job_id is not None and not job_id.startswith(f"{record.id}__"):
        raise ValueError("job ids start with the tenant id, so two tenants never share one")
    return record


def enqueue(
    func: Callable[..., Any], tenant_id: str, *args: Any, job_id: str | None = None, **kwargs: Any
) -> Job:
    """Enqueue a ``@tenant_job`` for one tenant. ``job_id`` (``<tenant>__<kind>__<key>``) dedupes."""
    record = _checked(func, tenant_id, job_id)
    return queue().enqueue(func, record.id, *args, job_id=job_id, **kwargs)


def enqueue_in(
    delay: dt.timedelta,
    func: Callable[..., Any],
    tenant_id: str,
    *args: Any,
    job_id: str | None = None,
    **kwargs: Any,
) -> Job:
    """Like ``enqueue``, after ``delay``. Runs only on a worker started with the scheduler."""
    record = _checked(func, tenant_id, job_id)
    return queue().enqueue_in(delay, func, record.id, *args, job_id=job_id, **kwargs)


@dataclass(frozen=True)
class Scheduled:
    job_id: str
    action: Literal["kept", "scheduled"]
    run_at: dt.datetime | None  # None: queued or running now


def ensure_repeating(
    func: Callable[..., Any],
    tenant_id: str,
    *args: Any,
    job_id: str,
    interval: int,
    first_in: dt.timedelta | None = None,
    retries: int = 3,
    job_timeout: int | None = None,
    **kwargs: Any,
) -> Scheduled:
    """Make sure exactly one run of a repeating ``@tenant_job`` is pending, queued or running.

    One deterministic ``job_id`` is one job hash and one entry in the scheduled registry; RQ's
    ``Repeat`` schedules the same id again after each run, so the job never has two runs pending.
    A job that is finished, failed, lost or has another ``interval`` (seconds) is made again, its
    first run spread over the interval by a hash of the id so thousands of tenants do not start at
    the same second. ``Retry`` re-runs a run whose worker died. Runs only on a worker started with
    the scheduler (``madoguchi worker`` is).
    """
    q = queue()
    try:
        job: Job | None = Job.fetch(job_id, connection=q.connection)
    except NoSuchJobError:
        job = None
    if job is not None:
        status = job.get_status(refresh=False)
        if status in (JobStatus.QUEUED, JobStatus.STARTED):
            return Scheduled(job_id, "kept", None)
        scheduled: ScheduledJobRegistry = q.scheduled_job_registry
        if status == JobStatus.SCHEDULED and job_id in scheduled and job.repeat_intervals == [interval]:
            return Scheduled(job_id, "kept", scheduled.get_scheduled_time(job_id))
        job.delete()  # finished, failed, stopped, or an old interval
    if first_in is None:
        first_in = dt.timedelta(seconds=zlib.crc32(job_id.encode()) % interval)
    enqueue_in(
        first_in,
        func,
        tenant_id,
        *args,
        job_id=job_id,
        job_timeout=job_timeout,
        repeat=Repeat(times=REPEAT_TIMES, interval=interval),
        retry=Retry(max=retries, interval=interval),
        **kwargs,
    )
    return Scheduled(job_id, "scheduled", dt.datetime.now(dt.UTC) + first_in)


def run_worker(burst: bool = False, with_scheduler: bool = True) -> bool:
    """Run an RQ worker; its forked work horses drop inherited DB connections (app.db.engine)."""
    worker = Worker([queue()], connection=get_redis())
    return bool(worker.work(burst=burst, with_scheduler=with_scheduler))
