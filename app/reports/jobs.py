"""The monthly RQ job: on the 1st of each month at 06:00 JST, the previous month's reports.

The job is not a tenant job (it reports on every tenant); it reschedules itself for the next month
with a deterministic job id, and ``madoguchi worker`` schedules it at start-up if it is missing.
``rq``'s scheduler runs ``enqueue_at`` jobs only on a worker started with the scheduler (it is).
"""

from __future__ import annotations

import datetime as dt
import logging

from rq.job import Job

from app.dates import JST
from app.reports.period import Month

log = logging.getLogger(__name__)
RUN_AT = dt.time(6, 0)  # JST: ready before the first working day's opening


def next_run(now: dt.datetime) -> dt.datetime:
    """The next 1st-of-month 06:00 JST strictly after ``now``."""
    local = now.astimezone(JST)
    candidate = dt.datetime.combine(local.date().replace(day=1), RUN_AT, JST)
    if candidate <= local:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        candidate = dt.datetime(year, month, 1, RUN_AT.hour, RUN_AT.minute, tzinfo=JST)
    return candidate


def job_id(at: dt.datetime) -> str:
    return f"reports__monthly__{at.astimezone(JST):%Y-%m}"


def schedule_next(now: dt.datetime | None = None) -> Job:
    from app.jobs import queue

    at = next_run(now or dt.datetime.now(dt.UTC))
    q = queue()
    ident = job_id(at)
    existing = (
        Job.fetch(ident, connection=q.connection) if Job.exists(ident, connection=q.connection) else None
    )
    if existing is not None and existing.get_status() in ("scheduled", "queued", "started"):
        return existing
    job: Job = q.enqueue_at(at, run_monthly, None, job_id=ident, job_timeout=3 * 3600)
    return job


def run_monthly(month: str | None = None) -> int:
    """Generate the previous month's reports (or ``month``); then schedule the next run."""
    from app.reports.service import generate

    target = Month.parse(month) if month else Month.previous(dt.datetime.now(dt.UTC))
    try:
        done = generate(target, by="job:reports.monthly")
        log.info("monthly reports for %s: %d generated", target, len(done))
        return len(done)
    finally:
        if month is None:
            schedule_next()
