"""Catalogue versions kept per tenant: a change applies from its effective date, and a running case
keeps the version it started with (cases store the version id)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Index, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, id_column


class CatalogueVersion(TenantBase):
    __tablename__ = "catalogue_versions"
    __table_args__ = (Index(None, "effective_from"),)

    id: Mapped[int] = id_column()
    version: Mapped[str]
    effective_from: Mapped[dt.date] = mapped_column(Date)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
