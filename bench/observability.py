"""Issue 7 figures: /metrics with 1,741 tenants active, and the cost of instrumentation on a page.

1. 1,741 tenants provisioned (the three cities + synthetic ones, as in the tenancy benchmark); the
   app runs under gunicorn (2 workers, multiprocess mode); every tenant gets requests answering
   2xx, 3xx and 4xx, and every tenant a business event from another process; then /metrics is
   scraped: once cold (the database snapshot computed for every tenant) and repeatedly warm.
2. The clerk's case screen (a family moving in, with its guidance), in-process, from an app with
   instrumentation and from the same app without it (``metrics_enabled=False``), in alternating blocks in one child process that
   runs in multiprocess mode like production. Goal: < 5 % on the median.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, percentile, save

TARGET_TENANTS = 1741


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_tenants(count: int) -> list[str]:
    from app.tenancy.provisioning import sync
    from app.tenancy.service import registry
    from bench.tenancy import _synthetic_configs

    sync()  # the three cities from tenants/
    registry.invalidate()
    have = {r.id for r in registry.all()}
    wanted = _synthetic_configs(count - 3)
    missing = {k: v for k, v in wanted.items() if k not in have}
    if missing:
        print(f"  provisioning {len(missing)} synthetic tenants")
        sync(missing)
    registry.invalidate()
    ids = ["osaka", "gobo", "yamaguchi", *sorted(wanted)]
    return ids[:count]


def _business_events(env: dict[str, str], tenants: list[str]) -> None:
    """Another process (as a later issue's code would) counts one event per tenant."""
    code = (
        "import json, sys\n"
        "from app.observability.metrics import record_business\n"
        "for t in json.load(sys.stdin):\n"
        "    record_business(t, 'guidance_determination', 'ok')\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(tenants), text=True, env=env, check=True, cwd=ROOT
    )


def _count(exposition: str) -> dict[str, int]:
    from prometheus_client.parser import text_string_to_metric_families

    samples = 0
    with_tenant = 0
    families = 0
    for family in text_string_to_metric_families(exposition):
        families += 1
        for sample in family.samples:
            samples += 1
            if sample.labels.get("tenant"):
                with_tenant += 1
    return {"families": families, "samples": samples, "samples_with_tenant_label": with_tenant}


def _scrape_figures(tenants: list[str], warm_scrapes: int) -> dict[str, Any]:
    from app.kv import get_redis
    from app.observability.snapshot import REDIS_KEY

    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-bench-metrics-"))
    port = _free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "multiproc"),
        "MADOGUCHI_METRICS_SNAPSHOT_SECONDS": "3600",
        "MADOGUCHI_TENANT_CACHE_SECONDS": "30",
        "MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN": "bench",
    }
    (tmp / "multiproc").mkdir()
    log = (tmp / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--config",
            "python:app.observability.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "app.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        started = time.perf_counter()
        with httpx.Client(base_url=base, timeout=30) as client:
            for tenant in tenants:
                assert client.get(f"/{tenant}/login").status_code == 200
                assert client.get(f"/{tenant}/").status_code == 302
                assert client.get(f"/api/v1/{tenant}/tenant").status_code == 401
        traffic_seconds = time.perf_counter() - started
        _business_events(env, tenants)
        get_redis().delete(REDIS_KEY)
        with httpx.Client(base_url=base, timeout=120) as client:
            start = time.perf_counter()
            cold = client.get("/metrics")
            cold_ms = (time.perf_counter() - start) * 1000
            warm: list[float] = []
            body = cold.text
            for _ in range(warm_scrapes):
                start = time.perf_counter()
                response = client.get("/metrics")
                warm.append((time.perf_counter() - start) * 1000)
                body = response.text
        counts = _count(body)
        snapshot_seconds = next(
            (
                float(line.split()[-1])
                for line in body.splitlines()
                if line.startswith("madoguchi_metrics_snapshot_duration_seconds ")
            ),
            None,
        )
        files = len(list((tmp / "multiproc").iterdir()))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "tenants_active": len(tenants),
        "requests_sent": 3 * len(tenants),
        "traffic_seconds": round(traffic_seconds, 1),
        "cold_scrape_ms": round(cold_ms, 1),
        "snapshot_seconds": snapshot_seconds,
        "warm_scrape_p50_ms": round(percentile(warm, 0.5), 1),
        "warm_scrape_p95_ms": round(percentile(warm, 0.95), 1),
        "exposition_bytes": len(body.encode()),
        "multiproc_files": files,
        **counts,
    }


