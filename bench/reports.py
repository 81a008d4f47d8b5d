"""Issue 9 figures: time to generate a month's reports for 3 tenants and for 1,741 tenants.

Everything real except the month's data: Prometheus is the running development server (no samples
for the month, so every series is empty and figures are zero), the tenant schemas are empty, and
the AWS sources are off (they are a handful of account-wide calls, not per tenant). What scales
with the tenants is measured: one database transaction per tenant, a PDF with a chart, CSV and JSON
per tenant, the service report with one row per municipality, object storage writes and the
report rows. Rendering runs in ``MADOGUCHI_REPORTS_WORKERS`` processes (2 here, one per core).
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.common import save
from bench.tenancy import CITIES, TARGET_TENANTS, _remove_synthetic, _synthetic_configs

MONTH = "2026-10"


def _backdate() -> None:
    """Every tenant in service before the month (tenants are created 'now' by sync)."""
    from sqlalchemy import update

    from app.db.engine import admin_engine
    from app.tenancy.models import Tenant

    with admin_engine().begin() as conn:
        conn.execute(update(Tenant).values(created_at="2026-01-01T00:00:00+09:00"))


def _generate(label: str) -> dict[str, Any]:
    from app.reports.period import Month
    from app.reports.service import generate

    start = time.perf_counter()
    done = generate(Month.parse(MONTH), by="bench")
    seconds = time.perf_counter() - start
    size = sum(f["size"] for g in done for f in g.files)
    print(f"  {label} tenants: {len(done)} reports in {seconds:.1f} s", flush=True)
    return {"reports": len(done), "seconds": round(seconds, 1), "bytes": size}


def run(quick: bool = False) -> None:
    os.environ["MADOGUCHI_REPORTS_AWS_ENABLED"] = "false"
    os.environ.setdefault("MADOGUCHI_REPORTS_WORKERS", "2")
    from app.config import get_settings
    from app.tenancy.provisioning import sync

    get_settings.cache_clear()
    sync()
    _remove_synthetic()
    _backdate()
    three = _generate("3")
    count = 100 if quick else TARGET_TENANTS - len(CITIES)
    start = time.perf_counter()
    sync(_synthetic_configs(count))
    provision_s = time.perf_counter() - start
    _backdate()
    total = count + len(CITIES)
    everyone = _generate(str(total))
    load = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: figures scale with it
    _remove_synthetic()
    per_tenant_ms = everyone["seconds"] * 1000 / total
    extrapolated_s = round(per_tenant_ms * TARGET_TENANTS / 1000)
    result = {
        "month": MONTH,
        "quick": quick,
        "workers": get_settings().reports_workers,
        "three_tenants": three,
        "all_tenants": {**everyone, "tenants": total, "per_tenant_ms": round(per_tenant_ms, 1)},
        "provisioning_s": round(provision_s, 1),
        "goal_seconds": 600,
        "load_average_1_5_15": load,
    }
    if quick:
        result["extrapolated_target_s"] = extrapolated_s
    goal = "< 600 s" if not quick else f"< 600 s for {TARGET_TENANTS:,}"
    note = (
        f"\nQuick run (`--quick`): {total:,} tenants, not {TARGET_TENANTS:,}. At its per-tenant rate\n"
        f"{TARGET_TENANTS:,} tenants would take about {extrapolated_s:,} s (a straight-line estimate, not a\n"
        "measurement).\n"
        if quick
        else ""
    )
    md = f"""## Monthly reports (issue 8)

`reports monthly` for {MONTH}: the Digital Agency's report (one row per municipality) plus one
report per municipality, each as PDF (WeasyPrint, one matplotlib chart), JSON and CSV, written to
object storage (moto) and `control.monthly_reports`; {result["workers"]} rendering processes. The
month's data is empty (development Prometheus, empty schemas) and the AWS sources are off: they are
a fixed number of account-wide calls, while what is measured grows with the tenants.

| tenants | reports | time | per tenant | stored | goal |
|---|---|---|---|---|---|
| 3 | {three["reports"]} | {three["seconds"]} s | | {three["bytes"] / 2**20:.1f} MB | |
| {total:,} | {everyone["reports"]:,} | {everyone["seconds"]} s | {per_tenant_ms:.0f} ms | {everyone["bytes"] / 2**20:.1f} MB | {goal} |
{note}
Load average (1, 5, 15 min) right after the generation: {", ".join(f"{x:.1f}" for x in load)} on a shared
machine; tenant provisioning for the run took {provision_s:.0f} s.
"""
    save("reports", result, md)
    print(md)
