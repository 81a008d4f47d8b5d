"""Load ``tenants/<id>/forms/<form_id>/form.yaml`` (+ template) and ``fees.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from app.forms.definition import FormDefinition
from app.forms.render import check_template
from app.validation import StrictModel


class FormSource(StrictModel):
    """A form as stored per version: the definition and its template (None: the generic layout)."""

    definition: FormDefinition
    template: str | None = None


class FeeTable(StrictModel):
    """手数料: certificate and other fees in yen, per item (住民票の写し: 300)."""

    fees: dict[str, int] = Field(default_factory=dict)

    @field_validator("fees")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for item, yen in value.items():
            if yen < 0 or yen > 100_000:
                raise ValueError(f"fee of {item!r} must be between 0 and 100,000 yen")
        return value


def check_outbound(forms: list[FormSource], outbound: list[Any], path: Path, issue: Any) -> None:
    """Outbound targets name existing forms, fields and member tables (linkage.yaml)."""
    by_id = {f.definition.id: f.definition for f in forms}
    for i, target in enumerate(outbound):
        for j, form_id in enumerate(target.forms):
            definition = by_id.get(form_id)
            if definition is None:
                issue(None, path, ("outbound", i, "forms", j), f"様式「{form_id}」は forms/ にありません")
                continue
            fields = {f.id for f in definition.fields}
            for k, column in enumerate(target.columns):
                if column.value.startswith("field.") and column.value[6:] not in fields:
                    issue(
                        None,
                        path,
                        ("outbound", i, "columns", k, "value"),
                        f"様式「{form_id}」に項目「{column.value[6:]}」はありません",
                    )
            if target.member_table and target.member_table not in {t.id for t in definition.tables}:
                issue(
                    None,
                    path,
                    ("outbound", i, "member_table"),
                    f"様式「{form_id}」に表「{target.member_table}」はありません",
                )


def load_forms(directory: Path, read: Any, issue: Any, catalogue_forms: list[str]) -> list[FormSource]:
    """Every form folder of a tenant; ``issue(source, path, loc, message)`` collects problems."""
    root = directory / "forms"
    forms: list[FormSource] = []
    found: set[str] = set()
    if not root.is_dir():
        return forms
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        path = folder / "form.yaml"
        if not path.is_file():
            issue(None, path, (), "file is missing")
            continue
        source = read(path)
        try:
            definition = FormDefinition.model_validate(source.data or {})
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
                message = (
                    "unknown key"
                    if err["type"] == "extra_forbidden"
                    else err["msg"].removeprefix("Value error, ")
                )
                issue(source, path, loc, message)
            continue
        if definition.id != folder.name:
            issue(source, path, ("id",), f"must equal the folder name {folder.name!r}")
            continue
        template = None
        if definition.template:
            template_path = folder / definition.template
            if not template_path.is_file():
                issue(source, path, ("template",), f"template file {definition.template!r} is missing")
                continue
            template = template_path.read_text(encoding="utf-8")
            ids = {f.id for f in definition.fields} | {t.id for t in definition.tables}
            for problem in check_template(template, ids):
                issue(None, template_path, (), str(problem))
        found.add(definition.id)
        forms.append(FormSource(definition=definition, template=template))
    if forms:
        # Once a tenant defines forms, every form its catalogue names must exist.
        for missing in sorted(set(catalogue_forms) - found):
            issue(
                None,
                root / missing / "form.yaml",
                (),
                f"様式「{missing}」は forms/catalog.yaml にありますが定義がありません",
            )
    return forms
