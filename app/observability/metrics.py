"""Prometheus metrics: what the app counts in-process, and the ``/metrics`` exposition.

Label design, bounded at 1,741 tenants (every municipality in Japan):

- the ``tenant`` label appears only on a few counters: requests by status class, requests slower
  than the tenant's latency target, and business events (a fixed list of event/outcome pairs);
- route histograms carry ``route`` (the URL rule, never the concrete path) and ``method``, no tenant;
- figures that live in the database (unique users, import batches and rows, calendar windows,
  catalogue versions) are read from the database by ``app.observability.snapshot`` and exported by
  a collector at scrape time: never counted in-process, so forked job processes lose nothing.

Nothing here carries personal data: label values are tenant ids, URL rules, fixed words and
hashes. ``tests/test_metrics.py`` scans the exposition for synthetic residents' names and numbers.

Under gunicorn the app runs in prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``
is set before Python starts and wiped before gunicorn starts (``scripts/run.sh``), and dead
workers are marked in ``app.observability.gunicorn_conf``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Seconds; a tenant page answers in a few ms, a PDF in ~0.3 s, an import request may take longer.
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "madoguchi_http_requests",
    "HTTP requests answered, by tenant (empty outside tenant URLs) and status class",
    ["tenant", "status_class"],
)
SLOW_REQUESTS = Counter(
    "madoguchi_http_slow_requests",
    "Tenant requests slower than the tenant's latency target (sla.yaml targets.latency_p95_ms)",
    ["tenant"],
)
DURATION = Histogram(
    "madoguchi_http_request_duration_seconds",
    "Request duration by URL rule (no tenant label: route histograms must not multiply by 1,741)",
    ["route", "method"],
    buckets=DURATION_BUCKETS,
)
BUSINESS = Counter(
    "madoguchi_business_events",
    "Counter business by tenant: guidance determinations, deliveries, printed forms, cases",
    ["tenant", "event", "outcome"],
)

# The only event/outcome pairs ``record_business`` accepts: a typo or a free-text outcome would add
# series for every tenant. Later issues add their events here (deliveries, forms, cases).
BUSINESS_EVENTS: dict[str, tuple[str, ...]] = {
    "guidance_determination": ("ok", "to_confirm"),  # to_confirm: an unanswered question left 要確認
    "delivery": ("sent", "failed"),  # issue 8: deliveries to residents / other systems
    "form_printed": ("ok",),  # forms issue: printed application forms
    "case": ("opened", "completed", "cancelled"),  # cases (受付) issue
}
DEFAULT_LATENCY_TARGET_MS = 1000  # tenants/_defaults/sla.yaml targets.latency_p95_ms
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def record_business(tenant_id: str, event: str, outcome: str = "ok", amount: float = 1) -> None:
    """Count a business event for a tenant; call it from web and API requests.

    Jobs run in forked RQ work horses, whose in-process counters are lost: a job's business figure
    belongs in the database and in ``app.observability.snapshot`` (as import batches are).
    """
    allowed = BUSINESS_EVENTS.get(event)
    if allowed is None or outcome not in allowed:
        raise ValueError(f"unknown business event {event!r}/{outcome!r}: add it to BUSINESS_EVENTS")
    BUSINESS.labels(tenant=tenant_id, event=event, outcome=outcome).inc(amount)


def observe_request(
    tenant_id: str | None,
    route: str,
    method: str,
    status: int,
    seconds: float,
    latency_target_seconds: float | None,
) -> None:
    status_class = f"{status // 100}xx" if 100 <= status < 600 else "5xx"
    REQUESTS.labels(tenant=tenant_id or "", status_class=status_class).inc()
    DURATION.labels(route=route, method=method).observe(seconds)
    if tenant_id and latency_target_seconds is not None and seconds > latency_target_seconds:
        SLOW_REQUESTS.labels(tenant=tenant_id).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class _Combined:
    """A registry-like object: the in-process metrics plus the collectors computed at scrape time."""

    def __init__(self, parts: Iterable[Any]):
        self.parts = list(parts)

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str, float]:
    """(body, content type, seconds it took) of one scrape."""
    started = time.perf_counter()
    directory = multiprocess_dir()
    if directory:
        # A fresh registry per scrape, as the multiprocess documentation asks: it reads every
        # process's files in the directory (live workers and the counters of dead ones).
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        source: Any = _Combined([registry, *extra])
    else:
        source = _Combined([REGISTRY, *extra])
    body = generate_latest(source)
    return body, CONTENT_TYPE_LATEST, time.perf_counter() - started


def instrument(app: Any) -> None:
    """Count every response of ``app`` (an after-request hook) and serve ``/metrics``."""
    from flask import g, request
    from werkzeug.wrappers import Response

    from app.observability.web import metrics_web

    app.register_blueprint(metrics_web)
    from app import csrf

    csrf.exempt(metrics_web)

    def after(response: Response) -> Response:
        started = g.get("started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        record = g.get("tenant")
        target: float | None = None
        if record is not None:
            from app.tenancy.service import registry

            # Never a database round trip here (the request may still hold its only connection):
            # a configuration this process has not parsed yet falls back to the default target.
            config = registry.cached_config(record)
            target = (config.sla.targets.latency_p95_ms if config else DEFAULT_LATENCY_TARGET_MS) / 1000
        rule = request.url_rule
        observe_request(
            record.id if record is not None else None,
            rule.rule if rule is not None else "<unmatched>",
            request.method if request.method in _METHODS else "OTHER",
            response.status_code,
            seconds,
            target,
        )
        return response

    app.after_request(after)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
