"""Guidance for a visitor: pick the catalogue version, gather the household, determine, audit.

Compiled catalogues are cached per content hash. A ``tenants sync`` that stores a new version is
picked up on the next request without a restart: the lookup finds the new row and swaps in its
compiled form (the old object stays valid for requests already holding it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.dates import JST
from app.dates.japanese import DateError, JapaneseDate, parse
from app.guidance.catalogue import Catalogue
from app.guidance.engine import (
    AnswerError,
    CompiledCatalogue,
    Determination,
    coerce_answers,
    compile_catalogue,
    determine,
)
from app.guidance.facts import MemberInput
from app.guidance.models import CatalogueVersion
from app.linkage.validate import valid_relation
from app.observability.metrics import record_business
from app.residents.models import Resident, ResidentAttribute

_compiled: dict[str, CompiledCatalogue] = {}
_lock = threading.Lock()


class GuidanceInputError(ValueError):
    """Bad request input; ``field`` names the field (``household[1].birth``), message in Japanese."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ActiveCatalogue:
    id: int
    version: str
    effective_from: dt.date
    compiled: CompiledCatalogue


def active_catalogue(session: Session, as_of: dt.date, version_id: int | None = None) -> ActiveCatalogue:
    """The version in effect on ``as_of`` (latest effective date, then latest stored), or a pinned one."""
    stmt = select(
        CatalogueVersion.id,
        CatalogueVersion.version,
        CatalogueVersion.effective_from,
        CatalogueVersion.content_hash,
    )
    if version_id is not None:
        stmt = stmt.where(CatalogueVersion.id == version_id)
    else:
        stmt = stmt.where(CatalogueVersion.effective_from <= as_of).order_by(
            CatalogueVersion.effective_from.desc(), CatalogueVersion.id.desc()
        )
    row = session.execute(stmt.limit(1)).first()
    if row is None:
        raise GuidanceInputError(
            "catalogue_version" if version_id else "event_date",
            "指定のカタログ版はありません"
            if version_id
            else f"{as_of.isoformat()} に有効な手続きカタログがありません",
        )
    compiled = _compiled.get(row.content_hash)
    if compiled is None:
        content = session.scalar(select(CatalogueVersion.content).where(CatalogueVersion.id == row.id))
        catalogue = Catalogue.model_validate(content)
        fresh = compile_catalogue(catalogue, row.content_hash)
        with _lock:
            compiled = _compiled.setdefault(row.content_hash, fresh)
    return ActiveCatalogue(row.id, row.version, row.effective_from, compiled)


