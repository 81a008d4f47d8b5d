"""``madoguchi users ...``: staff accounts from the command line."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from app.audit.service import record
from app.cliutil import InputRejected
from app.db.session import session_scope
from app.identity.models import StaffUser
from app.identity.service import AccountInputError, create_user, disable_user
from app.tenancy.cli import active_tenant


@click.group()
def users() -> None:
    """Staff accounts (職員)."""


@users.command("add")
@click.argument("tenant")
@click.argument("login")
@click.option("--name", required=True, help="display name (氏名)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def add_cmd(tenant: str, login: str, name: str, password_stdin: bool) -> None:
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    rec = active_tenant(tenant)
    try:
        with session_scope(rec.binding) as session:
            user = create_user(session, login, name, password)
            record(
                session,
                "staff.created",
                subject_type="staff_user",
                subject_id=user.id,
                details={"login": login},
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
