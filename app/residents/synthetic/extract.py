"""Write a tenant's synthetic full extract (全件): the standard files and the tenant's own variant.

One pass over the generated households feeds four writers at once (standard residents and
attributes, variant residents and attributes), so a city-scale run generates each person once and
memory stays constant. Layout:

    <out>/standard/residents_full_YYYYMMDD.csv     standard layout of shared/domain/residents.md
    <out>/standard/attributes_full_YYYYMMDD.csv
    <out>/variant/<name the tenant's adapter expects>  e.g. JUKI_FULL_YYYYMMDD.csv (Osaka, cp932)
    <out>/manifest.json                              seed, date, counts, files with SHA-256

File names of the variant must be ones the tenant's adapters pick up (``pattern``) and its layout
reads as a full extract (``modes``); ``variant_file_name`` checks both, so a change in
``linkage.yaml`` that the demo no longer fits fails loudly instead of producing files no poller takes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.linkage.config import STANDARD, FileKind, LinkageConfig
from app.linkage.writer import LayoutWriter, WriteStats
from app.residents.synthetic.attributes import household_attributes
from app.residents.synthetic.people import generate_households
from app.residents.synthetic.tables import profile as city_profile

# Names the three cities' core systems use for a full extract ({ymd} = the extract date).
FILE_NAMES: dict[str, dict[FileKind, str]] = {
    "osaka": {"residents": "JUKI_FULL_{ymd}.csv", "attributes": "SHIKAKU_FULL_{ymd}.csv"},
    "gobo": {"residents": "GOBO_JUKI_ZEN_{ymd}.csv", "attributes": "GOBO_SHIKAKU_{ymd}.csv"},
    "yamaguchi": {
        "residents": "yamaguchi_residents_full_{ymd}.tsv",
        "attributes": "yamaguchi_attributes_full_{ymd}.tsv",
    },
}
KINDS: tuple[FileKind, ...] = ("residents", "attributes")


@dataclass(frozen=True)
class ProgressReport:
    residents_done: int  # living residents written so far
    residents_total: int
    rows: int  # resident rows written (living and left)
    seconds: float


@dataclass(frozen=True)
class ExtractResult:
    tenant_id: str
    seed: int
    as_of: dt.date
    residents: int  # living (住民)
    households: int  # with at least one living member
    person_rows: int  # residents file rows, people who left included
    attribute_rows: int
    standard: dict[FileKind, WriteStats]
    variant: dict[FileKind, WriteStats]
    seconds: float
    manifest: Path

    @property
    def rows_per_second(self) -> float:
        return self.person_rows / self.seconds if self.seconds else 0.0


def variant_file_name(tenant_id: str, linkage: LinkageConfig, kind: FileKind, as_of: dt.date) -> str:
    """The tenant's file name for a full extract of ``kind``, checked against its linkage.yaml."""
    layout = linkage.layout(kind)
    extension = "tsv" if layout.delimiter == "\t" else "csv"
    template = FILE_NAMES.get(tenant_id, {}).get(
        kind, f"{tenant_id.upper()}_{kind.upper()}_FULL_{{ymd}}.{extension}"
    )
    name = template.format(ymd=as_of.strftime("%Y%m%d"))
    for adapter in linkage.adapters:
        if adapter.purpose == kind and not re.search(adapter.pattern, name):
            raise ValueError(
                f"{tenant_id}: file name {name} does not match adapter {adapter.name} ({adapter.pattern})"
            )
    if layout.mode_for(name) != "full":
        raise ValueError(f"{tenant_id}: {layout.variant} reads {name} as a changes file, not a full extract")
    return name


