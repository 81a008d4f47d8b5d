"""Polling: take each new remote object exactly once, fetch it, hand it to the importer.

Taking
    Every listed object is claimed in ``linkage_objects`` before any download, with
    ``INSERT ... ON CONFLICT (adapter, object_key, etag) DO NOTHING RETURNING id`` on the table's
    unique index, and committed at once: of two racing pollers exactly one gets the row. An object
    whose import failed — or whose poller vanished (``taken`` for longer than
    ``STALE_TAKEN_AFTER``) — is claimed again by a conditional ``UPDATE ... WHERE status = 'failed'``,
    which the row lock serialises the same way. ``imported`` and ``rejected`` are final: an object
    is never imported twice. A file replaced under the same key has a new etag, so it is a new object.

Order
    Objects are handled in name order (core systems name extracts by date, and changes files must
    apply in order). The first failure ends the poll, and so does an object another poller is still
    importing: what follows waits for the next poll, so a later changes file never overtakes an
    earlier one that failed.

Hand-off
    The object is streamed into a temporary directory, passed to ``importer(ctx, path, *, file_name,
    kind, source, source_ref) -> batch id | None`` and deleted when the importer returns, so the
    importer works on the path synchronously. Importer returned → ``imported`` (``rejected`` or
    ``failed`` when the batch it names says so); fetch or importer raised → ``failed``, retried by
    the next poll. The default importer is ``app.linkage.importer.import_local_file``, imported on
    first use.

Scheduling
    One RQ job per tenant adapter with the deterministic id ``<tenant>__poll__<adapter>``, kept by
    ``app.jobs.ensure_repeating`` with ``Repeat(interval=poll_minutes)``: after each run RQ schedules the same
    job id again, and one id is one job hash and one entry in the scheduled registry, so an adapter
    never has two polls pending. The job does not fail on adapter or import errors (it logs them and
    returns them in its result), so the chain goes on; ``Retry`` re-runs a poll whose worker died.
    Scheduled jobs run only on a worker started with the scheduler (``madoguchi worker`` is).
    ``schedule_all_polls`` runs when ``madoguchi worker`` starts: it keeps a poll that is pending,
    queued or running and (re)creates one that is missing, finished, failed or has a stale interval,
    its first run spread over the interval by a hash of the job id so thousands of tenants do not
    poll at the same second. A running poll follows ``tenants sync``: it takes its interval from
    the current configuration and stops repeating when its adapter is removed; a suspended tenant's
    poll is refused by ``@tenant_job`` and so ends. Intervals are plain durations (no time zone).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from rq import get_current_job
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.jobs import JobContext, Scheduled, ensure_repeating, tenant_job
from app.linkage.adapters.base import (
    AdapterError,
    AnyAdapterConfig,
    LinkageAdapter,
    RemoteObject,
    adapter_for,
)
from app.linkage.config import FileKind
from app.linkage.models import ImportBatch, LinkageObject
from app.tenancy.service import TenantRecord, registry

log = logging.getLogger(__name__)

POLL_JOB_TIMEOUT = 3 * 3600  # seconds; a full Osaka extract imports well inside this
STALE_TAKEN_AFTER = dt.timedelta(hours=6)  # longer than any poll may run: its poller is gone
ABANDONED_RETRIES = 3


class Importer(Protocol):
    def __call__(
        self, ctx: JobContext, path: Path, /, *, file_name: str, kind: FileKind, source: str, source_ref: str
    ) -> int | None: ...


def default_importer(
    ctx: JobContext, path: Path, /, *, file_name: str, kind: FileKind, source: str, source_ref: str
) -> int | None:
    """The front-linkage importer (imported on first use: polling must not pull it into the CLI)."""
    from app.linkage.importer import import_local_file

    outcome = import_local_file(
        ctx.tenant,
        path,
        actor=ctx.actor,
        file_name=file_name,
        kind=kind,
        source=source,
        source_ref=source_ref,
    )
    return outcome.batch_id


@dataclass
class PolledObject:
    key: str
    name: str
    etag: str
    size: int | None
    status: str  # imported, rejected or failed
    batch_id: int | None = None
    error: str | None = None


@dataclass
class PollResult:
    tenant: str
    adapter: str
    listed: int = 0  # objects matching the pattern now
    already_taken: int = 0  # imported or rejected by an earlier poll
    waiting: int = 0  # left for the next poll (after a failure, or behind another poller's object)
    objects: list[PolledObject] = field(default_factory=list)
    error: str | None = None  # the listing itself failed (Japanese)

    @property
    def ok(self) -> bool:
        return self.error is None and all(o.status != "failed" for o in self.objects)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def describe(exc: Exception) -> str:
    """Japanese for operators: an adapter's own message, else the exception (never a secret)."""
    if isinstance(exc, AdapterError):
        return str(exc)
    return f"処理中にエラーが発生しました（{type(exc).__name__}: {str(exc)[:300]}）"


