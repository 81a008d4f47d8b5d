"""gunicorn settings for prometheus_client's multiprocess mode (``--config python:...``).

``PROMETHEUS_MULTIPROC_DIR`` must already be in the environment when Python starts and the folder
must be empty (``scripts/run.sh`` wipes it). ``max_requests`` stays high: every replaced worker
leaves its counter files behind, and the scrape reads them all.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

max_requests = 100_000
max_requests_jitter = 1_000


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges go; its counters stay (they are part of the totals)."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
