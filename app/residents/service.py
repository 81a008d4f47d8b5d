"""Finding a visitor and showing their household (住民検索・世帯表示), with an audit record each time.

Queries are normalised by the same functions as the stored ``*_search`` columns
(``app.residents.normalize``), so hiragana, half-width kana, missing spaces and old/new character
forms all find the same person. Prefix matches use ``text_pattern_ops`` indexes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from app.audit import record
from app.config import get_settings
from app.dates.japanese import DateError, JapaneseDate, parse
from app.db import imports as sql
from app.residents.models import Household, Resident, ResidentAttribute
from app.residents.normalize import normalize_address, normalize_kana, normalize_name, variant_key
from app.tenancy.config import TenantConfig

MAX_LIMIT = 200
# What a result list shows (``summary``): a search reads only these columns, as plain rows, not
# the whole row as ORM objects (four structured dates, search keys, bookkeeping). Building 51
# full ``Resident`` objects cost more CPU than the query itself on a busy machine.
LIST_COLUMNS = (
    Resident.id, Resident.atena_no, Resident.name, Resident.kana, Resident.birth, Resident.sex,
    Resident.relation, Resident.household_no, Resident.postal_code, Resident.address,
    Resident.address_extra, Resident.status,
)  # fmt: skip


class SearchInputError(ValueError):
    """Invalid search input; ``field`` names the form field, the message is Japanese."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class SearchQuery:
    kana: str = ""
    name: str = ""
    birth: str = ""
    address: str = ""
    include_left: bool = False  # also 転出・死亡・職権消除
    limit: int = 50

    def criteria(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("kana", self.kana),
                ("name", self.name),
                ("birth", self.birth),
                ("address", self.address),
            )
            if v.strip()
        }


@dataclass(frozen=True)
class SearchResult:
    residents: list[Row[Any]]  # the LIST_COLUMNS, by name (``r.name``, ``r.kana`` ...)
    more: bool  # more matches than the limit


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def birth_from_text(text: str) -> dt.date:
    """A search birth date: ISO, 和暦 (令和8年5月1日, R080501); must be a calendar day."""
    try:
        value: JapaneseDate = parse(text.strip())
    except DateError as exc:
        raise SearchInputError("birth", f"生年月日: {exc.reason}") from exc
    if value.gregorian is None:
        raise SearchInputError("birth", "生年月日は年月日まで入力してください")
    return value.gregorian


def build_query(query: SearchQuery, config: TenantConfig) -> Select[Any]:
    criteria = query.criteria()
    if not criteria:
        raise SearchInputError("kana", "フリガナ・氏名・生年月日・住所のいずれかを入力してください")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise SearchInputError("limit", f"件数は1〜{MAX_LIMIT}で指定してください")
    stmt: Select[Any] = select(*LIST_COLUMNS)
    if query.kana.strip():
        kana = normalize_kana(query.kana)
        if not kana:
            raise SearchInputError("kana", "フリガナを入力してください")
        stmt = stmt.where(Resident.kana_search.like(_like_prefix(kana), escape="\\"))
    if query.name.strip():
        name = normalize_name(query.name, variant_key(config.residents.name_variants))
        stmt = stmt.where(Resident.name_search.like(_like_prefix(name), escape="\\"))
    if query.birth.strip():
        stmt = stmt.where(Resident.birth_date == birth_from_text(query.birth))
    if query.address.strip():
        ident = config.tenant
        address = normalize_address(query.address, (ident.prefecture, ident.name))
        stmt = stmt.where(Resident.address_search.like(_like_prefix(address), escape="\\"))
    if not query.include_left:
        stmt = stmt.where(Resident.status == "住民")
    # Index order (kana, then id): the first page comes straight off the index, however many match.
    order = Resident.name_search if query.name.strip() and not query.kana.strip() else Resident.kana_search
    if query.address.strip() and not (query.kana.strip() or query.name.strip()):
        order = Resident.address_search
    return stmt.order_by(order, Resident.id).limit(query.limit + 1)


def search(
    session: Session, config: TenantConfig, query: SearchQuery, purpose: str | None = None
) -> SearchResult:
    """Search and add the audit record (the caller commits, so both land together)."""
    rows = list(session.execute(build_query(query, config)).all())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    record(
        session,
        "resident.search",
        subject_type="resident",
        purpose=purpose,
        details={
            "criteria": query.criteria(),
            "include_left": query.include_left,
            "results": [r.id for r in rows],
        },
    )
    return SearchResult(rows, more)


@dataclass(frozen=True)
class ResidentView:
    resident: Resident
    household: Household | None
    members: list[Resident]
    attributes: list[ResidentAttribute]


def view(
    session: Session, resident_id: int, purpose: str | None = None, *, details: bool = True
) -> ResidentView | None:
    """One resident with their household members (世帯) and attributes; None if no such resident.

    ``details=False`` leaves out the household record and the attributes (the counter's case screen
    shows the resident and the members only, on every load).
    """
    resident = session.get(Resident, resident_id)
    if resident is None:
        return None
    members = list(
        session.scalars(
            select(Resident)
            .where(Resident.household_no == resident.household_no, Resident.status == "住民")
            .order_by(Resident.household_order, Resident.id)
        )
    )
    household, attributes = None, []
    if details:
        household = session.scalar(select(Household).where(Household.household_no == resident.household_no))
        attributes = list(
            session.scalars(
                select(ResidentAttribute)
                .where(ResidentAttribute.atena_no == resident.atena_no)
                .order_by(ResidentAttribute.item, ResidentAttribute.start_date)
            )
        )
    record(
        session,
        "resident.view",
        subject_type="resident",
        subject_id=resident.id,
        purpose=purpose,
        details={"household_no": resident.household_no, "members_shown": [m.id for m in members]},
    )
    return ResidentView(resident, household, members, attributes)


def summary(resident: Resident | Row[Any]) -> dict[str, Any]:
    """The fields a clerk sees in a result list (no attributes): a ``Resident`` or a search row."""
    birth = JapaneseDate.from_json(resident.birth)
    return {
        "id": resident.id,
        "atena_no": resident.atena_no,
        "name": resident.name,
        "kana": resident.kana,
        "birth": birth.gregorian,
        "birth_wareki": birth.wareki(),
        "sex": resident.sex,
        "relation": resident.relation,
        "household_no": resident.household_no,
        "postal_code": resident.postal_code,
        "address": resident.address,
        "address_extra": resident.address_extra,
        "status": resident.status,
    }


def reorder(session: Session) -> int:
    """Store the tenant's residents in kana order, so a kana search reads a few heap pages instead
    of one per person listed (maintenance after a first load or a season of imports).

    Waits for a running residents import (same advisory lock) and holds the table until the caller
    commits: searches of the tenant wait meanwhile. Returns how many residents were reordered.
    """
    sql.lock_imports(session, "residents", get_settings().import_statement_timeout_ms)
    return sql.reorder_residents(session)
