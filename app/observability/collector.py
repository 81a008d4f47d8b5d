"""Metrics computed at scrape time: build and configuration info, database figures, the job queue.

Registered on the per-scrape registry only (never on the global one: in multiprocess mode every
process would export it again).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from app.config import PROJECT_ROOT, get_settings
from app.observability import snapshot as snapshots
from app.tenancy.service import registry

log = logging.getLogger(__name__)
QUEUE_STATES = ("queued", "started", "scheduled", "deferred", "failed")


@lru_cache(maxsize=1)
def build() -> tuple[str, str]:
    """(version, git commit): the commit comes from the build (``MADOGUCHI_GIT_COMMIT``) or git."""
    try:
        app_version = version("madoguchi")
    except PackageNotFoundError:
        app_version = "unknown"
    commit = get_settings().git_commit
    if not commit:
        try:
            done = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - fixed command, no input
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            commit = done.stdout.strip() if done.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            commit = ""
    return app_version, commit or "unknown"


class AppCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        app_version, commit = build()
        info = InfoMetricFamily("madoguchi_build", "Version and git commit of the running service")
        info.add_metric([], {"version": app_version, "commit": commit})
        yield info
        yield from self._tenants()
        yield from self._queue()

    def _tenants(self) -> Iterator[Metric]:
        try:
            records = registry.all()
        except Exception as exc:  # database down: the scrape still answers (and says so)
            log.warning("tenant registry unavailable for /metrics: %s", type(exc).__name__)
            up = GaugeMetricFamily("madoguchi_database_up", "Whether /metrics could read the registry")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("madoguchi_database_up", "Whether /metrics could read the registry")
        up.add_metric([], 1)
        yield up
        snap = snapshots.current()
        counts = GaugeMetricFamily("madoguchi_tenants", "Registered tenants by status", labels=["status"])
        for status in ("active", "suspended"):
            counts.add_metric([status], sum(1 for r in records if r.status == status))
        yield counts

        config = InfoMetricFamily(
            "madoguchi_tenant_config",
            "Each tenant's configuration hash (tenants/<id>, as synced) and catalogue version in force",
            labels=["tenant"],
        )
        users = GaugeMetricFamily(
            "madoguchi_unique_users",
            "Distinct staff users with an operation-log entry this JST day / month (from the database)",
            labels=["tenant", "window"],
        )
        batches = CounterMetricFamily(
            "madoguchi_import_batches",
            "Finished front-linkage import batches by kind and status (from the database)",
            labels=["tenant", "kind", "status"],
        )
        rows = CounterMetricFamily(
            "madoguchi_import_rows",
            "Rows of finished import batches by result (from the database)",
            labels=["tenant", "result"],
        )
        override = GaugeMetricFamily(
            "madoguchi_calendar_override",
            "1 while a temporary opening (kind=open) or closure (kind=closed) is in force",
            labels=["tenant", "kind"],
        )
        starts = GaugeMetricFamily(
            "madoguchi_calendar_window_start_seconds",
            "Start of a temporary opening/closure window, published ahead (Unix time)",
            labels=["tenant", "kind", "window"],
        )
        ends = GaugeMetricFamily(
            "madoguchi_calendar_window_end_seconds",
            "End of a temporary opening/closure window, published ahead (Unix time)",
            labels=["tenant", "kind", "window"],
        )
        hooks = GaugeMetricFamily(
            "madoguchi_webhook_deliveries",
            "Webhook deliveries kept (30 days) by endpoint and status: pending, delivered, failed (from the database)",
            labels=["tenant", "endpoint", "status"],
        )
        now = time.time()
        for record in records:
            figures = snapshots.figures_for(snap, record.id)
            config.add_metric(
                [record.id],
                {
                    "config_hash": record.config_hash[:12],
                    "catalogue_version": (figures.catalogue_version if figures else None) or "",
                    "status": record.status,
                },
            )
            if figures is None:
                continue
            for endpoint, status, count in figures.webhooks:
                hooks.add_metric([record.id, endpoint, status], count)
            users.add_metric([record.id, "day"], figures.users_day)
            users.add_metric([record.id, "month"], figures.users_month)
            for kind, status, count in figures.batches:
                batches.add_metric([record.id, kind, status], count)
            if figures.batches:
                for result, value in figures.rows.items():
                    rows.add_metric([record.id, result], value)
            if figures.windows:
                active = {"open": 0, "closed": 0}
                for kind, label, start, end in figures.windows:
                    starts.add_metric([record.id, kind, label], start)
                    ends.add_metric([record.id, kind, label], end)
                    if start <= now < end:
                        active[kind] = 1
                for kind, value in active.items():
                    override.add_metric([record.id, kind], value)
        yield from (config, users, batches, rows, override, starts, ends, hooks)
        age = GaugeMetricFamily(
            "madoguchi_metrics_snapshot_age_seconds", "Age of the database-derived figures on /metrics"
        )
        took = GaugeMetricFamily(
            "madoguchi_metrics_snapshot_duration_seconds", "Time the last database snapshot took"
        )
        ready = GaugeMetricFamily(
            "madoguchi_metrics_snapshot_ready",
            "1 when this scrape carries the database-derived figures, 0 while the first snapshot is computed",
        )
        ready.add_metric([], 0 if snap is None else 1)
        if snap is not None:
            age.add_metric([], max(0.0, now - snap.computed_at))
            took.add_metric([], snap.seconds)
        yield age
        yield took
        yield ready

    def _queue(self) -> Iterator[Metric]:
        from rq import Queue, Worker
        from rq.registry import (
            DeferredJobRegistry,
            FailedJobRegistry,
            ScheduledJobRegistry,
            StartedJobRegistry,
        )

        from app.jobs import QUEUE_NAME
        from app.kv import get_redis

        jobs = GaugeMetricFamily(
            "madoguchi_queue_jobs", "Background jobs (RQ) by queue and state", labels=["queue", "state"]
        )
        workers = GaugeMetricFamily("madoguchi_queue_workers", "RQ workers listening", labels=["queue"])
        try:
            redis = get_redis()
            queue = Queue(QUEUE_NAME, connection=redis)
            counts = {
                "queued": queue.count,
                "started": StartedJobRegistry(queue=queue).count,
                "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
                "deferred": DeferredJobRegistry(queue=queue).count,
                "failed": FailedJobRegistry(queue=queue).count,
            }
            for state in QUEUE_STATES:
                jobs.add_metric([QUEUE_NAME, state], counts[state])
            workers.add_metric([QUEUE_NAME], Worker.count(queue=queue))
        except RedisError as exc:
            log.warning("queue figures unavailable for /metrics: %s", type(exc).__name__)
            return
        yield jobs
        yield workers
