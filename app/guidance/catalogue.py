"""Procedure catalogues (手続きカタログ): ``tenants/<id>/guidance.yaml`` + ``procedures.yaml``.

``guidance.yaml`` names the catalogue version and the date it takes effect, the departments and
their counters, the life events and the questions a clerk may be asked; ``procedures.yaml`` lists
the procedures. Conditions are CEL expressions (``app.guidance.rules``): member facts under
``member`` (member-scope procedures), household collections such as ``children`` or ``elderly75``,
the event's subjects (``subjects``, ``others``, ``member.is_subject``) and each question's answer as
a top-level name (``wants_inkan``), so a reference to an unknown question is caught when the
catalogue is loaded.

Life-event codes are a contract (SPEC: ``tennyu`` … ``shomeisho``); ``kobetsu`` (個別申請: 亡失届,
現況届 and other applications that follow no life event) extends it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from app.validation import StrictModel

EventCode = Literal[
    "tennyu", "tenkyo", "tenshutsu", "shussei", "shibou", "konin", "rikon", "setai_henko", "shomeisho",
    "kobetsu",
]  # fmt: skip
EVENT_CODES: tuple[EventCode, ...] = (
    "tennyu", "tenkyo", "tenshutsu", "shussei", "shibou", "konin", "rikon", "setai_henko", "shomeisho",
    "kobetsu",  # extension of SPEC's list: applications outside life events (亡失届, 現況届 ...)
)  # fmt: skip
EVENT_NAMES = {
    "tennyu": "転入",
    "tenkyo": "転居",
    "tenshutsu": "転出",
    "shussei": "出生",
    "shibou": "死亡",
    "konin": "婚姻",
    "rikon": "離婚",
    "setai_henko": "世帯変更",
    "shomeisho": "証明書のみ",
    "kobetsu": "個別申請",
}
Identifier = Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_BRACES = re.compile(r"\{([^{}]*)\}")
CHOICE_TYPES = ("choice", "choices", "counts")
MAX_COUNT = 99  # copies of one certificate (counts answers)


class Department(StrictModel):
    """A department (担当課) and where the visitor finds it."""

    id: str = Identifier
    name: str = Field(min_length=1)
    counter: str = Field(min_length=1, description="窓口の場所 (e.g. 1階 3番窓口)")
    office: str | None = Field(default=None, description="office id from tenant.yaml, if not every office")


class LifeEvent(StrictModel):
    """A life event. ``subject`` names who it is about when that is not the whole household.

    Without ``subject`` every member is a subject of the event (転入: the people who move). With it
    (死亡: 亡くなった方) the clerk names the subjects; until then a rule that reads them is 要確認
    and the open question ``subject`` lists the household. ``subject_none`` is the wording of the
    choice "nobody" (婚姻: 氏の変わる方はいない) for events where nobody may be the subject.
    """

    code: EventCode
    name: str = Field(min_length=1)
    description: str = ""
    subject: str | None = Field(default=None, min_length=1, description="e.g. 亡くなった方")
    subject_none: str | None = Field(default=None, min_length=1, description="e.g. 氏の変わる方はいない")

    @model_validator(mode="after")
    def _none_needs_subject(self) -> Self:
        if self.subject_none and not self.subject:
            raise ValueError("subject_none needs subject")
        return self


class Choice(StrictModel):
    value: str = Field(min_length=1)
    label: str = Field(min_length=1)


class Question(StrictModel):
    """A question the clerk asks only when its answer changes the result."""

    id: str = Identifier
    text: str = Field(min_length=1)
    type: Literal["yes_no", "choice", "choices", "counts", "number"] = Field(
        description="counts: choices with a number each (証明書と通数), answered as {value: count}"
    )
    choices: list[Choice] | None = None
    events: list[EventCode] | None = Field(default=None, description="asked only for these events")
    ask_when: str | None = Field(default=None, description="CEL: ask only when this holds")
    help: str | None = None

    @model_validator(mode="after")
    def _choices(self) -> Self:
        if self.type in CHOICE_TYPES and not self.choices:
            raise ValueError(f"question {self.id!r} of type {self.type} needs choices")
        if self.type not in CHOICE_TYPES and self.choices:
            raise ValueError(f"question {self.id!r} of type {self.type} takes no choices")
        if self.choices:
            values = [c.value for c in self.choices]
            if len(set(values)) != len(values):
                raise ValueError(f"question {self.id!r} has a choice value twice")
        return self


class Item(StrictModel):
    """Something to bring (持ち物), optionally only when a condition holds."""

    text: str = Field(min_length=1)
    when: str | None = None


class Deadline(StrictModel):
    """A period after the event date, counted as the law counts (``app.dates.periods``).

    ``days`` or ``months``; ``count_first_day`` when the event day itself is the first day
    (戸籍法43条: 出生届 14日, 死亡届 7日). ``text`` replaces the computed wording; ``{date}`` in it is
    the last day in 和暦.
    """

    days: int | None = Field(default=None, ge=0, le=3650, description="days after the event date")
    months: int | None = Field(default=None, ge=1, le=120, description="months after the event date")
    count_first_day: bool = Field(default=False, description="the event day is day 1 (戸籍法43条)")
    text: str | None = Field(default=None, description="shown instead of the computed wording; {date}")

    @model_validator(mode="after")
    def _one_period(self) -> Self:
        if (self.days is None) == (self.months is None):
            raise ValueError("deadline needs either days or months")
        if self.count_first_day and self.days == 0:
            raise ValueError("a period counting the first day is at least 1 day")
        unknown = sorted({p for p in _BRACES.findall(self.text or "") if p != "date"})
        if unknown:
            raise ValueError(f"deadline text may use only {{date}}, not {unknown}")
        return self


class Procedure(StrictModel):
    id: str = Identifier
    name: str = Field(min_length=1)
    department: str
    events: list[EventCode] = Field(min_length=1)
    scope: Literal["household", "member"] = "household"
    when: str = Field(default="true", description="CEL condition")
    when_text: str = Field(min_length=1, description="the condition in words, for explanations")
    reason: str | None = Field(default=None, description="template: {name} placeholders from values")
    values: dict[str, str] = Field(default_factory=dict, description="placeholder -> CEL expression")
    deadline: Deadline | None = None
    fee: int | None = Field(default=None, ge=0, description="yen (per copy when quantity is given)")
    fee_text: str | None = None
    quantity: str | None = Field(
        default=None, description="CEL: how many (certificates['juminhyo']); the fee is per one"
    )
    unit: str = Field(default="通", min_length=1, description="counter word of the quantity")
    bring: list[Item] = Field(default_factory=list)
    forms: list[str] = Field(default_factory=list)
    notes: str | None = None

    @field_validator("bring", mode="before")
    @classmethod
    def _plain_items(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _placeholders(self) -> Self:
        used = set(_PLACEHOLDER.findall(self.reason or ""))
        missing = sorted(used - set(self.values) - {"name", "age"})
        if missing:
            raise ValueError(f"reason uses {missing} but values does not define them")
        return self


class GuidanceFile(StrictModel):
    """``guidance.yaml``: the catalogue's version, departments, events and questions."""

    version: str = Field(min_length=1)
    effective_from: dt.date
    departments: list[Department] = Field(min_length=1)
    events: list[LifeEvent] = Field(min_length=1)
    questions: list[Question] = Field(default_factory=list)


