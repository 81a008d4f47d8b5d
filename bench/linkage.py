"""Issue 2 figures: Osaka-scale import beside a raw COPY, import memory, search latency.

- Baseline: ``COPY`` of the very same standard-layout residents file into an unindexed table of
  text columns, in the same run (PostgreSQL parses the CSV; nothing is validated).
- First load: the file imported into an empty tenant through the real importer.
- Nightly: the same extract with ~1 % of the rows changed, imported on top (the common case).
- Peak memory: each import runs in a child process; the same import of a 20,000-row file is the
  baseline, so "flat" means the two peaks are close whatever the file size.
- Search: p50/p95 of the search service (query + audit record, one round trip each) at Osaka
  scale, for kana prefix, name and birth date.

Files are generated once into var/bench/ by the synthetic generator and reused while its manifest
(seed, date, counts) is unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, percentile, save

AS_OF = dt.date(2026, 11, 1)
SEED = 7
TENANT = "osaka"


def _extract(scale: str) -> Path:
    """The standard-layout residents file for Osaka at ``scale`` (generated once, then reused)."""
    from app.config import get_settings
    from app.residents.synthetic import write_extracts
    from app.tenancy.loader import load_all

    out = ROOT / "var" / "bench" / f"{TENANT}-{scale}"
    manifest = out / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        if data.get("seed") == SEED and data.get("as_of") == AS_OF.isoformat():
            found = sorted((out / "standard").glob("residents_full_*.csv"))
            if found:
                return found[0]
    linkage = load_all(get_settings().tenants_dir)[TENANT].config.linkage
    print(f"  generating the {scale} extract for {TENANT} (once) …", flush=True)
    result = write_extracts(TENANT, linkage, out, scale=scale, seed=SEED, as_of=AS_OF)
    return result.standard["residents"].path


def _changed_copy(source: Path, share: float = 0.01) -> Path:
    """The extract with ``share`` of its rows changed (a new 方書), as a nightly full file would be."""
    target = source.with_name(source.stem + "_nightly.csv")
    if target.is_file() and target.stat().st_mtime > source.stat().st_mtime:
        return target
    rng = random.Random(SEED)
    import csv

    with (
        source.open(encoding="utf-8", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\r\n")
        header = next(reader)
        writer.writerow(header)
        extra = header.index("方書")
        for row in reader:
            if rng.random() < share:
                row[extra] = (row[extra] + " 改").strip()
            writer.writerow(row)
    return target


def _raw_copy(path: Path) -> dict[str, Any]:
    import psycopg

    url = os.environ["MADOGUCHI_BENCH_ADMIN_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        with path.open(encoding="utf-8") as fh:
            width = len(fh.readline().split(","))
        conn.execute("DROP TABLE IF EXISTS public.bench_raw_copy")
        conn.execute(f"CREATE TABLE public.bench_raw_copy ({', '.join(f'c{i} text' for i in range(width))})")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY public.bench_raw_copy FROM STDIN (FORMAT csv, HEADER true)") as cp,
            path.open("rb") as fh,
        ):
            while chunk := fh.read(1 << 20):
                cp.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM public.bench_raw_copy").fetchone()[0]  # type: ignore[index]
        conn.execute("DROP TABLE public.bench_raw_copy")
        conn.commit()
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def _ceiling(path: Path, rows: int) -> dict[str, Any]:
    """What PostgreSQL alone needs for the importer's output, against the raw COPY of the same rows.

    The first ``rows`` lines of the file are COPYed raw (text columns, as the baseline), and the
    rows the importer made of them (read back from the tenant's residents table) are COPYed into a
    table shaped like residents with its primary key and unique 宛名番号 (what a first load keeps
    while it COPYs), once as they are and once with the four JSONB date columns as plain text. No
    Python runs while these are timed: the ratio is the best an importer writing these rows can do.
    """
    import psycopg

    from app.tenancy.service import registry

    record = registry.get(TENANT)
    assert record is not None
    schema = record.binding.schema
    url = os.environ["MADOGUCHI_BENCH_ADMIN_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    work = ROOT / "var" / "bench" / "ceiling"
    work.mkdir(parents=True, exist_ok=True)
    sample, final = work / "sample.csv", work / "rows.copy"
    with path.open("rb") as src, sample.open("wb") as dst:
        for _, line in zip(range(rows + 1), src, strict=False):
            dst.write(line)

    def timed_copy(conn: psycopg.Connection[Any], statement: str, source: Path) -> tuple[int, float]:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(statement) as cp, source.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                cp.write(chunk)
        seconds = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM public.bench_ceiling").fetchone()[0]  # type: ignore[index]
        conn.rollback()
        return count, seconds

    result: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, final.open("wb") as fh:
            query = f'COPY (SELECT * FROM "{schema}".residents ORDER BY id LIMIT {int(rows)}) TO STDOUT'
            with cur.copy(query) as cp:
                for data in cp:
                    fh.write(data)
        conn.rollback()
        width = len(sample.open(encoding="utf-8").readline().split(","))
        cases = {
            "raw_copy": ("", "csv"),
            "importer_rows": ("", "text"),
            "importer_rows_dates_as_text": ("text", "text"),
        }
        for label, (dates_as, form) in cases.items():
            if form == "csv":
                conn.execute(
                    f"CREATE TABLE public.bench_ceiling ({', '.join(f'c{i} text' for i in range(width))})"
                )
                statement = "COPY public.bench_ceiling FROM STDIN (FORMAT csv, HEADER true)"
                source = sample
            else:
                conn.execute(
                    f'CREATE TABLE public.bench_ceiling (LIKE "{schema}".residents INCLUDING DEFAULTS'
                    " INCLUDING CONSTRAINTS)"
                )
                if dates_as:
                    conn.execute(
                        "ALTER TABLE public.bench_ceiling ALTER birth TYPE text, ALTER became_resident TYPE text,"
                        " ALTER address_set TYPE text, ALTER change TYPE text"
                    )
                conn.execute("ALTER TABLE public.bench_ceiling ADD PRIMARY KEY (id), ADD UNIQUE (atena_no)")
                statement = "COPY public.bench_ceiling FROM STDIN"
                source = final
            count, seconds = timed_copy(conn, statement, source)
            result[label] = {
                "rows": count,
                "seconds": round(seconds, 2),
                "rows_per_s": round(count / seconds),
            }
    sample.unlink()
    final.unlink()
    base = result["raw_copy"]["rows_per_s"]
    for label in ("importer_rows", "importer_rows_dates_as_text"):
        result[label]["vs_raw_copy"] = round(result[label]["rows_per_s"] / base, 3)
    return result


def _import_child(path: str) -> dict[str, Any]:
    from app.audit.service import Actor
    from app.linkage.importer import import_local_file
    from app.tenancy.service import registry

    record = registry.get(TENANT)
    assert record is not None
    started = time.perf_counter()
    outcome = import_local_file(record, Path(path), actor=Actor("cli", "bench"), standard_layout=True)
    seconds = time.perf_counter() - started
    return {
        "status": outcome.status,
        "rows": outcome.rows_read,
        "counts": outcome.counts,
        "seconds": round(seconds, 2),
        "rows_per_s": round(outcome.rows_read / seconds) if seconds else 0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "message": outcome.message,
    }


def _import(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.linkage", "--child", str(path)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _fresh_tenant() -> None:
    from app.tenancy.provisioning import deprovision, sync

    deprovision([TENANT])
    sync(only=TENANT)


def _search_latency(samples: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.audit.service import Actor, actor_var
    from app.dates.japanese import JapaneseDate
    from app.db.session import new_session
    from app.residents.models import Resident
    from app.residents.service import SearchQuery, search
    from app.tenancy.service import registry

    record = registry.get(TENANT)
    assert record is not None
    config = registry.config(record)
    actor_var.set(Actor("staff", "bench", "ベンチ", "bench"))
    session = new_session(record.binding)
    rng = random.Random(SEED)
    total = session.scalar(select(func.max(Resident.id))) or 0
    people = []
    while len(people) < samples:
        row = session.get(Resident, rng.randint(1, total))
        if row is not None and row.kana and row.status == "住民":
            people.append((row.kana, row.name, JapaneseDate.from_json(row.birth)))
    session.rollback()
    results: dict[str, Any] = {}
    cases = {
        "kana_prefix": lambda p: SearchQuery(kana=p[0].split(" ")[0][:3]),
        "kana_full": lambda p: SearchQuery(kana=p[0]),
        "name": lambda p: SearchQuery(name=p[1]),
        "birth": lambda p: SearchQuery(birth=p[2].wareki()),
    }
    for label, make in cases.items():
        timings = []
        for person in people:
            query = make(person)
            started = time.perf_counter()
            search(session, config, query)
            session.commit()
            timings.append((time.perf_counter() - started) * 1000)
        results[label] = {
            "n": len(timings),
            "p50_ms": round(percentile(timings, 0.5), 2),
            "p95_ms": round(percentile(timings, 0.95), 2),
        }
    session.close()
    return results


def markdown(result: dict[str, Any]) -> str:
    """The docs/benchmarks.md section for one run (also re-rendered from a saved result)."""
    baseline, first, second = result["raw_copy"], result["first_load"], result["nightly_full"]
    small_run, ceiling, latency = result["small_import"], result["ceiling"], result["search"]
    rows = f"{first['rows']:,}"
    load = result["load_average_after"]

    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    ratio_ok = min(result["first_load_vs_raw_copy"], result["nightly_vs_raw_copy"]) >= 0.5
    search_ok = all(v["p95_ms"] < 10 for v in latency.values())
    c = ceiling
    md = f"""## Front-linkage import and search at Osaka scale (issue 2)

The same standard-layout file ({rows} rows incl. people who left, synthetic Osaka city scale) is
loaded by a raw `COPY` into an unindexed text table (the baseline) and imported through the real
importer: first into an empty tenant, then a nightly full extract with ~1 % of rows changed.

| figure | rows/s | time | vs raw COPY | goal |
|---|---|---|---|---|
| raw `COPY` (baseline) | {baseline["rows_per_s"]:,} | {baseline["seconds"]} s | 1.00 | |
| import, first load into an empty tenant | {first["rows_per_s"]:,} | {first["seconds"]} s | {result["first_load_vs_raw_copy"]:.2f} | ≥ 0.50 |
| import, nightly full extract (1 % changed) | {second["rows_per_s"]:,} | {second["seconds"]} s | {result["nightly_vs_raw_copy"]:.2f} | ≥ 0.50 |

Import goal: **{met(ratio_ok)}**. Where the time goes, measured on the first 300,000 rows of the
same file in the same run, with no Python running while PostgreSQL is timed:

| COPY of | rows/s | vs raw COPY of the same rows |
|---|---|---|
| the raw CSV into text columns (baseline) | {c["raw_copy"]["rows_per_s"]:,} | 1.00 |
| the rows the importer writes (residents shape, primary key and unique 宛名番号) | {c["importer_rows"]["rows_per_s"]:,} | {c["importer_rows"]["vs_raw_copy"]:.2f} |
| the same with the four JSONB date columns as plain text | {c["importer_rows_dates_as_text"]["rows_per_s"]:,} | {c["importer_rows_dates_as_text"]["vs_raw_copy"]:.2f} |

{"So even an importer costing nothing in Python could not reach half the raw rate with the current table:" if c["importer_rows"]["vs_raw_copy"] < 0.5 else "In this run PostgreSQL alone could have kept up with the goal:"}
PostgreSQL alone needs {c["importer_rows"]["vs_raw_copy"]:.2f} of the raw time for the rows the importer writes
(about 650 bytes of COPY text a row against 250 bytes of CSV; the four structured dates are JSONB
documents of ~120 bytes each). How much of that is parsing the JSONB varies between runs on this
loaded machine ({c["importer_rows_dates_as_text"]["vs_raw_copy"]:.2f} with the dates as text in this run; 0.15 → 0.35 in the
run before, and 11.9 s → 5.9 s for the same 300,000 rows by hand in `psql`). A first load now COPYs straight into the empty residents table with its five
search indexes dropped and rebuilt once at the end in the same transaction (migration t0009;
300,000 rows by hand: 20 s to COPY with them, against 10 s without them and 4 s to build them after), Python's cyclic garbage collector is
off while records stream (about a quarter of Python's time) and each row is hashed once. Python
(read, validate, normalise, format) takes ~21 µs of CPU a row on this machine (300,000 rows, collector
off; ~28 µs with it on) and runs beside PostgreSQL on the second core, which other work shares.

Peak memory of the import process: {first["peak_rss_mb"]} MB for {rows} rows (first load),
{second["peak_rss_mb"]} MB for the nightly file on top of them, {small_run["peak_rss_mb"]} MB for a
{small_run["rows"]:,}-row file (goal: flat, independent of file size). The importer streams records;
what grows is the fingerprints of the tenant's residents (~17 bytes a resident, decoded from the
binary COPY a megabyte at a time) and the keys seen in the file (8 bytes a row), see ADR 0002.
Memory goal: **not met strictly** -- flat in the file's size up to these two arrays and buffers, but
it grows with the tenant's size (the nightly import measured 568 MB in the run before the
fingerprints were decoded chunk-wise and missing residents found by binary search instead of
`np.isin`, 334 MB after).

