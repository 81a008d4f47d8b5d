"""Issue 2 item 5 figures: synthetic residents at city scale — generation rate and peak memory.

Each case runs in a child process (``python -m bench.synthetic --child TENANT SCALE DIR``) so its
peak resident set (VmHWM, ``bench.common.peak_rss_mb``) is the generator's own. The baseline is the
same city at ``small`` scale in the same way: the generator streams, so the city-scale peak must
stay close to it however many people are written. Full run: Osaka at city scale (2.8 million
residents), plus Gobo and Yamaguchi; ``--quick``: Gobo at city scale (20,543 residents).

Files go to a temporary directory under ``var/`` and are deleted after each case.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, peak_rss_mb, save

AS_OF = dt.date(2026, 5, 1)
SEED = 1


def _child(tenant: str, scale: str, out: Path) -> dict[str, Any]:
    from app.config import get_settings
    from app.residents.synthetic import write_extracts
    from app.tenancy.loader import load_all

    linkage = load_all(get_settings().tenants_dir)[tenant].config.linkage
    started = time.perf_counter()
    result = write_extracts(tenant, linkage, out, scale=scale, seed=SEED, as_of=AS_OF)
    seconds = time.perf_counter() - started
    files = [*result.standard.values(), *result.variant.values()]
    return {
        "tenant": tenant,
        "scale": scale,
        "residents": result.residents,
        "households": result.households,
        "person_rows": result.person_rows,
        "attribute_rows": result.attribute_rows,
        "seconds": round(seconds, 2),
        "person_rows_per_s": round(result.person_rows / seconds),
        # every row of the four files (standard and tenant layout, residents and attributes)
        "file_rows_per_s": round(sum(f.rows for f in files) / seconds),
        "mb_written": round(sum(f.bytes for f in files) / 2**20, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def _case(tenant: str, scale: str) -> dict[str, Any]:
    (ROOT / "var").mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="bench-synthetic-", dir=ROOT / "var"))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.synthetic", "--child", tenant, scale, str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"{tenant} {scale} failed:\n{done.stderr[-2000:]}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run(quick: bool = False) -> None:
    cases = [("gobo", "small"), ("gobo", "city")]
    if not quick:
        cases = [("osaka", "small"), ("gobo", "city"), ("yamaguchi", "city"), ("osaka", "city")]
    results = []
    for tenant, scale in cases:
        figures = _case(tenant, scale)
        print(
            f"  {tenant} {scale}: {figures['person_rows']:,} people in {figures['seconds']} s, "
            f"{figures['person_rows_per_s']:,} rows/s, peak {figures['peak_rss_mb']} MB"
        )
        results.append(figures)
    lines = "\n".join(
        f"| {r['tenant']} | {r['scale']} | {r['residents']:,} / {r['households']:,} | {r['person_rows']:,} | "
        f"{r['attribute_rows']:,} | {r['seconds']} s | {r['person_rows_per_s']:,} | {r['file_rows_per_s']:,} | "
        f"{r['mb_written']:,} MB | {r['peak_rss_mb']} MB |"
        for r in results
    )
    baseline, largest = results[0], results[-1]
    md = f"""## Synthetic residents (issue 2, item 5)

`write_extracts` for one city in a child process: generate the households and their 資格・受給
facts and write the four files (standard and tenant layout, residents and attributes) in one pass.
Seed {SEED}, extract date {AS_OF.isoformat()}{" (quick run)" if quick else ""}. The small-scale run is
the memory baseline: the generator streams, so peak memory must not grow with the city.

| city | scale | residents / households | resident rows (incl. 除票) | attribute rows | time | resident rows/s | file rows/s (4 files) | written | peak RSS |
|---|---|---|---|---|---|---|---|---|---|
{lines}

Peak memory, {largest["tenant"]} {largest["scale"]} vs {baseline["tenant"]} {baseline["scale"]}:
{largest["peak_rss_mb"]} MB vs {baseline["peak_rss_mb"]} MB ({largest["peak_rss_mb"] / baseline["peak_rss_mb"]:.2f}x) — goal: bounded,
within 1.5x whatever the size (what grows at all are the bounded date-formatting caches).
"""
    save("synthetic", {"quick": quick, "cases": results}, md)
    print(md)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
    else:
        sys.exit("usage: python -m bench synthetic [--quick]")
