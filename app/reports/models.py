"""Support-desk inquiries (問い合わせ), releases and the monthly reports (control schema).

Inquiries and releases are kept by the provider; the monthly reports are computed from them and
from the other sources (``app.reports.sources``) and kept for years, because the raw metrics and
logs behind them are not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import ControlBase, id_column

CHANNELS: dict[str, str] = {
    "phone": "電話",
    "email": "メール",
    "web": "問い合わせフォーム",
    "visit": "訪問・会議",
    "other": "その他",
}
CATEGORIES: dict[str, str] = {
    "operation": "操作方法",
    "failure": "障害・不具合",
    "account": "アカウント・権限",
    "linkage": "データ連携",
    "forms": "様式・帳票",
    "data": "データ修正・確認",
    "request": "要望・機能追加",
    "other": "その他",
}
RELEASE_KINDS: dict[str, str] = {"application": "アプリケーション", "infrastructure": "インフラ"}


def _in(column: str, values: dict[str, str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class SupportInquiry(ControlBase):
    """One inquiry to the support desk. ``tenant_id`` None: about the service as a whole."""

    __tablename__ = "support_inquiries"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("category", CATEGORIES), name="category"),
        CheckConstraint("closed_at IS NULL OR closed_at >= opened_at", name="closed_after_opened"),
        Index(None, "opened_at"),
        Index(None, "tenant_id", "opened_at"),
    )

    id: Mapped[int] = id_column()
    tenant_id: Mapped[str | None]
    channel: Mapped[str]
    category: Mapped[str]
    summary: Mapped[str]
    opened_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    recorded_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Release(ControlBase):
    """A deployment recorded by the pipeline, to reconcile with the release approvals (承認番号)."""

    __tablename__ = "releases"
    __table_args__ = (
        CheckConstraint(_in("kind", RELEASE_KINDS), name="kind"),
        UniqueConstraint("kind", "version", "released_at"),
        Index(None, "released_at"),
    )

    id: Mapped[int] = id_column()
    kind: Mapped[str]
    version: Mapped[str]
    released_at: Mapped[dt.datetime]
    approval_ref: Mapped[str]
    description: Mapped[str] = mapped_column(Text, server_default="")
    recorded_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class MonthlyReport(ControlBase):
    """One computed report: ``scope`` is ``service`` (the Digital Agency's) or a tenant id.

    ``content`` is the report's JSON; ``files`` lists what was stored in object storage (name, key,
    media type, size, sha256). Regenerating a month overwrites both and counts ``generations``.
    """

    __tablename__ = "monthly_reports"
    __table_args__ = (
        CheckConstraint("month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name="month_format"),
        UniqueConstraint("month", "scope"),
    )

    id: Mapped[int] = id_column()
    month: Mapped[str]
    scope: Mapped[str]
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_sha256: Mapped[str]
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    generated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    generated_by: Mapped[str]
    generations: Mapped[int] = mapped_column(Integer, server_default="1")


class ReportCapture(ControlBase):
    """What a point-in-time AWS source answered for a month (IAM, roles, Config and Security Hub now).

    Those APIs describe the moment they are called, not the month: the first generation keeps their
    answer here and later regenerations reuse it (``--refresh`` captures again), so a month
    regenerates to the same report.
    """

    __tablename__ = "report_captures"
    __table_args__ = (UniqueConstraint("month", "source"),)

    id: Mapped[int] = id_column()
    month: Mapped[str]
    source: Mapped[str]
    data: Mapped[Any] = mapped_column(JSONB)
    captured_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
