"""The guidance sheet (手続案内書) handed to the visitor: A4, per department a checklist."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from app.dates import JST
from app.dates.wareki import format_wareki
from app.guidance.service import GuidanceResult
from app.pdf import render_template_html, renderer
from app.tenancy.config import TenantConfig

TEMPLATES = Path(__file__).with_name("templates")


def render_sheet(config: TenantConfig, result: GuidanceResult, issued: dt.datetime | None = None) -> bytes:
    return renderer().render(sheet_html(config, result, issued))


def render_sheets(
    config: TenantConfig, results: list[GuidanceResult], issued: dt.datetime | None = None
) -> bytes:
    """One PDF with a sheet per life event of a case (転入 and 出生 on one visit)."""
    return renderer().render_many([sheet_html(config, r, issued) for r in results])


def sheet_html(config: TenantConfig, result: GuidanceResult, issued: dt.datetime | None = None) -> str:
    issued = issued or dt.datetime.now(JST)
    d = result.determination
    return render_template_html(
        TEMPLATES,
        "guidance_sheet.html",
        tenant=config.tenant,
        determination=d,
        groups=d.by_department(),
        catalogue=result.catalogue,
        issued=format_wareki(issued.date(), weekday=True),
        event_date=format_wareki(d.event_date),
        wareki=format_wareki,
    )
