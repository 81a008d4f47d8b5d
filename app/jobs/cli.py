"""``madoguchi worker``: run the RQ worker (with the scheduler, for polls and delayed retries)."""

from __future__ import annotations

import logging

import click

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
def worker(burst: bool) -> None:
    """Run a background-job worker; first make sure every tenant's repeating jobs are scheduled:
    adapter polls, audit seals and the retention archive, the purge of expired pre-applications,
    webhook deliveries;
    and the next monthly reports."""
    from app.audit.jobs import schedule_audit_jobs
    from app.counter.jobs import schedule_counter_jobs
    from app.jobs import run_worker
    from app.linkage.adapters.polling import schedule_all_polls
    from app.linkage.jobs import schedule_webhook_jobs

    for what, schedule in (
        ("linkage polls", schedule_all_polls),
        ("audit jobs", schedule_audit_jobs),
        ("pre-application purges", schedule_counter_jobs),
        ("webhook deliveries", schedule_webhook_jobs),
    ):
        try:
            jobs = schedule()
            created = sum(j.action == "scheduled" for j in jobs)
            log.info("%s: %d scheduled, %d already pending", what, created, len(jobs) - created)
        except Exception:  # the worker still serves every other job
            log.exception("could not schedule %s", what)
    try:
        from app.reports.jobs import schedule_next

        job = schedule_next()
        log.info("monthly reports scheduled: %s", job.id)
    except Exception:  # the worker still serves every other job
        log.exception("could not schedule the monthly reports")
    run_worker(burst=burst)
