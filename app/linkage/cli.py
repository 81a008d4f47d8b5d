"""``madoguchi linkage ...``: front-linkage imports, adapter checks and polls."""

from __future__ import annotations

import json
import sys
from typing import cast

import click

from app.cliutil import RECORD_ID


@click.group()
def linkage() -> None:
    """Front linkage (前方連携): import files, check adapters, poll object storage."""


@linkage.command("import")
@click.argument("tenant")
@click.argument("source")
@click.option(
    "--layout",
    type=click.Choice(["tenant", "standard"]),
    default="tenant",
    help="standard: read the standard layout whatever the tenant's variant is",
)
@click.option("--kind", type=click.Choice(["residents", "attributes"]), help="default: from the header")
@click.option("--mode", type=click.Choice(["full", "changes"]), help="default: from the file name")
@click.option(
    "--background", is_flag=True, help="queue a job and print the batch id (watch with linkage batch)"
)
@click.option("--json", "as_json", is_flag=True)
def import_cmd(
    tenant: str, source: str, layout: str, kind: str | None, mode: str | None, background: bool, as_json: bool
) -> None:
    """Import SOURCE (a path or s3://bucket/key) into TENANT's common database."""
    from app.cliutil import InputRejected, cli_actor
    from app.linkage.config import FileKind
    from app.linkage.importer import ImportInputError, import_local_file
    from app.linkage.sources import SourceError, local_copy
    from app.linkage.validate import Mode
    from app.tenancy.cli import active_tenant

    record = active_tenant(tenant)
    if background:
        from app.db.session import session_scope
        from app.linkage.jobs import start_import

        with session_scope(record.binding) as session:
            batch = start_import(session, record.id, source, cli_actor().id, kind, mode, layout == "standard")
            click.echo(
                json.dumps({"batch_id": batch.id, "job_id": batch.job_id})
                if as_json
                else f"バッチ #{batch.id} を登録しました（ジョブ {batch.job_id}）。madoguchi linkage batch {tenant} {batch.id} で進捗を確認できます。"
            )
        return
    try:
        with local_copy(source) as (path, name):
            size = path.stat().st_size
            with click.progressbar(
                length=size, label=f"取込 {name}", file=sys.stderr, show_eta=True, show_percent=True
            ) as bar:
                done = 0

                def progress(read: int, rows: int) -> None:
                    nonlocal done
                    bar.update(read - done)
                    done = read

                outcome = import_local_file(
                    record,
                    path,
                    actor=cli_actor(),
                    file_name=name,
                    source="cli",
                    source_ref=source,
                    kind=cast(FileKind | None, kind),  # click.Choice guarantees the literal
                    mode=cast(Mode | None, mode),
                    standard_layout=layout == "standard",
                    progress=progress,
                )
    except (SourceError, ImportInputError) as exc:
        raise InputRejected(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(outcome.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(
            f"バッチ #{outcome.batch_id} {outcome.kind}/{outcome.mode}: {outcome.status} — {outcome.message}"
        )
        for r in outcome.rejections[:50]:
            where = f"{outcome.file_name}:{r.line}" if r.line else outcome.file_name
            column = f" 列「{r.column}」" if r.column else ""
            value = f" 値「{r.value}」" if r.value else ""
            click.echo(f"  {where}{column}{value}: {r.reason}", err=True)
        if len(outcome.rejections) > 50:
            click.echo(
                f"  …ほか {len(outcome.rejections) - 50}件（madoguchi linkage batch で全件表示）", err=True
            )
    if outcome.status in ("rejected", "failed"):
        sys.exit(1)


@linkage.command("batches")
@click.argument("tenant")
@click.option("--limit", type=click.IntRange(1, 500), default=20)
@click.option("--json", "as_json", is_flag=True)
def batches_cmd(tenant: str, limit: int, as_json: bool) -> None:
    """List the latest import batches with their progress."""
    from app.cliutil import emit
    from app.db.session import session_scope
    from app.linkage import service
    from app.tenancy.cli import active_tenant

    record = active_tenant(tenant)
    with session_scope(record.binding) as session:
        rows = [service.batch_summary(b) for b in service.list_batches(session, limit)]

    def line(r: dict[str, object]) -> str:
        progress = f"{float(r['progress']) * 100:5.1f}%" if r["progress"] is not None else "     -"  # type: ignore[arg-type]
        return f"#{r['id']:<6} {r['status_ja']:<10} {progress} {r['kind']}/{r['mode']:<7} {r['file_name']}  {r['message'] or ''}"

    emit(rows, as_json, line)


@linkage.command("batch")
@click.argument("tenant")
@click.argument("batch_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True)
def batch_cmd(tenant: str, batch_id: int, as_json: bool) -> None:
    """One batch with its full rejection report (file, line, column, value, reason)."""
    from app.audit import record as audit_record
    from app.cliutil import InputRejected
    from app.db.session import session_scope
    from app.linkage import service
    from app.linkage.models import ImportBatch
    from app.tenancy.cli import active_tenant

    rec = active_tenant(tenant)
    with session_scope(rec.binding) as session:
        batch = session.get(ImportBatch, batch_id)
        if batch is None:
            raise InputRejected(f"バッチ #{batch_id} は見つかりません")
        rows, total = service.rejections(session, batch_id, limit=1_000_000)
        if rows:
            audit_record(
                session,
                "linkage.rejections_viewed",
                subject_type="import_batch",
                subject_id=batch_id,
                details={"rows": len(rows)},
            )
        summary = service.batch_summary(batch)
        report = [
            {"line": r.line, "column": r.column, "value": r.value, "code": r.code, "reason": r.reason}
            for r in rows
        ]
    if as_json:
        click.echo(
            json.dumps(
                {**summary, "rejections": report, "rejections_total": total},
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
        return
    click.echo(
        f"バッチ #{summary['id']} {summary['file_name']}: {summary['status_ja']} — {summary['message'] or ''}"
    )
    for r in report:
        click.echo(
            f"  {summary['file_name']}:{r['line'] or '-'} 列「{r['column'] or '-'}」 値「{r['value'] or ''}」: {r['reason']}"
        )