# --- one poll ---------------------------------------------------------------------------------


def poll(ctx: JobContext, config: AnyAdapterConfig, *, importer: Importer | None = None) -> PollResult:
    """Poll one adapter now. Raises ``AdapterError`` when the listing fails."""
    result = PollResult(ctx.tenant.id, config.name)
    with adapter_for(config, ctx.tenant) as adapter:
        objects = sorted(adapter.list_objects(), key=lambda o: (o.name, o.key))
        result.listed = len(objects)
        for position, obj in enumerate(objects):
            state, row_id = _claim(ctx.session, config.name, obj)
            ctx.session.commit()  # the claim must be visible before the (long) download starts
            if state == "done":
                result.already_taken += 1
                continue
            if state == "busy" or row_id is None:
                result.waiting = len(objects) - position
                break
            outcome = _take(ctx, adapter, obj, row_id, importer or default_importer)
            result.objects.append(outcome)
            if outcome.status == "failed":
                result.waiting = len(objects) - position - 1
                break
    return result


def run_poll(ctx: JobContext, config: AnyAdapterConfig, *, importer: Importer | None = None) -> PollResult:
    """``poll`` that reports instead of raising: the job and the CLI both want a result."""
    try:
        return poll(ctx, config, importer=importer)
    except Exception as exc:
        ctx.session.rollback()
        if isinstance(exc, AdapterError):
            log.warning("linkage poll %s/%s: %s", ctx.tenant.id, config.name, exc)
        else:
            log.exception("linkage poll %s/%s failed", ctx.tenant.id, config.name)
        return PollResult(ctx.tenant.id, config.name, error=describe(exc))


