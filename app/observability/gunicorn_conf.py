"""gunicorn settings (``--config python:app.observability.gunicorn_conf``): the worker model, and
prometheus_client's multiprocess mode.

Worker model (ADR 0009 addendum): a request holds its worker about half the time waiting on
PostgreSQL and Redis, so each worker process runs ``MADOGUCHI_THREADS`` threads (gthread): while one
thread waits on the database another runs. Threads share the process's tenant configurations and
compiled catalogues, so memory grows by a thread's stack and a pooled connection, not by a copy of
every tenant (a worker with all 1,741 tenants loaded reached ~1.7 GB). The number of processes stays
on the command line (``--workers``, ``scripts/run.sh``).

``PROMETHEUS_MULTIPROC_DIR`` must already be in the environment when Python starts and the folder
must be empty (``scripts/run.sh`` wipes it). ``max_requests`` stays high: every replaced worker
leaves its counter files behind, and the scrape reads them all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess

threads = int(os.environ.get("MADOGUCHI_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"  # MADOGUCHI_THREADS=1: the former sync workers
# Seconds an idle keep-alive connection stays open. gthread keeps connections open (sync workers
# closed each after one response); the default 2 s equals the card panel's polling interval, so a
# poll raced the server closing its connection ("server disconnected without a response"). Longer
# than the idle timeout of the load balancer in front (60 s on AWS ALB by default) and of common HTTP
# clients, so the client side closes idle connections, not the server under a request in flight.
# An idle connection waits in the worker's poller, not in a thread.
keepalive = 75
# gunicorn 27 opens a control socket (for ``gunicornc``) at one fixed path per user by default, so
# a second server on the host (a bench, a test stack, a second instance) takes it over from the
# first. Servers are managed with signals (systemd), so none is opened.
control_socket_disable = True
max_requests = 100_000
max_requests_jitter = 1_000


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges go; its counters stay (they are part of the totals)."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
