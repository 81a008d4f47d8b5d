"""The operation log (操作ログ): one row per access to personal data or administrative act.

Append-only for the runtime role (INSERT and SELECT only; see ``app.db.provision.grant_tables``).
Issue 5 adds the hash chain, sealing and retention.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, append_only, id_column

ACTOR_TYPES = ("staff", "provider", "api_client", "system", "device", "resident", "cli")


class AuditEntry(TenantBase):
    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(
            "actor_type IN ('staff', 'provider', 'api_client', 'system', 'device', 'resident', 'cli')",
            name="actor_type",
        ),
        Index(None, "subject_type", "subject_id"),
        Index(None, "occurred_at"),
        append_only(),
    )

    id: Mapped[int] = id_column()
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_type: Mapped[str]
    actor_id: Mapped[str]
    actor_name: Mapped[str | None]
    terminal: Mapped[str | None]
    action: Mapped[str]
    subject_type: Mapped[str | None]
    subject_id: Mapped[str | None]
    purpose: Mapped[str | None]  # 事務種別
    request_id: Mapped[str | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
