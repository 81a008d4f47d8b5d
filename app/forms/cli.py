"""``madoguchi forms list TENANT`` and ``madoguchi forms render TENANT FORM_ID --resident ID --out FILE.pdf``."""

from __future__ import annotations

from pathlib import Path

import click

from app.cliutil import RECORD_ID, InputRejected, emit
from app.db.session import session_scope
from app.tenancy.cli import active_tenant
from app.tenancy.service import registry


@click.group()
def forms() -> None:
    """Application forms (申請書)."""


@forms.command("list")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(tenant: str, as_json: bool) -> None:
    from app.forms.service import list_forms

    record = active_tenant(tenant)
    with session_scope(record.binding) as session:
        rows = [
            {"id": f.definition.id, "name": f.definition.name, "version": f.definition.version,
             "effective_from": f.definition.effective_from.isoformat(), "fields": len(f.definition.fields)}
            for f in list_forms(session)
        ]  # fmt: skip
    emit(rows, as_json, lambda r: f"{r['id']:<32} {r['version']:<10} {r['effective_from']}  {r['name']}")


@forms.command("render")
@click.argument("tenant")
@click.argument("form_id")
@click.option("--resident", "resident_id", type=RECORD_ID, required=True)
@click.option("--answer", "answers", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--value", "values", multiple=True, metavar="FIELD=VALUE", help="a corrected or added field value"
)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def render_cmd(
    tenant: str, form_id: str, resident_id: int, answers: tuple[str, ...], values: tuple[str, ...], out: Path
) -> None:
    """Fill FORM_ID for a resident and write the PDF (the print is audit-logged)."""
    from app.forms.service import FormInputError, print_form, subject_for_resident

    def pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
        parsed = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InputRejected(f"{option} は KEY=VALUE の形で指定してください（{item}）")
            parsed[key.strip()] = value
        return parsed

    record = active_tenant(tenant)
    config = registry.config(record)
    try:
        with session_scope(record.binding) as session:
            subject = subject_for_resident(session, config, resident_id, answers=pairs(answers, "--answer"))
            filled, pdf = print_form(session, config, form_id, subject, pairs(values, "--value"), resident_id)
    except FormInputError as exc:
        raise InputRejected(f"{exc.field}: {exc}") from exc
    out.write_bytes(pdf)
    for field, problem in filled.problems.items():
        click.echo(f"  注意 {field}: {problem}", err=True)
    click.echo(f"{form_id}（第{filled.definition.version}版）を書き出しました: {out}")


@forms.command("export")
@click.argument("tenant")
@click.option("--target", default=None, help="only this outbound target (linkage.yaml outbound[].name)")
@click.option("--json", "as_json", is_flag=True)
def export_cmd(tenant: str, target: str | None, as_json: bool) -> None:
    """Send accepted applications not yet delivered (a sweep for cron, after an outage)."""
    from app.forms.backlink import export

    record = active_tenant(tenant)
    config = registry.config(record)
    targets = [t for t in config.linkage.outbound if target is None or t.name == target]
    if target is not None and not targets:
        raise InputRejected(f"送付先「{target}」は linkage.yaml の outbound にありません")
    results: list[dict[str, object]] = []
    with session_scope(record.binding) as session:
        for outbound in targets:
            results.extend(
                r.__dict__ for r in export(session, outbound, record.id, dict(config.linkage.residents.gaiji))
            )
    emit(results, as_json, lambda r: f"{r.get('target', '')}  {r.get('status', '')}  {r.get('rows', '')}")
    if any(r.get("status") == "failed" for r in results):
        raise SystemExit(1)
