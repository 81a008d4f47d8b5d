"""Residents (住民), households (世帯) and attributes (資格・受給) as delivered by the core systems.

Column names follow the standard layout of shared/domain/residents.md. Every date the core system
may hold as 和暦 or 不詳日 reads as a structured value (``app.dates.japanese.JapaneseDate.to_json``)
and is stored as the text delivered (``StructuredDate``); a nullable Gregorian date sits beside the
birth and change dates for calculations and search. ``*_search`` columns hold the normalised
forms used by search (``app.residents.normalize``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from sqlalchemy import CheckConstraint, Date, Dialect, Index, SmallInteger, Text, TypeDecorator, func
from sqlalchemy.orm import Mapped, mapped_column

from app.dates.japanese import DateError, parse
from app.db.base import TenantBase, id_column


@lru_cache(maxsize=65_536)
def _structured(text: str) -> tuple[tuple[str, Any], ...]:
    try:
        return tuple(parse(text).to_json().items())
    except DateError:  # not expected: only parsed values are stored; keep the text, claim nothing
        return (("text", text), ("era", None), ("year", None), ("month", None), ("day", None),
                ("qualifier", None), ("date", None))  # fmt: skip


class StructuredDate(TypeDecorator[dict[str, Any]]):
    """A 和暦/不詳日 date stored as the text the core system delivered (``昭和50年 月日不詳``,
    ``S500229``, ``1975-06-01``: 10-30 bytes) and read as its structured value.

    The text alone determines the structure: every accepted form parses the same in ``auto`` style
    (the ISO, era-code and 和暦 patterns are disjoint), and only values that parsed are stored. This
    replaced a ~140-byte JSONB document per date (t0011), the main part of the residents row.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value["text"])

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else dict(_structured(value))


RESIDENT_STATUSES = ("住民", "転出", "死亡", "職権消除")
RESIDENT_KINDS = ("日本人", "外国人")


class Resident(TenantBase):
    __tablename__ = "residents"
    __table_args__ = (
        CheckConstraint("status IN ('住民', '転出', '死亡', '職権消除')", name="status"),
        CheckConstraint("kind IN ('日本人', '外国人')", name="kind"),
        CheckConstraint("sex IN (1, 2, 9)", name="sex"),
        Index(None, "household_no", "household_order"),
        # The *_search columns use the "C" collation: one plain btree index then serves both the
        # prefix LIKE and ORDER BY, so a 3-character kana search stops after the first page.
        Index(None, "kana_search", "id"),
        Index(None, "name_search", "id"),
        Index(None, "address_search", "id"),
        # Birth date then list order: a birth-date search stops after the page it shows (t0011).
        Index(None, "birth_date", "kana_search", "id"),
    )

    id: Mapped[int] = id_column()
    atena_no: Mapped[str] = mapped_column(unique=True)  # 宛名番号
    household_no: Mapped[str]  # 世帯番号
    household_order: Mapped[int] = mapped_column(SmallInteger)  # 世帯内順
    name: Mapped[str]  # 氏名 (MJ+, IVS kept)
    name_search: Mapped[str] = mapped_column(Text(collation="C"))
    kana: Mapped[str | None]  # 氏名フリガナ
    kana_search: Mapped[str | None] = mapped_column(Text(collation="C"))
    kana_confirmed: Mapped[bool]
    former_surname: Mapped[str | None]  # 旧氏
    birth: Mapped[dict[str, Any]] = mapped_column(StructuredDate)  # 生年月日 (structured)
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[int] = mapped_column(SmallInteger)  # ISO 5218
    relation: Mapped[str]  # 続柄
    postal_code: Mapped[str | None]
    address: Mapped[str]  # 住所
    address_extra: Mapped[str | None]  # 方書
    address_search: Mapped[str] = mapped_column(Text(collation="C"))
    became_resident: Mapped[dict[str, Any] | None] = mapped_column(StructuredDate)  # 住民となった日
    address_set: Mapped[dict[str, Any] | None] = mapped_column(StructuredDate)  # 住定日
    status: Mapped[str]  # 住民状態
    kind: Mapped[str]  # 住民種別
    change_reason: Mapped[str | None]  # 異動事由
    change: Mapped[dict[str, Any] | None] = mapped_column(StructuredDate)  # 異動日
    change_date: Mapped[dt.date | None] = mapped_column(Date)
    core_updated_at: Mapped[dt.datetime | None]  # 更新日時 in the core system
    row_hash: Mapped[int]  # of the delivered values: tells a changed row from a re-delivered one
    # Of the record's bytes as delivered in a full extract (app.linkage.reader.SourceHashing); the
    # next full extract skips a record with this hash unread. None: made by a changes file.
    source_hash: Mapped[int | None]
    last_batch_id: Mapped[int]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Household(TenantBase):
    """世帯: derived from the residents after each import (head, address, members still resident)."""

    __tablename__ = "households"

    id: Mapped[int] = id_column()
    household_no: Mapped[str] = mapped_column(unique=True)
    head_atena_no: Mapped[str | None]
    postal_code: Mapped[str | None]
    address: Mapped[str | None]
    member_count: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ResidentAttribute(TenantBase):
    """One fact from another core system (国保 加入, 児童手当 受給者 ...).

    One row per fact, so a new kind of fact needs no schema change.
    """

    __tablename__ = "resident_attributes"
    __table_args__ = (Index(None, "atena_no"), Index(None, "item", "value"))

    id: Mapped[int] = id_column()
    atena_no: Mapped[str]
    item: Mapped[str]  # 項目
    value: Mapped[str]  # 値
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    last_batch_id: Mapped[int]
