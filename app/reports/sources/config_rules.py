"""Security-configuration compliance from AWS Config: each rule's current state, and the month's
history from the Config delivery bucket.

- ``DescribeComplianceByConfigRule``: compliance per rule now (point in time: captured once per
  month with the report). The local stand-in lacks this call; tests serve it through botocore's
  Stubber with responses the service model validates.
- The history: Config delivers configuration items to
  ``AWSLogs/<account>/Config/<region>/<YYYY>/<M>/<D>/ConfigHistory/`` (UTC days, no zero padding).
  Items of type ``AWS::Config::ResourceCompliance`` record every change of a resource's compliance
  with a rule; the month's non-compliant evaluations and the state at the month's end are counted
  per rule. Items with status ``ResourceDiscovered`` are resources added.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.reports.period import Month
from app.reports.sources import ReportSourceError, Sourced
from app.reports.sources.cloudtrail import _regions, _utc_days, read_archive_json


def current_compliance(config: Any) -> Sourced:
    rules = []
    try:
        token = None
        while True:
            kwargs: dict[str, str] = {"NextToken": token} if token else {}
            page = config.describe_compliance_by_config_rule(**kwargs)
            for item in page.get("ComplianceByConfigRules", []):
                comp = item.get("Compliance") or {}
                count = comp.get("ComplianceContributorCount") or {}
                rules.append(
                    {
                        "rule": item["ConfigRuleName"],
                        "compliance": comp.get("ComplianceType", "INSUFFICIENT_DATA"),
                        "noncompliant_resources": count.get("CappedCount", 0),
                        "capped": bool(count.get("CapExceeded", False)),
                    }
                )
            token = page.get("NextToken")
            if not token:
                break
    except (BotoCoreError, ClientError) as exc:
        raise ReportSourceError(f"AWS Config のルール準拠状況を取得できません: {exc}") from exc
    rules.sort(key=lambda r: r["rule"])
    return Sourced(
        rules,
        [{"id": "aws.config.compliance", "source": "AWS Config", "query": "DescribeComplianceByConfigRule"}],
    )


def history(s3: Any, bucket: str, prefix: str, account: str, month: Month) -> Sourced:
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    base += f"AWSLogs/{account}/Config/"
    per_rule: dict[str, dict[str, Any]] = {}
    last_state: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
    discovered: list[dict[str, Any]] = []
    try:
        regions = _regions(s3, bucket, base)
        prefixes = [
            f"{base}{r}/{d.year}/{d.month}/{d.day}/ConfigHistory/" for r in regions for d in _utc_days(month)
        ]
        for item in read_archive_json(s3, bucket, prefixes, "configurationItems"):
            moment = dt.datetime.fromisoformat(
                str(item["configurationItemCaptureTime"]).replace("Z", "+00:00")
            )
            if not month.start <= moment < month.end:
                continue
            if item.get("resourceType") == "AWS::Config::ResourceCompliance":
                configuration = item.get("configuration") or {}
                resource = f"{configuration.get('resourceType', '')}/{configuration.get('resourceId', item.get('resourceId'))}"
                for rule in configuration.get("configRuleList") or []:
                    name = str(rule.get("configRuleName"))
                    state = str(rule.get("complianceType"))
                    row = per_rule.setdefault(
                        name,
                        {"rule": name, "evaluations": 0, "noncompliant_evaluations": 0, "resources": set()},
                    )
                    row["evaluations"] += 1
                    if state == "NON_COMPLIANT":
                        row["noncompliant_evaluations"] += 1
                        row["resources"].add(resource)
                    key = (name, resource)
                    if key not in last_state or last_state[key][0] <= moment:
                        last_state[key] = (moment, state)
            elif item.get("configurationItemStatus") == "ResourceDiscovered":
                discovered.append(
                    {
                        "time": moment.astimezone(month.start.tzinfo).isoformat(timespec="seconds"),
                        "type": item.get("resourceType"),
                        "resource": item.get("resourceName") or item.get("resourceId"),
                    }
                )
    except (BotoCoreError, ClientError, ValueError, KeyError) as exc:
        raise ReportSourceError(
            f"AWS Config の保管ファイルを読めません（s3://{bucket}/{base}）: {exc}"
        ) from exc
    rules = []
    for name in sorted(per_rule):
        row = per_rule[name]
        at_end = sum(1 for (r, _res), (_t, s) in last_state.items() if r == name and s == "NON_COMPLIANT")
        rules.append(
            {
                "rule": name,
                "evaluations": row["evaluations"],
                "noncompliant_evaluations": row["noncompliant_evaluations"],
                "noncompliant_resources_in_month": len(row["resources"]),
                "noncompliant_at_month_end": at_end,
            }
        )
    discovered.sort(key=lambda d: (d["time"], str(d["type"]), str(d["resource"])))
    query = f"s3://{bucket}/{base}<region>/<年>/<月>/<日>/ConfigHistory/*.json.gz の configurationItems"
    return Sourced(
        {"rules": rules, "resources_discovered": discovered},
        [{"id": "aws.config.history", "source": "AWS Config（S3保管）", "query": query}],
    )
