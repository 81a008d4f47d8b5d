"""``madoguchi reports monthly``, ``madoguchi releases record|list``, ``madoguchi inquiries add|close|list``.

Exit codes: 0 ok, 1 rejected input or a source that could not answer (message says which), 2 usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.audit.service import actor_var
from app.cliutil import RECORD_ID, InputRejected, emit
from app.dates import JST
from app.reports.models import CATEGORIES, CHANNELS, RELEASE_KINDS
from app.reports.period import Month, MonthInputError


def _by() -> str:
    actor = actor_var.get(None)
    return actor.id if actor is not None else "cli"


@click.group("reports")
def reports() -> None:
    """月次報告（デジタル庁向け・自治体向け）。"""


@reports.command("monthly")
@click.option("--month", required=True, help="対象月 YYYY-MM（日本時間）")
@click.option("--tenant", default=None, help="この自治体の報告だけを作る（自治体ID）")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="出力先フォルダ"
)
@click.option("--refresh", is_flag=True, help="時点の情報（IAM・Config・Security Hub）を取り直す")
@click.option("--json", "as_json", is_flag=True, help="結果を JSON で出力")
def monthly(month: str, tenant: str | None, out: Path, refresh: bool, as_json: bool) -> None:
    """Generate the month's reports (PDF, CSV, JSON): stored in the database and object storage and written to --out."""
    from app.reports.service import ReportInputError, generate
    from app.reports.sources import ReportSourceError

    try:
        target = Month.parse(month)
    except MonthInputError as exc:
        raise InputRejected(str(exc)) from None

    def progress(message: str) -> None:
        click.echo(message, err=True)

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputRejected(f"出力先フォルダを作れません: {out}（{exc.strerror}）") from None
    try:
        done = generate(target, tenant=tenant, out=out, refresh=refresh, by=_by(), progress=progress)
    except (ReportInputError, ReportSourceError) as exc:
        raise InputRejected(str(exc)) from None
    rows = [{"scope": g.scope, "sha256": g.sha256, "files": [f["name"] for f in g.files]} for g in done]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{target}: {len(done)} 件の報告を {out / str(target)} に出力しました")


@click.group("releases")
def releases() -> None:
    """リリースの記録（デプロイパイプラインから）。"""


@releases.command("record")
@click.option(
    "--kind", required=True, type=click.Choice(list(RELEASE_KINDS)), help="application / infrastructure"
)
@click.option("--version", "version", required=True, help="バージョン（タグ、コミット等）")
@click.option("--at", "at", default=None, help="リリース日時 ISO 8601（省略時は現在）")
@click.option("--approval", required=True, help="リリース承認の参照（承認番号）")
@click.option("--description", default="", help="内容")
@click.option("--json", "as_json", is_flag=True)
def record(kind: str, version: str, at: str | None, approval: str, description: str, as_json: bool) -> None:
    """Record a release; the same kind, version and time again records nothing new (retries)."""
    from app.reports.records import RecordInputError, record_release
    from app.reports.service import control_session

    with control_session() as session:
        try:
            row, created = record_release(
                session,
                kind=kind,
                version=version,
                released_at=at,
                approval_ref=approval,
                description=description,
                by=_by(),
            )
        except RecordInputError as exc:
            raise InputRejected(str(exc)) from None
        session.commit()
        data = _release(row)
    data["created"] = created
    emit(
        [data],
        as_json,
        lambda r: (
            f"#{r['id']} {r['released_at']} {r['kind']} {r['version']} ({r['approval_ref']})"
            + ("" if r["created"] else " 記録済み")
        ),
    )


def _release(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "version": row.version,
        "released_at": row.released_at.astimezone(JST).isoformat(timespec="seconds"),
        "approval_ref": row.approval_ref,
        "description": row.description,
    }


@releases.command("list")
@click.option("--json", "as_json", is_flag=True)
def release_list(as_json: bool) -> None:
    """The latest releases."""
    from app.reports.records import list_releases
    from app.reports.service import control_session

    with control_session() as session:
        rows = [_release(r) for r in list_releases(session)]
    emit(
        rows,
        as_json,
        lambda r: f"#{r['id']} {r['released_at']} {r['kind']} {r['version']} ({r['approval_ref']})",
    )


@click.group("inquiries")
def inquiries() -> None:
    """サポートデスクの問い合わせ記録。"""


def _inquiry(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant_id,
        "channel": row.channel,
        "category": row.category,
        "summary": row.summary,
        "opened_at": row.opened_at.astimezone(JST).isoformat(timespec="seconds"),
        "closed_at": row.closed_at.astimezone(JST).isoformat(timespec="seconds") if row.closed_at else None,
    }


@inquiries.command("add")
@click.option("--tenant", default=None, help="自治体ID（サービス全体についての問い合わせは省略）")
@click.option("--channel", required=True, type=click.Choice(list(CHANNELS)))
@click.option("--category", required=True, type=click.Choice(list(CATEGORIES)))
@click.option("--summary", required=True, help="概要（個人情報は書かない）")
@click.option("--opened-at", default=None, help="受付日時 ISO 8601（省略時は現在、時差なしは日本時間）")
@click.option("--closed-at", default=None, help="完了日時")
@click.option("--json", "as_json", is_flag=True)
def inquiry_add(
    tenant: str | None,
    channel: str,
    category: str,
    summary: str,
    opened_at: str | None,
    closed_at: str | None,
    as_json: bool,
) -> None:
    """Record an inquiry to the support desk."""
    from app.reports.records import RecordInputError, add_inquiry
    from app.reports.service import control_session

    with control_session() as session:
        try:
            row = add_inquiry(
                session, tenant_id=tenant, channel=channel, category=category, summary=summary,
                opened_at=opened_at, closed_at=closed_at, by=_by(),
            )  # fmt: skip
        except RecordInputError as exc:
            raise InputRejected(str(exc)) from None
        session.commit()
        data = _inquiry(row)
    emit(
        [data],
        as_json,
        lambda r: f"#{r['id']} {r['opened_at']} {r['tenant'] or '全体'} {r['category']} {r['summary']}",
    )


@inquiries.command("close")
@click.argument("inquiry_id", type=RECORD_ID)
@click.option("--at", default=None, help="完了日時（省略時は現在）")
def inquiry_close(inquiry_id: int, at: str | None) -> None:
    """Mark an inquiry as answered."""
    from app.reports.records import RecordInputError, close_inquiry
    from app.reports.service import control_session

    with control_session() as session:
        try:
            row = close_inquiry(session, inquiry_id, at)
        except RecordInputError as exc:
            raise InputRejected(str(exc)) from None
        session.commit()
        click.echo(f"#{row.id} 完了 {row.closed_at.astimezone(JST):%Y-%m-%d %H:%M}" if row.closed_at else "")


@inquiries.command("list")
@click.option("--json", "as_json", is_flag=True)
def inquiry_list(as_json: bool) -> None:
    """The latest inquiries."""
    from app.reports.records import list_inquiries
    from app.reports.service import control_session

    with control_session() as session:
        rows = [_inquiry(r) for r in list_inquiries(session)]
    emit(
        rows,
        as_json,
        lambda r: f"#{r['id']} {r['opened_at']} {r['tenant'] or '全体'} {r['category']} {r['summary']}",
    )
