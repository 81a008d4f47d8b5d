"""``madoguchi linkage check`` and ``madoguchi linkage poll``: adapters from the command line.

Attached to the ``linkage`` group of ``app.linkage.cli`` on import (``app.cli`` imports this
module), so the group's own file stays free for the import commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from app.audit.service import actor_var
from app.cliutil import InputRejected, cli_actor, emit
from app.db.session import session_scope
from app.linkage.cli import linkage
from app.logs import tenant_var
from app.tenancy.cli import active_tenant
from app.tenancy.service import TenantRecord, registry

if TYPE_CHECKING:  # boto3 and httpx load only when an adapter command runs
    from app.linkage.adapters import AnyAdapterConfig
    from app.linkage.adapters.polling import PollResult


def _adapters(record: TenantRecord, name: str | None, *, webhooks: bool = False) -> list[AnyAdapterConfig]:
    linkage_config = registry.config(record).linkage
    configured = list(linkage_config.adapters)
    if name is None:
        return configured
    chosen = [a for a in configured if a.name == name]
    if not chosen and not (webhooks and any(w.name == name for w in linkage_config.webhooks)):
        names = [a.name for a in configured] + ([w.name for w in linkage_config.webhooks] if webhooks else [])
        known = "、".join(names) or "なし"
        raise InputRejected(f"テナント {record.id} にアダプタ「{name}」はありません（設定済み: {known}）")
    return chosen


def _webhook_checks(record: TenantRecord, name: str | None) -> list[dict[str, Any]]:
    import httpx

    from app.linkage.webhooks import check_endpoint

    endpoints = [w for w in registry.config(record).linkage.webhooks if name in (None, w.name)]
    rows: list[dict[str, Any]] = []
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for endpoint in endpoints:
            rows += [
                {"adapter": endpoint.name, "kind": "webhook", "check": check, "ok": ok, "message": message}
                for check, ok, message in check_endpoint(endpoint, record.id, client)
            ]
    return rows


@linkage.command("check")
@click.argument("tenant")
@click.option("--adapter", "adapter_name", help="check only this adapter or webhook endpoint")
@click.option("--json", "as_json", is_flag=True)
def check_cmd(tenant: str, adapter_name: str | None, as_json: bool) -> None:
    """Check each adapter's settings, endpoint, credentials and location, and each webhook endpoint's
    signing key and answer to a signed test event. Exit 1 if any check fails."""
    from app.linkage.adapters import adapter_for

    record = active_tenant(tenant)
    rows: list[dict[str, Any]] = []
    for config in _adapters(record, adapter_name, webhooks=True):
        with adapter_for(config, record) as adapter:
            rows += [
                {
                    "adapter": config.name,
                    "kind": config.kind,
                    "check": c.name,
                    "ok": c.ok,
                    "message": c.message,
                }
                for c in adapter.check_config()
            ]
    rows += _webhook_checks(record, adapter_name)
    if not rows and not as_json:
        click.echo(f"テナント {record.id} にはアダプタも Webhook の送信先も設定されていません")
    emit(
        rows,
        as_json,
        lambda r: f"{'OK' if r['ok'] else 'NG':<3} {r['adapter']:<18} {r['check']:<12} {r['message']}",
    )
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


@linkage.command("poll")
@click.argument("tenant")
@click.option("--adapter", "adapter_name", help="poll only this adapter")
@click.option("--json", "as_json", is_flag=True)
def poll_cmd(tenant: str, adapter_name: str | None, as_json: bool) -> None:
    """Poll now (synchronously) and print what was taken. Exit 1 if a listing or an import failed."""
    from app.jobs import JobContext
    from app.linkage.adapters.polling import run_poll

    record = active_tenant(tenant)
    results: list[PollResult] = []
    token = tenant_var.set(record.id)
    try:
        for config in _adapters(record, adapter_name):
            with session_scope(record.binding) as session:
                ctx = JobContext(record, session, actor_var.get() or cli_actor())
                results.append(run_poll(ctx, config))
    finally:
        tenant_var.reset(token)
    if as_json:
        emit([r.as_dict() for r in results], True, str)
    else:
        for result in results:
            click.echo(_summary(result))
            for obj in result.objects:
                batch = f"  バッチ {obj.batch_id}" if obj.batch_id is not None else ""
                error = f"  {obj.error}" if obj.error else ""
                click.echo(f"  {obj.status:<9} {obj.name}{batch}{error}")
    if not all(r.ok for r in results):
        raise SystemExit(1)


def _summary(result: PollResult) -> str:
    head = f"{result.tenant} {result.adapter}:"
    if result.error:
        return f"{head} 一覧を取得できません: {result.error}"
    parts = [f"一致 {result.listed} 件", f"今回 {len(result.objects)} 件"]
    if result.already_taken:
        parts.append(f"取込済み {result.already_taken} 件")
    if result.waiting:
        parts.append(f"次回に回す {result.waiting} 件")
    if not result.objects and not result.waiting:
        parts.append("新しいファイルはありません")
    return f"{head} {'、'.join(parts)}"
