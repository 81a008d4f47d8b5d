"""The city's administration screens under ``/<tenant>/admin/``: staff, groups, break-glass approvals.

Everything here acts on the URL's tenant only (the session is bound to its schema and role), and every
change is written to the operation log.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.audit import record
from app.db.base import utcnow
from app.identity import breakglass
from app.identity.breakglass import GrantInputError
from app.identity.context import current_principal
from app.identity.models import BreakglassGrant, GroupMember, StaffGroup, StaffUser
from app.identity.permissions import PERMISSIONS, requires
from app.identity.service import (
    AccountInputError,
    create_group,
    create_user,
    delete_group,
    disable_user,
    enable_user,
    group_permissions,
    reset_password,
    reset_totp,
    set_group_permissions,
    set_groups,
    set_oidc_identity,
)
from app.inputs import bounded_int, form_int
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web


def _me() -> tuple[str, str]:
    principal = current_principal()
    assert principal is not None
    return principal.subject_id, principal.display_name


def _groups() -> list[StaffGroup]:
    return list(tenant_db().scalars(select(StaffGroup).order_by(StaffGroup.managed.desc(), StaffGroup.name)))


def _int_list(name: str) -> list[int]:
    """The ids ticked in a list of checkboxes (a value that is no id of ours is left out)."""
    ids = []
    for value in request.form.getlist(name):
        try:
            ids.append(bounded_int(value))
        except ValueError:
            continue
    return [i for i in ids if i > 0]


@tenant_web.route("/admin/")
@requires("admin.users")
def admin_home() -> str:
    return render_template("admin/home.html")


# --- staff ------------------------------------------------------------------------------------


@tenant_web.route("/admin/users", methods=["GET", "POST"])
@requires("admin.users")
def admin_users() -> str | Response | tuple[str, int]:
    db = tenant_db()
    config = tenant_config()
    error = None
    if request.method == "POST":
        form = request.form
        oidc = config.security.oidc
        try:
            password = form.get("password") or None
            if password is None and not form.get("oidc_subject", "").strip():
                raise AccountInputError(
                    "初期パスワードか、認証基盤の利用者識別子のどちらかを入力してください"
                )
            user = create_user(
                db,
                form.get("login", "").strip(),
                form.get("display_name", ""),
                password,
                min_length=config.security.password.min_length,
                oidc_issuer=oidc.issuer if oidc else None,
                oidc_subject=form.get("oidc_subject", "").strip() or None,
            )
            if password:
                user.must_change_password = True
            set_groups(db, user.id, _int_list("groups"))
            record(
                db,
                "staff.created",
                subject_type="staff_user",
                subject_id=user.id,
                details={"login": user.login, "groups": _int_list("groups")},
            )
            db.commit()
        except AccountInputError as exc:
            db.rollback()
            error = str(exc)
        else:
            flash(f"職員「{user.display_name}」を作成しました。")
            return redirect(url_for("web.admin_user", user_id=user.id))
    users = db.scalars(select(StaffUser).order_by(StaffUser.login)).all()
    memberships: dict[int, list[str]] = {}
    names = {grp.id: grp.name for grp in _groups()}
    for member in db.scalars(select(GroupMember)):
        memberships.setdefault(member.user_id, []).append(names.get(member.group_id, "?"))
    body = render_template(
        "admin/users.html",
        users=users,
        memberships=memberships,
        groups=_groups(),
        oidc=config.security.oidc,
        now=utcnow(),
        error=error,
    )
    return (body, 400) if error else body


@tenant_web.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@requires("admin.users")
def admin_user(user_id: int) -> str | Response | tuple[str, int]:
    db = tenant_db()
    user = db.get(StaffUser, user_id)
    if user is None:
        abort(404)
    config = tenant_config()
    error = None
    temporary = None
    if request.method == "POST":
        action = request.form.get("action", "")
        me, _ = _me()
        try:
            if action == "groups":
                set_groups(db, user.id, _int_list("groups"))
                record(
                    db, "staff.groups_changed", subject_type="staff_user", subject_id=user.id,
                    details={"groups": _int_list("groups")},
                )  # fmt: skip
                flash("所属グループを変更しました。")
            elif action == "disable":
                if str(user.id) == me:
                    raise AccountInputError("自分自身のアカウントは無効にできません")
                disable_user(db, g.tenant.id, user.id)
                record(db, "staff.disabled", subject_type="staff_user", subject_id=user.id)
                flash("アカウントを無効にしました。ログイン中の画面もすぐに使えなくなります。")
            elif action == "enable":
                enable_user(db, user.id)
                record(db, "staff.enabled", subject_type="staff_user", subject_id=user.id)
                flash("アカウントを有効にしました。")
            elif action == "reset_password":
                temporary = reset_password(db, g.tenant.id, user.id)
                record(db, "staff.password_reset", subject_type="staff_user", subject_id=user.id)
            elif action == "reset_totp":
                reset_totp(db, g.tenant.id, user.id)
                record(db, "staff.totp_reset", subject_type="staff_user", subject_id=user.id)
                flash("確認コード（TOTP）の登録を解除しました。次回ログイン時に登録し直します。")
            elif action == "oidc":
                oidc = config.security.oidc
                set_oidc_identity(db, user, oidc.issuer if oidc else None, request.form.get("oidc_subject"))
                record(
                    db, "staff.oidc_linked", subject_type="staff_user", subject_id=user.id,
                    details={"subject": user.oidc_subject},
                )  # fmt: skip
                flash("認証基盤の利用者識別子を変更しました。")
            else:
                abort(400)
            user.updated_at = utcnow()
            db.commit()
        except AccountInputError as exc:
            db.rollback()
            error = str(exc)
        else:
            if temporary is None:
                return redirect(url_for("web.admin_user", user_id=user.id))
    member_of = set(db.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user.id)))
    body = render_template(
        "admin/user.html",
        user=user,
        groups=_groups(),
        member_of=member_of,
        oidc=config.security.oidc,
        temporary=temporary,
        error=error,
    )
    return (body, 400) if error else body


# --- groups -----------------------------------------------------------------------------------


@tenant_web.route("/admin/groups", methods=["GET", "POST"])
@requires("admin.groups")
def admin_groups() -> str | Response | tuple[str, int]:
    db = tenant_db()
    error = None
    if request.method == "POST":
        try:
            group = create_group(
                db,
                request.form.get("name", ""),
                request.form.get("description", ""),
                request.form.getlist("permissions"),
            )
            record(
                db, "group.created", subject_type="staff_group", subject_id=group.id,
                details={"name": group.name, "permissions": sorted(request.form.getlist("permissions"))},
            )  # fmt: skip
            db.commit()
        except AccountInputError as exc:
            db.rollback()
            error = str(exc)
        else:
            flash(f"グループ「{group.name}」を作成しました。")
            return redirect(url_for("web.admin_groups"))
    body = render_template(
        "admin/groups.html",
        groups=_groups(),
        permissions_by_group=group_permissions(db),
        permissions=PERMISSIONS,
        error=error,
    )
    return (body, 400) if error else body


@tenant_web.route("/admin/groups/<int:group_id>", methods=["GET", "POST"])
@requires("admin.groups")
def admin_group(group_id: int) -> str | Response | tuple[str, int]:
    db = tenant_db()
    group = db.get(StaffGroup, group_id)
    if group is None:
        abort(404)
    error = None
    if request.method == "POST":
        try:
            if request.form.get("action") == "delete":
                delete_group(db, group.id)
                record(db, "group.deleted", subject_type="staff_group", subject_id=group_id,
                       details={"name": group.name})  # fmt: skip
                db.commit()
                flash(f"グループ「{group.name}」を削除しました。")
                return redirect(url_for("web.admin_groups"))
            chosen = request.form.getlist("permissions")
            set_group_permissions(db, group, chosen)
            record(db, "group.permissions_changed", subject_type="staff_group", subject_id=group.id,
                   details={"permissions": sorted(chosen)})  # fmt: skip
            db.commit()
        except AccountInputError as exc:
            db.rollback()
            error = str(exc)
        else:
            flash("権限を変更しました。所属する職員の次の操作から反映されます。")
            return redirect(url_for("web.admin_group", group_id=group.id))
    members = db.scalars(
        select(StaffUser)
        .join(GroupMember, GroupMember.user_id == StaffUser.id)
        .where(GroupMember.group_id == group.id)
        .order_by(StaffUser.login)
    ).all()
    body = render_template(
        "admin/group.html",
        group=group,
        granted=set(group_permissions(db).get(group.id, [])),
        permissions=PERMISSIONS,
        members=members,
        error=error,
    )
    return (body, 400) if error else body


# --- break-glass --------------------------------------------------------------------------------


# The administrator's decision on a provider's break-glass request, as the operation log records it.
_GRANT_DECISIONS = {
    "approve": "breakglass.approved",
    "reject": "breakglass.rejected",
    "revoke": "breakglass.revoked",
}


@tenant_web.route("/admin/breakglass", methods=["GET", "POST"])
@requires("admin.breakglass")
def admin_breakglass() -> str | Response | tuple[str, int]:
    db = tenant_db()
    error = None
    if request.method == "POST":
        me, my_name = _me()
        grant_id = form_int(request.form, "grant_id", 0)
        action = request.form.get("action", "")
        note = request.form.get("note", "")[:500]
        if grant_id <= 0 or action not in _GRANT_DECISIONS:
            abort(400)
        try:
            if action == "approve":
                grant = breakglass.approve(db, grant_id, by=me, by_name=my_name, note=note)
            elif action == "reject":
                grant = breakglass.reject(db, grant_id, by=me, by_name=my_name, note=note)
            else:
                grant = breakglass.revoke(db, grant_id, by=me, by_name=my_name)
            record(
                db,
                _GRANT_DECISIONS[action],
                subject_type="breakglass_grant",
                subject_id=grant.id,
                details={"provider": grant.provider_name, "scope": grant.scope, "note": note or None},
            )
            db.commit()
        except GrantInputError as exc:
            db.rollback()
            error = str(exc)
        else:
            flash("緊急アクセスの申請を処理しました。")
            return redirect(url_for("web.admin_breakglass"))
    now = utcnow()
    grants = breakglass.list_grants(db)
    body = render_template(
        "admin/breakglass.html", grants=grants, now=now, permissions=PERMISSIONS, error=error
    )
    return (body, 400) if error else body


@tenant_web.route("/admin/breakglass/<int:grant_id>")
@requires("audit.read")
def admin_breakglass_grant(grant_id: int) -> str:
    db = tenant_db()
    grant = db.get(BreakglassGrant, grant_id)
    if grant is None:
        abort(404)
    entries = breakglass.reads_under(db, grant)
    record(db, "audit.breakglass_reads_viewed", subject_type="breakglass_grant", subject_id=grant.id)
    db.commit()
    rows: list[dict[str, Any]] = [
        {
            "at": e.occurred_at,
            "action": e.action,
            "subject": f"{e.subject_type or ''} {e.subject_id or ''}".strip(),
            "purpose": e.purpose,
            "details": e.details,
        }
        for e in entries
    ]
    return render_template(
        "admin/breakglass_grant.html", grant=grant, rows=rows, now=utcnow(), permissions=PERMISSIONS
    )