# --- instrumentation overhead (run in a child: multiprocess mode must be set before import) -----


def _overhead_child(rounds: int, block: int) -> dict[str, Any]:
    import re

    from sqlalchemy import select

    from app import create_app
    from app.audit.service import Actor, actor_var
    from app.config import Settings
    from app.counter import service as counter
    from app.db.session import session_scope
    from app.identity.models import StaffUser
    from app.identity.service import create_user
    from app.tenancy.service import registry

    record = registry.get("gobo")
    assert record is not None
    config = registry.config(record)
    office = config.tenant.offices[0]
    # The case screen the issue names: a clerk's case for a family moving in, with guidance.
    actor_var.set(Actor("cli", "bench"))
    with session_scope(record.binding) as session:
        if session.scalar(select(StaffUser.id).where(StaffUser.login == "benchclerk")) is None:
            create_user(session, "benchclerk", "ベンチ 職員", "bench-password-1234", groups=("窓口職員",))
        case = counter.open_case(session, config, "benchclerk", office_id=office.id)
        case = counter.identify(
            session,
            case.id,
            case.version,
            "benchclerk",
            by="manual",
            household=[
                {"name": "転入 太郎", "birth": "1985-05-01", "sex": 1, "relation": "世帯主"},
                {"name": "転入 花子", "birth": "1987-08-12", "sex": 2, "relation": "妻"},
                {"name": "転入 一郎", "birth": "2019-04-03", "sex": 1, "relation": "子"},
            ],
        )
        counter.set_events(
            session, case.id, case.version, "benchclerk", events=["tennyu"], event_date=None, answers={}
        )
        page_url = f"/gobo/cases/{case.id}"

    def client_for(enabled: bool) -> Any:
        app = create_app(Settings(metrics_enabled=enabled))  # type: ignore[call-arg]
        client = app.test_client()
        page = client.get("/gobo/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        response = client.post(
            "/gobo/login",
            data={"login": "benchclerk", "password": "bench-password-1234", "csrf_token": token},
        )
        assert response.status_code == 302
        return client

    clients = {"instrumented": client_for(True), "plain": client_for(False)}
    samples: dict[str, list[float]] = {"instrumented": [], "plain": []}
    ratios: list[float] = []
    for client in clients.values():
        for _ in range(100):
            client.get(page_url)
    # Paired blocks in alternating order: the machine's drift (2 shared cores) hits both sides.
    for i in range(rounds):
        order = ("instrumented", "plain") if i % 2 == 0 else ("plain", "instrumented")
        medians = {}
        for name in order:
            client = clients[name]
            block_samples = []
            for _ in range(block):
                start = time.perf_counter()
                response = client.get(page_url)
                block_samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            samples[name].extend(block_samples)
            medians[name] = statistics.median(block_samples)
        ratios.append(medians["instrumented"] / medians["plain"])
    out: dict[str, Any] = {}
    for name, values in samples.items():
        out[name] = {
            "n": len(values),
            "p50_ms": round(percentile(values, 0.5), 3),
            "p95_ms": round(percentile(values, 0.95), 3),
            "mean_ms": round(statistics.fmean(values), 3),
        }
    out["overhead_p50"] = round(statistics.median(ratios) - 1, 4)
    # The instrumentation's own work per request (the after-request hook's metric updates).
    from app.observability.metrics import observe_request

    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        observe_request("gobo", "/<tenant>/cases/<int:case_id>", "GET", 200, 0.01, 1.0)
    out["observe_us"] = round((time.perf_counter() - start) / n * 1e6, 1)
    out["observe_share_of_p50"] = round(out["observe_us"] / 1000 / out["plain"]["p50_ms"], 5)
    return out


