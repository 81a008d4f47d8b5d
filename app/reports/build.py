"""Collect a month from every source and assemble the reports (pure data, JSON-ready).

``collect`` asks the sources; ``service_report`` and ``tenant_report`` only arrange what was
collected, so the same collection always gives the same reports. One tenant's report is built from
that tenant's rows only: its own schema's figures, its own series and rows filtered by its id.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.reports.models import CATEGORIES
from app.reports.period import Month
from app.reports.sources import Sourced, costs, database, securityhub
from app.tenancy.service import TenantRecord

log = logging.getLogger(__name__)
SCHEMA = "madoguchi.monthly-report/1"
SERVICE = "service"
ITEMS = {
    "kpi": "1 サービスの主要KPI",
    "service_level": "2 サービスレベル",
    "security_compliance": "3 セキュリティ設定遵守状況",
    "releases": "4 アプリケーション／インフラのリリース状況",
    "iam_users": "5 IAMユーザー監査",
    "iam_roles": "6 IAMロール監査",
    "console_logins": "7 管理コンソール監査",
    "resources_created": "8 リソース監査",
    "cloud_usage": "9 クラウドリソース利用状況",
}
POINT_IN_TIME = ("iam_users", "iam_roles", "config_current", "securityhub_findings")
Progress = Callable[[str], None]


@dataclass
class Collected:
    month: Month
    municipalities: list[dict[str, Any]]
    tenant_figures: dict[str, dict[str, Any]]
    metrics: dict[str, Any]
    inquiries: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    releases: list[dict[str, Any]]
    aws: dict[str, Any] | None  # None: AWS sources disabled in settings
    captured_at: dict[str, str] = field(default_factory=dict)
    queries: list[dict[str, str]] = field(default_factory=list)

    def add(self, sourced: Sourced) -> Any:
        for q in sourced.queries:
            if q not in self.queries:
                self.queries.append(q)
        return sourced.data


def _ratio(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(part / whole, 6)


def _tenant_level(metrics: dict[str, Any], tenant: str) -> dict[str, Any]:
    raw = metrics["tenants"].get(tenant, {})
    requests, errors, slow = raw.get("requests", 0), raw.get("errors", 0), raw.get("slow", 0)
    open_m, down_m = raw.get("open_minutes", 0), raw.get("downtime_minutes", 0)
    rate = _ratio(down_m, open_m)
    return {
        "requests": requests,
        "server_errors": errors,
        "slow_requests": slow,
        "error_rate": _ratio(errors, requests),
        "slow_ratio": _ratio(slow, requests),
        "open_minutes": open_m,
        "downtime_minutes": down_m,
        "downtime_rate": rate,
        "availability": None if rate is None else round(1 - rate, 6),
    }


def _daily(
    metrics: dict[str, Any], figures: dict[str, Any], tenant: str, month: Month
) -> list[dict[str, Any]]:
    raw = metrics["tenants"].get(tenant, {})
    requests = raw.get("daily_requests", {})
    down = raw.get("daily_downtime_minutes", {})
    cases = figures.get("cases_by_day", {})
    return [
        {
            "day": d,
            "cases": cases.get(d, 0),
            "requests": requests.get(d, 0),
            "downtime_minutes": down.get(d, 0),
        }
        for d in (day.isoformat() for day in month.days)
    ]


def _kpi(figures: dict[str, Any], level: dict[str, Any]) -> dict[str, Any]:
    return {
        "cases": figures.get("cases", 0),
        "cases_closed": figures.get("cases_closed", 0),
        "procedures_done": figures.get("procedures_done", 0),
        "applications": figures.get("applications", 0),
        "applications_accepted": figures.get("applications_accepted", 0),
        "certificate_requests": figures.get("certificate_requests", 0),
        "tickets": figures.get("tickets", 0),
        "wait_minutes_avg": figures.get("wait_minutes_avg"),
        "handling_minutes_avg": figures.get("handling_minutes_avg"),
        "requests": level["requests"],
        "unique_users": figures.get("unique_users", 0),
    }


def _inquiry_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    by_category = Counter(i["category"] for i in items)
    main = sorted(by_category.items(), key=lambda kv: (-kv[1], list(CATEGORIES).index(kv[0])))[:3]
    return {
        "count": len(items),
        "closed": sum(1 for i in items if i["closed_at"]),
        "open_at_month_end": sum(1 for i in items if not i["closed_at"]),
        "by_category": {k: by_category.get(k, 0) for k in CATEGORIES},
        "main_topics": [
            {
                "category": k,
                "category_ja": CATEGORIES[k],
                "count": n,
                "examples": [i["summary"] for i in items if i["category"] == k][:3],
            }
            for k, n in main
        ],
        "items": items,
    }


def _incident_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    states = Counter(i["initial_response"]["state"] for i in items)
    return {
        "count": len(items),
        "initial_response": {
            s: states.get(s, 0) for s in ("met", "missed", "overdue", "pending", "no_target")
        },
        "resolved": sum(1 for i in items if i["resolved_at"]),
        "items": items,
    }


def _releases(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(items),
        "application": sum(1 for r in items if r["kind"] == "application"),
        "infrastructure": sum(1 for r in items if r["kind"] == "infrastructure"),
        "without_approval": sum(1 for r in items if not r["approval_ref"].strip()),
        "items": items,
    }


def _period(month: Month) -> dict[str, str]:
    return {
        "month": str(month),
        "label": month.label,
        "start": month.start.isoformat(),
        "end": month.end.isoformat(),
        "timezone": "Asia/Tokyo",
    }


def _costs(c: Collected) -> dict[str, Any] | None:
    if c.aws is None:
        return None
    tenants = [m["id"] for m in c.municipalities]
    usage = {t: c.metrics["tenants"].get(t, {}).get("requests", 0) for t in tenants}
    ce = c.aws["costs"]
    from app.config import get_settings

    return costs.apportion(ce["groups"], usage, tenants, ce["unit"], get_settings().cost_tag_key)


def _stable_operation(c: Collected) -> list[dict[str, str]]:
    work = []
    for r in c.releases:
        work.append(
            {
                "date": r["released_at"][:10],
                "kind": f"リリース（{r['kind_ja']}）",
                "detail": f"{r['version']} {r['description']}".strip(),
            }
        )
    for i in c.incidents:
        if i["resolved_at"]:
            work.append(
                {
                    "date": i["resolved_at"][:10],
                    "kind": "障害の復旧",
                    "detail": f"#{i['id']} {i['summary']}".strip(),
                }
            )
    if c.aws is not None:
        for rule in c.aws["config_history"]["rules"]:
            if rule["noncompliant_resources_in_month"] and not rule["noncompliant_at_month_end"]:
                work.append(
                    {
                        "date": str(c.month.end.date() - dt.timedelta(days=1)),
                        "kind": "設定の是正",
                        "detail": f"{rule['rule']}: 月内の不適合 {rule['noncompliant_resources_in_month']} 件を月末までに是正",
                    }
                )
    work.sort(key=lambda w: (w["date"], w["kind"], w["detail"]))
    return work


def service_report(c: Collected) -> dict[str, Any]:
    tenants = [m["id"] for m in c.municipalities]
    levels = {t: _tenant_level(c.metrics, t) for t in tenants}
    kpis = {t: _kpi(c.tenant_figures.get(t, {}), levels[t]) for t in tenants}
    names = {m["id"]: m["name"] for m in c.municipalities}
    total_kpi: dict[str, Any] = {}
    for key in (
        "cases",
        "cases_closed",
        "procedures_done",
        "applications",
        "applications_accepted",
        "certificate_requests",
        "tickets",
        "requests",
        "unique_users",
    ):
        total_kpi[key] = sum(k[key] for k in kpis.values())
    open_m = sum(lv["open_minutes"] for lv in levels.values())
    down_m = sum(lv["downtime_minutes"] for lv in levels.values())
    errors = sum(lv["server_errors"] for lv in levels.values())
    slow = sum(lv["slow_requests"] for lv in levels.values())
    rate = _ratio(down_m, open_m)
    daily_total = []
    for d in c.month.days:
        key = d.isoformat()
        daily_total.append(
            {
                "day": key,
                "requests": sum(
                    c.metrics["tenants"].get(t, {}).get("daily_requests", {}).get(key, 0) for t in tenants
                ),
                "downtime_minutes": sum(
                    c.metrics["tenants"].get(t, {}).get("daily_downtime_minutes", {}).get(key, 0)
                    for t in tenants
                ),
                "cases": sum(
                    c.tenant_figures.get(t, {}).get("cases_by_day", {}).get(key, 0) for t in tenants
                ),
            }
        )
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "scope": SERVICE,
        "title": f"窓口DXSaaS 月次報告（{c.month.label}）",
        "period": _period(c.month),
        "items": ITEMS,
        "municipalities": {
            "count": len(c.municipalities),
            "new_this_month": sum(1 for m in c.municipalities if m["new_this_month"]),
            "items": c.municipalities,
        },
        "kpi": {
            "total": total_kpi,
            "by_municipality": [{"tenant": t, "name": names[t], **kpis[t]} for t in tenants],
            "daily": daily_total,
            "unique_users_note": "ユニークユーザー数は自治体ごとの職員の数（自治体をまたいだ重複はありません）。",
        },
        "service_level": {
            "total": {
                "open_minutes": open_m,
                "downtime_minutes": down_m,
                "downtime_rate": rate,
                "availability": None if rate is None else round(1 - rate, 6),
                "requests": total_kpi["requests"],
                "server_errors": errors,
                "error_rate": _ratio(errors, total_kpi["requests"]),
                "slow_requests": slow,
                "slow_ratio": _ratio(slow, total_kpi["requests"]),
                "latency_p95_ms": c.metrics.get("latency_p95_ms"),
            },
            "by_municipality": [{"tenant": t, "name": names[t], **levels[t]} for t in tenants],
            "note": "停止時間・稼働率は各自治体の開庁時間内の分だけを数えます（閉庁日・時間外の停止は含みません）。",
        },
        "releases": _releases(c.releases),
        "inquiries": _inquiry_summary(c.inquiries),
        "incidents": _incident_summary(c.incidents),
        "stable_operation": _stable_operation(c),
    }
    if c.aws is None:
        note = {"status": "disabled", "note": "AWS の取得は設定で無効です（MADOGUCHI_REPORTS_AWS_ENABLED）"}
        for key in (
            "security_compliance",
            "iam_users",
            "iam_roles",
            "console_logins",
            "resources_created",
            "cloud_usage",
        ):
            report[key] = note
    else:
        a = c.aws
        trail = a["cloudtrail"]
        report["security_compliance"] = {
            "config_rules": a["config_current"],
            "config_rules_noncompliant": sum(
                1 for r in a["config_current"] if r["compliance"] == "NON_COMPLIANT"
            ),
            "config_history": a["config_history"]["rules"],
            "security_hub": securityhub.summarize(a["securityhub_findings"], c.month),
            "captured_at": c.captured_at.get("config_current"),
        }
        report["iam_users"] = {
            "captured_at": c.captured_at.get("iam_users"),
            "count": len(a["iam_users"]),
            "without_mfa": sum(1 for u in a["iam_users"] if u["console_password"] and not u["mfa_active"]),
            "items": a["iam_users"],
            "changes": trail["iam_user_changes"],
        }
        report["iam_roles"] = {
            "captured_at": c.captured_at.get("iam_roles"),
            "count": len(a["iam_roles"]),
            "items": a["iam_roles"],
            "changes": trail["iam_role_changes"],
        }
        logins = trail["console_logins"]
        report["console_logins"] = {
            "count": len(logins),
            "failures": sum(1 for x in logins if x["result"] != "Success"),
            "without_mfa": sum(1 for x in logins if x["result"] == "Success" and not x["mfa"]),
            "items": logins,
        }
        report["resources_created"] = {
            "count": len(trail["resources_created"]),
            "items": trail["resources_created"],
            "config_discovered": len(a["config_history"]["resources_discovered"]),
        }
        report["cloud_usage"] = _costs(c)
        if report["cloud_usage"] is not None:
            for row in report["cloud_usage"]["tenants"]:
                row["name"] = names[row["tenant"]]
    report["sources"] = c.queries
    ordered: dict[str, Any] = _ordered(report)
    return ordered


def tenant_report(c: Collected, tenant: str, cloud: dict[str, Any] | None) -> dict[str, Any]:
    """The city's own report (seed 003 §7(6)): only rows whose tenant is this city."""
    m = next(x for x in c.municipalities if x["id"] == tenant)
    figures = c.tenant_figures.get(tenant, {})
    level = _tenant_level(c.metrics, tenant)
    own_inquiries = [i for i in c.inquiries if i["tenant"] == tenant]
    own_incidents = [i for i in c.incidents if i["tenant"] == tenant]
    usage = None
    if cloud is not None:
        row = next(r for r in cloud["tenants"] if r["tenant"] == tenant)
        all_requests = sum(r["usage_requests"] for r in cloud["tenants"])
        usage = {
            "unit": cloud["unit"],
            "direct": row["direct"],
            "shared_share": row["shared_share"],
            "total": row["total"],
            "usage_requests": row["usage_requests"],
            "usage_share": _ratio(row["usage_requests"], all_requests)
            if cloud["basis"] == "requests"
            else None,
            "basis": cloud["basis"],
            "method": cloud["method"],
        }
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "scope": tenant,
        "title": f"{m['name']} 窓口DXSaaS 月次利用報告（{c.month.label}）",
        "period": _period(c.month),
        "municipality": m,
        "kpi": _kpi(figures, level),
        "service_level": {
            **level,
            "note": "停止時間・稼働率は開庁時間内の分だけを数えます（閉庁日・時間外の停止は含みません）。",
        },
        "daily": _daily(c.metrics, figures, tenant, c.month),
        "cloud_usage": usage,
        "inquiries": _inquiry_summary(own_inquiries),
        "incidents": _incident_summary(own_incidents),
        "releases": _releases(c.releases),
        "sources": [
            q
            for q in c.queries
            if q["id"].startswith(
                ("prometheus.", "db.tenant_month", "db.inquiries", "db.incidents", "db.releases", "aws.ce")
            )
        ],
    }
    ordered: dict[str, Any] = _ordered(report)
    return ordered


def _ordered(value: Any) -> Any:
    """Plain JSON types only (Decimal as strings were made upstream); dict order as built."""
    if isinstance(value, dict):
        return {str(k): _ordered(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_ordered(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def collect_control(session: Session, month: Month) -> tuple[Sourced, Sourced, Sourced, Sourced]:
    return (
        database.municipalities(session, month),
        database.inquiries(session, month),
        database.incidents(session, month),
        database.releases(session, month),
    )


def tenants_for(records: list[TenantRecord], municipalities: list[dict[str, Any]]) -> list[TenantRecord]:
    ids = {m["id"] for m in municipalities}
    return [r for r in records if r.id in ids]
