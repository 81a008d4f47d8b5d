"""Figures from the databases: per tenant schema (registrations, waiting, unique users) under the
tenant's own role, and from the control schema (municipalities, inquiries, incidents, releases)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import reports as sql
from app.db.session import session_scope
from app.observability.incidents import compliance
from app.observability.models import Incident
from app.reports.models import CATEGORIES, CHANNELS, RELEASE_KINDS, Release, SupportInquiry
from app.reports.period import Month
from app.reports.sources import ReportSourceError, Sourced
from app.tenancy.models import Tenant
from app.tenancy.service import TenantRecord

TENANT_QUERY = {
    "id": "db.tenant_month",
    "source": "PostgreSQL（自治体スキーマ）",
    "query": " ".join(sql.MONTH_FIGURES_SQL.split()),
}


def _jst(moment: dt.datetime | None) -> str | None:
    from app.dates import JST

    return None if moment is None else moment.astimezone(JST).isoformat(timespec="seconds")


def tenant_figures(record: TenantRecord, month: Month) -> dict[str, Any]:
    """One transaction in the tenant's schema, as the tenant's role: this city's rows only."""
    try:
        with session_scope(record.binding) as session:
            raw = sql.month_figures(session, month.start, month.end)
    except Exception as exc:
        raise ReportSourceError(
            f"{record.id} のデータベース集計に失敗しました: {type(exc).__name__}"
        ) from exc
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "cases_by_day":
            out[key] = {day: int(value.get(day, 0)) for day in (d.isoformat() for d in month.days)}
        elif key.endswith("_avg"):
            out[key] = None if value is None else float(value)
        else:
            out[key] = int(value)
    return out


def municipalities(session: Session, month: Month) -> Sourced:
    """Tenants that had started by the month's end (service start: the first provisioning)."""
    rows = session.scalars(select(Tenant).where(Tenant.created_at < month.end).order_by(Tenant.code)).all()
    items = []
    for t in rows:
        started = t.created_at
        days = len(month.days) if started < month.start else (month.end.date() - _local_date(started)).days
        items.append(
            {
                "id": t.id,
                "code": t.code,
                "name": t.name,
                "status": t.status,
                "service_start": _local_date(started).isoformat(),
                "new_this_month": started >= month.start,
                "days_in_service": days,
            }
        )
    query = (
        "SELECT id, code, name, status, created_at FROM control.tenants WHERE created_at < :end ORDER BY code"
    )
    return Sourced(items, [{"id": "db.municipalities", "source": "PostgreSQL（control）", "query": query}])


def _local_date(moment: dt.datetime) -> dt.date:
    from app.dates import JST

    return moment.astimezone(JST).date()


def inquiries(session: Session, month: Month) -> Sourced:
    rows = session.scalars(
        select(SupportInquiry)
        .where(SupportInquiry.opened_at >= month.start, SupportInquiry.opened_at < month.end)
        .order_by(SupportInquiry.opened_at, SupportInquiry.id)
    ).all()
    items = [
        {
            "id": r.id,
            "tenant": r.tenant_id,
            "channel": r.channel,
            "channel_ja": CHANNELS[r.channel],
            "category": r.category,
            "category_ja": CATEGORIES[r.category],
            "summary": r.summary,
            "opened_at": _jst(r.opened_at),
            "closed_at": _jst(r.closed_at) if r.closed_at is not None and r.closed_at < month.end else None,
        }
        for r in rows
    ]
    query = "SELECT * FROM control.support_inquiries WHERE opened_at >= :start AND opened_at < :end ORDER BY opened_at, id"
    return Sourced(items, [{"id": "db.inquiries", "source": "PostgreSQL（control）", "query": query}])


def incidents(session: Session, month: Month) -> Sourced:
    rows = session.scalars(
        select(Incident)
        .where(Incident.detected_at >= month.start, Incident.detected_at < month.end)
        .order_by(Incident.detected_at, Incident.id)
    ).all()
    items = []
    for i in rows:
        # As of the month's end, so a regeneration next year says the same as one on the 1st.
        c = compliance(i, now=month.end)
        items.append(
            {
                "id": i.id,
                "tenant": i.tenant_id,
                "alert": i.alert_name,
                "severity": i.severity,
                "slo": i.slo,
                "summary": i.summary,
                "detected_at": _jst(i.detected_at),
                "acknowledged_at": _jst(i.acknowledged_at)
                if i.acknowledged_at and i.acknowledged_at < month.end
                else None,
                "resolved_at": _jst(i.resolved_at) if i.resolved_at and i.resolved_at < month.end else None,
                "initial_response": {
                    "state": c.state,
                    "label": c.label,
                    "target_minutes": c.target_minutes,
                    "minutes": None if c.minutes is None else round(c.minutes, 1),
                },
                "report_written": bool(i.cause or i.recovery or i.prevention),
            }
        )
    query = "SELECT * FROM control.incidents WHERE detected_at >= :start AND detected_at < :end ORDER BY detected_at, id"
    return Sourced(items, [{"id": "db.incidents", "source": "PostgreSQL（control）", "query": query}])


def releases(session: Session, month: Month) -> Sourced:
    rows = session.scalars(
        select(Release)
        .where(Release.released_at >= month.start, Release.released_at < month.end)
        .order_by(Release.released_at, Release.id)
    ).all()
    items = [
        {
            "id": r.id,
            "kind": r.kind,
            "kind_ja": RELEASE_KINDS[r.kind],
            "version": r.version,
            "released_at": _jst(r.released_at),
            "approval_ref": r.approval_ref,
            "description": r.description,
        }
        for r in rows
    ]
    query = "SELECT * FROM control.releases WHERE released_at >= :start AND released_at < :end ORDER BY released_at, id"
    return Sourced(items, [{"id": "db.releases", "source": "PostgreSQL（control）", "query": query}])
