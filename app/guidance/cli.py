"""``madoguchi guidance TENANT (--resident ID | --household FILE.json) --event EVENT [--subject KEY ...]``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from app.cliutil import RECORD_ID, InputRejected
from app.db.session import session_scope
from app.guidance.catalogue import EVENT_CODES
from app.tenancy.cli import active_tenant
from app.tenancy.service import registry


@click.command("guidance")
@click.argument("tenant")
@click.option(
    "--resident", "resident_id", type=RECORD_ID, help="resident id (the household comes from the records)"
)
@click.option(
    "--household",
    "household_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON list of members (name, kana, birth, sex, relation, attributes, subject) — e.g. a family moving in",
)
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    metavar="RESIDENT_ID",
    help="who the event is about (亡くなった方, 生まれた子, 氏が変わる方): a resident id of the household, "
    "a described member's key (m1, m2 …) or 'none' (repeatable); the --resident is not assumed",
)
@click.option("--event", required=True, type=click.Choice(EVENT_CODES), help="life event code")
@click.option("--date", "event_date", help="event date YYYY-MM-DD (default today)")
@click.option(
    "--answer", "answers", multiple=True, metavar="KEY=VALUE", help="an answer to a question (repeatable)"
)
@click.option(
    "--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path), help="also write the guidance sheet"
)
@click.option("--json", "as_json", is_flag=True)
def guidance(
    tenant: str,
    resident_id: int | None,
    household_file: Path | None,
    event: str,
    subjects: tuple[str, ...],
    event_date: str | None,
    answers: tuple[str, ...],
    pdf_path: Path | None,
    as_json: bool,
) -> None:
    """Procedures a household needs for a life event (手続きガイダンス)."""
    from app.guidance.service import GuidanceInputError, guide
    from app.guidance.service import as_json as to_json
    from app.guidance.sheet import render_sheet

    record = active_tenant(tenant)
    parsed: dict[str, str] = {}
    for item in answers:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputRejected(f"--answer は KEY=VALUE の形で指定してください（{item}）")
        parsed[key.strip()] = value.strip()
    household = None
    if household_file is not None:
        try:
            household = json.loads(household_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputRejected(f"{household_file}: JSON として読めません（{exc}）") from exc
    when = None
    if event_date:
        try:
            when = dt.date.fromisoformat(event_date)
        except ValueError as exc:
            raise InputRejected(f"日付「{event_date}」は YYYY-MM-DD で指定してください") from exc
    try:
        with session_scope(record.binding) as session:
            result = guide(
                session,
                event=event,
                event_date=when,
                resident_id=resident_id,
                household=household,
                answers=parsed,
                subjects=list(subjects) or None,
            )
    except GuidanceInputError as exc:
        raise InputRejected(f"{exc.field}: {exc}") from exc
    if pdf_path is not None:
        pdf_path.write_bytes(render_sheet(registry.config(record), result))
    if as_json:
        click.echo(json.dumps(to_json(result), ensure_ascii=False, indent=2, default=str))
        return
    d = result.determination
    click.echo(
        f"{d.event_name}（{d.event_date}）  カタログ {result.catalogue.version}  世帯: {'、'.join(m['name'] for m in d.members)}"
    )
    if d.subject_label:
        click.echo(
            f"{d.subject_label}: {'、'.join(d.subjects) if d.subjects else '（未指定）' if d.subjects is None else 'なし'}"
        )
    for department, counter, entries in d.by_department():
        click.echo(f"■ {department}（{counter}）")
        for e in entries:
            mark = "［要確認］" if e.status == "confirm" else ""
            who = f"（{e.member}）" if e.member else ""
            click.echo(
                f"  □ {e.name}{who}{mark}: {e.reason}"
                + (f"  期限 {e.deadline_text}" if e.deadline_text else "")
                + (f"  手数料 {e.fee_line}" if e.fee_text else "")
            )
    if d.fee_total is not None:
        click.echo(f"手数料の合計: {d.fee_total:,}円")
    if d.open_questions:
        click.echo("確認が必要な質問:")
        for q in d.open_questions:
            click.echo(f"  ? {q.id}: {q.text}")
    if pdf_path is not None:
        click.echo(f"手続案内書: {pdf_path}")