def catalogue_hash(catalogue: Catalogue) -> str:
    content = catalogue.model_dump(mode="json")
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def members_of_resident(session: Session, resident_id: int, event_date: dt.date) -> list[MemberInput]:
    """The resident's household as the records know it, with attributes in force on the event date."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise GuidanceInputError("resident_id", f"住民 {resident_id} は見つかりません")
    people = list(
        session.scalars(
            select(Resident)
            .where(Resident.household_no == resident.household_no, Resident.status == "住民")
            .order_by(Resident.household_order, Resident.id)
        )
    )
    if resident not in people:  # a person who left: guidance for them alone
        people = [resident]
    facts: dict[str, dict[str, list[str]]] = {}
    rows = session.scalars(
        select(ResidentAttribute).where(ResidentAttribute.atena_no.in_([p.atena_no for p in people]))
    )
    for attr in rows:
        if (attr.start_date is None or attr.start_date <= event_date) and (
            attr.end_date is None or event_date <= attr.end_date
        ):
            facts.setdefault(attr.atena_no, {}).setdefault(attr.item, []).append(attr.value)
    return [
        MemberInput(
            key=str(p.id),
            name=p.name,
            kana=p.kana,
            birth=JapaneseDate.from_json(p.birth),
            sex=p.sex,
            relation=p.relation,
            attributes=facts.get(p.atena_no, {}),
            resident_id=p.id,
        )
        for p in people
    ]


# What guidance reads of a described member; a case's household may carry more (address for forms).
MEMBER_KEYS = frozenset({"name", "kana", "birth", "sex", "relation", "attributes"})


def members_of_description(household: Any) -> list[MemberInput]:
    """A household described in the request (転入: from the 転出証明書 or the card read)."""
    if not isinstance(household, list) or not household:
        raise GuidanceInputError("household", "世帯員を1人以上指定してください")
    members = []
    for i, person in enumerate(household):
        where = f"household[{i}]"
        if not isinstance(person, dict):
            raise GuidanceInputError(where, f"{i + 1}人目の形式が正しくありません")
        unknown = sorted(set(person) - MEMBER_KEYS)
        if unknown:
            raise GuidanceInputError(
                f"{where}.{unknown[0]}", f"{i + 1}人目: 知らない項目 {unknown} があります"
            )
        name = str(person.get("name", "")).strip()
        if not name:
            raise GuidanceInputError(f"{where}.name", f"{i + 1}人目の氏名がありません")
        try:
            birth = parse(str(person.get("birth", "")))
        except DateError as exc:
            raise GuidanceInputError(f"{where}.birth", f"{name}さんの生年月日: {exc.reason}") from exc
        sex = person.get("sex", 9)
        sex = (
            {"男": 1, "女": 2, "male": 1, "female": 2}.get(sex, sex)
            if isinstance(sex, str) and not sex.isdigit()
            else int(sex)
        )
        if sex not in (1, 2, 9):
            raise GuidanceInputError(
                f"{where}.sex", f"{name}さんの性別は 1（男）、2（女）、9 で指定してください"
            )
        relation = valid_relation(str(person.get("relation", "")))
        if relation is None:
            raise GuidanceInputError(
                f"{where}.relation",
                f"{name}さんの続柄「{person.get('relation', '')}」が決められた値ではありません",
            )
        attributes = person.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str | list) for v in attributes.values()
        ):
            raise GuidanceInputError(
                f"{where}.attributes", f"{name}さんの資格は {{項目: 値}} の形で指定してください"
            )
        members.append(
            MemberInput(
                key=f"m{i + 1}",
                name=name,
                kana=person.get("kana"),
                birth=birth,
                sex=sex,
                relation=relation,
                attributes={k: v if isinstance(v, list) else [v] for k, v in attributes.items()},
            )
        )
    return members


@dataclass
class GuidanceResult:
    catalogue: ActiveCatalogue
    determination: Determination


def guide(
    session: Session,
    *,
    event: str,
    event_date: dt.date | None = None,
    resident_id: int | None = None,
    household: Any = None,
    answers: dict[str, Any] | None = None,
    catalogue_version: int | None = None,
    purpose: str | None = None,
) -> GuidanceResult:
    """Determine the procedures; reading a resident's household is audit-logged."""
    today = dt.datetime.now(JST).date()
    event_date = event_date or today
    if (resident_id is None) == (household is None):
        raise GuidanceInputError(
            "resident_id", "住民（resident_id）か世帯の内容（household）のどちらか一方を指定してください"
        )
    active = active_catalogue(session, today, catalogue_version)
    members = (
        members_of_resident(session, resident_id, event_date)
        if resident_id is not None
        else members_of_description(household)
    )
    try:
        typed = coerce_answers(active.compiled, answers or {})
        result = determine(active.compiled, event, event_date, members, typed)
    except AnswerError as exc:
        raise GuidanceInputError(
            f"answers.{exc.question}" if exc.question != "event" else "event", str(exc)
        ) from exc
    binding = session.info.get("binding")
    if binding is not None:
        record_business(binding.key, "guidance_determination", "to_confirm" if result.confirm else "ok")
    if resident_id is not None:
        record(
            session,
            "guidance.determined",
            subject_type="resident",
            subject_id=resident_id,
            purpose=purpose,
            details={
                "event": event,
                "catalogue_version": active.version,
                "members": [m.resident_id for m in members],
            },
        )
    return GuidanceResult(active, result)


def as_json(result: GuidanceResult) -> dict[str, Any]:
    d = result.determination
    return {
        "catalogue_version": result.catalogue.version,
        "catalogue_version_id": result.catalogue.id,
        "event": d.event,
        "event_name": d.event_name,
        "event_date": d.event_date.isoformat(),
        "members": d.members,
        "procedures": [e.as_dict() for e in d.needed],
        "to_confirm": [e.as_dict() for e in d.confirm],
        "not_needed": [e.as_dict() for e in d.not_needed],
        "open_questions": [q.__dict__ for q in d.open_questions],
    }
