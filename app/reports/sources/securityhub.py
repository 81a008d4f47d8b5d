"""Security Hub findings: active findings by severity and compliance, and the month's new ones.

``GetFindings`` answers for now (captured once per month). Filtering is done here, not with the
API's filters, so the local stand-in and AWS give the same result for the same findings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.reports.period import Month
from app.reports.sources import ReportSourceError, Sourced

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")


def findings(hub: Any) -> Sourced:
    items = []
    try:
        for page in hub.get_paginator("get_findings").paginate():
            for f in page.get("Findings", []):
                items.append(
                    {
                        "id": f["Id"],
                        "title": f.get("Title", ""),
                        "severity": (f.get("Severity") or {}).get("Label", "INFORMATIONAL"),
                        "compliance": (f.get("Compliance") or {}).get("Status"),
                        "record_state": f.get("RecordState", "ACTIVE"),
                        "workflow": (f.get("Workflow") or {}).get("Status", "NEW"),
                        "created_at": f.get("CreatedAt"),
                        "resource": ((f.get("Resources") or [{}])[0]).get("Id"),
                    }
                )
    except (BotoCoreError, ClientError) as exc:
        raise ReportSourceError(f"Security Hub の検出結果を取得できません: {exc}") from exc
    items.sort(key=lambda f: f["id"])
    return Sourced(
        items, [{"id": "aws.securityhub.findings", "source": "AWS Security Hub", "query": "GetFindings"}]
    )


def summarize(items: list[dict[str, Any]], month: Month) -> dict[str, Any]:
    active = [
        f for f in items if f["record_state"] == "ACTIVE" and f["workflow"] not in ("RESOLVED", "SUPPRESSED")
    ]

    def created_in_month(f: dict[str, Any]) -> bool:
        try:
            moment = dt.datetime.fromisoformat(str(f["created_at"]).replace("Z", "+00:00"))
        except ValueError:
            return False
        return month.start <= moment < month.end

    return {
        "active": len(active),
        "active_by_severity": {s: sum(f["severity"] == s for f in active) for s in SEVERITIES},
        "failed_controls": sum(f["compliance"] == "FAILED" for f in active),
        "new_in_month": sum(created_in_month(f) for f in items),
        "critical_and_high": [
            {"title": f["title"], "severity": f["severity"], "resource": f["resource"]}
            for f in active
            if f["severity"] in ("CRITICAL", "HIGH")
        ],
    }
