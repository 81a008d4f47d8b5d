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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from rq import Queue, Worker
from rq.job import Job
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


def run_worker(burst: bool = False, with_scheduler: bool = True) -> bool:
    """Run an RQ worker; its forked work horses drop inherited DB connections (app.db.engine)."""
    worker = Worker([queue()], connection=get_redis())
    return bool(worker.work(burst=burst, with_scheduler=with_scheduler))
