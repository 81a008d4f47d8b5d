"""Back linkage (後方連携): accepted applications → CSV (+ manifest) in object storage.

Exactly once per application and target, whatever fails in between:
1. in one transaction, the accepted applications not yet delivered to the target are assigned to a
   new ``export_batches`` row (a ``deliveries`` row each; unique per application and target), and
   the file's key is fixed;
2. the CSV is built from those rows only and uploaded with its manifest (row count, SHA-256, columns,
   encoding); the batch is marked delivered;
3. if storage is down, the batch stays ``failed`` and a retry uploads the *same* file to the *same*
   key (the rows never move to another batch), so the core system never receives an application
   twice or misses one.

Cells that could start a formula in Excel (= + - @ TAB CR) are escaped with a leading quote; NUL
characters are refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.dates import JST
from app.forms.models import Application, Delivery, ExportBatch
from app.linkage.config import Layout, OutboundTarget
from app.linkage.writer import TextEncoder
from app.secrets import resolve

log = logging.getLogger(__name__)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class StorageUnavailable(Exception):
    """The target's object storage could not be written; the batch will be retried."""


def safe_cell(value: Any) -> str:
    """A CSV cell Excel will not evaluate; NUL is refused (it has no place in a delivery)."""
    text = "" if value is None else str(value)
    if "\x00" in text:
        raise ValueError("NUL character in an exported value")
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _source(source: str) -> tuple[str, str]:
    """A column's value source as (kind, argument): const, row, application, field or member."""
    if source.startswith("const:"):
        return "const", source[len("const:") :]
    if source == "row":
        return "row", ""
    scope, _, attr = source.partition(".")
    if scope in ("application", "field", "member") and attr:
        return scope, attr
    raise ValueError(source)


def _application_value(application: Application, attr: str) -> Any:
    value = getattr(application, attr)
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, dt.datetime) else value


def build_csv(
    target: OutboundTarget, applications: list[Application], gaiji: dict[str, str]
) -> tuple[bytes, int]:
    """The file's bytes in the target's encoding, and its number of data rows.

    The cells that depend on the application alone are made once per application; a member row
    only fills in its row number and member columns (one application is often four rows).
    """
    sources = [_source(c.value) for c in target.columns]
    per_row = [(i, kind, arg) for i, (kind, arg) in enumerate(sources) if kind in ("row", "member")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=target.delimiter, lineterminator="\r\n")
    if target.header:
        writer.writerow([safe_cell(c.name) for c in target.columns])
    number = 0
    for application in applications:
        values = application.data.get("values", {})
        cells = [
            safe_cell(arg)
            if kind == "const"
            else safe_cell(_application_value(application, arg))
            if kind == "application"
            else safe_cell(values.get(arg, ""))
            if kind == "field"
            else ""
            for kind, arg in sources
        ]
        members: list[dict[str, str] | None]
        if target.rows == "members":
            members = list(application.data.get("tables", {}).get(target.member_table or "", [])) or [None]
        else:
            members = [None]
        for member in members:
            number += 1
            row = cells.copy()
            for i, kind, arg in per_row:
                row[i] = safe_cell(number) if kind == "row" else safe_cell((member or {}).get(arg, ""))
            writer.writerow(row)
    layout = Layout(variant=target.name, encoding=target.encoding, gaiji=gaiji)
    data = TextEncoder(layout).encode(buffer.getvalue(), final=True)
    return ((b"\xef\xbb\xbf" + data) if target.encoding == "utf-8-sig" else data), number


def _client(target: OutboundTarget) -> Any:
    kwargs: dict[str, Any] = {"region_name": target.region}
    endpoint = target.endpoint_url or get_settings().s3_endpoint_url
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if target.access_key_ref and target.secret_key_ref:
        kwargs["aws_access_key_id"] = resolve(target.access_key_ref)
        kwargs["aws_secret_access_key"] = resolve(target.secret_key_ref)
    return boto3.client("s3", **kwargs)


@dataclass
class ExportResult:
    target: str
    batch_id: int | None
    rows: int
    status: str  # delivered | failed | nothing
    error: str | None = None


