"""Staff accounts, groups and permissions; password checks with lockout (shared with provider staff)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.identity import sessions
from app.identity.config import LockoutPolicy
from app.identity.models import GroupMember, GroupPermission, LoginAccount, StaffGroup, StaffUser
from app.identity.passwords import hash_password, verify_password
from app.identity.permissions import PERMISSIONS, unknown_permissions

LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12


class AccountInputError(ValueError):
    """Invalid account input; Japanese message for the administrator."""


# --- accounts ----------------------------------------------------------------------------------


def check_password_rule(password: str, min_length: int = MIN_PASSWORD_LENGTH) -> None:
    if len(password) < min_length:
        raise AccountInputError(f"パスワードは{min_length}文字以上にしてください")
    if len(password) > 256:
        raise AccountInputError("パスワードは256文字以内にしてください")


def create_user(
    session: Session,
    login: str,
    display_name: str,
    password: str | None,
    *,
    groups: Iterable[str] = (),
    min_length: int = MIN_PASSWORD_LENGTH,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
) -> StaffUser:
    """Create a staff account, optionally in groups given by name."""
    if not LOGIN_PATTERN.fullmatch(login):
        raise AccountInputError("ログインIDは英小文字・数字・._- の3〜64文字で入力してください")
    if not display_name.strip():
        raise AccountInputError("氏名を入力してください")
    if password is not None:
        check_password_rule(password, min_length)
    if session.scalar(select(StaffUser.id).where(StaffUser.login == login)) is not None:
        raise AccountInputError(f"ログインID「{login}」は既に使われています")
    user = StaffUser(
        login=login,
        display_name=display_name.strip(),
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    if oidc_subject:
        set_oidc_identity(session, user, oidc_issuer, oidc_subject)
    names = list(groups)
    if names:
        found = {
            row.name: row.id
            for row in session.execute(
                select(StaffGroup.name, StaffGroup.id).where(StaffGroup.name.in_(names))
            )
        }
        missing = [n for n in names if n not in found]
        if missing:
            raise AccountInputError(f"グループ {', '.join(missing)} は見つかりません")
        set_groups(session, user.id, [found[n] for n in names])
    return user


def set_oidc_identity(session: Session, user: StaffUser, issuer: str | None, subject: str | None) -> None:
    subject = (subject or "").strip() or None
    if subject is None:
        user.oidc_issuer = user.oidc_subject = None
        return
    if not issuer:
        raise AccountInputError("この自治体には認証基盤（OIDC）が設定されていません")
    taken = session.scalar(
        select(StaffUser.id).where(
            StaffUser.oidc_issuer == issuer, StaffUser.oidc_subject == subject, StaffUser.id != user.id
        )
    )
    if taken is not None:
        raise AccountInputError("この認証基盤の利用者識別子は別の職員に登録されています")
    user.oidc_issuer, user.oidc_subject = issuer, subject
    session.flush()


def disable_user(session: Session, tenant_id: str, user_id: int) -> None:
    """Disable the account and end every session of it at once."""
    user = session.get(StaffUser, user_id)
    if user is None:
        raise AccountInputError(f"職員 {user_id} が見つかりません")
    user.is_active = False
    user.updated_at = utcnow()
    session.flush()
    sessions.revoke_all(tenant_id, str(user_id))


def enable_user(session: Session, user_id: int) -> None:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise AccountInputError(f"職員 {user_id} が見つかりません")
    user.is_active = True
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = utcnow()
    session.flush()


def reset_password(session: Session, tenant_id: str, user_id: int) -> str:
    """Set a one-time random password (shown once to the administrator); ends the user's sessions."""
    user = session.get(StaffUser, user_id)
    if user is None:
        raise AccountInputError(f"職員 {user_id} が見つかりません")
    temporary = "-".join(secrets.token_urlsafe(6) for _ in range(3))
    user.password_hash = hash_password(temporary)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = utcnow()
    session.flush()
    sessions.revoke_all(tenant_id, str(user_id))
    return temporary


def change_password(session: Session, user: StaffUser, new_password: str, min_length: int) -> None:
    check_password_rule(new_password, min_length)
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.updated_at = utcnow()
    session.flush()


def reset_totp(session: Session, tenant_id: str, user_id: int) -> None:
    """Forget the user's TOTP device: they enrol again at the next login; sessions end."""
    user = session.get(StaffUser, user_id)
    if user is None:
        raise AccountInputError(f"職員 {user_id} が見つかりません")
    user.totp_secret = None
    user.totp_last_step = None
    user.updated_at = utcnow()
    session.flush()
    sessions.revoke_all(tenant_id, str(user_id))


# --- groups and permissions ---------------------------------------------------------------------


def set_groups(session: Session, user_id: int, group_ids: Iterable[int]) -> None:
    wanted = set(group_ids)
    existing = set(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user_id)))
    known = set(session.scalars(select(StaffGroup.id).where(StaffGroup.id.in_(wanted)))) if wanted else set()
    if wanted - known:
        raise AccountInputError("存在しないグループが指定されました")
    if existing - wanted:
        session.execute(
            delete(GroupMember).where(
                GroupMember.user_id == user_id, GroupMember.group_id.in_(existing - wanted)
            )
        )
    for group_id in sorted(wanted - existing):
        session.add(GroupMember(group_id=group_id, user_id=user_id))
    session.flush()


