"""Import batches as the operator sees them: list, progress, rejection report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.linkage.models import ImportBatch, ImportRejection

STATUS_JA = {
    "queued": "待機中",
    "running": "取込中",
    "applied": "取込済",
    "rejected": "取込不可",
    "duplicate": "取込済（同一内容）",
    "failed": "エラー",
}


def batch_summary(batch: ImportBatch) -> dict[str, Any]:
    progress = None
    if batch.size_bytes:
        progress = round(min(1.0, batch.bytes_read / batch.size_bytes), 3)
    return {
        "id": batch.id,
        "kind": batch.kind,
        "mode": batch.mode,
        "layout": batch.layout,
        "policy": batch.policy,
        "source": batch.source,
        "source_ref": batch.source_ref,
        "file_name": batch.file_name,
        "status": batch.status,
        "status_ja": STATUS_JA.get(batch.status, batch.status),
        "progress": progress,
        "rows_read": batch.rows_read,
        "rows_rejected": batch.rows_rejected,
        "rows_inserted": batch.rows_inserted,
        "rows_updated": batch.rows_updated,
        "rows_unchanged": batch.rows_unchanged,
        "rows_missing": batch.rows_missing,
        "message": batch.message,
        "duplicate_of": batch.duplicate_of,
        "created_by": batch.created_by,
        "created_at": batch.created_at,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }


def list_batches(session: Session, limit: int = 50, offset: int = 0) -> list[ImportBatch]:
    return list(
        session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit).offset(offset))
    )


def rejections(
    session: Session, batch_id: int, limit: int = 500, offset: int = 0
) -> tuple[list[ImportRejection], int]:
    total = session.scalar(select(func.count()).where(ImportRejection.batch_id == batch_id)) or 0
    rows = session.scalars(
        select(ImportRejection)
        .where(ImportRejection.batch_id == batch_id)
        .order_by(ImportRejection.line.nulls_first(), ImportRejection.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total
