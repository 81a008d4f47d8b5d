"""Contract-end hand-over (ADR 0013): how fast ``tenants export`` writes a city, and its memory.

Yamaguchi at city scale (~190,000 residents through the real importer) in the bench database. The
baseline, in the same run and the same snapshot kind: one ``COPY (SELECT every column FROM residents
ORDER BY id) TO STDOUT`` into a file, nothing else — what PostgreSQL and the disk alone take for the
largest table. The export does that for every table, plus the SHA-256 of each file, the city's
objects, the operation-log verification, the manifest and its own audit record. Each export runs in
a child process of its own, so its peak memory (VmHWM) is the export's alone; the same at a tenth
of the residents shows whether memory grows with the city.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, peak_rss_mb, save

TENANT = "yamaguchi"
SEED = 11
AS_OF = dt.date(2026, 11, 1)


def _extract(residents: int | None) -> Path:
    from app.config import get_settings
    from app.residents.synthetic import write_extracts
    from app.tenancy.loader import load_all

    label = "city" if residents is None else str(residents)
    out = ROOT / "var" / "bench" / f"{TENANT}-export-{label}"
    found = sorted((out / "standard").glob("residents_full_*.csv"))
    if found:
        return found[0]
    linkage = load_all(get_settings().tenants_dir)[TENANT].config.linkage
    print(f"  generating the {label} extract for {TENANT} (once) …", flush=True)
    kwargs: dict[str, Any] = {"residents": residents, "households": residents // 2} if residents else {}
    result = write_extracts(TENANT, linkage, out, scale="city", seed=SEED, as_of=AS_OF, **kwargs)
    return result.standard["residents"].path


def _load(path: Path) -> int:
    from app.audit.service import Actor
    from app.linkage.importer import import_local_file
    from app.tenancy.provisioning import deprovision, sync
    from app.tenancy.service import registry

    deprovision([TENANT])
    sync(only=TENANT)
    record = registry.get(TENANT)
    assert record is not None
    outcome = import_local_file(record, path, actor=Actor("cli", "bench"), standard_layout=True)
    assert outcome.status == "applied", outcome.message
    return int(outcome.rows_read)


def _child(out: str) -> dict[str, Any]:
    from sqlalchemy import inspect

    from app.audit import Actor, actor_var
    from app.db.export import copy_table_csv
    from app.db.session import new_session
    from app.residents.models import Resident
    from app.tenancy.export import export_tenant
    from app.tenancy.service import registry

    actor_var.set(Actor("cli", "cli:bench", None, "bench"))
    record = registry.get(TENANT)
    assert record is not None
    target = Path(out)

    # Baseline: the largest table alone, COPY to a file.
    columns = [c.name for c in inspect(Resident).columns]
    session = new_session(record.binding, isolation_level="REPEATABLE READ")
    try:
        started = time.perf_counter()
        with (target.parent / "baseline.csv").open("wb") as handle:
            rows = copy_table_csv(session, "residents", columns, ["id"], handle)
        raw_seconds = time.perf_counter() - started
        session.rollback()
    finally:
        session.close()

    marks: dict[str, float] = {}
    started = time.perf_counter()
    result = export_tenant(record, target, lambda name: marks.setdefault(name, time.perf_counter()))
    seconds = time.perf_counter() - started
    residents_seconds = marks["residents"] - max(
        (t for name, t in marks.items() if t < marks["residents"]), default=started
    )
    return {
        "baseline": {"rows": rows, "seconds": round(raw_seconds, 3), "rows_per_s": round(rows / raw_seconds)},
        "export": {
            "tables": result.tables,
            "rows": result.rows,
            "objects": result.objects,
            "seconds": round(seconds, 3),
            "rows_per_s": round(result.rows / seconds),
            "residents_seconds": round(residents_seconds, 3),
            "residents_rows_per_s": round(rows / residents_seconds),
            "bytes_written": sum(p.stat().st_size for p in target.rglob("*") if p.is_file()),
        },
        "peak_rss_mb": peak_rss_mb(),
    }


def _export_in_child(out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.export", "--child", str(out)],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def markdown(result: dict[str, Any]) -> str:
    full, tenth = result["full"], result["tenth"]
    ratio = full["export"]["residents_rows_per_s"] / full["baseline"]["rows_per_s"]
    whole = full["export"]["rows_per_s"] / full["baseline"]["rows_per_s"]
    return f"""## Contract-end hand-over export (ADR 0013)

Yamaguchi at city scale loaded through the real importer ({full["loaded_rows"]:,} residents), then
`tenants export` in a child process of its own; the baseline in the same child is one `COPY` of the
residents table (every column, in id order) to a file in a REPEATABLE READ snapshot, as the export
does it. The export writes {full["export"]["tables"]} tables ({full["export"]["rows"]:,} rows, {full["export"]["bytes_written"] / 1e6:,.1f} MB
in all) and computes the SHA-256 of every file, verifies the operation log, writes the
manifest and its audit record.

| figure | result | goal | |
|---|---|---|---|
| residents table: export ÷ raw COPY, rows/s | {full["export"]["residents_rows_per_s"]:,} ÷ {full["baseline"]["rows_per_s"]:,} = **{ratio:.2f}** | ≥ 0.8 (ours) | {"**met**" if ratio >= 0.8 else "**not met**"} |
| whole export (every table, hashes, verification) ÷ raw COPY of residents, rows/s | {full["export"]["rows_per_s"]:,} ÷ {full["baseline"]["rows_per_s"]:,} = {whole:.2f} | | |
| whole export, seconds | {full["export"]["seconds"]} s | | |
| peak memory of the export process (VmHWM), {full["loaded_rows"]:,} residents | {full["peak_rss_mb"]} MB | flat | |
| the same, {tenth["loaded_rows"]:,} residents | {tenth["peak_rss_mb"]} MB | | {"**met**" if full["peak_rss_mb"] <= tenth["peak_rss_mb"] * 1.15 else "**not met**"} (within 15 %) |

Rows stream from PostgreSQL to the file in COPY's blocks; nothing of a table is held in memory.
Other work on the 2 CPUs during the run: {result["busy_before"]:.2f} before, {result["busy_after"]:.2f} after (load average, 1 min).
"""


def run(quick: bool = False) -> None:
    tenth_rows = 2_000 if quick else 19_000
    busy_before = os.getloadavg()[0]
    result: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        for label, residents in (("tenth", tenth_rows), ("full", 4_000 if quick else None)):
            loaded = _load(_extract(residents))
            print(f"  {label}: {loaded:,} residents loaded; exporting …", flush=True)
            figures = _export_in_child(tmp / label / "out")
            result[label] = {"loaded_rows": loaded, **figures}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        from app.tenancy.provisioning import deprovision, sync

        deprovision([TENANT])
        sync(only=TENANT)
    result["busy_before"] = busy_before
    result["busy_after"] = os.getloadavg()[0]
    save("export", result, markdown(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        from bench.common import use_bench_database

        use_bench_database()
        (Path(sys.argv[2]).parent).mkdir(parents=True, exist_ok=True)
        print(json.dumps(_child(sys.argv[2])))
