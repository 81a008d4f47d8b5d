"""Form editing by municipal staff (様式の編集): draft → approved → in force from its date.

Staff edit a form's definition (the same YAML as ``tenants/<id>/forms/<form>/form.yaml``) and its
template. Every save is checked the way tenant files are checked at start-up — YAML, the schema,
the template's syntax and the fields it names — and refused with the line and the reason, so a
broken form never reaches the counter. Approval is by a second person (four eyes): a form is a
legal document the city hands to residents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import record
from app.dates import JST
from app.dates.japanese import parse
from app.forms.definition import FormDefinition
from app.forms.fill import FormSubject, Person, fill
from app.forms.loader import FormSource
from app.forms.models import FormVersion
from app.forms.render import check_template, generic_template
from app.forms.service import content_hash
from app.forms.trial import TrialRefusal, trial_pdf
from app.tenancy.config import TenantConfig
from app.tenancy.loader import TenantConfigError, line_of, read_yaml_text

_MESSAGES = {
    "extra_forbidden": "この項目名は使えません",
    "missing": "必須の項目がありません",
    "string_too_short": "空にできません",
    "string_pattern_mismatch": "形式が正しくありません（英小文字で始まり、英小文字・数字・_ のみ）",
    "date_from_datetime_parsing": "日付は 2027-04-01 の形で書いてください",
    "date_parsing": "日付は 2027-04-01 の形で書いてください",
    "date_from_datetime_inexact": "日付は 2027-04-01 の形で書いてください",
    "list_type": "一覧（- で始まる行）で書いてください",
    "bool_parsing": "true か false で書いてください",
}


_YAML_REASONS = {
    "mapping values are not allowed here": "「:」の位置が正しくありません",
    "found character '\\t' that cannot start any token": "タブ文字は使えません。空白で字下げしてください",
    "expected ',' or ']', but got '<stream end>'": "「[」が閉じられていません",
}


@dataclass(frozen=True)
class EditProblem:
    """One reason a draft is refused: which part (定義 or テンプレート), the line, the reason."""

    part: str  # "definition" | "template" | "effective_from"
    line: int | None
    message: str

    def __str__(self) -> str:
        part = {"definition": "定義", "template": "テンプレート", "effective_from": "適用開始日"}[self.part]
        return f"{part} {self.line}行目: {self.message}" if self.line else f"{part}: {self.message}"


class FormEditError(ValueError):
    def __init__(self, problems: list[EditProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _format_loc(loc: tuple[str | int, ...]) -> str:
    return "".join(
        f"[{p + 1}番目]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(loc)
    )


def parse_draft(form_id: str, definition_text: str, template_text: str | None) -> FormSource:
    """A draft as staff typed it, or FormEditError with every problem found (line and reason)."""
    try:
        source = read_yaml_text(definition_text, "form.yaml")
    except TenantConfigError as exc:
        issue = exc.issues[0]
        cause = exc.__cause__
        reason = str(getattr(cause, "problem", None) or getattr(cause, "context", None) or "")
        if reason.startswith("duplicate key"):
            reason = "同じ項目名が2回あります"
        detail = f"（{_YAML_REASONS.get(reason, reason)}）" if reason else ""
        raise FormEditError(
            [EditProblem("definition", issue.line, f"YAML の書き方に誤りがあります{detail}")]
        ) from exc
    if not isinstance(source.data, dict):
        raise FormEditError([EditProblem("definition", 1, "項目名: 値 の形で書いてください")])
    try:
        definition = FormDefinition.model_validate(source.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            message = _MESSAGES.get(err["type"], err["msg"].removeprefix("Value error, "))
            where = _format_loc(loc)
            problems.append(
                EditProblem(
                    "definition", line_of(source.node, loc), f"{where}: {message}" if where else message
                )
            )
        raise FormEditError(problems) from exc
    problems = []
    if definition.id != form_id:
        problems.append(
            EditProblem(
                "definition", line_of(source.node, ("id",)), f"id は「{form_id}」のままにしてください"
            )
        )
    template = template_text if template_text and template_text.strip() else None
    if template is not None:
        ids = {f.id for f in definition.fields} | {t.id for t in definition.tables}
        problems += [EditProblem("template", p.line, p.message) for p in check_template(template, ids)]
    if problems:
        raise FormEditError(problems)
    # The template travels with the version row; the file name only matters for tenant folders.
    definition = definition.model_copy(update={"template": "template.html" if template else None})
    return FormSource(definition=definition, template=template)


def sample_subject(config: TenantConfig) -> FormSubject:
    """見本: a household whose names test the print (MJ characters, an IVS, a long 方書)."""
    office = config.tenant.offices[0]
    address = office.address or f"{config.tenant.prefecture}{config.tenant.name}"
    people = [
        Person(
            "見本\u3000太郎",
            "ミホン タロウ",
            parse("1975-04-01"),
            1,
            "世帯主",
            None,
            address,
            "見本マンション東棟一二三号室",
            "000000000000001",
            "000000001",
        ),
        Person("見本\u3000﨑子", "ミホン サキコ", parse("1978-11-03"), 2, "妻", None, address),
        Person("見本\u3000𠮷男", "ミホン ヨシオ", parse("2019-05-01"), 1, "子", None, address),
    ]
    return FormSubject(
        tenant_name=config.tenant.name,
        tenant_code=config.tenant.code,
        office_name=office.name,
        office_address=office.address,
        resident=people[0],
        head=people[0],
        members=people,
        answers={},
        event_date=dt.datetime.now(JST).date(),
        event_name="見本",
    )


def preview_pdf(config: TenantConfig, source: FormSource) -> bytes:
    """The draft printed for the 見本 household (nothing is stored, no resident data is read).

    A template that fails while printing (a filter on the wrong kind of value, a missing key) is
    reported as a FormEditError with its line.
    """
    filled = fill(source.definition, sample_subject(config))
    try:
        return trial_pdf(filled, tenant_name=config.tenant.name, template=source.template)
    except TrialRefusal as exc:
        raise FormEditError([EditProblem("template", exc.line, exc.message)]) from exc


def current_text(session: Session, form_id: str) -> tuple[str, str, FormVersion | None]:
    """What the editor opens with: the newest version's definition (as YAML) and template."""
    row = session.scalars(
        select(FormVersion)
        .where(FormVersion.form_id == form_id, FormVersion.status != "withdrawn")
        .order_by(FormVersion.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return "", "", None
    definition = dict(row.definition)
    definition.pop("template", None)
    text = yaml.safe_dump(definition, allow_unicode=True, sort_keys=False, width=120)
    return text, row.template or "", row


def save_draft(
    session: Session,
    config: TenantConfig,
    form_id: str,
    definition_text: str,
    template_text: str | None,
    created_by: str,
    today: dt.date | None = None,
) -> FormVersion:
    source = parse_draft(form_id, definition_text, template_text)
    preview_pdf(config, source)  # a template that cannot print is refused now, not at the counter
    today = today or dt.datetime.now(JST).date()
    definition = source.definition
    if definition.effective_from < today:
        raise FormEditError(
            [
                EditProblem(
                    "effective_from", None, "適用開始日は本日以降にしてください（過去の版は作れません）"
                )
            ]
        )
    clash = session.scalars(
        select(FormVersion.id).where(
            FormVersion.form_id == form_id,
            FormVersion.version == definition.version,
            FormVersion.status != "withdrawn",
        )
    ).first()
    if clash is not None:
        raise FormEditError(
            [
                EditProblem(
                    "definition",
                    None,
                    f"版「{definition.version}」は既にあります。新しい版番号にしてください",
                )
            ]
        )
    row = FormVersion(
        form_id=form_id,
        version=definition.version,
        effective_from=definition.effective_from,
        definition=definition.model_dump(mode="json"),
        template=source.template,
        content_hash=content_hash(source),
        status="draft",
        origin="admin",
        created_by=created_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise FormEditError(
            [EditProblem("definition", None, "同じ内容の版が既にあります（変更がありません）")]
        ) from exc
    record(
        session,
        "form.draft_saved",
        subject_type="form",
        subject_id=form_id,
        details={"version": definition.version, "row": row.id},
    )
    return row


def approve(session: Session, version_row_id: int, approved_by: str) -> FormVersion:
    row = session.get(FormVersion, version_row_id)
    if row is None:
        raise FormEditError([EditProblem("definition", None, "この版は見つかりません")])
    if row.status != "draft":
        raise FormEditError([EditProblem("definition", None, "下書きの版だけを承認できます")])
    if row.created_by == approved_by:
        raise FormEditError([EditProblem("definition", None, "作成した職員とは別の職員が承認してください")])
    row.status = "approved"
    row.approved_by = approved_by
    row.approved_at = dt.datetime.now(dt.UTC)
    record(
        session,
        "form.approved",
        subject_type="form",
        subject_id=row.form_id,
        details={"version": row.version, "row": row.id, "effective_from": row.effective_from.isoformat()},
    )
    return row


def withdraw(session: Session, version_row_id: int, withdrawn_by: str) -> FormVersion:
    """取下げ: a draft, or an approved version not yet in force; a form in use stays as printed."""
    row = session.get(FormVersion, version_row_id)
    if row is None:
        raise FormEditError([EditProblem("definition", None, "この版は見つかりません")])
    today = dt.datetime.now(JST).date()
    if row.status == "withdrawn" or (row.status == "approved" and row.effective_from <= today):
        raise FormEditError([EditProblem("definition", None, "使用中・取下げ済みの版は取り下げられません")])
    row.status = "withdrawn"
    record(
        session,
        "form.withdrawn",
        subject_type="form",
        subject_id=row.form_id,
        details={"version": row.version, "row": row.id, "by": withdrawn_by},
    )
    return row


@dataclass(frozen=True)
class FormOverview:
    form_id: str
    name: str
    versions: int
    drafts: int
    latest: FormVersion


def form_overview(session: Session) -> list[FormOverview]:
    """Every form with its newest version and how many drafts wait for approval."""
    rows = list(session.scalars(select(FormVersion).order_by(FormVersion.form_id, FormVersion.id)))
    out: dict[str, FormOverview] = {}
    for row in rows:
        previous = out.get(row.form_id)
        out[row.form_id] = FormOverview(
            form_id=row.form_id,
            name=str(row.definition.get("name", row.form_id)),
            versions=(previous.versions if previous else 0) + 1,
            drafts=(previous.drafts if previous else 0) + (row.status == "draft"),
            latest=row,
        )
    return sorted(out.values(), key=lambda o: o.name)


def form_of_version(session: Session, row_id: int) -> str | None:
    row = session.get(FormVersion, row_id)
    return row.form_id if row else None


def versions(session: Session, form_id: str) -> list[FormVersion]:
    return list(
        session.scalars(
            select(FormVersion).where(FormVersion.form_id == form_id).order_by(FormVersion.id.desc())
        )
    )


def generic_template_text() -> str:
    """The generic layout, offered as a starting point when a form has no template of its own."""
    return generic_template()
