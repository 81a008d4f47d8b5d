"""Tenant home page and the provider's landing page."""

from __future__ import annotations

import datetime as dt

from flask import render_template

from app.dates import JST
from app.dates.wareki import format_wareki
from app.guidance.service import GuidanceInputError, active_catalogue
from app.identity.permissions import signed_in
from app.tenancy.context import tenant_config, tenant_db
from app.tenancy.service import registry, tenant_calendars
from app.web import root_web, tenant_web


@root_web.route("/")
def index() -> str:
    return render_template("index.html", tenants=registry.all())


@tenant_web.route("/")
@signed_in
def home() -> str:
    config = tenant_config()
    now = dt.datetime.now(JST)
    service, desk = tenant_calendars(tenant_db(), config)
    week = [service.day_status(now.date() + dt.timedelta(days=i), as_of=now) for i in range(14)]
    try:
        catalogue = active_catalogue(tenant_db(), now.date())
    except GuidanceInputError:
        catalogue = None
    return render_template(
        "tenant/home.html",
        config=config,
        now=now,
        open_now=service.is_open(now),
        desk_open_now=desk.is_open(now),
        today=service.day_status(now.date(), as_of=now),
        desk_today=desk.day_status(now.date(), as_of=now),
        week=week,
        catalogue=catalogue,
        format_wareki=format_wareki,
    )
