"""Deleting a city's data at contract end, after the hand-over, with a certificate (データ消去証明書).

Seed 004 §(8): once the data the city needs to carry on has been handed over, delete it so that it
cannot be restored and submit proof; seeds 000 §11, 001 §9 and 002 §(5) ask the same. So:

1. **Only after an intact, current hand-over.** The folder ``tenants export`` wrote is checked file
   by file against its manifest (SHA-256), and the database against the export's snapshot: every
   table has the rows it had, and the operation log has no entry since but the export's own. A
   city still in use, or a damaged export, is refused before anything is deleted.
2. **Everywhere the city's data is.** Every version of every object under the city's prefix in
   the documents bucket and under the configured prefixes of its linkage buckets (versioned buckets
   keep old versions: deleting the current one alone would leave them restorable); the city's
   operation-log seals and archives where their Object Lock allows; then, in one transaction, the
   schema, the tenant's database role and its registry row, with this record put in their place.
3. **What cannot be deleted today is said, with its date:** seals and archives under Object Lock
   COMPLIANCE (nobody can delete them before their retention date, the point of the lock), and the
   database backups, which age out after ``backup_retention_days``.

The certificate is a PDF in Japanese with 和暦 dates and the same content as JSON in
``control.tenant_decommissions``, which also keeps ``tenants sync`` from provisioning the id again.
Steps 2's deletions are idempotent: a run that stops half-way is run again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import delete, func, insert, select

from app import storage
from app.audit.models import AuditEntry
from app.audit.storage import AuditStore
from app.config import get_settings
from app.dates import JST
from app.dates.wareki import format_wareki
from app.db.engine import admin_engine
from app.db.session import new_session
from app.tenancy.export import exported_tables, sha256_file
from app.tenancy.infra import linkage_buckets
from app.tenancy.service import TenantRecord, registry

TEMPLATES = Path(__file__).parent / "templates"


class DecommissionRefused(Exception):
    """Nothing was deleted; the message is Japanese and says what to do."""


@dataclass
class Location:
    """One place objects were deleted from: a bucket and a prefix."""

    label: str
    bucket: str
    prefix: str
    deleted: int = 0
    retained: int = 0
    retained_until: dt.datetime | None = None


def check_handover(record: TenantRecord, export_dir: Path) -> dict[str, Any]:
    """The export's manifest, once the folder and the database both match it; else refuse."""
    manifest_path = export_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DecommissionRefused(
            f"{manifest_path} を読めません。先に madoguchi tenants export で引き渡し用のデータを書き出してください"
        ) from exc
    tenant = manifest.get("tenant") or {}
    if manifest.get("format") != "madoguchi-tenant-export" or (tenant.get("id"), tenant.get("code")) != (
        record.id,
        record.code,
    ):
        raise DecommissionRefused(f"{manifest_path} は {record.name}（{record.id}）の書き出しではありません")
    for entry in [*manifest.get("tables", []), *manifest.get("objects", [])]:
        path = export_dir / entry["file"]
        if not path.is_file():
            raise DecommissionRefused(
                f"引き渡し用のファイル {path} がありません（書き出しをやり直してください）"
            )
        if sha256_file(path) != entry["sha256"]:
            raise DecommissionRefused(
                f"引き渡し用のファイル {path} が書き出したときと異なります（SHA-256 不一致。書き出しをやり直してください）"
            )
    _check_unchanged(record, manifest)
    return manifest  # type: ignore[no-any-return]


def _check_unchanged(record: TenantRecord, manifest: dict[str, Any]) -> None:
    counts = {t["table"]: t["rows"] for t in manifest["tables"]}
    last_seq = (manifest.get("snapshot") or {}).get("audit_last_seq")
    session = new_session(record.binding, isolation_level="REPEATABLE READ")
    try:
        for table in exported_tables():
            if table.name == "audit_log":
                continue  # compared below: the export's own entry follows its snapshot
            now = session.scalar(select(func.count()).select_from(table))
            if now != counts.get(table.name):
                raise DecommissionRefused(
                    f"書き出し後にデータが変わっています（{table.name}: 書き出し {counts.get(table.name)} 行、現在 {now} 行）。"
                    "利用を止めてから書き出しをやり直してください"
                )
        later = session.scalars(
            select(AuditEntry.action).where(AuditEntry.seq > (last_seq if last_seq is not None else 0))
        ).all()
        others = [a for a in later if a != "tenant.exported"]
        if others:
            raise DecommissionRefused(
                f"書き出し後に操作がありました（操作ログ {len(others)} 件、例: {others[0]}）。"
                "利用を止めてから書き出しをやり直してください"
            )
        session.rollback()
    finally:
        session.close()


def _delete_versions(client: Any, location: Location) -> None:
    """Delete every version and delete marker under the location's prefix; count what stays locked."""
    paginator = client.get_paginator("list_object_versions")
    pages = paginator.paginate(Bucket=location.bucket, Prefix=location.prefix)
    try:
        pages = list(pages)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return  # never created: nothing of the city's is there
        raise
    for page in pages:
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            try:
                client.delete_object(Bucket=location.bucket, Key=item["Key"], VersionId=item["VersionId"])
                location.deleted += 1
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("AccessDenied", "InvalidRequest"):
                    raise
                # Object Lock: kept until its retention date, which nobody can shorten.
                location.retained += 1
                # head_object carries the date too (the local S3 stand-in fails get_object_retention
                # for a version).
                head = client.head_object(
                    Bucket=location.bucket, Key=item["Key"], VersionId=item["VersionId"]
                )
                until = head.get("ObjectLockRetainUntilDate")
                if until is None:
                    raise
                if location.retained_until is None or until > location.retained_until:
                    location.retained_until = until


