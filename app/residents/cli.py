"""``madoguchi residents find``: search from the command line (audit-logged like the UI)."""

from __future__ import annotations

import time

import click

from app.cliutil import InputRejected, emit
from app.db.session import session_scope
from app.residents import service
from app.residents.service import SearchInputError, SearchQuery
from app.tenancy.cli import active_tenant
from app.tenancy.service import registry


@click.group()
def residents() -> None:
    """Residents of the common database (共通データベース)."""


@residents.command("find")
@click.argument("tenant")
@click.option("--kana", default="", help="フリガナ (prefix; hiragana and half-width accepted)")
@click.option("--name", default="", help="氏名 (prefix; old/new character forms match)")
@click.option("--birth", default="", help="生年月日: YYYY-MM-DD, 令和8年5月1日 or R080501")
@click.option("--address", default="", help="住所 (prefix, city name optional)")
@click.option("--include-left", is_flag=True, help="also 転出・死亡・職権消除")
@click.option("--limit", type=click.IntRange(1, service.MAX_LIMIT), default=50)
@click.option("--purpose", default=None, help="事務種別, recorded in the audit log")
@click.option("--json", "as_json", is_flag=True)
def find_cmd(
    tenant: str, kana: str, name: str, birth: str, address: str, include_left: bool, limit: int,
    purpose: str | None, as_json: bool,
) -> None:  # fmt: skip
    record = active_tenant(tenant)
    query = SearchQuery(
        kana=kana, name=name, birth=birth, address=address, include_left=include_left, limit=limit
    )
    try:
        with session_scope(record.binding) as session:
            result = service.search(session, registry.config(record), query, purpose=purpose)
            rows = [service.summary(r) for r in result.residents]
    except SearchInputError as exc:
        raise InputRejected(str(exc)) from exc
    emit(
        rows,
        as_json,
        lambda r: (
            f"{r['id']:>8}  {r['atena_no']}  {r['name']}（{r['kana'] or '—'}）  {r['birth_wareki']}  {r['address']}  [{r['status']}]"
        ),
    )
    if result.more and not as_json:
        click.echo(f"…{limit}件を超えて該当があります。条件を追加してください。", err=True)


@residents.command("reorder")
@click.argument("tenant")
def reorder_cmd(tenant: str) -> None:
    """Store residents in kana order (maintenance after a first load; locks the tenant's searches)."""
    record = active_tenant(tenant)
    started = time.perf_counter()
    with session_scope(record.binding) as session:
        count = service.reorder(session)
    click.echo(
        f"{record.id}: 住民{count:,}人をフリガナ順に並べ替えました（{time.perf_counter() - started:.1f}秒）"
    )
