"""事前申請: a resident enters the event and answers at home and brings a QR code to the counter.

The QR code holds only a short signed reference (``<ref>.<timestamp>.<signature>``), signed with a
key derived per tenant, so it cannot be forged, cannot be used in another city, and expires. The
resident's entries stay in the tenant's schema and are used once, by the case that scans them.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
from dataclasses import dataclass
from typing import Any

import segno
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.audit import record
from app.config import get_settings
from app.counter.cards import match_person
from app.counter.models import PreApplication
from app.counter.service import CounterError, now
from app.dates.japanese import DateError, parse
from app.guidance.catalogue import EVENT_NAMES
from app.guidance.engine import AnswerError, coerce_answers
from app.guidance.service import ActiveCatalogue
from app.residents.models import Resident
from app.residents.normalize import is_kana
from app.tenancy.config import TenantConfig

VALIDITY = dt.timedelta(days=14)
MAX_MEMBERS = 10


def _signer(tenant_id: str) -> TimestampSigner:
    key = get_settings().secret_key.get_secret_value() or "development-only"
    return TimestampSigner(key, salt=f"madoguchi.preapply.{tenant_id}")


@dataclass
class PreApplicationInput:
    """What the resident's page sends, field by field (so errors can name the field)."""

    event: str
    event_date: str
    answers: dict[str, Any]
    name: str
    kana: str
    birth: str
    address: str
    phone: str
    certificate: str = ""
    copies: str = ""
    purpose: str = ""


def create(
    session: Session, config: TenantConfig, catalogue: ActiveCatalogue, data: PreApplicationInput
) -> tuple[PreApplication, str]:
    """Store the entries; return the record and the text the QR code carries."""
    problems: dict[str, str] = {}
    if data.event not in EVENT_NAMES or data.event not in {
        e.code for e in catalogue.compiled.catalogue.events
    }:
        problems["event"] = "手続きの種類を選んでください"
    event_date = None
    if data.event_date.strip():
        try:
            event_date = dt.date.fromisoformat(data.event_date.strip())
        except ValueError:
            problems["event_date"] = "日付は カレンダーから選ぶか 2027-04-01 の形で入力してください"
    answers: dict[str, Any] = {}
    try:
        answers = coerce_answers(catalogue.compiled, data.answers)
    except AnswerError as exc:
        problems[f"q_{exc.question}"] = str(exc)
    name = " ".join(data.name.split())
    if not name or len(name) > 60:
        problems["name"] = "お名前を入力してください（60文字まで）"
    if data.kana.strip() and not is_kana(data.kana):
        problems["kana"] = "フリガナはカタカナまたはひらがなで入力してください"
    elif len(data.kana.strip()) > 60:
        problems["kana"] = "フリガナは60文字までです"
    birth_text = ""
    if data.birth.strip():
        try:
            birth_text = parse(data.birth.strip()).wareki()
        except DateError as exc:
            problems["birth"] = f"生年月日: {exc.reason}"
    if len(data.address) > 200:
        problems["address"] = "住所は200文字までです"
    if data.phone.strip() and not all(c.isdigit() or c in "-－ ()（）" for c in data.phone.strip()):
        problems["phone"] = "電話番号は数字とハイフンで入力してください"
    elif len(data.phone.strip()) > 20:
        problems["phone"] = "電話番号は20文字までです"
    certificates = []
    if data.certificate:
        if data.certificate not in config.fees.fees:
            problems["certificate"] = "証明書の種類を選んでください"
        try:
            copies = int(data.copies or "1")
        except ValueError:
            copies = 0
        if not 1 <= copies <= 10:
            problems["copies"] = "通数は1〜10で入力してください"
        if not data.purpose.strip():
            problems["purpose"] = "使用目的を入力してください"
        elif len(data.purpose.strip()) > 100:
            problems["purpose"] = "使用目的は100文字までです"
        certificates.append(
            {"certificate": data.certificate, "copies": copies, "purpose": data.purpose.strip()}
        )
    if problems:
        raise PreApplicationError(problems)
    pre = PreApplication(
        ref=secrets.token_urlsafe(9),
        events=[data.event],
        event_date=event_date,
        answers=answers,
        applicant={
            "name": name,
            "kana": data.kana.strip(),
            "birth": birth_text,
            "birth_input": data.birth.strip(),
            "address": data.address.strip(),
            "phone": data.phone.strip(),
        },
        household=[],
        certificates=certificates,
        expires_at=now() + VALIDITY,
    )
    session.add(pre)
    session.flush()
    return pre, _signer(config.tenant.id).sign(pre.ref).decode()


def purge_expired(session: Session, before: dt.datetime | None = None) -> int:
    """Delete the pre-applications whose QR codes can no longer be used; returns how many.

    They hold what a resident typed at home (name, birth date, address, phone), kept only as long as
    it has a use: until the code expires (``VALIDITY``). A case that scanned one copied its events
    and answers and identified the resident, so nothing a case shows is lost. The count is written
    to the operation log; the entries themselves are not (they would outlive their purpose there).
    """
    cutoff = before or now()
    result = session.execute(delete(PreApplication).where(PreApplication.expires_at < cutoff))
    deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if deleted:
        record(session, "preapplication.purged", subject_type="pre_applications",
               details={"deleted": deleted, "expired_before": cutoff.isoformat()})  # fmt: skip
    return deleted


class PreApplicationError(ValueError):
    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("入力に誤りがあります")


def qr_svg(text: str) -> str:
    """The QR code as inline SVG (scales cleanly on any phone)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def resolve(session: Session, tenant_id: str, scanned: str) -> PreApplication:
    """The pre-application a scanned QR code names, or CounterError saying why not."""
    text = scanned.strip()
    try:
        ref = _signer(tenant_id).unsign(text, max_age=int(VALIDITY.total_seconds())).decode()
    except SignatureExpired as exc:
        raise CounterError("qr", "この事前申請は有効期限が切れています。窓口で改めてお伺いします") from exc
    except BadSignature as exc:
        raise CounterError("qr", "この QR コードは読み取れないか、この市の事前申請ではありません") from exc
    pre = session.scalars(select(PreApplication).where(PreApplication.ref == ref)).first()
    if pre is None or pre.expires_at < now():
        raise CounterError("qr", "この事前申請は見つからないか、有効期限が切れています")
    return pre


def use(session: Session, pre: PreApplication, case_id: int) -> None:
    if pre.case_id not in (None, case_id):
        raise CounterError("qr", "この事前申請は別の案件で使われています")
    pre.case_id, pre.used_at = case_id, now()
    record(session, "preapplication.used", subject_type="case", subject_id=case_id, details={"pre": pre.id})


def matching_resident(session: Session, config: TenantConfig, pre: PreApplication) -> Resident | None:
    """The one resident the applicant certainly is (name, birth date and address all agree), if any."""
    applicant = pre.applicant
    try:
        birth = parse(str(applicant.get("birth_input", ""))).gregorian
    except DateError:
        return None
    matches = match_person(
        session, config, str(applicant.get("name", "")), birth, str(applicant.get("address", ""))
    )
    exact = [m for m in matches if m.level == "一致"]
    return exact[0].resident if len(exact) == 1 else None
