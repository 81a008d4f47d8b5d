"""Forms at the counter: the version in force, filled from the records, printed, submitted.

Every print and every submission of a form filled with resident data is audit-logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from app import storage
from app.audit import record
from app.dates import JST
from app.dates.japanese import DateError, JapaneseDate, parse
from app.forms.definition import FormDefinition
from app.forms.fill import FilledForm, FormSubject, Person, fill
from app.forms.loader import FormSource
from app.forms.models import Application, CertificateRequest, Delivery, ExportBatch, FormVersion
from app.forms.render import render_pdf
from app.linkage.webhooks import emit
from app.residents.models import Resident
from app.tenancy.config import TenantConfig
from app.tenancy.service import TenantRecord


class FormInputError(ValueError):
    """Bad input; ``field`` names the field (``resident_id``, ``values.phone`` …), Japanese message."""

    def __init__(self, field: str, message: str, problems: dict[str, str] | None = None):
        self.field = field
        self.problems = problems or {}
        super().__init__(message)


def content_hash(source: FormSource) -> str:
    return dumped_content_hash(source.model_dump(mode="json"))


def dumped_content_hash(dumped: dict[str, Any]) -> str:
    """``content_hash`` of a form already dumped with ``model_dump(mode="json")``."""
    payload = json.dumps(dumped, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class ActiveForm:
    row_id: int
    definition: FormDefinition
    template: str | None


def _in_force(as_of: dt.date) -> Select[FormVersion]:
    """Each form's approved version in force on ``as_of`` (latest effective date, then latest stored)."""
    return (
        select(FormVersion)
        .where(FormVersion.status == "approved", FormVersion.effective_from <= as_of)
        .order_by(FormVersion.form_id, FormVersion.effective_from.desc(), FormVersion.id.desc())
    )


def active_form(session: Session, form_id: str, as_of: dt.date | None = None) -> ActiveForm:
    """The approved version of ``form_id`` in force on ``as_of`` (latest effective date wins)."""
    as_of = as_of or dt.datetime.now(JST).date()
    row = session.scalars(_in_force(as_of).where(FormVersion.form_id == form_id).limit(1)).first()
    if row is None:
        raise FormInputError(
            "form_id", f"様式「{form_id}」はありません（または {as_of.isoformat()} に使える版がありません）"
        )
    return ActiveForm(row.id, FormDefinition.model_validate(row.definition), row.template)


def list_forms(session: Session, as_of: dt.date | None = None) -> list[ActiveForm]:
    """Every form with a version in force, by id (one query; forms with only future or draft
    versions are left out)."""
    as_of = as_of or dt.datetime.now(JST).date()
    rows = session.scalars(_in_force(as_of).ext(distinct_on(FormVersion.form_id)))
    return [ActiveForm(row.id, FormDefinition.model_validate(row.definition), row.template) for row in rows]


def form_names(session: Session, as_of: dt.date | None = None) -> dict[str, str]:
    """Form id → name of the version in force, for links and lists: one query, no definition parsed
    (the case screen shows them on every load)."""
    as_of = as_of or dt.datetime.now(JST).date()
    query = (
        _in_force(as_of)
        .ext(distinct_on(FormVersion.form_id))
        .with_only_columns(FormVersion.form_id, FormVersion.definition["name"].astext)
    )
    return {form_id: name for form_id, name in session.execute(query)}


def _person(row: Resident) -> Person:
    return Person(
        name=row.name,
        kana=row.kana,
        birth=JapaneseDate.from_json(row.birth),
        sex=row.sex,
        relation=row.relation,
        postal_code=row.postal_code,
        address=row.address,
        address_extra=row.address_extra,
        atena_no=row.atena_no,
        household_no=row.household_no,
        former_surname=row.former_surname,
    )


def subject_for_resident(
    session: Session,
    config: TenantConfig,
    resident_id: int,
    *,
    answers: dict[str, Any] | None = None,
    event_date: dt.date | None = None,
    event_name: str = "",
) -> FormSubject:
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise FormInputError("resident_id", f"住民 {resident_id} は見つかりません")
    members = list(
        session.scalars(
            select(Resident)
            .where(Resident.household_no == resident.household_no, Resident.status == "住民")
            .order_by(Resident.household_order, Resident.id)
        )
    ) or [resident]
    head = next((m for m in members if m.relation == "世帯主"), members[0])
    office = config.tenant.offices[0]
    return FormSubject(
        tenant_name=config.tenant.name,
        tenant_code=config.tenant.code,
        office_name=office.name,
        office_address=office.address,
        resident=_person(resident),
        head=_person(head),
        members=[_person(m) for m in members],
        answers=answers or {},
        event_date=event_date,
        event_name=event_name,
    )


