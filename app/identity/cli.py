"""``madoguchi users ...`` (city staff), ``madoguchi clients ...`` (API clients) and
``madoguchi ops ...`` (provider staff) from the command line."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from app.audit.service import record
from app.cliutil import InputRejected, emit
from app.config import get_settings
from app.db.names import control_binding
from app.db.session import session_scope
from app.identity import sessions
from app.identity.api_clients import ClientInputError, list_clients, register_client, revoke_client
from app.identity.models import ProviderStaff, StaffUser
from app.identity.passwords import hash_password
from app.identity.permissions import SCOPES
from app.identity.service import (
    LOGIN_PATTERN,
    AccountInputError,
    check_password_rule,
    create_user,
    disable_user,
)
from app.tenancy.cli import active_tenant


def _password(from_stdin: bool) -> str | None:
    return sys.stdin.readline().rstrip("\n") if from_stdin else None


@click.group()
def users() -> None:
    """Staff accounts (職員)."""


@users.command("add")
@click.argument("tenant")
@click.argument("login")
@click.option("--name", required=True, help="display name (氏名)")
@click.option("--group", "groups", multiple=True, help="group (ロール) name, e.g. 窓口職員; repeatable")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def add_cmd(tenant: str, login: str, name: str, groups: tuple[str, ...], password_stdin: bool) -> None:
    password = _password(password_stdin)
    rec = active_tenant(tenant)
    try:
        with session_scope(rec.binding) as session:
            user = create_user(session, login, name, password, groups=groups)
            record(
                session,
                "staff.created",
                subject_type="staff_user",
                subject_id=user.id,
                details={"login": login, "groups": list(groups)},
            )
    except AccountInputError as exc:
        raise InputRejected(str(exc)) from exc
    click.echo(f"作成しました: {login}")


@users.command("disable")
@click.argument("tenant")
@click.argument("login")
def disable_cmd(tenant: str, login: str) -> None:
    """Disable an account and end all its sessions at once."""
    rec = active_tenant(tenant)
    with session_scope(rec.binding) as session:
        user_id = session.scalar(select(StaffUser.id).where(StaffUser.login == login))
        if user_id is None:
            raise InputRejected(f"職員 {login!r} は見つかりません")
        disable_user(session, rec.id, user_id)
        record(session, "staff.disabled", subject_type="staff_user", subject_id=user_id)
    click.echo(f"無効にしました: {login}")


# --- API clients ---------------------------------------------------------------------------------


@click.group()
def clients() -> None:
    """API clients (OAuth2 client credentials, one tenant each)."""


@clients.command("add")
@click.argument("tenant")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(sorted(SCOPES)),
    help="scope to allow; repeatable",
)
def clients_add_cmd(tenant: str, name: str, scopes: tuple[str, ...]) -> None:
    """Register a client; prints its id and secret (the secret is shown only this once)."""
    rec = active_tenant(tenant)
    try:
        with session_scope(rec.binding) as session:
            client, secret = register_client(session, rec.id, name, list(scopes), created_by="cli")
            record(
                session,
                "api.client_created",
                subject_type="api_client",
                subject_id=client.client_id,
                details={"name": client.name, "scopes": client.scopes},
            )
            client_id = client.client_id
    except ClientInputError as exc:
        raise InputRejected(str(exc)) from exc
    click.echo(f"client_id: {client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(f"token endpoint: /api/v1/{rec.id}/oauth/token  （シークレットは再表示できません）")


@clients.command("list")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True)
def clients_list_cmd(tenant: str, as_json: bool) -> None:
    rec = active_tenant(tenant)
    with session_scope(rec.binding) as session:
        rows = [
            {
                "client_id": c.client_id,
                "name": c.name,
                "scopes": c.scopes,
                "created_at": c.created_at,
                "revoked_at": c.revoked_at,
                "last_token_at": c.last_token_at,
            }
            for c in list_clients(session)
        ]
    emit(
        rows,
        as_json,
        lambda r: (
            f"{r['client_id']}  {r['name']}  {' '.join(r['scopes'])}"
            + ("  （無効）" if r["revoked_at"] else "")
        ),
    )


@clients.command("revoke")
@click.argument("tenant")
@click.argument("client_id")
def clients_revoke_cmd(tenant: str, client_id: str) -> None:
    """Revoke a client: its tokens stop working at once."""
    rec = active_tenant(tenant)
    try:
        with session_scope(rec.binding) as session:
            client = revoke_client(session, client_id)
            record(session, "api.client_revoked", subject_type="api_client", subject_id=client.client_id)
    except ClientInputError as exc:
        raise InputRejected(str(exc)) from exc
    click.echo(f"無効にしました: {client_id}")


# --- provider staff --------------------------------------------------------------------------------


@click.group()
def ops() -> None:
    """Provider staff accounts (事業者の運用担当, /ops/; TOTP is enrolled at first login)."""


@ops.command("add")
@click.argument("login")
@click.option("--name", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def ops_add_cmd(login: str, name: str, password_stdin: bool) -> None:
    password = _password(password_stdin)
    if not LOGIN_PATTERN.fullmatch(login):
        raise InputRejected("ログインIDは英小文字・数字・._- の3〜64文字で入力してください")
    if not password:
        raise InputRejected("パスワードを標準入力から与えてください（--password-stdin）")
    try:
        check_password_rule(password, 14)
    except AccountInputError as exc:
        raise InputRejected(str(exc)) from exc
    with session_scope(control_binding(get_settings().role_prefix)) as session:
        if session.scalar(select(ProviderStaff.id).where(ProviderStaff.login == login)) is not None:
            raise InputRejected(f"ログインID「{login}」は既に使われています")
        session.add(
            ProviderStaff(login=login, display_name=name.strip(), password_hash=hash_password(password))
        )
    click.echo(f"作成しました: {login}")


@ops.command("disable")
@click.argument("login")
def ops_disable_cmd(login: str) -> None:
    with session_scope(control_binding(get_settings().role_prefix)) as session:
        account = session.scalar(select(ProviderStaff).where(ProviderStaff.login == login))
        if account is None:
            raise InputRejected(f"事業者アカウント {login!r} は見つかりません")
        account.is_active = False
        account_id = account.id
    sessions.revoke_all(None, str(account_id))
    click.echo(f"無効にしました: {login}")
