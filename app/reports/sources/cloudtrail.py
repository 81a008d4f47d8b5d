"""Console logins, IAM user and role changes and resources created, from CloudTrail's archive.

CloudTrail delivers gzipped JSON files to the archive bucket under
``AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/`` (UTC days). Reading the archive rather
than ``LookupEvents`` has no 90-day window, so any past month can be regenerated. Files of the UTC
days overlapping the JST month are read, and events are kept by ``eventTime`` in ``[start, end)``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.dates import JST
from app.reports.period import Month
from app.reports.sources import ReportSourceError, Sourced

IAM_WRITE_PREFIXES = (
    "Create", "Delete", "Attach", "Detach", "Put", "Update", "Add", "Remove", "Tag", "Untag",
    "Change", "Deactivate", "Enable", "Set", "Upload", "Reset",
)  # fmt: skip
CREATE_EVENTS_PREFIXES = ("Create", "Run", "Allocate", "Register", "Import")
NOISE = {
    "CreateLogStream",
    "CreateGrant",
    "CreateNetworkInterface",
    "CreateServiceLinkedRole",
    "CreateSession",
}
NAME_KEYS = (
    "bucketName", "roleName", "userName", "groupName", "policyName", "dBInstanceIdentifier", "dBClusterIdentifier",
    "functionName", "clusterName", "serviceName", "tableName", "queueName", "topicName", "name", "keyName",
    "logGroupName", "repositoryName", "vpcId", "groupId", "description",
)  # fmt: skip


def _utc_days(month: Month) -> list[dt.date]:
    first = month.start.astimezone(dt.UTC).date()
    last = (month.end - dt.timedelta(seconds=1)).astimezone(dt.UTC).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def read_archive_json(s3: Any, bucket: str, prefixes: list[str], record_key: str) -> Iterator[dict[str, Any]]:
    """Every record of every (gzipped) JSON file under the prefixes, in key order."""
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                if obj["Key"].endswith(".gz") or body[:2] == b"\x1f\x8b":
                    body = gzip.decompress(body)
                data = json.loads(body)
                yield from data.get(record_key) or []


def _regions(s3: Any, bucket: str, base: str) -> list[str]:
    regions = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            regions.append(common["Prefix"][len(base) :].strip("/"))
    return sorted(regions)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _who(event: dict[str, Any]) -> str:
    ident = event.get("userIdentity") or {}
    if ident.get("type") == "Root":
        return "ルートユーザー"
    if ident.get("userName"):
        return str(ident["userName"])
    issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
    if issuer.get("userName"):
        arn = str(ident.get("arn", ""))
        return f"{issuer['userName']}（{arn.rsplit('/', 1)[-1]}）" if arn else str(issuer["userName"])
    return str(ident.get("arn") or ident.get("invokedBy") or ident.get("type") or "不明")


def _resource(event: dict[str, Any]) -> str:
    params = event.get("requestParameters") or {}
    for key in NAME_KEYS:
        value = params.get(key) if isinstance(params, dict) else None
        if isinstance(value, str) and value:
            return value
    for res in event.get("resources") or []:
        if res.get("ARN"):
            return str(res["ARN"])
    return "—"


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(JST).isoformat(timespec="seconds")


def audit_events(s3: Any, bucket: str, prefix: str, account: str, month: Month) -> Sourced:
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    base += f"AWSLogs/{account}/CloudTrail/"
    logins: list[dict[str, Any]] = []
    user_changes: list[dict[str, Any]] = []
    role_changes: list[dict[str, Any]] = []
    created: list[dict[str, Any]] = []
    try:
        regions = _regions(s3, bucket, base)
        prefixes = [f"{base}{r}/{d:%Y/%m/%d}/" for r in regions for d in _utc_days(month)]
        seen: set[str] = set()
        for event in read_archive_json(s3, bucket, prefixes, "Records"):
            moment = _time(event["eventTime"])
            if not month.start <= moment < month.end:
                continue
            ident = str(event.get("eventID", ""))
            if ident and ident in seen:
                continue  # CloudTrail may deliver an event twice
            seen.add(ident)
            name = str(event.get("eventName", ""))
            source = str(event.get("eventSource", ""))
            failed = bool(event.get("errorCode"))
            if name == "ConsoleLogin":
                extra = event.get("additionalEventData") or {}
                logins.append(
                    {
                        "time": _local(moment),
                        "user": _who(event),
                        "source_ip": event.get("sourceIPAddress"),
                        "result": (event.get("responseElements") or {}).get(
                            "ConsoleLogin", "Failure" if failed else "Success"
                        ),
                        "mfa": extra.get("MFAUsed") == "Yes",
                        "event_id": ident,
                    }
                )
                continue
            if source == "iam.amazonaws.com" and name.startswith(IAM_WRITE_PREFIXES):
                params = event.get("requestParameters") or {}
                row = {
                    "time": _local(moment),
                    "event": name,
                    "by": _who(event),
                    "target": params.get("roleName")
                    or params.get("userName")
                    or params.get("groupName")
                    or _resource(event),
                    "result": event.get("errorCode") or "成功",
                    "event_id": ident,
                }
                (role_changes if "roleName" in params or "Role" in name else user_changes).append(row)
            if (
                not failed
                and name.startswith(CREATE_EVENTS_PREFIXES)
                and name not in NOISE
                and (event.get("userIdentity") or {}).get("type") != "AWSService"
            ):
                created.append(
                    {
                        "time": _local(moment),
                        "service": source.split(".")[0],
                        "event": name,
                        "resource": _resource(event),
                        "region": event.get("awsRegion"),
                        "by": _who(event),
                        "event_id": ident,
                    }
                )
    except (BotoCoreError, ClientError, ValueError, KeyError) as exc:
        raise ReportSourceError(
            f"CloudTrail の保管ファイルを読めません（s3://{bucket}/{base}）: {exc}"
        ) from exc
    for rows in (logins, user_changes, role_changes, created):
        rows.sort(key=lambda r: (r["time"], r["event_id"]))
    query = f"s3://{bucket}/{base}<region>/<UTC日>/*.json.gz の Records（eventTime が対象月）"
    return Sourced(
        {
            "console_logins": logins,
            "iam_user_changes": user_changes,
            "iam_role_changes": role_changes,
            "resources_created": created,
        },
        [{"id": "aws.cloudtrail.archive", "source": "AWS CloudTrail（S3保管）", "query": query}],
    )
