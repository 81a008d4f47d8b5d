"""Print a filled form: a Jinja template (the tenant's own, or the generic A4 layout) → WeasyPrint.

Tenant templates are edited by municipal staff, so they run in Jinja's sandbox with undefined
names as errors. ``check_template`` rejects a template with a syntax error or a reference to a
field the form does not have, naming the line, before it can be saved.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from app.dates import JST
from app.dates.wareki import format_wareki
from app.forms.fill import FilledForm
from app.pdf import renderer

TEMPLATES = Path(__file__).with_name("templates")


def _at_print_time(function: Any) -> Any:
    """The filter, taking the template context: Jinja never folds such a filter while compiling."""
    kind = getattr(getattr(function, "jinja_pass_arg", None), "name", None)
    if kind == "context":
        return function

    @pass_context
    def filter_(context: Context, *args: Any, **kwargs: Any) -> Any:
        if kind == "eval_context":
            return function(context.eval_ctx, *args, **kwargs)
        if kind == "environment":
            return function(context.environment, *args, **kwargs)
        return function(*args, **kwargs)

    return filter_


class _TenantSandbox(SandboxedEnvironment):
    """Jinja's sandbox, computing nothing a template writes while it is only being compiled.

    Jinja folds constant expressions when it compiles — and ``check_template`` compiles in the web
    worker, where ``'x' * 99999 * 99999`` or ``'x'|center(999999999)`` would be computed. Intercepted
    operators and filters that take the context are never folded, so both run only when printing,
    inside the trial print's limits (``app.forms.trial``).
    """

    intercepted_binops = frozenset({"*", "**"})


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = _TenantSandbox(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["wareki"] = lambda d: format_wareki(d) if isinstance(d, dt.date) else d
    env.filters = {name: _at_print_time(f) for name, f in env.filters.items()}
    return env


@lru_cache(maxsize=1)
def generic_template() -> str:
    return (TEMPLATES / "generic.html").read_text(encoding="utf-8")


# What a template may read (render_html passes exactly these), plus Jinja's own globals.
TEMPLATE_NAMES = (
    "f",
    "t",
    "form",
    "labels",
    "fields",
    "tables",
    "sections",
    "tenant_name",
    "issued",
    "signature",
)
CONTEXT_NAMES = frozenset(TEMPLATE_NAMES) | {
    "range",
    "dict",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "loop",
}


def template_line(exc: BaseException) -> int | None:
    """The template line a rendering error happened on (Jinja rewrites tracebacks to ``<template>``)."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@dataclass(frozen=True)
class TemplateProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.line}行目: {self.message}" if self.line else self.message


def check_template(source: str, field_ids: set[str]) -> list[TemplateProblem]:
    """Syntax errors and references to unknown fields (``f.x`` / ``f['x']``), with their lines."""
    env = _environment()
    try:
        tree = env.parse(source)
        undeclared = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno, f"テンプレートの構文エラー: {exc.message}")]
    except RecursionError:
        return [TemplateProblem(None, "テンプレートの式や括弧の入れ子が深すぎます")]
    problems = []
    for name in sorted(undeclared - CONTEXT_NAMES):
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)
        problems.append(
            TemplateProblem(line, f"「{name}」は使えない名前です（使える名前: {'、'.join(TEMPLATE_NAMES)}）")
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name in ("f", "t")):
            continue
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        else:
            continue
        if name not in field_ids:
            kind = "項目" if target.name == "f" else "表"
            problems.append(TemplateProblem(node.lineno, f"{kind}「{name}」はこの様式にありません"))
    return problems


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """Templates compiled once per process (keyed by their text, so an edited version recompiles)."""
    return _environment().from_string(source)


def render_html(
    filled: FilledForm,
    *,
    tenant_name: str,
    template: str | None = None,
    signature_png: bytes | None = None,
    issued: dt.date | None = None,
) -> str:
    definition = filled.definition
    source = template if template is not None else generic_template()
    signature = "data:image/png;base64," + base64.b64encode(signature_png).decode() if signature_png else None
    return _compiled(source).render(
        form=definition,
        f=filled.values,
        t=filled.tables,
        labels={spec.id: spec.label for spec in definition.fields}
        | {t.id: t.label for t in definition.tables},
        fields={spec.id: spec for spec in definition.fields},
        tables={t.id: t for t in definition.tables},
        sections=definition.layout(),
        tenant_name=tenant_name,
        issued=format_wareki(issued or dt.datetime.now(JST).date()),
        signature=signature,
    )


def render_pdf(filled: FilledForm, **kwargs: Any) -> bytes:
    orientation = "landscape" if filled.definition.orientation == "landscape" else "portrait"
    return renderer().render(render_html(filled, **kwargs), extra_css=f"@page {{ size: A4 {orientation}; }}")
