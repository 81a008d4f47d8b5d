"""``madoguchi tenants ...``, ``madoguchi calendar ...`` and ``madoguchi demo seed``."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import click

from app.audit.service import record as audit_record
from app.cliutil import RECORD_ID, InputRejected, cli_actor, emit, write_generated
from app.config import PROJECT_ROOT, get_settings
from app.dates import JST
from app.db.session import session_scope
from app.tenancy.config import TenantConfig, format_minutes
from app.tenancy.loader import TenantConfigError, load_all
from app.tenancy.provisioning import SyncResult, TenantSyncError, sync
from app.tenancy.service import (
    OverrideInputError,
    TenantRecord,
    add_override,
    registry,
    revoke_override,
    tenant_calendars,
)


def active_tenant(tenant_id: str) -> TenantRecord:
    record = registry.get(tenant_id)
    if record is None:
        raise InputRejected(f"テナント {tenant_id!r} は登録されていません（madoguchi tenants list で確認）")
    return record


@click.group()
def tenants() -> None:
    """Tenants (municipalities): validate, provision, list."""


@tenants.command("validate")
@click.option("--json", "as_json", is_flag=True)
def validate_cmd(as_json: bool) -> None:
    """Validate every tenants/<id>/ folder without touching the database."""
    try:
        loaded = load_all(get_settings().tenants_dir)
    except TenantConfigError as exc:
        raise InputRejected("テナント設定に誤りがあります:\n" + str(exc)) from exc
    data = [
        {"id": t.config.tenant.id, "code": t.config.tenant.code, "hash": t.config_hash}
        for t in loaded.values()
    ]
    emit(data, as_json, lambda r: f"ok  {r['id']:<12} {r['code']}  {r['hash'][:12]}")


@tenants.command("terraform")
@click.option("--check", is_flag=True, help="only check that the checked-in file is current")
def terraform_cmd(check: bool) -> None:
    """Write infra/terraform/tenants.auto.tfvars.json (linkage buckets, secret names) from tenants/."""
    from app.tenancy.infra import TFVARS_PATH, BucketClaimedTwice, render, terraform_inputs

    try:
        loaded = load_all(get_settings().tenants_dir)
        text = render(terraform_inputs(loaded))
    except TenantConfigError as exc:
        raise InputRejected("テナント設定に誤りがあります:\n" + str(exc)) from exc
    except BucketClaimedTwice as exc:
        raise InputRejected(str(exc)) from exc
    write_generated({TFVARS_PATH: text}, check)


@tenants.command("export")
@click.argument("tenant")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
def export_cmd(tenant: str, out: Path, as_json: bool) -> None:
    """Write the city's complete data (tables as CSV, documents, operation-log seals and archives,
    manifest with SHA-256) to a new folder: the contract-end hand-over (ADR 0013)."""
    from app.tenancy.export import ExportError, export_tenant

    record = active_tenant(tenant)
    done = 0

    def step(name: str) -> None:  # progress on stderr, one line a table or file
        nonlocal done
        done += 1
        if not as_json:
            click.echo(f"  [{done}] {name}", err=True)

    try:
        result = export_tenant(record, out, step)
    except ExportError as exc:
        raise InputRejected(str(exc)) from exc
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(
        f"{record.name}: 表 {result.tables}（{result.rows:,} 行）、ファイル {result.objects}（{result.bytes:,} バイト）を "
        f"{out} に書き出しました。操作ログの検証: {'正常' if result.audit_ok else '異常あり（manifest.json を確認）'}"
    )


@tenants.command("decommission")
@click.argument("tenant")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="the folder `tenants export` wrote and the city received")  # fmt: skip
@click.option(
    "--confirm", "confirm_code", required=True, help="the city's local-government code, typed again"
)
@click.option("--certificate", "certificate_out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="where to write the deletion certificate (PDF)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
def decommission_cmd(
    tenant: str, export_dir: Path, confirm_code: str, certificate_out: Path, as_json: bool
) -> None:
    """Contract end: delete the city's data after its hand-over and write the deletion certificate
    (データ消去証明書). Refused unless the export is intact and nothing changed since (ADR 0013)."""
    from app.tenancy.decommission import DecommissionRefused, certificate_pdf, decommission

    record = active_tenant(tenant)
    if certificate_out.exists():
        raise InputRejected(f"証明書の出力先 {certificate_out} は既にあります（上書きしません）")
    actor = cli_actor()
    try:
        certificate = decommission(
            record,
            export_dir,
            confirm_code,
            f"{actor.id}（{actor.terminal}）",
            None if as_json else (lambda message: click.echo(f"  {message}", err=True)),
        )
    except DecommissionRefused as exc:
        raise InputRejected(str(exc)) from exc
    certificate_out.write_bytes(certificate_pdf(certificate))
    if as_json:
        click.echo(json.dumps({**certificate, "certificate_pdf": str(certificate_out)}, ensure_ascii=False))
        return
    click.echo(f"{record.name} のデータを消去しました。データ消去証明書: {certificate_out}")


@tenants.command("sync")
@click.option("--only", help="provision/migrate only this tenant id")
@click.option(
    "--online-chain",
    is_flag=True,
    help="build new schemas through the Alembic chain op by op instead of the rendered script (slower)",
)
@click.option("--json", "as_json", is_flag=True)
def sync_cmd(only: str | None, online_chain: bool, as_json: bool) -> None:
    """Provision and migrate tenant schemas from tenants/ (idempotent).

    New schemas are built from the tenant migrations rendered once as one SQL script, two tenants
    at a time; existing schemas are upgraded through Alembic. A failing tenant is left as it was
    and stops the run, naming the tenant and the reason.
    """

    def show(r: SyncResult) -> None:
        if not as_json:
            click.echo(
                f"{r.action:<15} {r.tenant_id:<12} {r.schema}  rev {r.revision}  {r.seconds * 1000:.0f} ms"
            )

    try:
        results = sync(only=only, progress=show, from_script=not online_chain)
    except TenantConfigError as exc:
        raise InputRejected("テナント設定に誤りがあります（何も変更していません）:\n" + str(exc)) from exc
    except TenantSyncError as exc:
        raise InputRejected(str(exc)) from exc
    if as_json:
        emit([r.__dict__ for r in results], True, str)


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json: bool) -> None:
    """List provisioned tenants."""
    registry.invalidate()
    data = [
        {
            "id": r.id,
            "code": r.code,
            "name": r.name,
            "schema": r.schema_name,
            "status": r.status,
            "config_hash": r.config_hash,
        }
        for r in registry.all()
    ]

    emit(
        data, as_json, lambda r: f"{r['id']:<12} {r['code']}  {r['schema']:<10} {r['status']:<9} {r['name']}"
    )


@click.group()
def calendar() -> None:
    """Service calendar: show days, enter temporary openings/closures (臨時開庁・臨時閉庁)."""


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputRejected(f"日付「{value}」は YYYY-MM-DD の形式で指定してください") from exc


@calendar.command("show")
@click.argument("tenant")
@click.option("--start", help="YYYY-MM-DD (default today)")
@click.option("--days", type=click.IntRange(1, 366), default=14)
@click.option("--json", "as_json", is_flag=True)
def show_cmd(tenant: str, start: str | None, days: int, as_json: bool) -> None:
    record = active_tenant(tenant)
    first = _parse_date(start) if start else dt.datetime.now(JST).date()
    with session_scope(record.binding) as session:
        service, desk = tenant_calendars(session, registry.config(record))
        rows = []
        for i in range(days):
            day = first + dt.timedelta(days=i)
            status = service.day_status(day)
            rows.append(
                {
                    "date": day.isoformat(),
                    "hours": [f"{format_minutes(s)}-{format_minutes(e)}" for s, e in status.hours],
                    "support_desk": [
                        f"{format_minutes(s)}-{format_minutes(e)}" for s, e in desk.hours_on(day)
                    ],
                    "closed_reason": status.closed_reason,
                    "overrides": [o.reason for o in status.overrides],
                }
            )
    emit(rows, as_json, _day_line)


def _day_line(r: dict[str, Any]) -> str:
    hours = ", ".join(r["hours"]) or "閉庁"
    return f"{r['date']}  {hours:<24} {r['closed_reason'] or ''} {' '.join(r['overrides'])}"


def _override(tenant: str, day: str, kind: str, hours: str | None, reason: str) -> None:
    record = active_tenant(tenant)
    actor = cli_actor()
    try:
        with session_scope(record.binding) as session:
            row = add_override(
                session, on_date=_parse_date(day), kind=kind, hours=hours, reason=reason, entered_by=actor.id
            )
            audit_record(
                session,
                "calendar.override_added",
                subject_type="calendar_override",
                subject_id=row.id,
                details={"date": day, "kind": kind, "hours": hours, "reason": reason},
            )
            label = "臨時開庁" if kind == "open" else "臨時閉庁"
            click.echo(f"登録しました: #{row.id} {day} {label} {hours or '終日'}")
    except OverrideInputError as exc:
        raise InputRejected(str(exc)) from exc


@calendar.command("open")
@click.argument("tenant")
@click.argument("day")
@click.argument("hours")
@click.option("--reason", required=True)
def open_cmd(tenant: str, day: str, hours: str, reason: str) -> None:
    """Temporary opening (臨時開庁) on DAY for HOURS, e.g. 2027-03-28 09:00-17:00."""
    _override(tenant, day, "open", hours, reason)


@calendar.command("close")
@click.argument("tenant")
@click.argument("day")
@click.argument("hours", required=False)
@click.option("--reason", required=True)
def close_cmd(tenant: str, day: str, hours: str | None, reason: str) -> None:
    """Temporary closure (臨時閉庁) of DAY, whole day or only HOURS."""
    _override(tenant, day, "closed", hours, reason)


@calendar.command("revoke")
@click.argument("tenant")
@click.argument("override_id", type=RECORD_ID)
def revoke_cmd(tenant: str, override_id: int) -> None:
    """Cancel a temporary opening/closure (kept in history)."""
    record = active_tenant(tenant)
    try:
        with session_scope(record.binding) as session:
            revoke_override(session, override_id, cli_actor().id)
            audit_record(
                session, "calendar.override_revoked", subject_type="calendar_override", subject_id=override_id
            )
    except OverrideInputError as exc:
        raise InputRejected(str(exc)) from exc
    click.echo(f"取り消しました: #{override_id}")


@click.group()
def demo() -> None:
    """Demo data for development (refused in production)."""


DEMO_PASSWORD = "madoguchi-demo"  # noqa: S105 - development demo only; refused in production


@demo.command("seed")
@click.option("--tenant", "only", help="only this tenant")
@click.option("--scale", type=click.Choice(["small", "city"]), default="small", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="write the files to OUT/<tenant>/ (default var/demo/<tenant>/)",
)
@click.option("--seed", "seed", type=int, default=1, show_default=True, help="same seed, same files")
@click.option("--date", "as_of", help="extract date YYYY-MM-DD (default today, JST)")
@click.option("--no-upload", is_flag=True, help="do not put the files into the tenant's S3 buckets")
@click.option(
    "--import/--no-import",
    "load",
    default=True,
    show_default=True,
    help="load the extract into the database through the importer",
)
def seed_cmd(
    only: str | None,
    scale: str,
    out_dir: Path | None,
    seed: int,
    as_of: str | None,
    no_upload: bool,
    load: bool,
) -> None:
    """Demo staff accounts (login 'demo') and synthetic resident extracts for each tenant.

    The extracts are written in the standard layout and in the tenant's own layout
    (linkage.yaml), and the latter is uploaded to the tenant's S3 adapters (the local moto
    server), where a linkage poller can pick it up; with ``--import`` (the default) they are also
    loaded into the database right away through the importer, so the demo has residents to find.
    """
    if get_settings().env == "production":
        raise InputRejected("demo seed は本番環境では実行できません")
    from app.identity.service import AccountInputError, create_user

    extract_date = _parse_date(as_of) if as_of else dt.datetime.now(JST).date()
    base = out_dir or _var_dir() / "demo"
    records = [active_tenant(only)] if only else registry.all()
    for record in records:
        with session_scope(record.binding) as session:
            try:
                create_user(session, "demo", "デモ職員", DEMO_PASSWORD, groups=("窓口職員", "監督者"))
                click.echo(f"{record.id}: demo 職員を作成しました（パスワード {DEMO_PASSWORD}）")
            except AccountInputError:
                click.echo(f"{record.id}: demo 職員は作成済みです")
        _seed_residents(
            record.id, registry.config(record), base / record.id, scale, seed, extract_date, no_upload, load
        )


def _var_dir() -> Path:
    return Path(os.environ.get("MADOGUCHI_VAR_DIR") or PROJECT_ROOT / "var")


def _import_extract(tenant_id: str, files: dict[str, Path]) -> None:
    """Load the tenant-layout extract into the database through the real importer."""
    from app.linkage.importer import import_local_file

    record = active_tenant(tenant_id)
    for kind in ("residents", "attributes"):
        if kind not in files:
            continue
        outcome = import_local_file(record, files[kind], actor=cli_actor(), source="demo", kind=kind)
        click.echo(f"  取込 {kind:<10} バッチ #{outcome.batch_id}: {outcome.status} — {outcome.message}")
        if outcome.status not in ("applied", "duplicate"):
            raise InputRejected(f"{tenant_id}: デモデータの取込に失敗しました（バッチ #{outcome.batch_id}）")


def _seed_residents(
    tenant_id: str,
    config: TenantConfig,
    out: Path,
    scale: str,
    seed: int,
    as_of: dt.date,
    no_upload: bool,
    load: bool = True,
) -> None:
    from app.residents.synthetic import (
        PROFILES,
        UploadRefused,
        stderr_progress,
        upload_extract,
        write_extracts,
    )

    if tenant_id not in PROFILES:
        click.echo(f"{tenant_id}: 合成住民のプロファイルがないため、住民ファイルは作成しません")
        return
    progress = stderr_progress(tenant_id) if scale == "city" else None
    try:
        result = write_extracts(
            tenant_id, config.linkage, out, scale=scale, seed=seed, as_of=as_of, progress=progress
        )
    except ValueError as exc:
        raise InputRejected(str(exc)) from exc
    click.echo(
        f"{tenant_id}: 合成住民 {result.residents:,} 人・{result.households:,} 世帯"
        f"（除票を含め {result.person_rows:,} 行、資格・受給 {result.attribute_rows:,} 行、"
        f"{result.rows_per_second:,.0f} 行/秒）を書き出しました: {out}"
    )
    for kind, written in result.standard.items():
        click.echo(f"  標準形式 {kind:<10} {written.path}  ({written.rows:,} 行, utf-8)")
    for kind, written in result.variant.items():
        layout = config.linkage.layout(kind)
        click.echo(f"  {layout.variant} {kind:<10} {written.path}  ({written.rows:,} 行, {layout.encoding})")
    if load:
        _import_extract(tenant_id, {kind: s.path for kind, s in result.variant.items()})
    if no_upload:
        return
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        uploaded = upload_extract(config.linkage, {kind: s.path for kind, s in result.variant.items()})
    except UploadRefused as exc:
        click.echo(f"  アップロードしません: {exc}")
        return
    except (BotoCoreError, ClientError) as exc:
        raise InputRejected(f"{tenant_id}: S3 へのアップロードに失敗しました: {exc}") from exc
    for item in uploaded:
        click.echo(f"  アップロード {item.uri}  (adapter {item.adapter})")
    local_only = [a.name for a in config.linkage.adapters if a.kind != "s3"]
    if local_only:
        click.echo(f"  {', '.join(local_only)} は S3 ではないため、ローカルのファイルのみです")
