"""Figures read from the database for ``/metrics``, computed at most every few seconds and shared.

Unique users, import batches and rows, webhook deliveries, the catalogue version in force and the
calendar's temporary-opening/closure windows live in each tenant's schema. Counting them in-process would be
wrong (forked job processes lose their counters; a unique user is not a per-process fact), so a
snapshot is computed from the database — one short transaction per tenant, under the tenant's own
role — and kept in Redis for ``metrics_snapshot_seconds``, shared by every worker process. A scrape
never waits for a refresh once a snapshot exists: a stale one is served while one process refreshes
it in a background thread (a Redis lock picks the process). With no snapshot at all (a fresh
process and an empty Redis), the scrape waits ``metrics_cold_wait_seconds`` for the first one and
otherwise answers without the database figures: with ~1,700 tenants the first snapshot takes longer
than Prometheus's scrape timeout, and a timed-out scrape would lose the request metrics too.

Calendar windows: the override windows are exported *ahead of time* as start/end timestamps (see
docs/adr/0006-sla-rules.md). The SLA rules hold them with ``last_over_time(...[3d])``, so an app
outage does not turn a temporary opening back into closed time, which a 1/0 gauge would do exactly
when it matters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.dates import JST
from app.db import usage
from app.db.session import session_scope
from app.kv import get_redis
from app.linkage.models import WEBHOOK_DELIVERY_STATUSES
from app.tenancy.calendar import Override
from app.tenancy.service import registry

log = logging.getLogger(__name__)
REDIS_KEY = "madoguchi:metrics:snapshot"
LOCK_KEY = "madoguchi:metrics:snapshot:lock"
WINDOW_DAYS_BACK = 1
WINDOW_DAYS_AHEAD = 15  # overrides are published this far ahead; the rules remember them for 3 days
ROW_RESULTS = ("read", "rejected", "inserted", "updated", "unchanged")


@dataclass(frozen=True)
class Window:
    """One temporary opening (``open``) or closure (``closed``) as the rules see it.

    ``start`` is never before the override was entered and ``end`` never after it was revoked
    (``ServiceCalendar`` semantics: an override counts from the moment it was entered). A revoked
    override stays published with ``end <= start`` until its day has passed: the rules remember
    the last published value for days, so it must be overwritten, not merely dropped.
    """

    kind: str
    id: str
    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        return self.id


@dataclass
class TenantFigures:
    users_day: int = 0
    users_month: int = 0
    catalogue_version: str | None = None
    batches: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, status, count)
    rows: dict[str, int] = field(default_factory=dict)
    windows: list[tuple[str, str, float, float]] = field(default_factory=list)  # kind, label, start, end
    webhooks: list[tuple[str, str, int]] = field(default_factory=list)  # (endpoint, status, deliveries)


@dataclass
class Snapshot:
    computed_at: float
    seconds: float
    tenants: dict[str, TenantFigures]

    def to_json(self) -> str:
        return json.dumps(
            {
                "computed_at": self.computed_at,
                "seconds": self.seconds,
                "tenants": {k: v.__dict__ for k, v in self.tenants.items()},
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Snapshot:
        data = json.loads(raw)
        tenants = {}
        for key, value in data["tenants"].items():
            figures = TenantFigures(**value)
            figures.batches = [tuple(b) for b in figures.batches]  # type: ignore[misc]
            figures.windows = [tuple(w) for w in figures.windows]  # type: ignore[misc]
            figures.webhooks = [tuple(w) for w in figures.webhooks]  # type: ignore[misc]
            tenants[key] = figures
        return cls(data["computed_at"], data["seconds"], tenants)


# --- calendar windows ---------------------------------------------------------------------------


def override_windows(overrides: list[tuple[str, Override]], now: dt.datetime) -> list[Window]:
    """The overrides (id, override) dated yesterday to ``WINDOW_DAYS_AHEAD`` days ahead, as windows."""
    today = now.astimezone(JST).date()
    first, last = today - dt.timedelta(days=WINDOW_DAYS_BACK), today + dt.timedelta(days=WINDOW_DAYS_AHEAD)
    windows = []
    for ident, o in overrides:
        if not first <= o.on_date <= last:
            continue
        midnight = dt.datetime.combine(o.on_date, dt.time(), JST)
        opens, closes = o.hours if o.hours is not None else (0, 1440)
        start = max(midnight + dt.timedelta(minutes=opens), o.entered_at)
        end = midnight + dt.timedelta(minutes=closes)
        if o.revoked_at is not None:
            end = min(end, o.revoked_at)
        windows.append(Window(o.kind, ident, start, max(end, start - dt.timedelta(seconds=1))))
    return sorted(windows, key=lambda w: (w.start, w.kind, w.id))


# --- computing ----------------------------------------------------------------------------------


def _figures(session: Session, now: dt.datetime) -> TenantFigures:
    local = now.astimezone(JST)
    day_start = dt.datetime.combine(local.date(), dt.time(), JST)
    first = local.date() - dt.timedelta(days=WINDOW_DAYS_BACK)
    raw = usage.tenant_figures(session, day_start, day_start.replace(day=1), local.date(), first)
    figures = TenantFigures(
        users_day=int(raw["users_day"]),
        users_month=int(raw["users_month"]),
        catalogue_version=raw["catalogue_version"],
    )
    rows = dict.fromkeys(ROW_RESULTS, 0)
    for kind, status, count, *sums in raw["batches"]:
        figures.batches.append((kind, status, int(count)))
        for key, value in zip(ROW_RESULTS, sums, strict=True):
            rows[key] += int(value)
    figures.rows = rows
    # Every status of an endpoint that has deliveries, 0 included: the alert on failures looks at the
    # change over an hour, and a series that first appears at 1 has none.
    counts = {(endpoint, status): int(n) for endpoint, status, n in raw["webhooks"]}
    figures.webhooks = [
        (endpoint, status, counts.get((endpoint, status), 0))
        for endpoint in sorted({e for e, _ in counts})
        for status in WEBHOOK_DELIVERY_STATUSES
    ]
    overrides = []
    for ident, on_date, kind, opens, closes, created, revoked in raw["overrides"]:
        overrides.append(
            (
                str(ident),
                Override(
                    dt.date.fromisoformat(on_date),
                    kind,
                    (opens, closes) if opens is not None and closes is not None else None,
                    dt.datetime.fromtimestamp(float(created), dt.UTC),
                    dt.datetime.fromtimestamp(float(revoked), dt.UTC) if revoked is not None else None,
                ),
            )
        )
    figures.windows = [
        (w.kind, w.label, w.start.timestamp(), w.end.timestamp()) for w in override_windows(overrides, now)
    ]
    return figures


def compute(now: dt.datetime | None = None) -> Snapshot:
    """Read every active tenant's figures (one transaction per tenant, under its own role)."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    tenants: dict[str, TenantFigures] = {}
    for record in registry.all():
        if record.status != "active":
            continue
        try:
            with session_scope(record.binding) as session:
                tenants[record.id] = _figures(session, now)
        except Exception:  # one broken tenant must not blank everyone's figures
            log.exception("metrics snapshot failed for tenant %s", record.id)
    return Snapshot(time.time(), time.perf_counter() - started, tenants)