def prepare_batch(session: Session, target: OutboundTarget, tenant_id: str) -> ExportBatch | None:
    """Step 1: assign the waiting applications to a new batch (committed by the caller)."""
    delivered = select(Delivery.application_id).where(Delivery.target == target.name)
    applications = list(
        session.scalars(
            select(Application.id)
            .where(
                Application.status == "accepted",
                Application.form_id.in_(target.forms),
                Application.id.not_in(delivered),
            )
            .order_by(Application.id)
            .limit(target.batch_size)
            .with_for_update(skip_locked=True)
        )
    )
    if not applications:
        return None
    batch = ExportBatch(target=target.name, file_key="", manifest_key="", rows=0)
    session.add(batch)
    session.flush()
    name = target.file_name.format(
        target=target.name, date=dt.datetime.now(JST).strftime("%Y%m%d"), batch=batch.id
    )
    batch.file_key = f"{target.prefix}{name}"
    batch.manifest_key = f"{target.prefix}{name}.manifest.json"
    session.execute(  # one multi-row INSERT, not 10,000 ORM objects through the unit of work
        insert(Delivery),
        [{"application_id": a, "target": target.name, "export_batch_id": batch.id} for a in applications],
    )
    return batch


def upload_batch(
    session: Session, target: OutboundTarget, batch: ExportBatch, gaiji: dict[str, str]
) -> ExportResult:
    """Steps 2-3: build the batch's file from its own rows and upload it (idempotent per batch)."""
    ids = select(Delivery.application_id).where(Delivery.export_batch_id == batch.id)
    applications = list(
        session.scalars(select(Application).where(Application.id.in_(ids)).order_by(Application.id))
    )
    data, rows = build_csv(target, applications, gaiji)
    digest = hashlib.sha256(data).hexdigest()
    manifest: dict[str, Any] = {
        "file": batch.file_key.rsplit("/", 1)[-1],
        "rows": rows,
        "applications": len(applications),
        "sha256": digest,
        "encoding": target.encoding,
        "delimiter": "TAB" if target.delimiter == "\t" else target.delimiter,
        "columns": [c.name for c in target.columns],
        "batch": batch.id,
        "created_at": dt.datetime.now(JST).isoformat(timespec="seconds"),
    }
    batch.attempts += 1
    try:
        client = _client(target)
        client.put_object(Bucket=target.bucket, Key=batch.file_key, Body=data, ContentType="text/csv")
        if target.manifest:
            body = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            client.put_object(
                Bucket=target.bucket, Key=batch.manifest_key, Body=body, ContentType="application/json"
            )
    except (BotoCoreError, ClientError) as exc:
        batch.status = "failed"
        batch.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning(
            "back linkage %s batch %s: storage unavailable (%s)", target.name, batch.id, type(exc).__name__
        )
        return ExportResult(target.name, batch.id, rows, "failed", batch.last_error)
    batch.status = "delivered"
    batch.rows = rows
    batch.sha256 = digest
    batch.delivered_at = dt.datetime.now(dt.UTC)
    batch.last_error = None
    return ExportResult(target.name, batch.id, batch.rows, "delivered")


def export(
    session: Session, target: OutboundTarget, tenant_id: str, gaiji: dict[str, str]
) -> list[ExportResult]:
    """Retry failed batches first (same file, same key), then deliver what is waiting."""
    results: list[ExportResult] = []
    waiting = session.scalars(
        select(ExportBatch)
        .where(ExportBatch.target == target.name, ExportBatch.status != "delivered")
        .order_by(ExportBatch.id)
    ).all()
    for old in waiting:
        results.append(upload_batch(session, target, old, gaiji))
        session.commit()
        if results[-1].status == "failed":
            return results  # storage is down: keep order, try again later
    while (fresh := prepare_batch(session, target, tenant_id)) is not None:
        session.commit()  # the batch and its rows exist before anything is uploaded
        results.append(upload_batch(session, target, fresh, gaiji))
        session.commit()
        if results[-1].status == "failed":
            break
    return results
