"""A simulated month with known truth for the monthly-report tests (tests/test_reports.py).

May 2026 (令和8年5月): Golden Week holidays 3-6 May. Osaka and Gobo in service before the month,
Yamaguchi onboarded on 15 May 10:00 JST. An outage in Gobo on 4 May (a national holiday: closed,
so not downtime) and on 12 May 10:00-10:30 (open: 30 minutes), one in Osaka on 20 May
14:00-14:45 (45 minutes). Everything the sources hold is built here, and so is the truth.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from app.dates import JST
from app.reports.period import Month
from app.tenancy.calendar import ServiceCalendar
from app.tenancy.config import CalendarConfig

MONTH = Month(2026, 5)
ACCOUNT = "123456789012"
ONBOARDED = {
    "osaka": dt.datetime(2026, 1, 5, 9, 0, tzinfo=JST),
    "gobo": dt.datetime(2026, 2, 2, 9, 0, tzinfo=JST),
    "yamaguchi": dt.datetime(2026, 5, 15, 10, 0, tzinfo=JST),
}
RATES = {"osaka": 7, "gobo": 3, "yamaguchi": 5}  # 2xx requests per open minute
OUTAGES = {
    "gobo": [
        (dt.datetime(2026, 5, 4, 10, 0, tzinfo=JST), dt.datetime(2026, 5, 4, 12, 0, tzinfo=JST)),  # holiday
        (dt.datetime(2026, 5, 12, 10, 0, tzinfo=JST), dt.datetime(2026, 5, 12, 10, 30, tzinfo=JST)),
    ],
    "osaka": [(dt.datetime(2026, 5, 20, 14, 0, tzinfo=JST), dt.datetime(2026, 5, 20, 14, 45, tzinfo=JST))],
    "yamaguchi": [],
}
ERRORS_PER_OUTAGE_MINUTE = 2
COUNTER_STEP_MINUTES = 15


def jst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=JST)  # type: ignore[misc]


@dataclass
class Truth:
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    slow: dict[str, int] = field(default_factory=dict)
    open_minutes: dict[str, int] = field(default_factory=dict)
    downtime: dict[str, int] = field(default_factory=dict)
    daily_requests: dict[str, dict[str, int]] = field(default_factory=dict)
    daily_downtime: dict[str, dict[str, int]] = field(default_factory=dict)


def _in_outage(tenant: str, t: dt.datetime) -> bool:
    return any(a <= t < b for a, b in OUTAGES[tenant])


def metrics(calendars: dict[str, CalendarConfig], out: Path) -> Truth:
    """Write OpenMetrics files for promtool (one per UTC day) into ``out``; return the truth.

    promtool 2.42 cuts blocks of 2 hours and reads its whole input once per block: one file per
    UTC day (a whole number of 2-hour blocks, so no two files' blocks overlap) keeps that linear.
    """
    truth = Truth()
    chunks: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    class _Lines:
        def __getitem__(self, family: str) -> Any:
            return _Family(family)

    class _Family:
        def __init__(self, family: str) -> None:
            self.family = family

        def append(self, line: str) -> None:
            stamp = int(line.rsplit(" ", 1)[1])
            day = dt.datetime.fromtimestamp(stamp, dt.UTC).date().isoformat()
            chunks[day][self.family].append(line)

    lines = _Lines()
    start, end = MONTH.start, MONTH.end
    for tenant, config in sorted(calendars.items()):
        calendar = ServiceCalendar(config)
        first = max(start, ONBOARDED[tenant])
        t = first
        cum = {"2xx": 0, "5xx": 0, "slow": 0}
        totals = dict.fromkeys(("req", "err", "slow", "open", "down"), 0)
        daily_req: dict[str, int] = {d.isoformat(): 0 for d in MONTH.days}
        daily_down: dict[str, int] = {d.isoformat(): 0 for d in MONTH.days}
        while t <= end:
            stamp = f"{t.timestamp():.0f}"
            is_open = calendar.is_open(t)
            down = _in_outage(tenant, t)
            lines["madoguchi:tenant_open"].append(
                f'madoguchi:tenant_open{{tenant="{tenant}"}} {int(is_open)} {stamp}'
            )
            lines["madoguchi:tenant_unavailable"].append(
                f'madoguchi:tenant_unavailable{{tenant="{tenant}"}} {int(is_open and down)} {stamp}'
            )
            if int((t - first).total_seconds()) % (COUNTER_STEP_MINUTES * 60) == 0 or t == end:
                for cls in ("2xx", "5xx"):
                    lines["madoguchi_http_requests_total"].append(
                        f'madoguchi_http_requests_total{{tenant="{tenant}",status_class="{cls}"}} {cum[cls]} {stamp}'
                    )
                lines["madoguchi_http_slow_requests_total"].append(
                    f'madoguchi_http_slow_requests_total{{tenant="{tenant}"}} {cum["slow"]} {stamp}'
                )
            if t == end:
                break
            ok = RATES[tenant] if is_open and not down else 0
            err = ERRORS_PER_OUTAGE_MINUTE if down else 0
            slow = 1 if is_open and t.minute % 10 == 0 else 0
            cum["2xx"] += ok
            cum["5xx"] += err
            cum["slow"] += slow
            day = t.astimezone(JST).date().isoformat()
            daily_req[day] += ok + err
            totals["req"] += ok + err
            totals["err"] += err
            totals["slow"] += slow
            totals["open"] += int(is_open)
            totals["down"] += int(is_open and down)
            daily_down[day] += int(is_open and down)
            t += dt.timedelta(minutes=1)
        truth.requests[tenant] = totals["req"]
        truth.errors[tenant] = totals["err"]
        truth.slow[tenant] = totals["slow"]
        truth.open_minutes[tenant] = totals["open"]
        truth.downtime[tenant] = totals["down"]
        truth.daily_requests[tenant] = daily_req
        truth.daily_downtime[tenant] = daily_down
    # Route latency (no tenant label): 950 of 1,000 requests within 0.1 s, so p95 = 100 ms exactly.
    for le, count in (("0.1", 950), ("0.25", 1000), ("+Inf", 1000)):
        for moment, value in ((start, 0), (end, count)):
            lines["madoguchi_http_request_duration_seconds_bucket"].append(
                f'madoguchi_http_request_duration_seconds_bucket{{route="/<tenant>/",method="GET",le="{le}"}} '
                f"{value} {moment.timestamp():.0f}"
            )
    out.mkdir(parents=True, exist_ok=True)
    for day, families in sorted(chunks.items()):
        with (out / f"{day}.om").open("w") as handle:
            for family in sorted(families):
                handle.write("\n".join(families[family]) + "\n")
            handle.write("# EOF\n")
    return truth


# --- CloudTrail and Config archive files ------------------------------------------------------------


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(ident: str, moment: dt.datetime, name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": ident,
        "eventTime": _utc(moment),
        "eventName": name,
        "eventSource": source,
        "awsRegion": "ap-northeast-1",
        "sourceIPAddress": "203.0.113.10",
        "userIdentity": {
            "type": "IAMUser",
            "userName": "ops-admin",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/ops-admin",
        },
        "readOnly": False,
        **extra,
    }


def cloudtrail_events() -> list[dict[str, Any]]:
    login_ok = {"responseElements": {"ConsoleLogin": "Success"}}
    return [
        # 30 April 23:30 UTC = 1 May 08:30 JST: in the JST month
        _event("ev-login-1", jst(2026, 5, 1, 8, 30), "ConsoleLogin", "signin.amazonaws.com",
               additionalEventData={"MFAUsed": "Yes"}, **login_ok),
        _event("ev-login-2", jst(2026, 5, 7, 9, 10), "ConsoleLogin", "signin.amazonaws.com",
               additionalEventData={"MFAUsed": "No"}, responseElements={"ConsoleLogin": "Failure"},
               errorMessage="Failed authentication"),
        _event("ev-login-3", jst(2026, 5, 7, 9, 12), "ConsoleLogin", "signin.amazonaws.com",
               additionalEventData={"MFAUsed": "Yes"}, **login_ok),
        _event("ev-login-4", jst(2026, 5, 20, 15, 0), "ConsoleLogin", "signin.amazonaws.com",
               additionalEventData={"MFAUsed": "No"}, userIdentity={"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root"},
               **login_ok),
        # 31 May 16:00 UTC = 1 June 01:00 JST: not in the month
        _event("ev-login-5", jst(2026, 6, 1, 1, 0), "ConsoleLogin", "signin.amazonaws.com",
               additionalEventData={"MFAUsed": "Yes"}, **login_ok),
        _event("ev-iam-1", jst(2026, 5, 8, 11, 0), "CreateUser", "iam.amazonaws.com",
               requestParameters={"userName": "auditor"}),
        _event("ev-iam-2", jst(2026, 5, 9, 11, 0), "AttachRolePolicy", "iam.amazonaws.com",
               requestParameters={"roleName": "madoguchi-app", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        _event("ev-iam-3", jst(2026, 5, 9, 11, 5), "UpdateAssumeRolePolicy", "iam.amazonaws.com",
               requestParameters={"roleName": "madoguchi-deploy"}),
        _event("ev-iam-read", jst(2026, 5, 9, 11, 6), "GetRole", "iam.amazonaws.com",
               requestParameters={"roleName": "madoguchi-deploy"}, readOnly=True),
        _event("ev-s3-1", jst(2026, 5, 10, 13, 0), "CreateBucket", "s3.amazonaws.com",
               requestParameters={"bucketName": "madoguchi-exports"}),
        _event("ev-s3-denied", jst(2026, 5, 10, 13, 1), "CreateBucket", "s3.amazonaws.com",
               requestParameters={"bucketName": "madoguchi-denied"}, errorCode="AccessDenied"),
        _event("ev-ec2-1", jst(2026, 5, 11, 16, 0), "RunInstances", "ec2.amazonaws.com",
               resources=[{"ARN": f"arn:aws:ec2:ap-northeast-1:{ACCOUNT}:instance/i-0abc", "type": "AWS::EC2::Instance"}]),
        _event("ev-noise", jst(2026, 5, 11, 16, 1), "CreateLogStream", "logs.amazonaws.com",
               userIdentity={"type": "AWSService", "invokedBy": "logs.amazonaws.com"}),
    ]  # fmt: skip


def cloudtrail_files(events: list[dict[str, Any]]) -> dict[str, bytes]:
    """Files per UTC day as CloudTrail writes them; ev-iam-1 is delivered twice (dedup)."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_day[e["eventTime"][:10]].append(e)
    files = {}
    for day, records in by_day.items():
        y, m, d = day.split("-")
        key = f"AWSLogs/{ACCOUNT}/CloudTrail/ap-northeast-1/{y}/{m}/{d}/{ACCOUNT}_CloudTrail_ap-northeast-1_{y}{m}{d}T0000Z_a.json.gz"
        files[key] = gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)
    dup = next(e for e in events if e["eventID"] == "ev-iam-1")
    files[
        f"AWSLogs/{ACCOUNT}/CloudTrail/ap-northeast-1/2026/05/08/{ACCOUNT}_CloudTrail_ap-northeast-1_20260508T0300Z_b.json.gz"
    ] = gzip.compress(json.dumps({"Records": [dup]}).encode(), mtime=0)
    return files