class ProceduresFile(StrictModel):
    """``procedures.yaml``."""

    procedures: list[Procedure] = Field(min_length=1)


class FormRef(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")
    name: str = Field(min_length=1)


class FormsIndex(StrictModel):
    """``forms/catalog.yaml``: the forms a catalogue may name (definitions arrive with issue 4)."""

    forms: list[FormRef] = Field(default_factory=list)


class Catalogue(StrictModel):
    """The whole catalogue of one tenant, as stored per version."""

    version: str
    effective_from: dt.date
    departments: list[Department]
    events: list[LifeEvent]
    questions: list[Question]
    procedures: list[Procedure]
    forms: list[FormRef] = Field(default_factory=list)

    @classmethod
    def combine(cls, guidance: GuidanceFile, procedures: ProceduresFile, forms: FormsIndex) -> Catalogue:
        return cls(**guidance.model_dump(), procedures=procedures.procedures, forms=forms.forms)

    def department(self, department_id: str) -> Department:
        return next(d for d in self.departments if d.id == department_id)


def reference_problems(catalogue: Catalogue) -> list[tuple[str, tuple[str | int, ...], str]]:
    """(file, key path, message) for every dangling or repeated reference."""
    problems: list[tuple[str, tuple[str | int, ...], str]] = []
    for section, file, ids in (
        ("departments", "guidance.yaml", [d.id for d in catalogue.departments]),
        ("events", "guidance.yaml", [e.code for e in catalogue.events]),
        ("questions", "guidance.yaml", [q.id for q in catalogue.questions]),
        ("procedures", "procedures.yaml", [p.id for p in catalogue.procedures]),
        ("forms", "forms/catalog.yaml", [f.id for f in catalogue.forms]),
    ):
        seen: set[str] = set()
        for i, value in enumerate(ids):
            if value in seen:
                problems.append((file, (section, i), f"ID「{value}」が重複しています"))
            seen.add(value)
    departments = {d.id for d in catalogue.departments}
    events = {e.code for e in catalogue.events}
    forms = {f.id for f in catalogue.forms}
    for i, p in enumerate(catalogue.procedures):
        if p.department not in departments:
            problems.append(
                (
                    "procedures.yaml",
                    ("procedures", i, "department"),
                    f"担当課「{p.department}」は guidance.yaml にありません",
                )
            )
        for j, event in enumerate(p.events):
            if event not in events:
                problems.append(
                    (
                        "procedures.yaml",
                        ("procedures", i, "events", j),
                        f"ライフイベント「{event}」は guidance.yaml にありません",
                    )
                )
        for j, form in enumerate(p.forms):
            if form not in forms:
                problems.append(
                    (
                        "procedures.yaml",
                        ("procedures", i, "forms", j),
                        f"様式「{form}」は forms/catalog.yaml にありません",
                    )
                )
    for i, q in enumerate(catalogue.questions):
        for j, event in enumerate(q.events or ()):
            if event not in events:
                problems.append(
                    (
                        "guidance.yaml",
                        ("questions", i, "events", j),
                        f"ライフイベント「{event}」は events にありません",
                    )
                )
    return problems