def subject_for_household(config: TenantConfig, household: Any, **kwargs: Any) -> FormSubject:
    """A household described in the request (a family moving in is not in the records yet)."""
    if not isinstance(household, list) or not household:
        raise FormInputError("household", "世帯員を1人以上指定してください")
    people = []
    for i, item in enumerate(household):
        if not isinstance(item, dict) or not str(item.get("name", "")).strip():
            raise FormInputError(f"household[{i}].name", f"{i + 1}人目の氏名がありません")
        try:
            birth = parse(str(item["birth"])) if item.get("birth") else None
        except DateError as exc:
            raise FormInputError(
                f"household[{i}].birth", f"{item['name']}さんの生年月日: {exc.reason}"
            ) from exc
        people.append(
            Person(
                name=str(item["name"]),
                kana=item.get("kana"),
                birth=birth,
                sex=int(item.get("sex", 9)),
                relation=str(item.get("relation", "")),
                postal_code=item.get("postal_code"),
                address=str(item.get("address", "")),
                address_extra=item.get("address_extra"),
            )
        )
    office = config.tenant.offices[0]
    return FormSubject(
        tenant_name=config.tenant.name,
        tenant_code=config.tenant.code,
        office_name=office.name,
        office_address=office.address,
        resident=people[0],
        head=next((p for p in people if p.relation == "世帯主"), people[0]),
        members=people,
        **kwargs,
    )


def prepare(
    session: Session, form_id: str, subject: FormSubject, corrections: dict[str, Any] | None
) -> tuple[ActiveForm, FilledForm]:
    form = active_form(session, form_id)
    unknown = sorted(set(corrections or {}) - {f.id for f in form.definition.fields})
    if unknown:
        raise FormInputError(f"values.{unknown[0]}", f"項目「{unknown[0]}」はこの様式にありません")
    return form, fill(form.definition, subject, corrections)


def print_form(
    session: Session,
    config: TenantConfig,
    form_id: str,
    subject: FormSubject,
    corrections: dict[str, Any] | None = None,
    resident_id: int | None = None,
    signature_png: bytes | None = None,
) -> tuple[FilledForm, bytes]:
    """The PDF of a filled form (preview or print); printing resident data is audit-logged."""
    form, filled = prepare(session, form_id, subject, corrections)
    pdf = render_pdf(
        filled, tenant_name=config.tenant.name, template=form.template, signature_png=signature_png
    )
    if resident_id is not None:
        record(
            session,
            "form.printed",
            subject_type="resident",
            subject_id=resident_id,
            details={"form": form_id, "version": form.definition.version},
        )
    return filled, pdf


def submit(
    session: Session,
    tenant: TenantRecord,
    config: TenantConfig,
    form_id: str,
    subject: FormSubject,
    *,
    created_by: str,
    corrections: dict[str, Any] | None = None,
    resident_id: int | None = None,
    case_ref: str | None = None,
    signature_png: bytes | None = None,
) -> Application:
    """Record an application: the values as printed, the version, the PDF in object storage."""
    form, filled = prepare(session, form_id, subject, corrections)
    if not filled.ok:
        raise FormInputError("values", "入力に誤りがあります", filled.problems)
    pdf = render_pdf(
        filled, tenant_name=config.tenant.name, template=form.template, signature_png=signature_png
    )
    application = Application(
        form_id=form_id,
        form_version_id=form.row_id,
        form_version=form.definition.version,
        resident_id=resident_id,
        case_ref=case_ref,
        data={"values": filled.values, "tables": filled.tables},
        created_by=created_by,
        pdf_sha256=hashlib.sha256(pdf).hexdigest(),
    )
    session.add(application)
    session.flush()
    application.pdf_key = storage.tenant_key(tenant.id, "applications", f"{application.id}.pdf")
    storage.put(application.pdf_key, pdf, "application/pdf")
    if signature_png is not None:
        application.signature_key = storage.tenant_key(tenant.id, "signatures", f"{application.id}.png")
        storage.put(application.signature_key, signature_png, "image/png")
    record(
        session,
        "application.submitted",
        subject_type="resident" if resident_id else "application",
        subject_id=resident_id or application.id,
        details={"application": application.id, "form": form_id, "version": form.definition.version},
    )
    emit(session, "application.submitted", application_id=application.id, form_id=form_id,
         form_version=form.definition.version, case_ref=case_ref)  # fmt: skip
    return application


