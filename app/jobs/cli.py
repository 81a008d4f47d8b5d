"""``madoguchi worker``: run the RQ worker (with the scheduler, for delayed retries)."""

from __future__ import annotations

import click


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
def worker(burst: bool) -> None:
    """Run a background-job worker."""
    from app.jobs import run_worker

    run_worker(burst=burst)
