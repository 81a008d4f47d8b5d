"""Support-desk inquiries and release records: validated input, kept in the control schema."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.dates import JST
from app.reports.models import CATEGORIES, CHANNELS, RELEASE_KINDS, Release, SupportInquiry
from app.tenancy.service import registry

MAX_SUMMARY = 2000


class RecordInputError(ValueError):
    """Bad input for an inquiry or a release; Japanese message naming the field."""


def parse_time(value: str | dt.datetime | None, field: str) -> dt.datetime | None:
    """ISO 8601; without an offset the time is Japan time (what people at the desk type)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = value.strip().replace("Z", "+00:00")
        if "T" not in text and len(text) > 10:
            text = text.replace(" ", "T", 1)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise RecordInputError(f"{field}は YYYY-MM-DDTHH:MM の形で入力してください: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


def add_inquiry(
    session: Session,
    *,
    tenant_id: str | None,
    channel: str,
    category: str,
    summary: str,
    opened_at: str | dt.datetime | None,
    closed_at: str | dt.datetime | None = None,
    by: str,
) -> SupportInquiry:
    tenant_id = (tenant_id or "").strip() or None
    if tenant_id is not None and registry.get(tenant_id) is None:
        raise RecordInputError(f"自治体 {tenant_id} は登録されていません")
    if channel not in CHANNELS:
        raise RecordInputError(f"経路は {', '.join(CHANNELS)} のいずれかです（{channel!r}）")
    if category not in CATEGORIES:
        raise RecordInputError(f"分類は {', '.join(CATEGORIES)} のいずれかです（{category!r}）")
    summary = summary.strip()
    if not summary:
        raise RecordInputError("概要を入力してください")
    if len(summary) > MAX_SUMMARY or "\x00" in summary:
        raise RecordInputError(f"概要は {MAX_SUMMARY} 文字までです")
    opened = parse_time(opened_at, "受付日時") or dt.datetime.now(dt.UTC)
    closed = parse_time(closed_at, "完了日時")
    if closed is not None and closed < opened:
        raise RecordInputError("完了日時が受付日時より前です")
    if not by.strip():
        raise RecordInputError("記録者がありません")
    row = SupportInquiry(
        tenant_id=tenant_id,
        channel=channel,
        category=category,
        summary=summary,
        opened_at=opened,
        closed_at=closed,
        recorded_by=by.strip()[:200],
    )
    session.add(row)
    session.flush()
    return row


def close_inquiry(session: Session, inquiry_id: int, at: str | dt.datetime | None = None) -> SupportInquiry:
    row = session.get(SupportInquiry, inquiry_id, with_for_update=True)
    if row is None:
        raise RecordInputError(f"問い合わせ #{inquiry_id} は見つかりません")
    moment = parse_time(at, "完了日時") or dt.datetime.now(dt.UTC)
    if moment < row.opened_at:
        raise RecordInputError("完了日時が受付日時より前です")
    row.closed_at = moment
    row.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return row


def list_inquiries(session: Session, limit: int = 200) -> list[SupportInquiry]:
    return list(
        session.scalars(
            select(SupportInquiry)
            .order_by(SupportInquiry.opened_at.desc(), SupportInquiry.id.desc())
            .limit(limit)
        )
    )


def record_release(
    session: Session,
    *,
    kind: str,
    version: str,
    released_at: str | dt.datetime | None,
    approval_ref: str,
    description: str = "",
    by: str,
) -> tuple[Release, bool]:
    """Record a release; the same (kind, version, time) again is the pipeline retrying: no new row."""
    if kind not in RELEASE_KINDS:
        raise RecordInputError(f"種別は application か infrastructure です（{kind!r}）")
    version = version.strip()
    if not version or len(version) > 200:
        raise RecordInputError("バージョンを入力してください（200文字まで）")
    approval_ref = approval_ref.strip()
    if not approval_ref or len(approval_ref) > 200:
        raise RecordInputError("承認番号（リリース承認の参照）を入力してください")
    moment = parse_time(released_at, "リリース日時") or dt.datetime.now(dt.UTC)
    stmt = (
        insert(Release)
        .values(
            kind=kind,
            version=version,
            released_at=moment,
            approval_ref=approval_ref,
            description=description.strip()[:2000],
            recorded_by=by.strip()[:200] or "unknown",
        )
        .on_conflict_do_nothing(index_elements=["kind", "version", "released_at"])
        .returning(Release.id)
    )
    created = session.execute(stmt).scalar_one_or_none() is not None
    row = session.scalars(
        select(Release).where(Release.kind == kind, Release.version == version, Release.released_at == moment)
    ).one()
    return row, created


def list_releases(session: Session, limit: int = 200) -> list[Release]:
    return list(
        session.scalars(select(Release).order_by(Release.released_at.desc(), Release.id.desc()).limit(limit))
    )
