"""My Number Card reads at the counter: reader devices, the reads they post, matching to residents.

The agent on the counter PC (``agent/``) posts the card-face items (4情報: name, address, birth
date, sex) with a per-device token the tenant administrator issued. The clerk's screen takes the
newest read of its counter's readers; the visitor is matched on normalised name, birth date and
address — never on the My Number, which the agent does not read and this service has no place for.
Reads are personal data with one use: they are dropped once claimed or after a few minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.audit import record
from app.counter.models import CardRead, CardReader
from app.counter.service import CounterError, NotFound, now
from app.residents.models import Resident
from app.residents.normalize import normalize_address, normalize_name, variant_key
from app.tenancy.config import TenantConfig

TOKEN_PREFIX = "mdr_"  # noqa: S105 - a marker that says what a token is for, not a secret
READ_TTL = dt.timedelta(minutes=10)  # a read nobody took is stale: the visitor has left the counter


def _hash(token: str) -> str:
    # Tokens are 256-bit random strings, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def register_reader(
    session: Session,
    config: TenantConfig,
    *,
    name: str,
    office_id: str,
    counter_id: str | None,
    created_by: str,
) -> tuple[CardReader, str]:
    """A new reader device and its token; the token is shown once and stored only as a hash."""
    if not name.strip():
        raise CounterError("name", "装置の名前を入力してください（例: 市民課 3番窓口）")
    office = next((o for o in config.tenant.offices if o.id == office_id), None)
    if office is None:
        raise CounterError("office_id", f"庁舎「{office_id}」はありません")
    if counter_id and not any(c.id == counter_id for c in office.counters):
        raise CounterError("counter_id", f"窓口「{counter_id}」は{office.name}にありません")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    reader = CardReader(
        name=name.strip()[:100],
        office_id=office_id,
        counter_id=counter_id or None,
        token_prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=_hash(token),
        created_by=created_by,
    )
    session.add(reader)
    session.flush()
    record(session, "card_reader.registered", subject_type="card_reader", subject_id=reader.id,
           details={"name": reader.name, "counter": reader.counter_id})  # fmt: skip
    return reader, token


def revoke_reader(session: Session, reader_id: int, revoked_by: str) -> CardReader:
    reader = session.get(CardReader, reader_id)
    if reader is None:
        raise NotFound("読取装置")
    if reader.revoked_at is None:
        reader.revoked_at, reader.revoked_by = now(), revoked_by
        session.execute(delete(CardRead).where(CardRead.reader_id == reader_id))
        record(session, "card_reader.revoked", subject_type="card_reader", subject_id=reader.id)
    return reader


def readers(session: Session) -> list[CardReader]:
    return list(
        session.scalars(select(CardReader).order_by(CardReader.revoked_at.is_not(None), CardReader.name))
    )


def authenticate_reader(session: Session, token: str) -> CardReader | None:
    """The active reader holding ``token`` (None for unknown or revoked tokens)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    reader = session.scalars(select(CardReader).where(CardReader.token_hash == _hash(token))).first()
    if reader is None or reader.revoked_at is not None:
        return None
    reader.last_seen_at = now()
    return reader


@dataclass(frozen=True)
class CardFace:
    """The four items as the agent sent them, checked."""

    name: str
    address: str
    birth: dt.date | None
    sex: str
    outside_jis0208: bool
    read_at: dt.datetime | None


def parse_card_face(payload: Any) -> CardFace:
    """Validate the agent's JSON; CounterError names the field (Japanese)."""
    if not isinstance(payload, dict):
        raise CounterError("body", "JSON のオブジェクトを送ってください")
    name = str(payload.get("name") or "").strip()
    address = str(payload.get("address") or "").strip()
    if not name or len(name) > 100:
        raise CounterError("name", "氏名がないか、長すぎます")
    if not address or len(address) > 300:
        raise CounterError("address", "住所がないか、長すぎます")
    for field, value in (("name", name), ("address", address)):
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise CounterError(field, "制御文字を含む値は受け付けません")
    birth = None
    if payload.get("birth"):
        try:
            birth = dt.date.fromisoformat(str(payload["birth"]))
        except ValueError as exc:
            raise CounterError("birth", "生年月日は YYYY-MM-DD で送ってください") from exc
    sex = str(payload.get("sex") or "9")
    if sex not in ("1", "2", "9"):
        raise CounterError("sex", "性別は 1・2・9 のいずれかです")
    read_at = None
    if payload.get("read_at"):
        try:
            read_at = dt.datetime.fromisoformat(str(payload["read_at"]))
        except ValueError as exc:
            raise CounterError("read_at", "読取日時は ISO 8601 で送ってください") from exc
        if read_at.tzinfo is None:
            raise CounterError("read_at", "読取日時にはタイムゾーンを付けてください")
    return CardFace(name, address, birth, sex, bool(payload.get("outside_jis0208")), read_at)


