"""Issue 3 figures: determination p95 for a 6-person household against the full Osaka catalogue,
and the warm render time of a two-page guidance sheet.

Baselines in the same process: one compiled CEL evaluation (the unit the determiner is made of),
and a bare one-page PDF through the same WeasyPrint set-up.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import tempfile
import time
from dataclasses import replace
from typing import Any

from bench.common import percentile, save

EVENT_DAY = dt.date(2026, 11, 21)


def _household() -> list[Any]:
    from app.dates.japanese import parse
    from app.guidance.facts import MemberInput

    def m(key: str, name: str, birth: str, relation: str, sex: int, **attrs: str) -> MemberInput:
        return MemberInput(key, name, None, parse(birth), sex, relation, {k: [v] for k, v in attrs.items()})

    return [
        m("1", "大阪 一郎", "1978-06-01", "世帯主", 1, 国保="加入", マイナンバーカード="交付済"),
        m("2", "大阪 花子", "1981-09-15", "妻", 2, 国保="加入", マイナンバーカード="交付済"),
        m("3", "大阪 陽", "2023-01-10", "子", 1, 国保="加入"),
        m("4", "大阪 翔", "2016-04-01", "子", 1, 国保="加入", 学校="大阪市立豊新小学校"),
        m("5", "大阪 結衣", "2011-07-07", "子", 2, 国保="加入"),
        m("6", "大阪 ふみ", "1949-01-01", "母", 2, 後期高齢="加入", 介護保険="要介護1"),
    ]


def _timings(fn: Any, n: int, warmup: int = 20, clock: Any = time.perf_counter) -> list[float]:
    """Milliseconds per call: wall time, or with ``time.process_time`` the CPU time of this process."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = clock()
        fn()
        out.append((clock() - start) * 1000)
    return out


def _pages(pdf: bytes) -> int:
    """Pages by pdfinfo (WeasyPrint writes compressed object streams: no /Type /Page to count)."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as out:
        out.write(pdf)
        out.flush()
        info = subprocess.run(["pdfinfo", out.name], capture_output=True, text=True, check=True).stdout
    found = re.search(r"^Pages:\s+(\d+)$", info, re.M)
    return int(found.group(1)) if found else 0


def run(quick: bool = False) -> None:
    import cel

    from app.config import get_settings
    from app.guidance.engine import compile_catalogue, determine
    from app.guidance.service import ActiveCatalogue, GuidanceResult
    from app.guidance.sheet import render_sheet
    from app.pdf import renderer
    from app.tenancy.loader import load_all

    tenants = load_all(get_settings().tenants_dir)
    config = tenants["osaka"].config
    assert config.catalogue is not None, "Osaka has no catalogue"
    compiled = compile_catalogue(config.catalogue)
    members = _household()
    answers_all: dict[str, Any] = {}
    for q in config.catalogue.questions:  # every question answered: the full work of a determination
        answers_all[q.id] = (
            False if q.type == "yes_no" else 0 if q.type == "number" else
            {c.value: 2 for c in q.choices or []} if q.type == "counts" else
            (q.choices[0].value if q.type == "choice" else [q.choices[0].value]) if q.choices else None
        )  # fmt: skip
    # The event's subject named where the event has one: who died (the 77-year-old parent), whose
    # surname changes (the wife), the newborn (the youngest child stands in for one).
    subject_of = {"shibou": "6", "konin": "2", "rikon": "2", "shussei": "3"}
    by_subject = {
        event: [replace(m, subject=m.key == key) for m in members] for event, key in subject_of.items()
    }
    n = 200 if quick else 2000
    by_event: dict[str, dict[str, float]] = {}
    for event in [e.code for e in config.catalogue.events]:
        people = by_subject.get(event, members)
        samples = _timings(
            lambda e=event, p=people: determine(compiled, e, EVENT_DAY, p, answers_all), n // 4
        )
        by_event[event] = {
            "p50_ms": round(percentile(samples, 0.5), 3),
            "p95_ms": round(percentile(samples, 0.95), 3),
        }
    samples = _timings(lambda: determine(compiled, "tennyu", EVENT_DAY, members, answers_all), n)
    cpu = _timings(
        lambda: determine(compiled, "tennyu", EVENT_DAY, members, answers_all), n, clock=time.process_time
    )
    program = cel.compile("children.size() > 0 && !wants_x")
    ctx = cel.Context({"children": [{"age": 3}], "wants_x": False})
    unit = _timings(lambda: program.execute(ctx), n)
    result = determine(compiled, "tennyu", EVENT_DAY, members, answers_all)
    active = ActiveCatalogue(0, config.catalogue.version, config.catalogue.effective_from, compiled)
    guidance = GuidanceResult(active, result)
    pages = _pages(render_sheet(config, guidance))
    sheet = _timings(lambda: render_sheet(config, guidance), 10 if quick else 40, warmup=3)
    sheet_cpu = _timings(
        lambda: render_sheet(config, guidance), 10 if quick else 40, warmup=1, clock=time.process_time
    )
    # The goal is stated for two pages: 転居 of the same household fills two.
    moving = GuidanceResult(active, determine(compiled, "tenkyo", EVENT_DAY, members, answers_all))
    two_pages = _pages(render_sheet(config, moving))
    two = _timings(lambda: render_sheet(config, moving), 10 if quick else 40, warmup=3)
    two_cpu = _timings(
        lambda: render_sheet(config, moving), 10 if quick else 40, warmup=1, clock=time.process_time
    )
    bare = _timings(lambda: renderer().render("<p>手続案内書</p>"), 10 if quick else 40, warmup=3)
    figures = {
        "procedures_in_catalogue": len(config.catalogue.procedures),
        "household_size": len(members),
        "needed": len(result.needed),
        "tennyu_p50_ms": round(percentile(samples, 0.5), 3),
        "tennyu_p95_ms": round(percentile(samples, 0.95), 3),
        "tennyu_cpu_p50_ms": round(percentile(cpu, 0.5), 3),
        "tennyu_cpu_p95_ms": round(percentile(cpu, 0.95), 3),
        "by_event": by_event,
        "cel_evaluation_p50_us": round(percentile(unit, 0.5) * 1000, 2),
        "sheet_pages": pages,
        "sheet_warm_p50_ms": round(percentile(sheet, 0.5), 1),
        "sheet_warm_p95_ms": round(percentile(sheet, 0.95), 1),
        "sheet_cpu_p50_ms": round(percentile(sheet_cpu, 0.5), 1),
        "sheet_cpu_p95_ms": round(percentile(sheet_cpu, 0.95), 1),
        "tenkyo_sheet_pages": two_pages,
        "tenkyo_sheet_needed": len(moving.determination.needed),
        "tenkyo_sheet_warm_p50_ms": round(percentile(two, 0.5), 1),
        "tenkyo_sheet_warm_p95_ms": round(percentile(two, 0.95), 1),
        "tenkyo_sheet_cpu_p50_ms": round(percentile(two_cpu, 0.5), 1),
        "tenkyo_sheet_cpu_p95_ms": round(percentile(two_cpu, 0.95), 1),
        "bare_pdf_p50_ms": round(percentile(bare, 0.5), 1),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # the machine is shared
    }
    worst = max(v["p95_ms"] for v in by_event.values())
    md = f"""## Procedure guidance (issue 3)

