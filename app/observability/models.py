"""Incidents (障害): opened by an alert, acknowledged by a person, resolved, written up (control schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, SmallInteger, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import ControlBase, id_column

INCIDENT_STATUSES = ("open", "acknowledged", "resolved")


class Incident(ControlBase):
    """One alert occurrence (Alertmanager fingerprint + start time) and what people did about it.

    ``detected_at`` is the alert's own start (not when the webhook arrived); ``acknowledged_at`` the
    first human acknowledgement (初動); ``resolved_at`` the recovery, from the alert's end or a
    person. The report (cause, recovery, prevention, log excerpts) is the written incident report.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status"),
        UniqueConstraint("fingerprint", "detected_at"),
        Index(None, "tenant_id", "detected_at"),
        Index(None, "status"),
    )

    id: Mapped[int] = id_column()
    tenant_id: Mapped[str | None]  # None: a service-wide alert
    alert_name: Mapped[str]
    fingerprint: Mapped[str]
    severity: Mapped[str | None]
    slo: Mapped[str | None]
    summary: Mapped[str] = mapped_column(Text, server_default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    receivers: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")  # who Alertmanager told
    status: Mapped[str] = mapped_column(server_default="open")
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    response_target_minutes: Mapped[int | None] = mapped_column(SmallInteger)  # copied at opening
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None]
    resolved_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[str | None]  # "alertmanager" when the alert ended by itself
    cause: Mapped[str | None]
    recovery: Mapped[str | None]
    prevention: Mapped[str | None]
    log_excerpts: Mapped[str | None]
    report_updated_at: Mapped[dt.datetime | None]
    report_updated_by: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
