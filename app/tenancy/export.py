"""A city's complete data, handed over at contract end (契約終了時のデータ引き渡し).

The procurement specs ask for it: the service must allow switching SaaS (seed 003 §(3)
「SaaS間の乗り換えに対応できること」), and at contract end hand over what the city needs to carry on
before deleting everything unrecoverably (seed 004 §(8); seeds 000 §11, 001 §9, 002 §(5)).

``export_tenant`` writes one folder a receiving vendor can read without Madoguchi:

- ``tables/<table>.csv`` — every table of the tenant schema from one snapshot (REPEATABLE READ),
  CSV (RFC 4180, UTF-8, a header line, NULL as an empty unquoted field), rows in primary-key order;
- ``documents/`` and ``audit/`` — the city's objects in the documents bucket (printed forms,
  reports) and its operation-log seals and archives (the log's older entries live only there);
- ``manifest.json`` — tenant, time, schema revision, per file its rows or bytes and SHA-256, each
  table's columns and types, what was left out and why, and the audit chain's verification;
- ``README.txt`` — the same in Japanese for the city's staff.

Left out: credentials (password and token hashes, TOTP secrets, API tokens), which no other system
can use and nobody should hold, and the importer's transient staging tables. The export is an
audited read of all residents' data: it writes ``tenant.exported`` to the city's own log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select

from app import storage
from app.audit import service as audit_service
from app.audit.models import AuditEntry
from app.audit.storage import AuditStore
from app.audit.verify import verify
from app.dates import JST
from app.db.export import copy_table_csv, schema_revision
from app.db.models import tenant_metadata
from app.db.session import new_session
from app.tenancy.service import TenantRecord

FORMAT_VERSION = 1

# Transient or credential tables: nothing a receiving system could use, or should hold.
EXCLUDED_TABLES = {
    "api_tokens": "発行済みのアクセストークン（有効期限付きの認証情報）",
    "import_staging_residents": "取込処理中の一時データ",
    "import_staging_attributes": "取込処理中の一時データ",
    "import_staging_households": "取込処理中の一時データ",
}
EXCLUDED_COLUMNS = {
    ("staff_users", "password_hash"): "パスワードのハッシュ（認証情報）",
    ("staff_users", "totp_secret"): "二要素認証の秘密鍵（認証情報）",
    ("api_clients", "secret_hash"): "API クライアント秘密のハッシュ（認証情報）",
    ("card_readers", "token_hash"): "カード読取端末のトークンのハッシュ（認証情報）",
}


class ExportError(Exception):
    """The export cannot start or finish; the message is Japanese and names the path or object."""


@dataclass
class ExportResult:
    tenant: str
    out: Path
    tables: int = 0
    rows: int = 0
    objects: int = 0
    bytes: int = 0
    audit_ok: bool = False
    manifest_sha256: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "out": str(self.out),
            "tables": self.tables,
            "rows": self.rows,
            "objects": self.objects,
            "bytes": self.bytes,
            "audit_ok": self.audit_ok,
            "manifest_sha256": self.manifest_sha256,
        }


def exported_tables() -> list[Table]:
    return [t for t in tenant_metadata.sorted_tables if t.name not in EXCLUDED_TABLES]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(
            f"出力先 {out} は空のフォルダーではありません（上書きしないため、新しいフォルダーを指定してください）"
        )
    try:
        for sub in ("tables", "documents", "audit"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"出力先 {out} に書き込めません（{exc.strerror}）") from exc


def _local_path(root: Path, relative: str) -> Path:
    """``root/relative`` for an object key, refusing keys that would leave ``root``."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()) or relative.endswith("/"):
        raise ExportError(f"オブジェクトのキー {relative!r} は出力先のファイル名にできません")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _export_tables(
    record: TenantRecord, out: Path, progress: Callable[[str], None]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    session = new_session(record.binding, isolation_level="REPEATABLE READ")
    try:
        # What the snapshot holds, so that a later deletion can prove nothing happened since.
        snapshot = {
            "schema_revision": schema_revision(session),
            "audit_last_seq": session.scalar(select(func.max(AuditEntry.seq))),
        }
        for table in exported_tables():
            columns = [c for c in table.columns if (table.name, c.name) not in EXCLUDED_COLUMNS]
            order = [c.name for c in table.primary_key.columns] or [columns[0].name]
            path = out / "tables" / f"{table.name}.csv"
            with path.open("wb") as handle:
                rows = copy_table_csv(session, table.name, [c.name for c in columns], order, handle)
            entries.append(
                {
                    "table": table.name,
                    "file": f"tables/{table.name}.csv",
                    "rows": rows,
                    "sha256": sha256_file(path),
                    "columns": [
                        {
                            "name": c.name,
                            "type": str(c.type),
                            "kind": type(c.type).__name__,
                            "nullable": bool(c.nullable),
                        }
                        for c in columns
                    ],
                }
            )
            progress(table.name)
        session.rollback()  # read only: nothing to keep
    finally:
        session.close()
    return entries, snapshot


def _export_objects(record: TenantRecord, out: Path, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    documents_prefix = storage.tenant_key(record.id, "")
    s3 = storage.client()
    storage.ensure_bucket()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=storage.bucket(), Prefix=documents_prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            relative = f"documents/{key[len(documents_prefix) :]}"
            target = _local_path(out, relative)
            with target.open("wb") as handle:
                s3.download_fileobj(storage.bucket(), key, handle)
            entries.append({"source": "documents", "key": key, "file": relative,
                            "bytes": target.stat().st_size, "sha256": sha256_file(target)})  # fmt: skip
            progress(relative)
    audit = AuditStore.from_settings()
    audit_prefix = audit.tenant_prefix(record.schema_name)
    for key in audit.keys(audit_prefix):
        relative = f"audit/{key[len(audit_prefix) :]}"
        target = _local_path(out, relative)
        with target.open("wb") as handle:
            audit.download(key, handle)
        entries.append({"source": "audit", "key": key, "file": relative,
                        "bytes": target.stat().st_size, "sha256": sha256_file(target)})  # fmt: skip
        progress(relative)
    return entries


_README = """\
{name}（地方公共団体コード {code}）のデータ一式
出力日時: {exported_at}

このフォルダーは、窓口支援システム Madoguchi が保持していた{name}のデータを、契約終了時の引き渡しのために
すべて書き出したものです。Madoguchi がなくても読める形式です。

- tables/   データベースの表ごとの CSV（文字コード UTF-8、BOM なし、1行目は列名、RFC 4180 形式）。
            値のない項目（NULL）は引用符なしの空欄、空の文字列は "" です。日時は ISO 8601（UTC からの差付き）、
            和暦・不詳を含む日付は基幹系システムから届いた表記のまま（例: 昭和50年 月日不詳）で、
            判明している西暦の日付は別の列（birth_date など）にあります。
- documents/ 印刷した申請書・帳票など、システムが作成したファイル。
- audit/    操作ログの封印（seals/）と、保存期間を過ぎてデータベースから退避した記録（archive/）。
            データベース上の操作ログは tables/audit_log.csv です。
- manifest.json  各ファイルの行数・大きさ・SHA-256、表の列と型、除いたもの、操作ログの検証結果。

含めていないもの（認証情報と処理中の一時データ）:
{excluded}

ファイルが改変されていないことは、manifest.json の SHA-256 と照合して確認できます
（例: sha256sum tables/residents.csv）。
"""


def export_tenant(
    record: TenantRecord, out: Path, progress: Callable[[str], None] | None = None
) -> ExportResult:
    """Write the tenant's data to ``out`` (a new or empty folder) and audit-log the export."""
    step = progress or (lambda _name: None)
    _prepare(out)
    started = dt.datetime.now(JST)
    tables, snapshot = _export_tables(record, out, step)
    objects = _export_objects(record, out, step)
    report = verify(record)
    excluded = [{"table": t, "reason": r} for t, r in EXCLUDED_TABLES.items()] + [
        {"table": t, "column": c, "reason": r} for (t, c), r in EXCLUDED_COLUMNS.items()
    ]
    manifest = {
        "format": "madoguchi-tenant-export",
        "format_version": FORMAT_VERSION,
        "tenant": {"id": record.id, "code": record.code, "name": record.name, "schema": record.schema_name},
        "exported_at": started.isoformat(timespec="seconds"),
        "schema_revision": snapshot["schema_revision"],
        "snapshot": {"audit_last_seq": snapshot["audit_last_seq"]},
        "tables": tables,
        "objects": objects,
        "excluded": excluded,
        "audit_verification": {
            "ok": report.ok,
            "entries": report.entries,
            "last_seq": report.last_seq,
            "head_hash": report.head_hash,
            "seals": report.seals,
            "problems": report.problem_count,
        },
    }
    manifest_path = out / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [f"  - {e['table']}{'.' + e['column'] if 'column' in e else ''}: {e['reason']}" for e in excluded]
    (out / "README.txt").write_text(
        _README.format(
            name=record.name, code=record.code, exported_at=manifest["exported_at"], excluded="\n".join(lines)
        ),
        encoding="utf-8",
    )
    result = ExportResult(
        tenant=record.id,
        out=out,
        tables=len(tables),
        rows=sum(t["rows"] for t in tables),
        objects=len(objects),
        bytes=sum(o["bytes"] for o in objects),
        audit_ok=report.ok,
        manifest_sha256=sha256_file(manifest_path),
        files=[*tables, *objects],
    )
    # Everything the city's residents are in was read: the city's own log says so.
    session = new_session(record.binding)
    try:
        audit_service.record(
            session,
            "tenant.exported",
            subject_type="tenant",
            subject_id=record.id,
            purpose="契約終了時のデータ引き渡し",
            details={
                "tables": result.tables,
                "rows": result.rows,
                "objects": result.objects,
                "manifest_sha256": result.manifest_sha256,
            },
        )
        session.commit()
    finally:
        session.close()
    return result
