"""``madoguchi audit verify | seal | archive``: the tamper-evident operation log from the command line.

``verify`` exits 0 when the chain, the archives and the seals agree, 1 when anything is broken
(each problem names what and where) or cannot be checked. Reading the log is itself logged.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from app.audit.archive import ArchiveRefused, archive
from app.audit.sealing import seal
from app.audit.service import record
from app.audit.signing import SigningKeyError
from app.audit.storage import StorageError
from app.audit.verify import KIND_JA, Problem, Report, verify
from app.cliutil import InputRejected
from app.db.session import session_scope
from app.tenancy.cli import active_tenant


@click.group()
def audit() -> None:
    """Operation log (操作ログ): verification, seals, retention."""


def _dump(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _problem_lines(problems: list[Problem], total: int) -> None:
    for p in problems:
        click.echo(f"  [{KIND_JA[p.kind]}] {p.message}")
    if total > len(problems):
        click.echo(f"  …ほか {total - len(problems)} 件")


def _summary(report: Report) -> str:
    span = "記録なし" if report.first_seq is None else f"連番{report.first_seq}〜{report.last_seq}"
    seal = report.latest_seal
    sealed = f"最新 連番{seal['seq']}（{seal['sealed_at']}）" if seal else "なし"
    return (
        f"{span}、{report.entries}件を検証、封印 {report.seals}件（{sealed}、未封印 {report.unsealed}件）、"
        f"退避 {report.archives}回・{report.archived_entries}件、{report.seconds}秒"
    )


@audit.command("verify")
@click.argument("tenant")
@click.option("--archives", "deep", is_flag=True, help="also download and recompute every archive")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(tenant: str, deep: bool, as_json: bool) -> None:
    """Recompute the chain and compare it with the seals (exit 1 when anything is broken)."""
    target = active_tenant(tenant)
    try:
        report = verify(target, deep=deep)
    except (StorageError, SigningKeyError) as exc:
        raise InputRejected(f"検証できません: {exc}") from exc
    with session_scope(target.binding) as session:
        record(
            session,
            "audit.verified",
            subject_type="audit_log",
            details={
                "ok": report.ok,
                "entries": report.entries,
                "problems": report.problem_count,
                "archives": deep,
            },
        )
    if as_json:
        _dump(report.as_dict())
    elif report.ok:
        click.echo(f"検証OK: {target.name}（{target.id}）{_summary(report)}")
    else:
        click.echo(f"改ざん・欠落を検出しました: {target.name}（{target.id}）{report.problem_count}件")
        _problem_lines(report.problems, report.problem_count)
        click.echo(f"  （{_summary(report)}）")
    if not report.ok:
        raise SystemExit(1)


@audit.command("seal")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True)
def seal_cmd(tenant: str, as_json: bool) -> None:
    """Seal the chain head now (normally the worker does it every few minutes)."""
    target = active_tenant(tenant)
    try:
        with session_scope(target.binding) as session:
            result = seal(target, session)
    except (StorageError, SigningKeyError) as exc:
        raise InputRejected(f"封印できません: {exc}") from exc
    if as_json:
        _dump(result.as_dict())
    elif result.action == "sealed":
        click.echo(f"封印しました: 連番{result.seq}（{result.key}）")
    elif result.action == "unchanged":
        click.echo(f"封印済みです: 連番{result.seq} 以降の記録はありません")
    elif result.action == "empty":
        click.echo("封印する記録がありません")
    else:
        click.echo("記録の連鎖に不整合があるため封印しませんでした:")
        _problem_lines(result.problems, len(result.problems))
    if not result.ok:
        raise SystemExit(1)


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputRejected(f"--before: 日付は YYYY-MM-DD で指定してください（{value}）") from None


@audit.command("archive")
@click.argument("tenant")
@click.option("--before", default=None, help="YYYY-MM-DD (JST); at most the retention boundary")
@click.option("--json", "as_json", is_flag=True)
def archive_cmd(tenant: str, before: str | None, as_json: bool) -> None:
    """Archive entries older than the retention to object storage, then delete them."""
    target = active_tenant(tenant)
    try:
        with session_scope(target.binding) as session:
            result = archive(target, session, before=_date(before))
    except ArchiveRefused as exc:
        if as_json:
            _dump({"ok": False, "message": str(exc), "problems": [p.as_dict() for p in exc.problems]})
        else:
            click.echo(f"エラー: {exc}", err=True)
            _problem_lines(exc.problems, len(exc.problems))
        raise SystemExit(1) from None
    except (StorageError, SigningKeyError) as exc:
        raise InputRejected(f"退避できません: {exc}") from exc
    if as_json:
        _dump({"ok": True, **result.as_dict()})
    elif result.action == "archived":
        click.echo(
            f"退避しました: 連番{result.first_seq}〜{result.last_seq}（{result.entries}件、"
            f"{result.cutoff} より前、保存期間 {result.retention_years}年）→ {result.object_key}"
        )
    else:
        click.echo(f"退避する記録はありません（{result.cutoff} より前、保存期間 {result.retention_years}年）")