def accept(session: Session, application_id: int, accepted_by: str) -> Application:
    """受理: the application may now leave by the back linkage."""
    application = session.get(Application, application_id)
    if application is None:
        raise FormInputError("application_id", f"申請 {application_id} は見つかりません")
    if application.status != "submitted":
        raise FormInputError(
            "application_id", f"申請 {application_id} は受理できる状態ではありません（{application.status}）"
        )
    application.status = "accepted"
    application.accepted_at = dt.datetime.now(dt.UTC)
    application.accepted_by = accepted_by
    record(session, "application.accepted", subject_type="application", subject_id=application_id)
    emit(session, "application.accepted", application_id=application.id, form_id=application.form_id,
         form_version=application.form_version, case_ref=application.case_ref)  # fmt: skip
    return application


RELATIONS = ("本人", "同一世帯", "代理人")


def request_certificate(
    session: Session,
    config: TenantConfig,
    *,
    certificate: str,
    requester_name: str,
    requester_relation: str,
    purpose: str,
    copies: int,
    proxy_document: bool = False,
    subject_resident_id: int | None = None,
    application_id: int | None = None,
) -> CertificateRequest:
    """証明書交付請求 with the fee from the tenant's fee table."""
    if certificate not in config.fees.fees:
        known = "、".join(config.fees.fees) or "（手数料表が未設定です）"
        raise FormInputError("certificate", f"証明書「{certificate}」は手数料表にありません（{known}）")
    if requester_relation not in RELATIONS:
        raise FormInputError(
            "requester_relation", "請求者と対象者の関係は 本人・同一世帯・代理人 のいずれかです"
        )
    if requester_relation == "代理人" and not proxy_document:
        raise FormInputError("proxy_document", "代理人の請求には委任状が必要です")
    if not 1 <= copies <= 99:
        raise FormInputError("copies", "通数は1〜99で指定してください")
    if not requester_name.strip():
        raise FormInputError("requester_name", "請求者の氏名を入力してください")
    if not purpose.strip():
        raise FormInputError("purpose", "使用目的を入力してください")
    if subject_resident_id is not None and session.get(Resident, subject_resident_id) is None:
        raise FormInputError("subject_resident_id", f"住民 {subject_resident_id} は見つかりません")
    unit = config.fees.fees[certificate]
    request = CertificateRequest(
        application_id=application_id,
        certificate=certificate,
        subject_resident_id=subject_resident_id,
        requester_name=requester_name.strip(),
        requester_relation=requester_relation,
        proxy_document=proxy_document,
        purpose=purpose.strip(),
        copies=copies,
        unit_fee=unit,
        total_fee=unit * copies,
    )
    session.add(request)
    session.flush()
    record(
        session,
        "certificate.requested",
        subject_type="resident" if subject_resident_id else "certificate_request",
        subject_id=subject_resident_id or request.id,
        purpose=purpose.strip()[:100],
        details={"certificate": certificate, "copies": copies, "relation": requester_relation},
    )
    return request


def stored_form(session: Session, application: Application) -> tuple[FormDefinition, str | None]:
    """The definition and template of the version the application was printed with."""
    version = session.get(FormVersion, application.form_version_id)
    if version is None:  # versions are never deleted; a missing one is a broken database
        raise LookupError(f"form version {application.form_version_id} is missing")
    return FormDefinition.model_validate(version.definition), version.template


def application_document(session: Session, application_id: int, *, purpose: str | None = None) -> bytes:
    """The application's PDF as it was filed (reading it is audit-logged)."""
    application = session.get(Application, application_id)
    if application is None or application.pdf_key is None:
        raise FormInputError("application_id", f"申請 {application_id} は見つかりません")
    pdf = storage.get(application.pdf_key)
    record(
        session,
        "application.pdf_read",
        subject_type="resident" if application.resident_id else "application",
        subject_id=application.resident_id or application.id,
        purpose=purpose,
        details={"application": application.id, "form": application.form_id},
    )
    return pdf