def group_names_of(session: Session, user_id: int) -> list[str]:
    return list(
        session.scalars(
            select(StaffGroup.name)
            .join(GroupMember, GroupMember.group_id == StaffGroup.id)
            .where(GroupMember.user_id == user_id)
            .order_by(StaffGroup.name)
        )
    )


def permissions_of(session: Session, user_id: int) -> frozenset[str] | None:
    """The user's permissions through their groups; None if the account is missing or disabled.

    One query, one row (it runs on every request of a signed-in staff member, so it reads the
    database every time: an account disabled or a group changed behind the service's back counts at
    the next request). Through the session's connection as a Core statement: no ORM result
    machinery for a flag and a list of names.
    """
    row = session.connection().execute(_PERMISSIONS, {"user_id": user_id}).first()
    if row is None or not row.is_active:
        return None
    return frozenset(p for p in row.permissions if p in PERMISSIONS)


_PERMISSIONS = (
    select(
        StaffUser.is_active,
        func.array_remove(func.array_agg(GroupPermission.permission), None).label("permissions"),
    )
    .select_from(StaffUser)
    .outerjoin(GroupMember, GroupMember.user_id == StaffUser.id)
    .outerjoin(GroupPermission, GroupPermission.group_id == GroupMember.group_id)
    .where(StaffUser.id == bindparam("user_id"))
    .group_by(StaffUser.id)
)


def create_group(session: Session, name: str, description: str, permissions: Iterable[str]) -> StaffGroup:
    name = name.strip()
    if not 1 <= len(name) <= 40:
        raise AccountInputError("グループ名は1〜40文字で入力してください")
    if session.scalar(select(StaffGroup.id).where(StaffGroup.name == name)) is not None:
        raise AccountInputError(f"グループ「{name}」は既にあります")
    group = StaffGroup(name=name, description=description.strip(), managed=False)
    session.add(group)
    session.flush()
    set_group_permissions(session, group, permissions)
    return group


def set_group_permissions(session: Session, group: StaffGroup, permissions: Iterable[str]) -> None:
    wanted = set(permissions)
    unknown = unknown_permissions(wanted)
    if unknown:
        raise AccountInputError(f"不明な権限です: {', '.join(unknown)}")
    if group.managed:
        raise AccountInputError(
            f"グループ「{group.name}」はロール設定（roles.yaml）で管理されているため、ここでは変更できません"
        )
    session.execute(delete(GroupPermission).where(GroupPermission.group_id == group.id))
    for name in sorted(wanted):
        session.add(GroupPermission(group_id=group.id, permission=name))
    group.updated_at = utcnow()
    session.flush()


def delete_group(session: Session, group_id: int) -> StaffGroup:
    group = session.get(StaffGroup, group_id)
    if group is None:
        raise AccountInputError("グループが見つかりません")
    if group.managed:
        raise AccountInputError(f"グループ「{group.name}」はロール設定で管理されているため削除できません")
    session.delete(group)
    session.flush()
    return group


def group_permissions(session: Session) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for group_id, permission in session.execute(
        select(GroupPermission.group_id, GroupPermission.permission).order_by(GroupPermission.permission)
    ):
        out.setdefault(group_id, []).append(permission)
    return out


# --- password check with lockout (staff and provider staff) -------------------------------------


@dataclass(frozen=True)
class PasswordCheck:
    account: LoginAccount | None
    ok: bool
    locked: bool = False  # locked now (too many failures); the caller says nothing more specific


def check_password(
    session: Session,
    model: type[StaffUser] | type[LoginAccount],
    login: str,
    password: str,
    lockout: LockoutPolicy,
    now: dt.datetime | None = None,
) -> PasswordCheck:
    """Verify ``login``/``password`` and count failures on the (row-locked) account.

    A locked account is refused even with the right password, after the same argon2 work, so the
    answer and its timing do not tell a locked account from a wrong password or a missing one.
    """
    now = now or utcnow()
    column = model.login
    account: LoginAccount | None = session.scalar(select(model).where(column == login).with_for_update())
    if account is not None and account.locked_until is not None:
        if account.locked_until > now:
            verify_password(password, None)
            return PasswordCheck(account, ok=False, locked=True)
        account.locked_until = None  # the lock has run out
    ok, new_hash = verify_password(password, account.password_hash if account else None)
    if account is None:
        return PasswordCheck(None, ok=False)
    if not ok:
        record_failure(account, lockout, now)
        return PasswordCheck(account, ok=False, locked=account.locked_until is not None)
    if not account.is_active:
        return PasswordCheck(account, ok=False)
    if new_hash:
        account.password_hash = new_hash
    return PasswordCheck(account, ok=True)


def record_failure(account: LoginAccount, lockout: LockoutPolicy, now: dt.datetime | None = None) -> None:
    """One more consecutive failure (password or TOTP); lock when the policy's count is reached."""
    now = now or utcnow()
    account.failed_logins = (account.failed_logins or 0) + 1
    if account.failed_logins >= lockout.max_failures:
        account.locked_until = now + dt.timedelta(minutes=lockout.minutes)
        account.failed_logins = 0


def record_success(account: LoginAccount, now: dt.datetime | None = None) -> None:
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now or utcnow()
