"""The city's administration screens: staff, groups and permissions, for that city alone."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity.models import StaffGroup, StaffUser
from tests.conftest import csrf_token, login, make_staff, tenant_session

ALL_ROLES = {"窓口職員", "担当課職員", "受付担当", "署名タブレット", "監督者", "管理者", "監査担当"}


@pytest.fixture
def admin(app: Flask, db: None) -> FlaskClient:
    make_staff("gobo", "kanri", "管理 一郎", groups=("管理者",))
    client = app.test_client()
    login(client, "gobo", "kanri")
    return client


def _group_ids(tenant: str, *names: str) -> list[str]:
    with tenant_session(tenant) as session:
        return [str(session.scalars(select(StaffGroup.id).where(StaffGroup.name == n)).one()) for n in names]


def _post(client: FlaskClient, path: str, **data: object) -> object:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)})


def test_create_a_clerk_who_must_change_the_password(app: Flask, admin: FlaskClient) -> None:
    response = _post(
        admin,
        "/gobo/admin/users",
        login="yamada",
        display_name="山田 花子",
        password="first password 123",
        groups=_group_ids("gobo", "窓口職員"),
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    clerk = app.test_client()
    token = csrf_token(clerk, "/gobo/login")
    first = clerk.post(
        "/gobo/login", data={"login": "yamada", "password": "first password 123", "csrf_token": token}
    )
    assert first.headers["Location"] == "/gobo/password"
    changed = _post(
        clerk,
        "/gobo/password",
        current="first password 123",
        new="my own password 456",
        again="my own password 456",
    )
    assert changed.status_code == 302  # type: ignore[attr-defined]
    assert clerk.get("/gobo/residents").status_code == 200
    assert clerk.get("/gobo/admin/users").status_code == 403
    with tenant_session("gobo") as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert "staff.created" in actions
    assert "auth.password_changed" in actions


def test_invalid_input_is_explained_in_japanese(admin: FlaskClient) -> None:
    response = _post(admin, "/gobo/admin/users", login="A!", display_name="", password="short")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "ログインIDは英小文字" in response.get_data(as_text=True)  # type: ignore[attr-defined]


def test_disabling_a_user_ends_their_session_at_once(
    app: Flask, admin: FlaskClient, client_for: object
) -> None:
    clerk = client_for("gobo", "sato")  # type: ignore[operator]
    assert clerk.get("/gobo/residents").status_code == 200
    with tenant_session("gobo") as session:
        user_id = session.scalars(select(StaffUser.id).where(StaffUser.login == "sato")).one()
    assert _post(admin, f"/gobo/admin/users/{user_id}", action="disable").status_code == 302  # type: ignore[attr-defined]
    assert clerk.get("/gobo/residents").headers["Location"].startswith("/gobo/login")
    assert clerk.get("/api/v1/gobo/tenant").status_code == 401


def test_an_administrator_cannot_disable_themselves(admin: FlaskClient) -> None:
    with tenant_session("gobo") as session:
        me = session.scalars(select(StaffUser.id).where(StaffUser.login == "kanri")).one()
    response = _post(admin, f"/gobo/admin/users/{me}", action="disable")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "自分自身" in response.get_data(as_text=True)  # type: ignore[attr-defined]


def test_reset_password_shows_a_one_time_password_and_ends_sessions(
    app: Flask, admin: FlaskClient, client_for: object
) -> None:
    clerk = client_for("gobo", "forgetful")  # type: ignore[operator]
    with tenant_session("gobo") as session:
        user_id = session.scalars(select(StaffUser.id).where(StaffUser.login == "forgetful")).one()
    page = _post(admin, f"/gobo/admin/users/{user_id}", action="reset_password")
    assert page.status_code == 200  # type: ignore[attr-defined]
    temporary = re.search(r'<code class="secret">([^<]+)</code>', page.get_data(as_text=True))  # type: ignore[attr-defined]
    assert temporary
    assert clerk.get("/gobo/").status_code == 302
    again = app.test_client()
    token = csrf_token(again, "/gobo/login")
    signed = again.post(
        "/gobo/login", data={"login": "forgetful", "password": temporary.group(1), "csrf_token": token}
    )
    assert signed.headers["Location"] == "/gobo/password"


def test_assigning_groups_changes_what_the_user_can_do(admin: FlaskClient, client_for: object) -> None:
    clerk = client_for("gobo", "promoted")  # type: ignore[operator]
    assert clerk.get("/gobo/linkage/batches").status_code == 403
    with tenant_session("gobo") as session:
        user_id = session.scalars(select(StaffUser.id).where(StaffUser.login == "promoted")).one()
    groups = _group_ids("gobo", "窓口職員", "監督者")
    assert _post(admin, f"/gobo/admin/users/{user_id}", action="groups", groups=groups).status_code == 302  # type: ignore[attr-defined]
    assert clerk.get("/gobo/linkage/batches").status_code == 200


def test_a_city_group_with_chosen_permissions(admin: FlaskClient, client_for: object) -> None:
    created = _post(
        admin,
        "/gobo/admin/groups",
        name="税務課",
        description="課税証明の窓口",
        permissions=["calendar.view", "residents.search"],
    )
    assert created.status_code == 302  # type: ignore[attr-defined]
    clerk = client_for("gobo", "zeimu", groups=("税務課",))  # type: ignore[operator]
    assert clerk.get("/gobo/residents").status_code == 200
    assert clerk.get("/gobo/residents/1").status_code == 403  # residents.view was not given
    group_id = _group_ids("gobo", "税務課")[0]
    edited = _post(
        admin,
        f"/gobo/admin/groups/{group_id}",
        action="save",
        permissions=["calendar.view", "residents.search", "residents.view"],
    )
    assert edited.status_code == 302  # type: ignore[attr-defined]
    assert clerk.get("/gobo/residents/1").status_code == 404  # allowed now; no such resident


def test_groups_from_roles_yaml_cannot_be_edited_in_the_screens(admin: FlaskClient) -> None:
    group_id = _group_ids("gobo", "窓口職員")[0]
    response = _post(admin, f"/gobo/admin/groups/{group_id}", action="save", permissions=["admin.users"])
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "ロール設定" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _post(admin, f"/gobo/admin/groups/{group_id}", action="delete").status_code == 400  # type: ignore[attr-defined]


def test_one_citys_administrator_cannot_reach_another_citys_staff(app: Flask, admin: FlaskClient) -> None:
    osaka_user = make_staff("osaka", "osaka-clerk")
    assert admin.get(f"/osaka/admin/users/{osaka_user}").status_code == 404
    assert admin.get(f"/gobo/admin/users/{osaka_user}").status_code in (200, 404)  # Gobo's own id space
    with tenant_session("gobo") as session:
        assert session.scalars(select(StaffUser).where(StaffUser.login == "osaka-clerk")).first() is None


def test_every_administrative_change_is_logged(admin: FlaskClient) -> None:
    _post(admin, "/gobo/admin/groups", name="監査補助", description="", permissions=["audit.read"])
    with tenant_session("gobo") as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "group.created")).one()
    assert entry.actor_type == "staff"
    assert entry.details["permissions"] == ["audit.read"]


def test_roles_are_seeded_per_city_from_configuration(provisioned: object, db: None) -> None:
    from app.identity.models import GroupPermission

    for tenant in ("osaka", "gobo", "yamaguchi"):
        with tenant_session(tenant) as session:
            names = set(session.scalars(select(StaffGroup.name).where(StaffGroup.managed)))
            assert names == ALL_ROLES, tenant
            admin_group = session.scalars(select(StaffGroup.id).where(StaffGroup.name == "管理者")).one()
            perms = set(
                session.scalars(
                    select(GroupPermission.permission).where(GroupPermission.group_id == admin_group)
                )
            )
            assert "admin.users" in perms
            assert "residents.view" not in perms  # administrators manage accounts, not residents
