"""Form definitions (申請書・届出書): ``tenants/<id>/forms/<form_id>/form.yaml`` (+ ``template.html``).

A form lists its fields, each with a *source*: where the value comes from when the clerk opens
the form for a visitor —

- ``resident.<field>``: the person the application is for (name, kana, birth, address …);
- ``head.<field>``: the household head; ``members``: every member, for forms with a member table
  (every moving member on one 住民異動届);
- ``answer.<question_id>``: an answer given during guidance;
- ``event.date`` / ``event.name``; ``tenant.name`` / ``office.name`` …;
- ``computed``: a CEL expression over the other fields (``copies * unit_fee``);
- ``input``: typed by the clerk or the visitor (validated).

The clerk may correct any field before printing; printed forms record the version. Versions carry
an effective date: a law or era change publishes a new version.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from app.validation import StrictModel

FieldType = Literal[
    "text", "multiline", "date", "number", "choice", "checkbox", "kana", "postal_code", "phone"
]
SOURCES = re.compile(
    r"^(input|computed|members|event\.(date|name)|tenant\.(name|code)|office\.(name|address)"
    r"|(resident|head)\.(name|kana|birth|sex|relation|postal_code|address|address_extra|atena_no|household_no|former_surname)"
    r"|answer\.[a-z][a-z0-9_]*)$"
)
MEMBER_FIELDS = ("name", "kana", "birth", "sex", "relation", "atena_no")


class Choice(StrictModel):
    value: str = Field(min_length=1)
    label: str = Field(min_length=1)


class FormField(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,60}$")
    label: str = Field(min_length=1)
    type: FieldType = "text"
    source: str = "input"
    expression: str | None = Field(default=None, description="CEL, for source: computed")
    required: bool = False
    max_length: int | None = Field(default=None, ge=1, le=2000)
    pattern: str | None = None
    choices: list[Choice] | None = None
    default: str | None = None
    help: str | None = None

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if not SOURCES.fullmatch(value):
            raise ValueError(f"unknown source {value!r}")
        return value

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid pattern {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.source == "computed") != (self.expression is not None):
            raise ValueError(f"field {self.id!r}: source computed needs an expression (and only it)")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"field {self.id!r}: a choice field needs choices")
        if self.source == "members":
            raise ValueError(f"field {self.id!r}: members is a table, declare it under tables")
        return self


class FormTable(StrictModel):
    """A repeating block: one row per household member (住民異動届 異動者欄)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,60}$")
    label: str
    source: Literal["members"] = "members"
    columns: list[Literal["name", "kana", "birth", "sex", "relation", "atena_no"]] = Field(min_length=1)
    max_rows: int = Field(default=6, ge=1, le=30)


class Section(StrictModel):
    title: str
    fields: list[str] = Field(min_length=1)


class FormDefinition(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    effective_from: dt.date
    orientation: Literal["portrait", "landscape"] = "portrait"
    title: str | None = Field(default=None, description="printed title; default: name")
    intro: str | None = Field(default=None, description="e.g. 御坊市長 様 / 届出の文言")
    fields: list[FormField] = Field(default_factory=list)
    tables: list[FormTable] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list, description="layout of the generic template")
    signature: bool = Field(default=True, description="a box for the signature (pen tablet or paper)")
    template: str | None = Field(default=None, description="file name of a custom template; None: generic")
    fee_item: str | None = Field(default=None, description="fees.yaml item charged per copy")
    export: bool = Field(default=False, description="accepted applications leave by the back linkage")

    @model_validator(mode="after")
    def _references(self) -> Self:
        ids = [f.id for f in self.fields] + [t.id for t in self.tables]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"field ids must be unique: {dupes}")
        known = set(ids)
        for i, section in enumerate(self.sections):
            unknown = [f for f in section.fields if f not in known]
            if unknown:
                raise ValueError(f"sections[{i}] names unknown fields {unknown}")
        return self

    def field(self, field_id: str) -> FormField:
        return next(f for f in self.fields if f.id == field_id)

    def layout(self) -> list[Section]:
        """Sections to print: as declared, or every field in order under one heading."""
        if self.sections:
            return list(self.sections)
        return (
            [Section(title="", fields=[f.id for f in self.fields] + [t.id for t in self.tables])]
            if self.fields or self.tables
            else []
        )