Resident search at this scale (search service incl. the audit record; {latency["kana_prefix"]["n"]} random people each):

| query | p50 | p95 | goal p95 |
|---|---|---|---|
| kana prefix (3 characters) | {latency["kana_prefix"]["p50_ms"]} ms | {latency["kana_prefix"]["p95_ms"]} ms | < 10 ms |
| full kana | {latency["kana_full"]["p50_ms"]} ms | {latency["kana_full"]["p95_ms"]} ms | < 10 ms |
| name | {latency["name"]["p50_ms"]} ms | {latency["name"]["p95_ms"]} ms | < 10 ms |
| birth date (和暦) | {latency["birth"]["p50_ms"]} ms | {latency["birth"]["p95_ms"]} ms | < 10 ms |

Search goal: **{met(search_ok)}**. The kana prefix query already runs as a range scan of the
C-collation `(kana_search, id)` btree (`EXPLAIN ANALYZE`: Index Cond `kana_search >= 'ナカガ' AND
kana_search < 'ナカキ'`, 51 rows, no sort); its tail is the 51 heap pages it then reads, one per
result row, from a 3.5 GB table that does not fit `shared_buffers` (512 MB), plus the audit record's
commit (hash chain under a per-tenant lock, synchronous commit). Measured apart (200 kana prefix
searches at load average 5.6): the query alone p50 8.3 / p95 15.7 ms cold, the audit record's commit
p50 8.6 / p95 17.0 ms. Next steps, not done: rows stored in kana order (CLUSTER, or a first load
sorted by kana in PostgreSQL) so the 51 results share pages, a narrower residents row (dates not
as JSONB documents, which would also lift the import's ceiling), more `shared_buffers` for a tenant
of this size. Load average on 2 CPUs after the run: {load[0]} / {load[1]} / {load[2]} (other work shared the
machine; absolute times are pessimistic, the ratios less so).
"""
    return md


def run(quick: bool = False) -> None:
    from app.tenancy.provisioning import sync

    sync()
    scale = "small" if quick else "city"
    big = _extract(scale)
    nightly = _changed_copy(big)
    small = _extract("small")
    baseline = _raw_copy(big)
    print(f"  raw COPY: {baseline['rows_per_s']:,} rows/s", flush=True)
    _fresh_tenant()
    small_run = _import(small)
    _fresh_tenant()
    first = _import(big)
    print(f"  first load: {first['rows_per_s']:,} rows/s ({first['seconds']} s)", flush=True)
    ceiling = _ceiling(big, 300_000)
    print(f"  ceiling: {ceiling}", flush=True)
    second = _import(nightly)
    print(f"  nightly: {second['rows_per_s']:,} rows/s ({second['seconds']} s)", flush=True)
    latency = _search_latency(100 if quick else 400)
    result = {
        "scale": scale,
        "raw_copy": baseline,
        "first_load": first,
        "nightly_full": second,
        "small_import": small_run,
        "ceiling": ceiling,
        "first_load_vs_raw_copy": round(first["rows_per_s"] / baseline["rows_per_s"], 3),
        "nightly_vs_raw_copy": round(second["rows_per_s"] / baseline["rows_per_s"], 3),
        "search": latency,
    }
    result["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    md = markdown(result)
    save("linkage", result, md)
    print(md)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        from bench.common import use_bench_database

        use_bench_database()
        print(json.dumps(_import_child(sys.argv[2])))
