"""The counter (窓口): tickets, cases and their procedures, card reads, pre-applications.

Times are stored for the KPIs the cities report: 待ち時間 (ticket issued → called) and 処理時間
(procedure started → done), per counter and per department.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Date, Index, Integer, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, id_column


class Ticket(TenantBase):
    """番号札: issued at reception for one counter, numbered per counter and day (A-001 …)."""

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'called', 'serving', 'done', 'no_show', 'cancelled')", name="status"
        ),
        UniqueConstraint("office_id", "counter_id", "issued_on", "number"),
        Index(None, "office_id", "counter_id", "issued_on", "status"),
    )

    id: Mapped[int] = id_column()
    office_id: Mapped[str]
    counter_id: Mapped[str]
    issued_on: Mapped[dt.date] = mapped_column(Date)  # the service day (JST)
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str]  # what the visitor sees: prefix + number, e.g. A-012
    status: Mapped[str] = mapped_column(server_default="waiting")
    issued_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    called_at: Mapped[dt.datetime | None]
    called_by: Mapped[str | None]
    desk: Mapped[str | None]  # the window the visitor is called to (窓口番号)
    finished_at: Mapped[dt.datetime | None]
    case_id: Mapped[int | None]


class Case(TenantBase):
    """A visit (案件): who came, for which life events, the answers, the catalogue version used.

    ``version`` is the optimistic lock: a save names the version it was edited from, and a stale
    save is refused with a conflict instead of overwriting a colleague's work.
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'handed_over', 'paused', 'closed')", name="status"),
        CheckConstraint(
            "identified_by IS NULL OR identified_by IN ('card', 'qr', 'search', 'manual')",
            name="identified_by",
        ),
        Index(None, "status", "updated_at"),
        Index(None, "resident_id"),
        Index(None, "ticket_id"),
    )

    id: Mapped[int] = id_column()
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    status: Mapped[str] = mapped_column(server_default="open")
    ticket_id: Mapped[int | None]
    office_id: Mapped[str]
    counter_id: Mapped[str | None]
    resident_id: Mapped[int | None]
    household_no: Mapped[str | None]
    visitor_name: Mapped[str | None]  # someone not (yet) in the records: a family moving in
    household: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)  # described by hand
    identified_by: Mapped[str | None]
    events: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    event_date: Mapped[dt.date | None] = mapped_column(Date)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    catalogue_version_id: Mapped[int | None]
    pre_application_id: Mapped[int | None]
    note: Mapped[str | None]
    created_by: Mapped[str]
    updated_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[dt.datetime | None]  # the clerk began with the visitor
    closed_at: Mapped[dt.datetime | None]

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative hook


class CaseProcedure(TenantBase):
    """One procedure of a case, handed over (回付) to a department and worked from its queue."""

    __tablename__ = "case_procedures"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'handed_over', 'in_progress', 'done', 'cancelled')", name="status"
        ),
        UniqueConstraint("case_id", "procedure_id", "member_key"),
        Index(None, "department", "status", "handed_over_at"),
        Index(None, "status", "done_at"),  # what was finished today (queues, handling figures)
        Index(None, "case_id"),
    )

    id: Mapped[int] = id_column()
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    case_id: Mapped[int]
    procedure_id: Mapped[str]
    name: Mapped[str]
    department: Mapped[str]
    counter: Mapped[str | None]
    member_key: Mapped[str] = mapped_column(server_default="")  # "" for household procedures
    member_name: Mapped[str | None]
    reason: Mapped[str | None]
    confirm: Mapped[bool] = mapped_column(Boolean, server_default="false")  # 要確認 at determination
    status: Mapped[str] = mapped_column(server_default="pending")
    handed_over_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    started_by: Mapped[str | None]
    done_at: Mapped[dt.datetime | None]
    done_by: Mapped[str | None]
    note: Mapped[str | None]

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CardReader(TenantBase):
    """A counter PC's card reader agent, registered by the tenant administrator (token stored hashed)."""

    __tablename__ = "card_readers"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = id_column()
    name: Mapped[str]
    office_id: Mapped[str]
    counter_id: Mapped[str | None]
    token_prefix: Mapped[str]  # first characters, shown to tell tokens apart
    token_hash: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None]
    last_seen_at: Mapped[dt.datetime | None]


class CardRead(TenantBase):
    """券面事項（4情報）read at a counter, waiting for the clerk's screen to take it.

    Kept only until a case claims it or it expires (minutes): it is personal data with no other use.
    The My Number is never sent by the agent and has no column here.
    """

    __tablename__ = "card_reads"
    __table_args__ = (
        Index(None, "reader_id", "received_at"),
        UniqueConstraint("reader_id", "idempotency_key"),
    )

    id: Mapped[int] = id_column()
    reader_id: Mapped[int]
    name: Mapped[str]
    address: Mapped[str]
    birth: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[str]
    outside_jis0208: Mapped[bool] = mapped_column(Boolean, server_default="false")
    read_at: Mapped[dt.datetime | None]
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    claimed_case_id: Mapped[int | None]
    claimed_at: Mapped[dt.datetime | None]
    idempotency_key: Mapped[str | None]  # the agent's retry of one read is recognised, not stored twice


class PreApplication(TenantBase):
    """事前申請: what a resident entered at home; the QR code holds a signed reference to it."""

    __tablename__ = "pre_applications"
    __table_args__ = (UniqueConstraint("ref"), Index(None, "expires_at"))

    id: Mapped[int] = id_column()
    ref: Mapped[str]  # random, short; the QR code carries it signed
    events: Mapped[list[str]] = mapped_column(JSONB)
    event_date: Mapped[dt.date | None] = mapped_column(Date)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    applicant: Mapped[dict[str, Any]] = mapped_column(JSONB)  # name, kana, birth, address, phone
    household: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    certificates: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    case_id: Mapped[int | None]