# --- sharing and refreshing ---------------------------------------------------------------------

_local: Snapshot | None = None
_refreshing = threading.Lock()


def _store(snapshot: Snapshot) -> None:
    global _local
    _local = snapshot
    try:
        ttl = max(60, int(get_settings().metrics_snapshot_seconds * 10))
        get_redis().set(REDIS_KEY, snapshot.to_json(), ex=ttl)
    except RedisError as exc:
        log.warning("metrics snapshot not shared through Redis: %s", type(exc).__name__)


def refresh() -> Snapshot:
    snapshot = compute()
    _store(snapshot)
    return snapshot


def _refresh_in_background() -> threading.Event | None:
    """Start a refresh unless one runs already (here or in another process); its end is signalled."""
    if not _refreshing.acquire(blocking=False):
        return None
    try:
        ttl = get_settings().metrics_snapshot_seconds
        if not get_redis().set(LOCK_KEY, "1", nx=True, ex=max(5, int(ttl * 5))):
            _refreshing.release()
            return None
    except RedisError:
        pass  # no Redis: every process refreshes for itself
    finished = threading.Event()

    def run() -> None:
        try:
            refresh()
        except Exception:
            log.exception("metrics snapshot refresh failed")
        finally:
            with contextlib.suppress(RedisError):
                get_redis().delete(LOCK_KEY)
            _refreshing.release()
            finished.set()

    threading.Thread(target=run, name="metrics-snapshot", daemon=True).start()
    return finished


def _shared() -> Snapshot | None:
    try:
        raw = get_redis().get(REDIS_KEY)
        return None if raw is None else Snapshot.from_json(raw)
    except (RedisError, ValueError, KeyError, TypeError) as exc:
        log.warning("metrics snapshot not read from Redis: %s", type(exc).__name__)
        return None


def current() -> Snapshot | None:
    """The freshest snapshot at hand, or None while the very first one is still being computed."""
    global _local
    ttl = get_settings().metrics_snapshot_seconds
    now = time.time()
    if _local is not None and now - _local.computed_at < ttl:
        return _local
    shared = _shared()
    best = max((s for s in (_local, shared) if s is not None), key=lambda s: s.computed_at, default=None)
    if best is not None:
        _local = best
        if now - best.computed_at >= ttl:
            _refresh_in_background()
        return best
    wait = get_settings().metrics_cold_wait_seconds
    finished = _refresh_in_background()
    if finished is not None:
        return _local if finished.wait(wait) else None
    # Another thread (its result lands in ``_local``) or process (in Redis) computes it. That
    # process may stop before it stores anything (a worker stopped or replaced mid-refresh): once
    # its Redis lock has expired, this scrape takes the refresh over instead of waiting for nothing.
    deadline = time.monotonic() + wait
    next_attempt = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        if _local is not None:
            return _local
        shared = _shared()
        if shared is not None:
            _local = shared
            return shared
        if time.monotonic() >= next_attempt:
            next_attempt = time.monotonic() + 0.5
            finished = _refresh_in_background()
            if finished is not None:
                return _local if finished.wait(max(0.0, deadline - time.monotonic())) else None
    return None  # the next scrape gets it


def forget_local() -> None:
    """Tests: drop this process's copy (Redis is flushed between tests)."""
    global _local
    _local = None


def figures_for(snapshot: Snapshot | None, tenant_id: str) -> TenantFigures | None:
    return None if snapshot is None else snapshot.tenants.get(tenant_id)


def as_dict(snapshot: Snapshot) -> dict[str, Any]:
    return json.loads(snapshot.to_json())  # type: ignore[no-any-return]
