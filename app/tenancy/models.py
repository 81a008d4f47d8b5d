"""Tenant registry (control schema) and per-tenant calendar overrides (臨時開庁・臨時閉庁)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Date, DateTime, Index, SmallInteger, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import ControlBase, TenantBase, id_column

TENANT_STATUSES = ("active", "suspended")


class Tenant(ControlBase):
    """A municipality using the service. ``config`` is the validated tenants/<id> content."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{6}$'", name="code_format"),
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    schema_name: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="active")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    config_hash: Mapped[str]
    schema_revision: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    provisioned_at: Mapped[dt.datetime | None]


class TenantDecommission(ControlBase):
    """A city whose contract ended: its data was handed over and deleted (データ消去).

    Kept after the tenant's row and schema are gone, as the provider's record of what was deleted,
    how and when (the certificate's content); ``tenants sync`` refuses to provision the id again.
    """

    __tablename__ = "tenant_decommissions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # the tenant id
    code: Mapped[str]
    name: Mapped[str]
    schema_name: Mapped[str]
    decommissioned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decommissioned_by: Mapped[str]
    export_manifest_sha256: Mapped[str]
    certificate: Mapped[dict[str, Any]] = mapped_column(JSONB)


class CalendarOverride(TenantBase):
    """A temporary opening or closure entered by the municipal administrator.

    Never updated in place: cancelling sets ``revoked_at``, so SLA figures for the past stay
    reproducible. Minutes are since 00:00 JST on ``on_date``.
    """

    __tablename__ = "calendar_overrides"
    __table_args__ = (
        CheckConstraint("kind IN ('open', 'closed')", name="kind"),
        CheckConstraint("calendar IN ('service')", name="calendar"),
        CheckConstraint(
            "(opens_min IS NULL) = (closes_min IS NULL)"
            " AND (opens_min IS NULL OR (0 <= opens_min AND opens_min < closes_min AND closes_min <= 1440))",
            name="hours",
        ),
        CheckConstraint("kind = 'closed' OR opens_min IS NOT NULL", name="open_has_hours"),
        Index(None, "on_date"),
    )

    id: Mapped[int] = id_column()
    calendar: Mapped[str] = mapped_column(server_default="service")
    on_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str]
    opens_min: Mapped[int | None] = mapped_column(SmallInteger)
    closes_min: Mapped[int | None] = mapped_column(SmallInteger)
    reason: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None]
