"""``madoguchi worker``: run the RQ worker (with the scheduler, for polls and delayed retries)."""

from __future__ import annotations

import logging

import click

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
def worker(burst: bool) -> None:
    """Run a background-job worker; first make sure every tenant adapter has its poll scheduled."""
    from app.jobs import run_worker
    from app.linkage.adapters.polling import schedule_all_polls

    try:
        polls = schedule_all_polls()
        created = sum(p.action == "scheduled" for p in polls)
        log.info("linkage polls: %d scheduled, %d already pending", created, len(polls) - created)
    except Exception:  # the worker still serves every other job
        log.exception("could not schedule linkage polls")
    try:
        from app.reports.jobs import schedule_next

        job = schedule_next()
        log.info("monthly reports scheduled: %s", job.id)
    except Exception:
        log.exception("could not schedule the monthly reports")
    run_worker(burst=burst)