def sign(
    session: Session, tenant: TenantRecord, config: TenantConfig, application_id: int, signature_png: bytes
) -> Application:
    """Attach the visitor's signature: stored as an image, and the PDF is printed again with it.

    Only a submitted, unsigned application can be signed, so an accepted record never changes.
    """
    application = session.get(Application, application_id)
    if application is None:
        raise FormInputError("application_id", f"申請 {application_id} は見つかりません")
    if application.status != "submitted":
        raise FormInputError("application_id", "受理済み・取下げ済みの申請には署名できません")
    if application.signature_key is not None:
        raise FormInputError("application_id", "この申請は署名済みです")
    definition, template = stored_form(session, application)
    if not definition.signature:
        raise FormInputError("application_id", "この様式には署名欄がありません")
    filled = FilledForm(
        definition, dict(application.data.get("values", {})), dict(application.data.get("tables", {})), {}
    )
    pdf = render_pdf(
        filled,
        tenant_name=config.tenant.name,
        template=template,
        signature_png=signature_png,
        issued=application.created_at.astimezone(JST).date(),  # the date it was filed, not re-printed
    )
    application.signature_key = storage.tenant_key(tenant.id, "signatures", f"{application.id}.png")
    storage.put(application.signature_key, signature_png, "image/png")
    application.pdf_key = storage.tenant_key(tenant.id, "applications", f"{application.id}-signed.pdf")
    storage.put(application.pdf_key, pdf, "application/pdf")
    application.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    record(
        session,
        "application.signed",
        subject_type="resident" if application.resident_id else "application",
        subject_id=application.resident_id or application.id,
        details={"application": application.id, "form": application.form_id},
    )
    return application


def deliveries_of(session: Session, application_id: int) -> list[dict[str, Any]]:
    """Where the application went by the back linkage (送付先, 状態, 日時, ファイル)."""
    rows = session.execute(
        select(Delivery.target, ExportBatch.status, ExportBatch.delivered_at, ExportBatch.id)
        .join(ExportBatch, ExportBatch.id == Delivery.export_batch_id)
        .where(Delivery.application_id == application_id)
        .order_by(Delivery.target)
    ).all()
    return [{"target": t, "status": s, "delivered_at": d, "batch": b} for t, s, d, b in rows]


def record_fill(session: Session, form_id: str, resident_id: int) -> None:
    """Opening a form filled from a resident's record is a read of personal data."""
    record(session, "form.filled", subject_type="resident", subject_id=resident_id, details={"form": form_id})


def record_application_view(session: Session, application: Application) -> None:
    record(
        session,
        "application.viewed",
        subject_type="resident" if application.resident_id else "application",
        subject_id=application.resident_id or application.id,
        details={"application": application.id, "form": application.form_id},
    )


def list_applications(
    session: Session, *, status: str | None = None, limit: int = 200
) -> list[tuple[Application, str | None]]:
    """The newest applications with the resident's name (listing them is audit-logged: the caller
    commits)."""
    query = (
        select(Application, Resident.name)
        .outerjoin(Resident, Resident.id == Application.resident_id)
        .order_by(Application.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Application.status == status)
    rows: list[tuple[Application, str | None]] = [(a, name) for a, name in session.execute(query).all()]
    # the residents shown under "results", so each one's access history lists this page
    shown = sorted({a.resident_id for a, _ in rows if a.resident_id is not None})
    record(session, "applications.listed", details={"status": status, "rows": len(rows), "results": shown})
    return rows


def awaiting_signature(session: Session, since: dt.datetime) -> list[Application]:
    """Filed since ``since``, not yet accepted, without a signature, on a form with a signature box."""
    rows = session.scalars(
        select(Application)
        .where(
            Application.status == "submitted",
            Application.signature_key.is_(None),
            Application.created_at >= since,
        )
        .order_by(Application.id.desc())
        .limit(50)
    )
    out = []
    for application in rows:
        definition, _ = stored_form(session, application)
        if definition.signature:
            out.append(application)
    return out


def applications_of_case(session: Session, case_ref: str) -> list[Application]:
    return list(
        session.scalars(select(Application).where(Application.case_ref == case_ref).order_by(Application.id))
    )
