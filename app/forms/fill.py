"""Fill a form: resolve each field from its source, apply the clerk's corrections, validate.

Values are kept as the text printed on the form (和暦 dates, 男/女); problems are Japanese and
keyed by field id, so the form screen can put each message next to its field.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import cel

from app.dates.japanese import DateError, JapaneseDate, parse
from app.dates.wareki import format_wareki
from app.forms.definition import FormDefinition, FormField
from app.residents.normalize import is_kana

SEX = {1: "男", 2: "女", 9: ""}
_PHONE = re.compile(r"^[0-9０-９][0-9０-９\-－ー（）() ]{5,20}$")
_POSTAL = re.compile(r"^\d{3}-?\d{4}$")


@dataclass
class Person:
    """A resident as a form sees them (from the records or described by hand)."""

    name: str
    kana: str | None = None
    birth: JapaneseDate | None = None
    sex: int = 9
    relation: str = ""
    postal_code: str | None = None
    address: str = ""
    address_extra: str | None = None
    atena_no: str = ""
    household_no: str = ""
    former_surname: str | None = None

    def value(self, attr: str) -> str:
        raw = getattr(self, attr)
        if attr == "birth":
            return raw.wareki() if raw else ""
        if attr == "sex":
            return SEX.get(raw, "")
        return "" if raw is None else str(raw)


@dataclass
class FormSubject:
    """Everything a form's sources can read."""

    tenant_name: str
    tenant_code: str
    office_name: str = ""
    office_address: str = ""
    resident: Person | None = None
    head: Person | None = None
    members: list[Person] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    event_date: dt.date | None = None
    event_name: str = ""


@dataclass
class FilledForm:
    definition: FormDefinition
    values: dict[str, Any]  # field id -> printed text (checkbox: bool)
    tables: dict[str, list[dict[str, str]]]
    problems: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _from_source(spec: FormField, subject: FormSubject) -> Any:
    source = spec.source
    if source in ("input", "computed"):
        return spec.default or ("" if spec.type != "checkbox" else False)
    scope, _, attr = source.partition(".")
    if scope in ("resident", "head"):
        person = subject.resident if scope == "resident" else subject.head
        return person.value(attr) if person else ""
    if scope == "answer":
        value = subject.answers.get(attr)
        if spec.type == "checkbox":
            # Answers carried over from the guidance page are the form's strings ("yes"/"no"):
            # fill() reads those like a clerk's correction, so "no" is not a ticked box.
            return value if isinstance(value, str) else bool(value)
        if isinstance(value, list):
            return "、".join(map(str, value))
        if isinstance(value, dict):  # counts (証明書と通数): juminhyo 2、inkan 1
            return "、".join(f"{k} {v}" for k, v in value.items())
        return "" if value is None else str(value)
    if source == "event.date":
        return format_wareki(subject.event_date) if subject.event_date else ""
    if source == "event.name":
        return subject.event_name
    return {
        "tenant.name": subject.tenant_name,
        "tenant.code": subject.tenant_code,
        "office.name": subject.office_name,
        "office.address": subject.office_address,
    }[source]


def _check(spec: FormField, value: Any) -> str | None:
    """The Japanese problem with a value, or None."""
    if spec.type == "checkbox":
        return None
    text = str(value).strip()
    if not text:
        return f"{spec.label}を入力してください" if spec.required else None
    if spec.max_length and len(text) > spec.max_length:
        return f"{spec.label}は{spec.max_length}文字以内で入力してください（{len(text)}文字）"
    if spec.pattern and not re.fullmatch(spec.pattern, text):
        return f"{spec.label}の形式が正しくありません"
    if spec.type == "number" and not unicodedata.normalize("NFKC", text).lstrip("-").isdigit():
        return f"{spec.label}は数字で入力してください"
    if spec.type == "kana" and not is_kana(text):
        return f"{spec.label}はカナで入力してください"
    if spec.type == "postal_code" and not _POSTAL.fullmatch(unicodedata.normalize("NFKC", text)):
        return f"{spec.label}は7桁の数字で入力してください（例 644-0001）"
    if spec.type == "phone" and not _PHONE.fullmatch(text):
        return f"{spec.label}の電話番号が正しくありません"
    if (
        spec.type == "choice"
        and spec.choices
        and text not in {c.value for c in spec.choices} | {c.label for c in spec.choices}
    ):
        return f"{spec.label}は選択肢から選んでください"
    if spec.type == "date":
        try:
            parse(text)
        except DateError as exc:
            return f"{spec.label}: {exc.reason}"
    return None


def _typed(spec: FormField, value: Any) -> Any:
    """A value as CEL sees it in computed fields (numbers as int, checkboxes as bool)."""
    if spec.type == "checkbox":
        return bool(value)
    if spec.type == "number":
        text = unicodedata.normalize("NFKC", str(value)).strip()
        return int(text) if text.lstrip("-").isdigit() else 0
    return str(value)


def fill(
    definition: FormDefinition, subject: FormSubject, corrections: dict[str, Any] | None = None
) -> FilledForm:
    corrections = corrections or {}
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for spec in definition.fields:
        if spec.source == "computed":
            continue
        value = corrections[spec.id] if spec.id in corrections else _from_source(spec, subject)
        if spec.type == "checkbox" and isinstance(value, str):
            value = value.strip().lower() in ("1", "on", "true", "yes", "はい", "✓")
        if spec.type == "date" and isinstance(value, str) and value.strip():
            try:  # keep what the clerk typed, but print it in 和暦
                parsed = parse(value)
                value = parsed.wareki()
            except DateError:
                pass
        values[spec.id] = value if spec.type == "checkbox" else str(value)
        problem = _check(spec, values[spec.id])
        if problem:
            problems[spec.id] = problem
    if any(f.source == "computed" for f in definition.fields):
        context = cel.Context(
            {f.id: _typed(f, values.get(f.id, "")) for f in definition.fields if f.id in values}
        )
        for spec in definition.fields:
            if spec.source != "computed":
                continue
            try:
                result = cel.compile(spec.expression or "").execute(context)
            except (RuntimeError, ValueError, KeyError) as exc:
                problems[spec.id] = f"{spec.label}を計算できません（{exc}）"
                result = ""
            values[spec.id] = (
                f"{result:,}" if isinstance(result, int) and spec.type == "number" else str(result)
            )
    tables: dict[str, list[dict[str, str]]] = {
        table.id: [
            {str(column): person.value(column) for column in table.columns}
            for person in subject.members[: table.max_rows]
        ]
        for table in definition.tables
    }
    for table in definition.tables:
        if len(subject.members) > table.max_rows:
            problems[table.id] = (
                f"{table.label}は{table.max_rows}人までです（{len(subject.members)}人）。続紙を使ってください"
            )
    return FilledForm(definition, values, tables, problems)
