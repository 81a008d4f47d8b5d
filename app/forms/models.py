"""Form versions, applications, certificate requests and back-linkage deliveries (per tenant)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Date, Index, Integer, SmallInteger, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, id_column


class FormVersion(TenantBase):
    """One version of a form: from the tenant files (``file``) or edited by staff (``admin``).

    A staff edit is saved as ``draft``, approved, and applies from its effective date.
    """

    __tablename__ = "form_versions"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'approved', 'withdrawn')", name="status"),
        CheckConstraint("origin IN ('file', 'admin')", name="origin"),
        UniqueConstraint("form_id", "content_hash"),
        Index(None, "form_id", "effective_from"),
    )

    id: Mapped[int] = id_column()
    form_id: Mapped[str]
    version: Mapped[str]
    effective_from: Mapped[dt.date] = mapped_column(Date)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    template: Mapped[str | None]  # None: the generic layout
    content_hash: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="approved")
    origin: Mapped[str] = mapped_column(server_default="file")
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    approved_by: Mapped[str | None]
    approved_at: Mapped[dt.datetime | None]


class Application(TenantBase):
    """A submitted form (申請): the values as printed, the version, the PDF in object storage."""

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint("status IN ('submitted', 'accepted', 'returned', 'withdrawn')", name="status"),
        Index(None, "status", "accepted_at"),
        Index(None, "resident_id"),
    )

    id: Mapped[int] = id_column()
    form_id: Mapped[str]
    form_version_id: Mapped[int]
    form_version: Mapped[str]
    resident_id: Mapped[int | None]
    case_ref: Mapped[str | None]  # the counter case it belongs to (issue 6)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {"values": …, "tables": …}
    status: Mapped[str] = mapped_column(server_default="submitted")
    pdf_key: Mapped[str | None]
    pdf_sha256: Mapped[str | None]
    signature_key: Mapped[str | None]
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    accepted_at: Mapped[dt.datetime | None]
    accepted_by: Mapped[str | None]


class CertificateRequest(TenantBase):
    """証明書交付請求: who asks for which certificate of whom, why, how many, for what fee."""

    __tablename__ = "certificate_requests"
    __table_args__ = (
        CheckConstraint("requester_relation IN ('本人', '同一世帯', '代理人')", name="relation"),
        CheckConstraint("copies BETWEEN 1 AND 99", name="copies"),
        CheckConstraint("requester_relation <> '代理人' OR proxy_document", name="proxy_needs_mandate"),
        Index(None, "application_id"),
    )

    id: Mapped[int] = id_column()
    application_id: Mapped[int | None]  # the printed 証明書交付請求書, when there is one
    certificate: Mapped[str]  # fees.yaml item, e.g. 住民票の写し
    subject_resident_id: Mapped[int | None]
    requester_name: Mapped[str]
    requester_relation: Mapped[str]
    proxy_document: Mapped[bool] = mapped_column(server_default="false")  # 委任状
    purpose: Mapped[str]
    copies: Mapped[int] = mapped_column(SmallInteger)
    unit_fee: Mapped[int] = mapped_column(Integer)
    total_fee: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ExportBatch(TenantBase):
    """One CSV file (plus its manifest) handed to a core system through object storage."""

    __tablename__ = "export_batches"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index(None, "target", "created_at"),
    )

    id: Mapped[int] = id_column()
    target: Mapped[str]  # outbound adapter name
    file_key: Mapped[str]
    manifest_key: Mapped[str]
    rows: Mapped[int]
    sha256: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default="0")
    last_error: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[dt.datetime | None]


class Delivery(TenantBase):
    """An application in an export batch: delivered once per target, whatever retries happen."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("application_id", "target"), Index(None, "export_batch_id"))

    id: Mapped[int] = id_column()
    application_id: Mapped[int]
    target: Mapped[str]
    export_batch_id: Mapped[int]