def receive_read(
    session: Session, reader: CardReader, face: CardFace, idempotency_key: str | None = None
) -> CardRead:
    """Store a read; the same ``idempotency_key`` from the same reader returns the first one."""
    if idempotency_key is not None:
        existing = session.scalars(
            select(CardRead).where(
                CardRead.reader_id == reader.id, CardRead.idempotency_key == idempotency_key
            )
        ).first()
        if existing is not None:
            return existing
    purge_stale(session)
    read = CardRead(
        idempotency_key=idempotency_key,
        reader_id=reader.id,
        name=face.name,
        address=face.address,
        birth=face.birth,
        sex=face.sex,
        outside_jis0208=face.outside_jis0208,
        read_at=face.read_at,
    )
    session.add(read)
    session.flush()
    # No personal data in the audit details: the read itself is what was received.
    record(session, "card.read", subject_type="card_read", subject_id=read.id, details={"reader": reader.id})
    return read


def purge_stale(session: Session) -> None:
    """Drop reads nobody took in time, and claimed ones after a day (their case holds the result)."""
    at = now()
    session.execute(
        delete(CardRead).where(
            ((CardRead.claimed_case_id.is_(None)) & (CardRead.received_at < at - READ_TTL))
            | (CardRead.claimed_at < at - dt.timedelta(days=1))
        )
    )


def latest_read(
    session: Session, office_id: str, counter_id: str | None, since: dt.datetime
) -> CardRead | None:
    """The newest unclaimed read from a reader of this counter (or of the office when none is set)."""
    query = (
        select(CardRead)
        .join(CardReader, CardReader.id == CardRead.reader_id)
        .where(
            CardReader.office_id == office_id,
            CardReader.revoked_at.is_(None),
            CardRead.claimed_case_id.is_(None),
            CardRead.received_at >= max(since, now() - READ_TTL),
        )
        .order_by(CardRead.received_at.desc())
        .limit(1)
    )
    if counter_id:
        query = query.where((CardReader.counter_id == counter_id) | CardReader.counter_id.is_(None))
    return session.scalars(query).first()


@dataclass(frozen=True)
class Match:
    resident: Resident
    level: str  # "一致" | "候補"
    reasons: list[str]


def match(session: Session, config: TenantConfig, read: CardRead) -> list[Match]:
    """Residents the card may belong to (see ``match_person``)."""
    return match_person(session, config, read.name, read.birth, read.address, read.sex, read.outside_jis0208)


def match_person(
    session: Session,
    config: TenantConfig,
    name: str,
    birth: dt.date | None,
    address: str,
    sex: str = "9",
    outside_jis0208: bool = False,
) -> list[Match]:
    """Residents a person may be: the same birth date, then name and address compared.

    一致 needs name, birth date and address; anything less is a 候補 with what differs, for the clerk
    to decide (a family moving in has another address; a name outside JIS X 0208 may be stored
    with a substitute character).
    """
    if birth is None:
        return []
    variants = variant_key(config.residents.name_variants)
    ident = config.tenant
    wanted_name = normalize_name(name, variants)
    wanted_address = normalize_address(address, (ident.prefecture, ident.name))
    rows = session.scalars(
        select(Resident).where(Resident.birth_date == birth, Resident.status == "住民").limit(200)
    )
    out = []
    for resident in rows:
        same_name = resident.name_search == wanted_name
        same_address = bool(resident.address_search) and wanted_address.startswith(resident.address_search)
        same_sex = sex == "9" or str(resident.sex) == sex
        if not (same_name or same_address):
            continue
        reasons = []
        if not same_name:
            reasons.append(
                "氏名が異なります" + ("（券面の文字が JIS 外の可能性）" if outside_jis0208 else "")
            )
        if not same_address:
            reasons.append("住所が異なります（転入前・転居前の可能性）")
        if not same_sex:
            reasons.append("性別が異なります")
        level = "一致" if same_name and same_address and same_sex else "候補"
        out.append(Match(resident, level, reasons))
    out.sort(key=lambda m: (m.level != "一致", len(m.reasons), m.resident.id))
    return out[:10]


def claim(session: Session, read_id: int, case_id: int) -> CardRead:
    read = session.get(CardRead, read_id, with_for_update=True)
    if read is None:
        raise NotFound("カードの読取結果")
    if read.claimed_case_id not in (None, case_id):
        raise CounterError(
            "card_read", "この読取結果は別の案件で使われました。もう一度カードを読み取ってください"
        )
    read.claimed_case_id, read.claimed_at = case_id, now()
    return read
