"""Polling: every object taken once, in name order, retried only after a failure, scheduled once."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import Worker
from rq.job import Job, JobStatus
from sqlalchemy import func, select, update

from app.jobs import JobContext, TenantRequired, enqueue, enqueue_in, queue
from app.kv import get_redis
from app.linkage.adapters.polling import (
    STALE_TAKEN_AFTER,
    find_adapter,
    poll,
    poll_job,
    poll_job_id,
    run_poll,
    schedule_all_polls,
    schedule_poll,
)
from app.linkage.config import HttpAdapter, HttpAuth, LocalAdapter, S3Adapter
from app.linkage.models import ImportBatch, LinkageObject
from app.tenancy.service import TenantRecord
from tests.conftest import madoguchi, tenant_session
from tests.linkage_support import Bucket, bucket, extract_server, job_context, record_import

JUKI = r"^GOBO_JUKI_(ZEN|IDO)_\d{8}\.csv$"
A, B, C = "GOBO_JUKI_ZEN_20260401.csv", "GOBO_JUKI_IDO_20260402.csv", "GOBO_JUKI_IDO_20260403.csv"


@pytest.fixture
def s3() -> Iterator[Bucket]:
    with bucket() as made:
        yield made


@pytest.fixture
def gobo_bucket() -> Iterator[Bucket]:
    """The bucket tenants/gobo/linkage.yaml names, on the moto server."""
    with bucket("gobo-madoguchi-linkage") as made:
        yield made


def config_for(s3: Bucket) -> S3Adapter:
    return S3Adapter(
        name="cokas-juki", kind="s3", purpose="residents", bucket=s3.name, prefix="juki/", pattern=JUKI
    )


def put(s3: Bucket, *names: str) -> None:
    for name in names:
        s3.put(f"juki/{name}", f"ATENA_NO\n{name}\n".encode())  # distinct content per file


def rows(tenant: str) -> list[tuple[str, str, int | None]]:
    with tenant_session(tenant) as session:
        found = session.execute(
            select(LinkageObject.object_key, LinkageObject.status, LinkageObject.batch_id).order_by(
                LinkageObject.object_key
            )
        ).all()
        return [(key.removeprefix("juki/"), status, batch) for key, status, batch in found]


def batches(tenant: str) -> list[str]:
    with tenant_session(tenant) as session:
        return sorted(session.scalars(select(ImportBatch.file_name)))


def poll_gobo(config: S3Adapter | LocalAdapter | HttpAdapter, importer: Any = record_import) -> Any:
    with job_context("gobo") as ctx:
        return poll(ctx, config, importer=importer)


def run_worker(with_scheduler: bool = False) -> None:
    Worker([queue()], connection=get_redis()).work(burst=True, with_scheduler=with_scheduler)


# --- taking ------------------------------------------------------------------------------------


def test_objects_are_imported_in_name_order_and_recorded(db: None, s3: Bucket) -> None:
    put(s3, C, A, B)
    seen: list[str] = []

    def importer(ctx: JobContext, path: Path, /, **meta: Any) -> int:
        seen.append(meta["file_name"])
        assert meta["kind"] == "residents"
        assert meta["source"] == "cokas-juki"
        assert meta["source_ref"] == f"s3://{s3.name}/juki/{meta['file_name']}"
        assert path.read_bytes() == f"ATENA_NO\n{meta['file_name']}\n".encode()
        return record_import(ctx, path, **meta)

    result = poll_gobo(config_for(s3), importer)
    assert seen == [B, C, A]  # IDO_0402 < IDO_0403 < ZEN_0401 by name
    assert result.ok
    assert [(o.name, o.status) for o in result.objects] == [(B, "imported"), (C, "imported"), (A, "imported")]
    assert [(k, s) for k, s, _ in rows("gobo")] == [(B, "imported"), (C, "imported"), (A, "imported")]
    assert all(batch is not None for _, _, batch in rows("gobo"))


def test_an_object_added_during_a_poll_is_taken_by_the_next_poll_and_never_twice(
    db: None, s3: Bucket
) -> None:
    put(s3, A, B)

    def importer(ctx: JobContext, path: Path, /, **meta: Any) -> int:
        if meta["file_name"] == A:
            put(s3, C)  # the core system delivers while the poller works
        return record_import(ctx, path, **meta)

    first = poll_gobo(config_for(s3), importer)
    assert [o.name for o in first.objects] == [B, A]
    second = poll_gobo(config_for(s3), importer)
    assert ([o.name for o in second.objects], second.already_taken) == ([C], 2)
    third = poll_gobo(config_for(s3), importer)
    assert (third.objects, third.already_taken) == ([], 3)
    assert batches("gobo") == sorted([A, B, C])


def test_a_failed_import_is_retried_next_poll_and_an_imported_one_never(db: None, s3: Bucket) -> None:
    put(s3, A, B, C)
    calls: list[str] = []
    broken = {B}

    def flaky(ctx: JobContext, path: Path, /, **meta: Any) -> int:
        calls.append(meta["file_name"])
        if meta["file_name"] in broken:
            broken.discard(meta["file_name"])
            raise RuntimeError("取込先が一時的に使えません")
        return record_import(ctx, path, **meta)

    first = poll_gobo(config_for(s3), flaky)
    assert [(o.name, o.status) for o in first.objects] == [(B, "failed")]
    assert "RuntimeError" in (first.objects[0].error or "")
    assert first.waiting == 2  # C and A wait: a later changes file never overtakes a failed one
    assert not first.ok
    assert rows("gobo") == [(B, "failed", None)]

    second = poll_gobo(config_for(s3), flaky)
    assert [(o.name, o.status) for o in second.objects] == [(B, "imported"), (C, "imported"), (A, "imported")]
    third = poll_gobo(config_for(s3), flaky)
    assert (third.objects, third.already_taken) == ([], 3)
    assert calls == [B, B, C, A]
    assert batches("gobo") == sorted([A, B, C])


def test_a_rejected_batch_is_final(db: None, s3: Bucket) -> None:
    put(s3, A)

    def rejecting(ctx: JobContext, path: Path, /, **meta: Any) -> int:
        batch_id = record_import(ctx, path, **meta)
        ctx.session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(status="rejected"))
        return batch_id

    assert [o.status for o in poll_gobo(config_for(s3), rejecting).objects] == ["rejected"]
    assert poll_gobo(config_for(s3), rejecting).already_taken == 1
    assert [status for _, status, _ in rows("gobo")] == ["rejected"]


def test_an_object_whose_poller_vanished_is_taken_again(db: None, s3: Bucket) -> None:
    put(s3, A)
    etag = s3.client.head_object(Bucket=s3.name, Key=f"juki/{A}")["ETag"].strip('"')
    with job_context("gobo") as ctx:  # a poller claimed it long ago and died
        ctx.session.add(
            LinkageObject(adapter="cokas-juki", object_key=f"juki/{A}", etag=etag, status="taken")
        )
        ctx.session.flush()
        assert poll(ctx, config_for(s3), importer=record_import).waiting == 1  # busy elsewhere: wait
        ctx.session.execute(
            update(LinkageObject).values(taken_at=func.now() - STALE_TAKEN_AFTER - dt.timedelta(minutes=1))
        )
        assert [o.status for o in poll(ctx, config_for(s3), importer=record_import).objects] == ["imported"]


def test_a_replaced_file_is_a_new_object(db: None, s3: Bucket) -> None:
    put(s3, A)
    poll_gobo(config_for(s3))
    s3.put(f"juki/{A}", b"ATENA_NO\ncorrected\n")
    assert [o.status for o in poll_gobo(config_for(s3)).objects] == ["imported"]
    assert [status for _, status, _ in rows("gobo")] == ["imported", "imported"]


def test_two_racing_pollers_take_each_object_once(committed: object, s3: Bucket) -> None:
    names = [f"GOBO_JUKI_IDO_2026040{day}.csv" for day in range(1, 7)]
    put(s3, *names)
    start = threading.Barrier(2)
    results: list[Any] = []

    def slow(ctx: JobContext, path: Path, /, **meta: Any) -> int:
        time.sleep(0.05)  # widen the window in which the other poller could take it too
        return record_import(ctx, path, **meta)

    def poller() -> None:
        start.wait()
        results.append(poll_gobo(config_for(s3), slow))

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    taken = sorted(o.name for r in results for o in r.objects)
    assert taken == names
    assert batches("gobo") == names
    assert [status for _, status, _ in rows("gobo")] == ["imported"] * 6


def test_local_and_http_adapters_poll_the_same_way(
    db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / A).write_bytes(b"ATENA_NO\nlocal\n")
    local = LocalAdapter(name="hand-carried", kind="local", purpose="residents", directory=str(tmp_path))
    assert [o.status for o in poll_gobo(local).objects] == ["imported"]
    assert poll_gobo(local).already_taken == 1

    with extract_server() as server:
        monkeypatch.setenv("MADOGUCHI_TEST_CORE_TOKEN", server.token)
        http = HttpAdapter(
            name="core-api",
            kind="http",
            purpose="residents",
            url=server.url,
            auth=HttpAuth(type="bearer", token_ref="env:MADOGUCHI_TEST_CORE_TOKEN"),
        )
        server.body = b"ATENA_NO\nhttp v1\n"  # no validators: identified by content hash
        assert [o.status for o in poll_gobo(http).objects] == ["imported"]
        assert poll_gobo(http).already_taken == 1
        server.body = b"ATENA_NO\nhttp v2\n"
        assert [o.status for o in poll_gobo(http).objects] == ["imported"]
    assert len(batches("gobo")) == 3


def test_a_listing_failure_is_reported_not_raised(db: None) -> None:
    config = S3Adapter(name="cokas-juki", kind="s3", purpose="residents", bucket="no-such-bucket-here")
    with job_context("gobo") as ctx:
        result = run_poll(ctx, config, importer=record_import)
    assert result.error == "バケット「no-such-bucket-here」が見つかりません"
    assert not result.ok


# --- the job, tenants and the worker ---------------------------------------------------------------


def test_gobo_poll_job_in_a_forked_worker_writes_only_to_gobo(committed: object, gobo_bucket: Bucket) -> None:
    put(gobo_bucket, A, "GOBO_SHIKAKU_20260401.csv")
    job = enqueue(
        poll_job, "gobo", "cokas-juki", importer=record_import, job_id=poll_job_id("gobo", "cokas-juki")
    )
    run_worker()
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED, job.latest_result()
    result = job.return_value()
    assert result["ok"]
    assert [(o["name"], o["status"]) for o in result["objects"]] == [(A, "imported")]
    assert [(k, s) for k, s, _ in rows("gobo")] == [(A, "imported")]
    assert batches("gobo") == [A]
    for other in ("osaka", "yamaguchi"):
        assert rows(other) == []
        assert batches(other) == []


def test_a_poll_job_without_a_tenant_is_refused(committed: object, gobo_bucket: Bucket) -> None:
    put(gobo_bucket, A)
    with pytest.raises(TenantRequired):
        enqueue(poll_job, None, "cokas-juki")  # type: ignore[arg-type]
    with pytest.raises(TenantRequired):
        enqueue_in(dt.timedelta(minutes=1), poll_job, "", "cokas-juki")
    with pytest.raises(ValueError, match="start with the tenant"):
        enqueue(poll_job, "gobo", "cokas-juki", job_id=poll_job_id("osaka", "juki-extract"))
    smuggled = queue().enqueue(poll_job, None, "cokas-juki", importer=record_import)
    run_worker()
    smuggled.refresh()
    assert smuggled.get_status() == JobStatus.FAILED
    assert "TenantRequired" in (smuggled.latest_result().exc_string or "")  # type: ignore[union-attr]
    for tenant in ("osaka", "gobo", "yamaguchi"):
        assert rows(tenant) == []


# --- scheduling ---------------------------------------------------------------------------------

EXPECTED_POLLS = {
    "osaka__poll__juki-extract",
    "osaka__poll__shikaku-extract",
    "gobo__poll__cokas-juki",
    "gobo__poll__cokas-shikaku",
    "yamaguchi__poll__core-api",
    "yamaguchi__poll__shikaku-drop",
}


def scheduled_ids() -> list[str]:
    return sorted(queue().scheduled_job_registry.get_job_ids())


def test_start_up_schedules_one_poll_per_adapter_and_never_twice(provisioned: object) -> None:
    first = schedule_all_polls()
    assert {p.job_id for p in first} >= EXPECTED_POLLS
    assert {p.action for p in first} == {"scheduled"}
    assert set(scheduled_ids()) >= EXPECTED_POLLS
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=60)
    assert all(p.run_at is not None and p.run_at <= soon for p in first)  # within one interval

    again = schedule_all_polls()
    assert {p.action for p in again} == {"kept"}
    assert scheduled_ids() == sorted(p.job_id for p in first)  # one entry per id, still
    osaka = Job.fetch("osaka__poll__shikaku-extract", connection=get_redis())
    assert osaka.repeat_intervals == [30 * 60]  # poll_minutes from tenants/osaka/linkage.yaml


def test_schedule_poll_replaces_a_dead_or_outdated_poll(provisioned: dict[str, TenantRecord]) -> None:
    gobo = provisioned["gobo"]
    config = find_adapter(gobo, "cokas-juki")
    assert config is not None
    job_id = poll_job_id("gobo", "cokas-juki")
    assert schedule_poll(gobo, config).action == "scheduled"
    faster = config.model_copy(update={"poll_minutes": 2})
    assert schedule_poll(gobo, faster).action == "scheduled"  # the interval changed
    assert Job.fetch(job_id, connection=get_redis()).repeat_intervals == [120]
    assert scheduled_ids().count(job_id) == 1
    Job.fetch(job_id, connection=get_redis()).delete()
    assert schedule_poll(gobo, faster).action == "scheduled"  # lost: made again
    assert scheduled_ids().count(job_id) == 1


def test_a_scheduled_poll_runs_on_the_scheduler_and_schedules_itself_again(
    committed: dict[str, TenantRecord], gobo_bucket: Bucket
) -> None:
    put(gobo_bucket, A)
    gobo = committed["gobo"]
    config = find_adapter(gobo, "cokas-juki")
    assert config is not None
    # Scheduled with a stale one-minute interval: the run must take the configured ten minutes.
    stale = config.model_copy(update={"poll_minutes": 1})
    schedule_poll(gobo, stale, importer=record_import, first_in=dt.timedelta(0))
    job_id = poll_job_id("gobo", "cokas-juki")
    run_worker(with_scheduler=True)  # the scheduler moves the due poll to the queue, the worker runs it

    assert batches("gobo") == [A]
    job = Job.fetch(job_id, connection=get_redis())
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.repeat_intervals == [10 * 60]
    assert scheduled_ids() == [job_id]
    next_run = queue().scheduled_job_registry.get_scheduled_time(job_id)
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    assert abs((next_run - expected).total_seconds()) < 60
    assert job.return_value()["objects"][0]["status"] == "imported"


def test_madoguchi_worker_schedules_the_polls_at_start_up(provisioned: object) -> None:
    done = madoguchi("worker", "--burst")
    assert done.returncode == 0, done.stderr
    assert set(scheduled_ids()) >= EXPECTED_POLLS


def test_end_to_end_extract_in_the_bucket_is_polled_and_imported(
    committed: object, gobo_bucket: Bucket
) -> None:
    """Gobo's real adapter and layout: an extract dropped in S3 lands in Gobo's residents."""
    from app.linkage.config import RESIDENT_COLUMNS
    from app.residents.models import Resident
    from app.tenancy.service import registry
    from tests.linkage_files import person, render

    record = registry.get("gobo")
    assert record is not None
    layout = registry.config(record).linkage.residents
    people = [
        person(1, 900, 氏名="御坊　一郎"),
        person(2, 900, 世帯内順="2", 続柄="妻", 性別="2", 氏名="御坊　花子"),
    ]
    gobo_bucket.put("juki/GOBO_JUKI_ZEN_20261121.csv", render(people, layout, RESIDENT_COLUMNS))
    job = enqueue(poll_job, "gobo", "cokas-juki")
    Worker([queue()], connection=get_redis()).work(burst=True, with_scheduler=False)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED, job.latest_result()
    assert [(name, status) for name, status, _ in rows("gobo")] == [
        ("GOBO_JUKI_ZEN_20261121.csv", "imported")
    ]
    with tenant_session("gobo") as session:
        assert sorted(session.scalars(select(Resident.name))) == ["御坊\u3000一郎", "御坊\u3000花子"]
        batch = session.scalars(select(ImportBatch)).one()
        assert (batch.status, batch.source, batch.mode) == ("applied", "cokas-juki", "full")
