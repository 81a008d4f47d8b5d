"""The guidance sheet (手続案内書) handed to the visitor: A4, per department a checklist."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from app.dates import JST
from app.dates.wareki import format_wareki
from app.guidance.service import GuidanceResult
from app.pdf import render_template_pdf
from app.tenancy.config import TenantConfig

TEMPLATES = Path(__file__).with_name("templates")


def render_sheet(config: TenantConfig, result: GuidanceResult, issued: dt.datetime | None = None) -> bytes:
    issued = issued or dt.datetime.now(JST)
    d = result.determination
    return render_template_pdf(
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