def write_extracts(
    tenant_id: str,
    linkage: LinkageConfig,
    out_dir: Path,
    *,
    scale: str = "small",
    seed: int = 1,
    as_of: dt.date,
    residents: int | None = None,
    households: int | None = None,
    progress: Callable[[ProgressReport], None] | None = None,
) -> ExtractResult:
    """Generate the tenant's people and write standard and variant files under ``out_dir``.

    ``residents``/``households`` override the scale's counts (tests use a few thousand people).
    """
    profile = city_profile(tenant_id)
    total_residents, total_households = profile.counts(scale)
    if residents is not None:
        total_residents = residents
        total_households = households or max(1, round(residents * profile.households / profile.residents))
    ymd = as_of.strftime("%Y%m%d")
    names = {kind: variant_file_name(tenant_id, linkage, kind, as_of) for kind in KINDS}
    writers = {
        ("standard", "residents"): LayoutWriter(
            STANDARD.residents, out_dir / "standard" / f"residents_full_{ymd}.csv"
        ),
        ("standard", "attributes"): LayoutWriter(
            STANDARD.attributes, out_dir / "standard" / f"attributes_full_{ymd}.csv"
        ),
        ("variant", "residents"): LayoutWriter(linkage.residents, out_dir / "variant" / names["residents"]),
        ("variant", "attributes"): LayoutWriter(
            linkage.attributes, out_dir / "variant" / names["attributes"]
        ),
    }
    people = [writers["standard", "residents"], writers["variant", "residents"]]
    facts = [writers["standard", "attributes"], writers["variant", "attributes"]]
    started = time.perf_counter()
    living = living_households = rows = attribute_rows = 0
    try:
        for n, household in enumerate(
            generate_households(
                profile,
                total_residents,
                total_households,
                seed=seed,
                as_of=as_of,
                attributes=household_attributes,
            )
        ):
            for person in household.members:
                row = person.row()
                for writer in people:
                    writer.write(row)
            for fact in household.attributes:
                row = fact.row()
                for writer in facts:
                    writer.write(row)
            here = household.residents
            living += here
            living_households += 1 if here else 0
            rows += len(household.members)
            attribute_rows += len(household.attributes)
            if progress is not None and n % 2000 == 0:
                progress(ProgressReport(living, total_residents, rows, time.perf_counter() - started))
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    stats = {key: writer.close() for key, writer in writers.items()}
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(ProgressReport(living, total_residents, rows, seconds))
    manifest = out_dir / "manifest.json"
    result = ExtractResult(
        tenant_id=tenant_id,
        seed=seed,
        as_of=as_of,
        residents=living,
        households=living_households,
        person_rows=rows,
        attribute_rows=attribute_rows,
        standard={kind: stats["standard", kind] for kind in KINDS},
        variant={kind: stats["variant", kind] for kind in KINDS},
        seconds=seconds,
        manifest=manifest,
    )
    manifest.write_text(json.dumps(_manifest(result, linkage, scale), ensure_ascii=False, indent=2) + "\n")
    return result


def _manifest(result: ExtractResult, linkage: LinkageConfig, scale: str) -> dict[str, Any]:
    def files(group: str, stats: dict[FileKind, WriteStats], variants: dict[FileKind, str]) -> dict[str, Any]:
        return {
            kind: {
                "path": f"{group}/{s.path.name}",
                "layout": variants[kind],
                "rows": s.rows,
                "bytes": s.bytes,
                "sha256": s.sha256,
                "gaiji": s.gaiji,
                "selectors_dropped": s.selectors_dropped,
                "replaced": s.replaced,
            }
            for kind, s in stats.items()
        }

    return {
        "tenant": result.tenant_id,
        "scale": scale,
        "seed": result.seed,
        "as_of": result.as_of.isoformat(),
        "residents": result.residents,
        "households": result.households,
        "person_rows": result.person_rows,
        "attribute_rows": result.attribute_rows,
        "standard": files("standard", result.standard, {"residents": "standard", "attributes": "standard"}),
        "variant": files(
            "variant",
            result.variant,
            {"residents": linkage.residents.variant, "attributes": linkage.attributes.variant},
        ),
    }


def stderr_progress(label: str, every_seconds: float = 2.0) -> Callable[[ProgressReport], None]:
    """A progress callback printing one line to stderr every few seconds, with rows/s."""
    last = -every_seconds

    def report(p: ProgressReport) -> None:
        nonlocal last
        done = p.residents_done >= p.residents_total
        if p.seconds - last < every_seconds and not done:
            return
        last = p.seconds
        rate = p.rows / p.seconds if p.seconds else 0.0
        share = 100 * p.residents_done / p.residents_total if p.residents_total else 100.0
        sys.stderr.write(
            f"{label}: {p.residents_done:,}/{p.residents_total:,} residents ({share:.0f}%), "
            f"{rate:,.0f} rows/s, {p.seconds:.0f} s\n"
        )
        sys.stderr.flush()

    return report