def _overhead(quick: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-bench-overhead-"))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp)}
    args = ["--overhead-child", "6" if quick else "60", "40" if quick else "30"]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.observability", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool = False) -> None:
    count = 200 if quick else TARGET_TENANTS
    tenants = _ensure_tenants(count)
    scrape = _scrape_figures(tenants, warm_scrapes=5 if quick else 20)
    print(f"  /metrics with {len(tenants)} tenants: {json.dumps(scrape, ensure_ascii=False)}")
    overhead = _overhead(quick)
    print(f"  overhead: {json.dumps(overhead)}")
    markdown = f"""## Metrics and SLA (issue 7)

`/metrics` from gunicorn (2 workers, prometheus_client multiprocess mode) with
{scrape["tenants_active"]:,} tenants active: each tenant answered a 2xx, a 3xx and a 4xx request
({scrape["requests_sent"]:,} requests) and counted one business event from another process; the
database-derived figures (unique users, import batches and rows, catalogue version, calendar
windows) come from a snapshot computed per tenant under the tenant's own role.

| figure | result | goal |
|---|---|---|
| samples on `/metrics` | {scrape["samples"]:,} ({scrape["samples_with_tenant_label"]:,} with a tenant label) | bounded: tenant label on a few families |
| exposition size | {scrape["exposition_bytes"] / 2**20:.2f} MB | |
| scrape, warm p50 / p95 | {scrape["warm_scrape_p50_ms"]} / {scrape["warm_scrape_p95_ms"]} ms | < 1 s (scrape interval 15 s) |
| scrape, cold (database snapshot computed in the request) | {scrape["cold_scrape_ms"]:,} ms | < 10 s (scrape timeout) |
| database snapshot for all tenants | {scrape["snapshot_seconds"]:.1f} s | refreshed in the background every 60 s |
| files in the multiprocess folder | {scrape["multiproc_files"]} | grows only with worker restarts |

Instrumentation overhead on the clerk's case screen (a family of three moving in to Gobo, guidance
shown; in-process, multiprocess mode,
{overhead["instrumented"]["n"]:,} requests each, paired blocks in alternating order; the overhead is
the median of the per-pair ratios of block medians):

| page | p50 | p95 | mean |
|---|---|---|---|
| uninstrumented (`metrics_enabled=False`) | {overhead["plain"]["p50_ms"]} ms | {overhead["plain"]["p95_ms"]} ms | {overhead["plain"]["mean_ms"]} ms |
| instrumented | {overhead["instrumented"]["p50_ms"]} ms | {overhead["instrumented"]["p95_ms"]} ms | {overhead["instrumented"]["mean_ms"]} ms |

| figure | result | goal |
|---|---|---|
| overhead, median of paired block ratios | {overhead["overhead_p50"] * 100:+.1f} % | < 5 % |
| the hook's metric updates alone | {overhead["observe_us"]} µs a request ({overhead["observe_share_of_p50"] * 100:.2f} % of the page's p50) | |

The page itself is dominated by its database round trips, so block-to-block noise on two shared
cores is larger than the instrumentation; the hook's own cost is the stable figure. Measured while
other work shared the machine (load average {os.getloadavg()[0]:.1f} at the end): absolute times are
pessimistic, and the cold scrape, which only a freshly started worker serves before its first
background snapshot, grows with that load.
"""
    save("observability", {"scrape": scrape, "overhead": overhead, "quick": quick}, markdown)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--overhead-child":
        from bench.common import use_bench_database

        use_bench_database()
        print(json.dumps(_overhead_child(int(sys.argv[2]), int(sys.argv[3]))))
