"""Staff accounts: create, authenticate, disable. Issue 5 adds groups, TOTP, lockout and OIDC."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.identity import sessions
from app.identity.models import StaffUser
from app.identity.passwords import hash_password, verify_password
from app.identity.principal import Principal

LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12


class AccountInputError(ValueError):
    """Invalid account input; Japanese message for the administrator."""


def create_user(session: Session, login: str, display_name: str, password: str | None) -> StaffUser:
    if not LOGIN_PATTERN.fullmatch(login):
        raise AccountInputError("ログインIDは英小文字・数字・._- の3〜64文字で入力してください")
    if not display_name.strip():
        raise AccountInputError("氏名を入力してください")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise AccountInputError(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください")
    if session.scalar(select(StaffUser.id).where(StaffUser.login == login)) is not None:
        raise AccountInputError(f"ログインID「{login}」は既に使われています")
    user = StaffUser(
        login=login,
        display_name=display_name.strip(),
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, tenant_id: str, login: str, password: str) -> Principal | None:
    user = session.scalar(select(StaffUser).where(StaffUser.login == login))
    ok, new_hash = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        return None
    if new_hash:
        user.password_hash = new_hash
    user.last_login_at = dt.datetime.now(dt.UTC)
    return Principal("staff", tenant_id, str(user.id), user.display_name)


def disable_user(session: Session, tenant_id: str, user_id: int) -> None:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise AccountInputError(f"職員 {user_id} が見つかりません")
    user.is_active = False
    user.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    sessions.revoke_all(tenant_id, str(user_id))