Determination for a 6-person household (two parents, three children, a 77-year-old parent)
against the full Osaka catalogue ({figures["procedures_in_catalogue"]} procedures), every question
answered and the event's subject named (死亡, 婚姻・離婚, 出生), {n:,} runs after warm-up; sheet render
warm through the same WeasyPrint set-up.

| figure | result | goal |
|---|---|---|
| determination 転入, p50 / p95 | {figures["tennyu_p50_ms"]} / {figures["tennyu_p95_ms"]} ms | p95 < 10 ms |
| determination 転入, CPU time p50 / p95 | {figures["tennyu_cpu_p50_ms"]} / {figures["tennyu_cpu_p95_ms"]} ms | |
| worst p95 over all life events ({len(by_event)}, with 個別申請) | {worst} ms | < 10 ms |
| one CEL evaluation (baseline unit) | {figures["cel_evaluation_p50_us"]} µs | |
| guidance sheet 転居 ({two_pages} pages, {len(moving.determination.needed)} procedures), warm p50 / p95 | {figures["tenkyo_sheet_warm_p50_ms"]} / {figures["tenkyo_sheet_warm_p95_ms"]} ms | < 300 ms for two pages |
| guidance sheet 転居, CPU time p50 / p95 | {figures["tenkyo_sheet_cpu_p50_ms"]} / {figures["tenkyo_sheet_cpu_p95_ms"]} ms | |
| guidance sheet 転入 ({pages} pages, {figures["needed"]} procedures), warm p50 / p95 | {figures["sheet_warm_p50_ms"]} / {figures["sheet_warm_p95_ms"]} ms | |
| guidance sheet 転入, CPU time p50 / p95 | {figures["sheet_cpu_p50_ms"]} / {figures["sheet_cpu_p95_ms"]} ms | |
| bare one-paragraph PDF (baseline) | {figures["bare_pdf_p50_ms"]} ms | |

CPU time (`time.process_time`) counts only this process's work, so it holds when other work shares
the two cores; wall time includes the waits for a core.

The 転入 sheet of this household runs to {pages} pages. In a profile of its render about a quarter
of the CPU goes to the fonts: for every PDF WeasyPrint reads each embedded face's whole file and
subsets it with HarfBuzz (IPAmj明朝 is a 46 MB file, embedded regular and bold for names in bold
text); the rest is layout and Japanese line breaking (the sheet's tables use a fixed layout to cut
the former).

Load average at the end of the run (1/5/15 min, 2 cores shared with other work):
{", ".join(f"{x:.1f}" for x in figures["load_average_1_5_15"])}.
"""
    save("guidance", figures, md)
    print(md)