def _ci(moment: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {
        "configurationItemVersion": "1.3",
        "configurationItemCaptureTime": moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "awsAccountId": ACCOUNT,
        "awsRegion": "ap-northeast-1",
        **fields,
    }


def _compliance(moment: dt.datetime, rule: str, rtype: str, rid: str, state: str) -> dict[str, Any]:
    return _ci(
        moment,
        configurationItemStatus="OK",
        resourceType="AWS::Config::ResourceCompliance",
        resourceId=f"{rtype}/{rid}",
        configuration={
            "complianceType": state,
            "resourceId": rid,
            "resourceType": rtype,
            "configRuleList": [{"configRuleName": rule, "complianceType": state}],
        },
    )


def config_items() -> list[dict[str, Any]]:
    return [
        _compliance(jst(2026, 4, 28, 12, 0), "iam-user-mfa-enabled", "AWS::IAM::User", "old", "NON_COMPLIANT"),
        _compliance(jst(2026, 5, 8, 11, 10), "iam-user-mfa-enabled", "AWS::IAM::User", "auditor", "NON_COMPLIANT"),
        _compliance(jst(2026, 5, 10, 13, 5), "s3-bucket-public-read-prohibited", "AWS::S3::Bucket", "madoguchi-exports", "NON_COMPLIANT"),
        _compliance(jst(2026, 5, 11, 9, 0), "s3-bucket-public-read-prohibited", "AWS::S3::Bucket", "madoguchi-exports", "COMPLIANT"),
        _ci(jst(2026, 5, 10, 13, 2), configurationItemStatus="ResourceDiscovered", resourceType="AWS::S3::Bucket",
            resourceId="madoguchi-exports", resourceName="madoguchi-exports"),
        _ci(jst(2026, 5, 11, 16, 3), configurationItemStatus="ResourceDiscovered", resourceType="AWS::EC2::Instance",
            resourceId="i-0abc"),
    ]  # fmt: skip


def config_files(items: list[dict[str, Any]]) -> dict[str, bytes]:
    by_day: dict[dt.date, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        moment = dt.datetime.fromisoformat(item["configurationItemCaptureTime"].replace("Z", "+00:00"))
        by_day[moment.date()].append(item)
    files = {}
    for day, records in by_day.items():
        key = (
            f"AWSLogs/{ACCOUNT}/Config/ap-northeast-1/{day.year}/{day.month}/{day.day}/ConfigHistory/"
            f"{ACCOUNT}_Config_ap-northeast-1_ConfigHistory_{day:%Y%m%d}T000000Z.json.gz"
        )
        files[key] = gzip.compress(
            json.dumps({"fileVersion": "1.0", "configurationItems": records}).encode(), mtime=0
        )
    return files


# --- costs ------------------------------------------------------------------------------------------

COST_GROUPS = {"osaka": "120.50", "gobo": "30.25", "yamaguchi": "10.00", "": "100.00", "retired-city": "0.01"}


def cost_response() -> dict[str, Any]:
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-05-01", "End": "2026-06-01"},
                "Total": {},
                "Groups": [
                    {
                        "Keys": [f"municipality${k}"],
                        "Metrics": {"UnblendedCost": {"Amount": v, "Unit": "USD"}},
                    }
                    for k, v in COST_GROUPS.items()
                ],
                "Estimated": False,
            }
        ],
        "DimensionValueAttributes": [],
    }


def apportioned(requests: dict[str, int]) -> dict[str, Decimal]:
    """Independent computation of the shares: exact fractions, floors, largest remainders."""
    shared_cents = 10001  # 100.00 untagged + 0.01 for a tag naming no tenant
    total = sum(requests.values())
    exact = {t: Fraction(shared_cents * n, total) for t, n in requests.items()}
    cents = {t: int(v) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: (-(exact[t] - cents[t]), t))[: shared_cents - sum(cents.values())]:
        cents[t] += 1
    return {t: Decimal(c) / 100 for t, c in cents.items()}
