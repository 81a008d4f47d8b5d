"""Import batches (取込バッチ), their rejection reports, staging rows and objects taken from storage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    column,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, id_column

BATCH_STATUSES = ("queued", "running", "applied", "rejected", "duplicate", "failed")


class ImportBatch(TenantBase):
    __tablename__ = "import_batches"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'applied', 'rejected', 'duplicate', 'failed')", name="status"
        ),
        CheckConstraint("kind IN ('residents', 'attributes')", name="kind"),
        CheckConstraint("mode IN ('full', 'changes')", name="mode"),
        CheckConstraint("policy IN ('reject_all', 'quarantine')", name="policy"),
        # The same content is applied at most once, even if two imports race.
        Index(
            "uq_import_batches_applied_content",
            "kind",
            "content_sha256",
            unique=True,
            postgresql_where=column("status") == "applied",
        ),
        Index(None, "created_at"),
    )

    id: Mapped[int] = id_column()
    kind: Mapped[str]
    mode: Mapped[str]
    layout: Mapped[str]  # variant name, or "standard"
    policy: Mapped[str]
    source: Mapped[str]  # adapter name, or "cli"
    source_ref: Mapped[str]  # path, s3://bucket/key, URL
    file_name: Mapped[str]
    content_sha256: Mapped[str | None]
    size_bytes: Mapped[int | None]
    status: Mapped[str] = mapped_column(server_default="queued")
    rows_read: Mapped[int] = mapped_column(server_default="0")
    rows_rejected: Mapped[int] = mapped_column(server_default="0")
    rows_inserted: Mapped[int] = mapped_column(server_default="0")
    rows_updated: Mapped[int] = mapped_column(server_default="0")
    rows_unchanged: Mapped[int] = mapped_column(server_default="0")
    rows_missing: Mapped[int] = mapped_column(server_default="0")  # full extract: residents not in the file
    bytes_read: Mapped[int] = mapped_column(server_default="0")  # progress
    message: Mapped[str | None]  # Japanese summary for the operator
    duplicate_of: Mapped[int | None]
    job_id: Mapped[str | None]
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class ImportRejection(TenantBase):
    """One reason a row (or the file) was rejected: file, line, column, value and a Japanese reason."""

    __tablename__ = "import_rejections"
    __table_args__ = (Index(None, "batch_id", "line"),)

    id: Mapped[int] = id_column()
    batch_id: Mapped[int]
    line: Mapped[int | None] = mapped_column(Integer)  # physical line where the record starts
    record: Mapped[int | None] = mapped_column(Integer)  # data record number (header excluded)
    column: Mapped[str | None]
    value: Mapped[str | None]
    code: Mapped[str]
    reason: Mapped[str]


class LinkageObject(TenantBase):
    """An object an adapter has seen and taken (so a poller never imports it twice)."""

    __tablename__ = "linkage_objects"
    __table_args__ = (
        CheckConstraint("status IN ('taken', 'imported', 'rejected', 'failed')", name="status"),
        Index("uq_linkage_objects_adapter_key_etag", "adapter", "object_key", "etag", unique=True),
    )

    id: Mapped[int] = id_column()
    adapter: Mapped[str]
    object_key: Mapped[str]
    etag: Mapped[str]
    size_bytes: Mapped[int | None]
    last_modified: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(server_default="taken")
    batch_id: Mapped[int | None]
    taken_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


STAGING = {"info": {"staging": True}}  # the tenant role may TRUNCATE these (UNLOGGED tables)

# Staging tables are plain heaps (no primary key, no index): COPY fills them as fast as it can and
# the apply statements read them whole. Crash safety belongs to the batch (it reruns).
resident_staging = Table(
    "import_staging_residents",
    TenantBase.metadata,
    Column("batch_id", BigInteger, nullable=False),
    Column("record", Integer, nullable=False),
    Column("line", Integer, nullable=False),
    Column("atena_no", Text, nullable=False),
    Column("household_no", Text, nullable=False),
    Column("household_order", SmallInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_search", Text, nullable=False),
    Column("kana", Text),
    Column("kana_search", Text),
    Column("kana_confirmed", Boolean, nullable=False),
    Column("former_surname", Text),
    Column("birth", Text, nullable=False),
    Column("birth_date", Date),
    Column("sex", SmallInteger, nullable=False),
    Column("relation", Text, nullable=False),
    Column("postal_code", Text),
    Column("address", Text, nullable=False),
    Column("address_extra", Text),
    Column("address_search", Text, nullable=False),
    Column("became_resident", Text),
    Column("address_set", Text),
    Column("status", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("change_reason", Text),
    Column("change", Text),
    Column("change_date", Date),
    Column("core_updated_at", DateTime(timezone=True)),
    Column("row_hash", BigInteger, nullable=False),
    Column("source_hash", BigInteger),
    info={"staging": True},
)

attribute_staging = Table(
    "import_staging_attributes",
    TenantBase.metadata,
    Column("batch_id", BigInteger, nullable=False),
    Column("record", Integer, nullable=False),
    Column("line", Integer, nullable=False),
    Column("atena_no", Text, nullable=False),
    Column("item", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("start_date", Date),
    Column("end_date", Date),
    info={"staging": True},
)


class HouseholdStaging(TenantBase):
    """Household numbers an import touched (old and new), so only those households are re-derived."""

    __tablename__ = "import_staging_households"
    __table_args__ = (STAGING,)

    batch_id: Mapped[int] = mapped_column(primary_key=True)
    household_no: Mapped[str] = mapped_column(primary_key=True)


WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookDelivery(TenantBase):
    """One event for one endpoint (the outbox): written in the transaction that made the event
    happen, so it is sent if and only if that transaction committed; then retried with backoff
    until delivered or given up (``failed``). ``data`` holds ids only. An event for two endpoints
    is two rows with the same ``event_id`` (the ``webhook-id`` receivers dedupe on)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN {WEBHOOK_DELIVERY_STATUSES!r}", name="status"),
        UniqueConstraint("event_id", "endpoint"),
        Index(None, "next_attempt_at", postgresql_where=column("status") == "pending"),
        Index(None, "endpoint", "id"),
        Index(None, "occurred_at"),
    )

    id: Mapped[int] = id_column()
    event_id: Mapped[str]
    type: Mapped[str]
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    endpoint: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[dt.datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None]
    delivered_at: Mapped[dt.datetime | None]