def _locations(record: TenantRecord) -> list[tuple[Any, Location]]:
    config = registry.config(record)
    documents = storage.client()
    out: list[tuple[Any, Location]] = [
        (documents, Location("帳票・出力ファイル", storage.bucket(), storage.tenant_key(record.id, "")))
    ]
    ours = linkage_buckets(config)
    for target in [*config.linkage.adapters, *config.linkage.outbound]:
        bucket = getattr(target, "bucket", None)
        if bucket in ours:
            out.append(
                (documents, Location(f"連携ファイル（{target.name}）", bucket, getattr(target, "prefix", "")))
            )
    audit = AuditStore.from_settings()
    out.append(
        (
            audit.client,
            Location("操作ログの封印・退避", audit.bucket, audit.tenant_prefix(record.schema_name)),
        )
    )
    return out


def _drop_and_record(record: TenantRecord, row: dict[str, Any]) -> None:
    """Schema, role and registry row out, the decommission record in: one transaction."""
    from app.db import provision
    from app.tenancy.models import Tenant, TenantDecommission

    with admin_engine().connect() as conn:
        provision.take_migration_lock(conn)
        try:
            with conn.begin():
                provision.drop_schema(conn, record.binding)
                conn.execute(delete(Tenant).where(Tenant.id == record.id))
                conn.execute(insert(TenantDecommission).values(**row))
        finally:
            provision.release_migration_lock(conn)
    registry.invalidate()


def decommission(
    record: TenantRecord,
    export_dir: Path,
    confirm_code: str,
    actor: str,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Delete the city's data (see the module docstring); return the certificate's content."""
    step = progress or (lambda _message: None)
    if confirm_code != record.code:
        raise DecommissionRefused(
            f"確認のため {record.name} の地方公共団体コード（6桁）を --confirm に指定してください"
        )
    manifest = check_handover(record, export_dir)
    manifest_sha = sha256_file(export_dir / "manifest.json")
    step("引き渡し用データを確認しました")

    with new_session(record.binding) as session:
        rows = {
            t.name: int(session.scalar(select(func.count()).select_from(t)) or 0) for t in exported_tables()
        }
    locations: list[Location] = []
    for client, location in _locations(record):
        try:
            _delete_versions(client, location)
        except (ClientError, BotoCoreError) as exc:
            reason = (
                exc.response.get("Error", {}).get("Code", type(exc).__name__)
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise DecommissionRefused(
                f"s3://{location.bucket}/{location.prefix} のファイルを削除できません（{reason}）。"
                "原因を取り除いてからもう一度実行してください（削除済みのものはそのままです）"
            ) from exc
        locations.append(location)
        step(f"{location.label}: {location.deleted} 件削除")

    now = dt.datetime.now(JST)
    settings = get_settings()
    backups_gone = (now + dt.timedelta(days=settings.backup_retention_days)).date()
    certificate = {
        "tenant": {"id": record.id, "code": record.code, "name": record.name, "schema": record.schema_name},
        "decommissioned_at": now.isoformat(timespec="seconds"),
        "decommissioned_by": actor,
        "provider": settings.provider_name,
        "handover": {
            "exported_at": manifest["exported_at"],
            "manifest_sha256": manifest_sha,
            "tables": len(manifest["tables"]),
            "rows": sum(t["rows"] for t in manifest["tables"]),
            "objects": len(manifest["objects"]),
        },
        "database": {"schema": record.schema_name, "tables": len(rows), "rows": sum(rows.values())},
        "objects": [
            {
                "label": loc.label,
                "location": f"s3://{loc.bucket}/{loc.prefix}",
                "deleted": loc.deleted,
                "retained": loc.retained,
                "retained_until": loc.retained_until.astimezone(JST).date().isoformat()
                if loc.retained_until
                else None,
            }
            for loc in locations
        ],
        "backups_expire_on": backups_gone.isoformat(),
    }
    _drop_and_record(
        record,
        {
            "id": record.id,
            "code": record.code,
            "name": record.name,
            "schema_name": record.schema_name,
            "decommissioned_by": actor,
            "export_manifest_sha256": manifest_sha,
            "certificate": certificate,
        },
    )
    step(f"データベースのスキーマ {record.schema_name} とロールを削除しました")
    return certificate


def certificate_pdf(certificate: dict[str, Any]) -> bytes:
    """データ消去証明書, A4, 和暦 dates."""
    from app.pdf import render_template_pdf

    def wareki(iso: str | None) -> str:
        return format_wareki(dt.date.fromisoformat(iso[:10])) if iso else ""

    return render_template_pdf(
        TEMPLATES,
        "deletion_certificate.html",
        c=certificate,
        issued=wareki(certificate["decommissioned_at"]),
        exported=wareki(certificate["handover"]["exported_at"]),
        backups=wareki(certificate["backups_expire_on"]),
        until={o["location"]: wareki(o["retained_until"]) for o in certificate["objects"]},
    )
