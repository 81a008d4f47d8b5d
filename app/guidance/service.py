"""Guidance for a visitor: pick the catalogue version, gather the household, determine, audit.

Compiled catalogues are cached per content hash (tenants with the same catalogue share one), the
least recently used dropped past ``tenant_cache_size``. A ``tenants sync`` that stores a new version is
picked up on the next request without a restart: the lookup finds the new row and swaps in its
compiled form (the old object stays valid for requests already holding it).

A version pinned by id (a running case keeps the version of its first determination) is looked up in
the database once per process: catalogue versions are only ever inserted, never changed, so
(tenant schema, version id) names one content for the life of the schema. The key carries the
schema, so one tenant's entry can never answer another tenant's lookup; dropping a tenant's schema
(``deprovision``) forgets its entries, since a schema made again numbers its versions from 1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass, replace
from typing import Any

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.config import get_settings
from app.dates import JST
from app.dates.japanese import DateError, JapaneseDate, parse
from app.guidance.catalogue import Catalogue
from app.guidance.engine import (
    NO_SUBJECT,
    AnswerError,
    CompiledCatalogue,
    Determination,
    coerce_answers,
    compile_catalogue,
    determine,
)
from app.guidance.facts import MemberInput
from app.guidance.models import CatalogueVersion
from app.guidance.rules import SUBJECT_QUESTION
from app.linkage.validate import valid_relation
from app.observability.metrics import record_business
from app.residents.models import Resident, ResidentAttribute

_compiled: LRUCache[str, CompiledCatalogue] | None = None  # made on first use, sized by the settings
_lock = threading.Lock()  # guards _compiled (an LRU reorders itself on every read) and _pinned


def _catalogues() -> LRUCache[str, CompiledCatalogue]:
    global _compiled
    if _compiled is None:
        _compiled = LRUCache(maxsize=get_settings().tenant_cache_size)
    return _compiled


# (tenant schema, catalogue version id) -> (version, effective from, content hash): see the module doc.
_pinned: dict[tuple[str, int], tuple[str, dt.date, str]] = {}


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
    binding = session.info.get("binding")
    key = (binding.schema, version_id) if binding is not None and version_id is not None else None
    pinned = _pinned.get(key) if key is not None else None
    if pinned is not None and version_id is not None:
        version, effective_from, content_hash = pinned
        with _lock:
            compiled = _catalogues().get(content_hash)
        if compiled is not None:
            return ActiveCatalogue(version_id, version, effective_from, compiled)
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
    with _lock:
        compiled = _catalogues().get(row.content_hash)
    if compiled is None:
        content = session.scalar(select(CatalogueVersion.content).where(CatalogueVersion.id == row.id))
        catalogue = Catalogue.model_validate(content)
        fresh = compile_catalogue(catalogue, row.content_hash)
        with _lock:
            compiled = _catalogues().setdefault(row.content_hash, fresh)
    if binding is not None:
        with _lock:
            _pinned[(binding.schema, row.id)] = (row.version, row.effective_from, row.content_hash)
    return ActiveCatalogue(row.id, row.version, row.effective_from, compiled)


def forget_pinned_catalogues(schema: str) -> None:
    """Forget the pinned-version entries of one tenant schema (it is being dropped)."""
    with _lock:
        for key in [k for k in _pinned if k[0] == schema]:
            del _pinned[key]


def catalogue_hash(catalogue: Catalogue) -> str:
    content = catalogue.model_dump(mode="json")
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def members_of_resident(
    session: Session, resident_id: int, event_date: dt.date, household: list[Resident] | None = None
) -> list[MemberInput]:
    """The resident's household as the records know it, with attributes in force on the event date.

    ``household``: the members living in the resident's household (``status == '住民'``, in household
    order) when the caller has just read them in this session (the counter's case screen shows them
    first); they are not read again.
    """
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise GuidanceInputError("resident_id", f"住民 {resident_id} は見つかりません")
    if household is not None and any(p.household_no != resident.household_no for p in household):
        raise ValueError("household: members of another household were passed")
    people = (
        list(household)
        if household is not None
        else list(
            session.scalars(
                select(Resident)
                .where(Resident.household_no == resident.household_no, Resident.status == "住民")
                .order_by(Resident.household_order, Resident.id)
            )
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
MEMBER_KEYS = frozenset({"name", "kana", "birth", "sex", "relation", "attributes", "subject"})


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
        subject = person.get("subject")
        if subject is not None and not isinstance(subject, bool):
            raise GuidanceInputError(
                f"{where}.subject", f"{name}さんの subject は true か false で指定してください"
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
                subject=subject,
            )
        )
    return members


def name_subjects(members: list[MemberInput], named: Any) -> list[MemberInput]:
    """The members with the event's subjects named: member keys or resident ids, or ``none``.

    ``named`` is a list (API ``subjects``, CLI ``--subject``) or the answer to the open question
    ``subject`` (a key, a comma-separated text or a list). Members left out are not subjects.
    """
    items = named if isinstance(named, list) else str(named).split(",")
    keys = [str(k).strip() for k in items if str(k).strip()]
    if not keys:
        return members
    if NO_SUBJECT in keys:
        if len(keys) > 1:
            raise GuidanceInputError("subjects", "「該当者なし」と世帯員を同時には選べません")
        return [replace(m, subject=False) for m in members]
    known = {m.key for m in members}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise GuidanceInputError("subjects", f"対象の方「{unknown[0]}」はこの世帯にいません")
    return [replace(m, subject=m.key in keys) for m in members]


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
    subjects: list[Any] | None = None,
    members: list[MemberInput] | None = None,
) -> GuidanceResult:
    """Determine the procedures; reading a resident's household is audit-logged.

    ``subjects`` names who the event is about (亡くなった方, 生まれた子, 氏が変わる方) by member key
    (the resident id for a household from the records, ``m1`` … for a described one) or ``["none"]``;
    the answer ``subject`` (the open question the determination asks when they are not named, as the
    counter records it) does the same. Without either, a described member's ``subject: true`` counts;
    the resident a household is looked up by is never taken as the subject by default: at the counter
    that is the visitor (届出人), usually not the person who died.

    ``members``: the household of ``resident_id`` as :func:`members_of_resident` returned it for this
    ``event_date`` in this session (a case with several events reads it once); the read is audited
    here all the same.
    """
    today = dt.datetime.now(JST).date()
    event_date = event_date or today
    if (resident_id is None) == (household is None):
        raise GuidanceInputError(
            "resident_id", "住民（resident_id）か世帯の内容（household）のどちらか一方を指定してください"
        )
    active = active_catalogue(session, today, catalogue_version)
    answers = dict(answers or {})
    named = answers.pop(SUBJECT_QUESTION, None)
    if subjects is not None:
        named = subjects
    if resident_id is not None:
        if members is None:
            members = members_of_resident(session, resident_id, event_date)
    else:
        members = members_of_description(household)
    if named is not None:
        members = name_subjects(members, named)
    try:
        typed = coerce_answers(active.compiled, answers)
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
                "subjects": [m.resident_id for m in members if m.subject],
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
        "subject_label": d.subject_label,
        "subjects": d.subjects,
        "fee_total": d.fee_total,
    }