def _claim(
    session: Session, adapter: str, obj: RemoteObject
) -> tuple[Literal["new", "retry", "done", "busy"], int | None]:
    same = (
        LinkageObject.adapter == adapter,
        LinkageObject.object_key == obj.key,
        LinkageObject.etag == obj.etag,
    )
    new_id = session.execute(
        insert(LinkageObject)
        .values(
            adapter=adapter,
            object_key=obj.key,
            etag=obj.etag,
            size_bytes=obj.size,
            last_modified=obj.last_modified,
            status="taken",
        )
        .on_conflict_do_nothing(index_elements=["adapter", "object_key", "etag"])
        .returning(LinkageObject.id)
    ).scalar_one_or_none()
    if new_id is not None:
        return "new", new_id
    retry_id = session.execute(
        update(LinkageObject)
        .where(
            *same,
            or_(
                LinkageObject.status == "failed",
                and_(
                    LinkageObject.status == "taken", LinkageObject.taken_at < func.now() - STALE_TAKEN_AFTER
                ),
            ),
        )
        .values(status="taken", taken_at=func.now(), batch_id=None)
        .returning(LinkageObject.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if retry_id is not None:
        return "retry", retry_id
    status = session.execute(select(LinkageObject.status).where(*same)).scalar_one()
    return ("busy" if status == "taken" else "done"), None


def _take(
    ctx: JobContext, adapter: LinkageAdapter[Any], obj: RemoteObject, row_id: int, importer: Importer
) -> PolledObject:
    outcome = PolledObject(obj.key, obj.name, obj.etag, obj.size, status="failed")
    try:
        with tempfile.TemporaryDirectory(prefix="madoguchi-linkage-") as tmp:
            path = adapter.fetch(obj, Path(tmp))
            outcome.batch_id = importer(
                ctx,
                path,
                file_name=obj.name,
                kind=adapter.config.purpose,
                source=adapter.name,
                source_ref=obj.ref,
            )
        outcome.status, outcome.error = _verdict(ctx.session, outcome.batch_id)
    except Exception as exc:
        ctx.session.rollback()
        outcome.batch_id, outcome.error = None, describe(exc)
        if isinstance(exc, AdapterError):
            log.warning("linkage %s/%s: %s not imported: %s", ctx.tenant.id, adapter.name, obj.key, exc)
        else:
            log.exception("linkage %s/%s: import of %s failed", ctx.tenant.id, adapter.name, obj.key)
    ctx.session.execute(
        update(LinkageObject)
        .where(LinkageObject.id == row_id)
        .values(status=outcome.status, batch_id=outcome.batch_id)
        .execution_options(synchronize_session=False)
    )
    ctx.session.commit()
    return outcome


def _verdict(session: Session, batch_id: int | None) -> tuple[str, str | None]:
    """What the batch the importer returned says: rejected is final, failed is retried."""
    if batch_id is None:
        return "imported", None
    status = session.execute(
        select(ImportBatch.status).where(ImportBatch.id == batch_id)
    ).scalar_one_or_none()
    if status == "rejected":
        return "rejected", None
    if status == "failed":
        return "failed", f"取込バッチ {batch_id} が失敗しました"
    return "imported", None


# --- the job and its schedule -------------------------------------------------------------------


def find_adapter(record: TenantRecord, name: str) -> AnyAdapterConfig | None:
    for config in registry.config(record).linkage.adapters:
        if config.name == name:
            return config
    return None


@tenant_job
def poll_job(ctx: JobContext, adapter_name: str, importer: Importer | None = None) -> dict[str, Any]:
    """The scheduled poll of one tenant adapter (RQ repeats it; see the module docstring)."""
    config = find_adapter(ctx.tenant, adapter_name)
    job = get_current_job()
    if config is None:
        log.warning(
            "linkage poll %s/%s: adapter no longer configured, polling stops", ctx.tenant.id, adapter_name
        )
        if job is not None:
            job.repeats_left = 0
        return PollResult(
            ctx.tenant.id, adapter_name, error=f"アダプタ「{adapter_name}」は設定されていません"
        ).as_dict()
    if job is not None and job.repeat_intervals != [config.poll_minutes * 60]:
        job.repeat_intervals = [config.poll_minutes * 60]  # `tenants sync` changed poll_minutes
    return run_poll(ctx, config, importer=importer).as_dict()


def poll_job_id(tenant_id: str, adapter_name: str) -> str:
    return f"{tenant_id}__poll__{adapter_name}"


ScheduledPoll = Scheduled


def schedule_poll(
    record: TenantRecord,
    config: AnyAdapterConfig,
    *,
    importer: Importer | None = None,
    first_in: dt.timedelta | None = None,
) -> ScheduledPoll:
    """Make sure exactly one poll of this adapter is pending, queued or running."""
    options: dict[str, Any] = {"importer": importer} if importer is not None else {}
    return ensure_repeating(
        poll_job,
        record.id,
        config.name,
        job_id=poll_job_id(record.id, config.name),
        interval=config.poll_minutes * 60,
        first_in=first_in,
        retries=ABANDONED_RETRIES,
        job_timeout=POLL_JOB_TIMEOUT,
        **options,
    )


def schedule_all_polls(*, importer: Importer | None = None) -> list[ScheduledPoll]:
    """At worker start-up: one pending poll for every adapter of every active tenant."""
    done: list[ScheduledPoll] = []
    for record in registry.all():
        if record.status != "active":
            continue
        for config in registry.config(record).linkage.adapters:
            done.append(schedule_poll(record, config, importer=importer))
    return done
