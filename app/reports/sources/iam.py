"""IAM user and role audit: the credential report (users and their use) and roles with last use.

Both describe the account at the moment they are asked, not a past month: the report keeps the
answer of its first generation (``report_captures``) and says when it was taken.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.reports.sources import ReportSourceError, Sourced

_NONE = ("N/A", "no_information", "not_supported", "")


def _value(raw: str | None) -> str | None:
    return None if raw is None or raw in _NONE else raw


def credential_report(iam: Any, wait_seconds: float = 30) -> Sourced:
    try:
        deadline = time.monotonic() + wait_seconds
        while iam.generate_credential_report()["State"] != "COMPLETE":
            if time.monotonic() > deadline:
                raise ReportSourceError("IAM 認証情報レポートの作成が時間内に終わりませんでした")
            time.sleep(1)
        content = iam.get_credential_report()["Content"]
    except (BotoCoreError, ClientError) as exc:
        raise ReportSourceError(f"IAM 認証情報レポートを取得できません: {exc}") from exc
    text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
    users = []
    for row in csv.DictReader(io.StringIO(text)):
        name = "ルートユーザー" if row.get("user") == "<root_account>" else row.get("user", "")
        key_used = sorted(
            v
            for v in (
                _value(row.get("access_key_1_last_used_date")),
                _value(row.get("access_key_2_last_used_date")),
            )
            if v
        )
        users.append(
            {
                "user": name,
                "arn": row.get("arn", ""),
                "created": _value(row.get("user_creation_time")),
                "console_password": row.get("password_enabled") == "true",
                "password_last_used": _value(row.get("password_last_used")),
                "mfa_active": row.get("mfa_active") == "true",
                "access_keys_active": sum(row.get(f"access_key_{n}_active") == "true" for n in (1, 2)),
                "access_key_last_used": key_used[-1] if key_used else None,
            }
        )
    users.sort(key=lambda u: (u["user"] != "ルートユーザー", u["user"]))
    return Sourced(
        users,
        [
            {
                "id": "aws.iam.credential_report",
                "source": "AWS IAM",
                "query": "GenerateCredentialReport; GetCredentialReport",
            }
        ],
    )


def roles(iam: Any) -> Sourced:
    items = []
    try:
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                detail = iam.get_role(RoleName=role["RoleName"])["Role"]
                last = detail.get("RoleLastUsed") or {}
                items.append(
                    {
                        "role": role["RoleName"],
                        "arn": role["Arn"],
                        "path": role.get("Path", "/"),
                        "created": role["CreateDate"].isoformat(),
                        "last_used": last["LastUsedDate"].isoformat() if last.get("LastUsedDate") else None,
                        "last_used_region": last.get("Region"),
                        "service_linked": role.get("Path", "").startswith("/aws-service-role/"),
                    }
                )
    except (BotoCoreError, ClientError) as exc:
        raise ReportSourceError(f"IAM ロールの一覧を取得できません: {exc}") from exc
    items.sort(key=lambda r: r["role"])
    return Sourced(
        items, [{"id": "aws.iam.roles", "source": "AWS IAM", "query": "ListRoles; GetRole (RoleLastUsed)"}]
    )
