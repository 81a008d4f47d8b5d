"""The operation log (操作ログ): one row per access to personal data or administrative act.

Read-only for the runtime role (SELECT; see ``app.db.provision.grant_tables``): entries are written
only by ``audit_append()``, with its owner's rights, under the tenant's chain lock (migration t0013),
and hash-chained per tenant (``app.audit.canonical``, docs/adr/0005-audit-chain.md): ``seq`` is
gap-free, ``prev_hash`` is the hash of entry ``seq - 1``, ``hash`` the hash of this entry's
canonical form. Entries older than the tenant's retention move to object storage; each move leaves
one ``audit_archives`` row, and only the schema owner writes those (``audit_delete_archived``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, SmallInteger, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, id_column, read_only

ACTOR_TYPES = ("staff", "provider", "api_client", "system", "device", "resident", "cli")
HEX64 = "'^[0-9a-f]{64}$'"


class AuditEntry(TenantBase):
    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(
            "actor_type IN ('staff', 'provider', 'api_client', 'system', 'device', 'resident', 'cli')",
            name="actor_type",
        ),
        CheckConstraint("seq > 0", name="seq_positive"),
        UniqueConstraint("seq"),
        Index(None, "subject_type", "subject_id"),
        Index(None, "occurred_at"),
        # Accesses to one resident inside search results and household lists (app.audit.pia).
        Index(None, "details", postgresql_using="gin", postgresql_ops={"details": "jsonb_path_ops"}),
        read_only(),
    )

    id: Mapped[int] = id_column()
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str]
    hash: Mapped[str]
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


class AuditArchive(TenantBase):
    """One archival cut: entries ``first_seq..last_seq`` left the table for object storage."""

    __tablename__ = "audit_archives"
    __table_args__ = (
        CheckConstraint("first_seq > 0 AND last_seq >= first_seq", name="range"),
        CheckConstraint(f"last_hash ~ {HEX64}", name="last_hash_hex"),
        UniqueConstraint("last_seq"),
        read_only(),
    )

    id: Mapped[int] = id_column()
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str]
    entries: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str]
    manifest_sha256: Mapped[str]
    archived_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class AuditRetention(TenantBase):
    """The tenant's retention (``sla.yaml`` audit.retention_years), written by ``tenants sync``.

    The deletion function reads it here, so the runtime role cannot shorten it.
    """

    __tablename__ = "audit_retention"
    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint("retention_years BETWEEN 1 AND 30", name="years"),
        read_only(),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    retention_years: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
