"""Break-glass: provider staff see residents' data only under a grant the city approved, for its time;
every request is logged and listed for the city; an expired grant reads nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.config import get_settings
from app.db.names import control_binding
from app.db.session import new_session
from app.identity import breakglass
from app.identity.models import BreakglassGrant, ProviderStaff
from app.identity.passwords import hash_password
from tests.conftest import PASSWORD, csrf_token, login, make_staff, tenant_session

PURPOSE = "問い合わせ #1234: 転入処理の画面で世帯が表示されない件の調査"


@pytest.fixture
def provider(app: Flask, db: None) -> tuple[FlaskClient, str]:
    with new_session(control_binding(get_settings().role_prefix)) as session:
        staff = ProviderStaff(
            login="ops-sato", display_name="運用 佐藤", password_hash=hash_password(PASSWORD)
        )
        session.add(staff)
        session.commit()
        provider_id = str(staff.id)
    client = app.test_client()
    login(client, "ops", "ops-sato", prefix="/ops")  # TOTP always, enrolled at first login
    return client, provider_id


@pytest.fixture
def city_admin(app: Flask, db: None) -> FlaskClient:
    make_staff("osaka", "kanri", "管理 花子", groups=("管理者",))
    client = app.test_client()
    login(client, "osaka", "kanri")
    return client


def _request(client: FlaskClient, scope: tuple[str, ...] = ("residents.search", "residents.view")) -> None:
    token = csrf_token(client, "/ops/")
    response = client.post(
        "/ops/breakglass",
        data={
            "tenant": "osaka",
            "reason": PURPOSE,
            "scope": list(scope),
            "duration_minutes": "60",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302


def _grant_id() -> int:
    with tenant_session("osaka") as session:
        return session.scalars(select(BreakglassGrant.id).order_by(BreakglassGrant.id.desc())).first()  # type: ignore[return-value]


def _decide(admin: FlaskClient, grant_id: int, action: str) -> None:
    token = csrf_token(admin, "/osaka/admin/breakglass")
    response = admin.post(
        "/osaka/admin/breakglass", data={"grant_id": str(grant_id), "action": action, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def test_ops_home_shows_no_personal_data_and_needs_provider_login(
    app: Flask, provider: tuple[FlaskClient, str], client_for: object
) -> None:
    client, _ = provider
    home = client.get("/ops/")
    assert home.status_code == 200
    assert "緊急アクセスを申請" in home.get_data(as_text=True)
    clerk = client_for("osaka")  # type: ignore[operator]
    assert clerk.get("/ops/").headers["Location"].startswith("/ops/login")
    assert app.test_client().get("/ops/").headers["Location"].startswith("/ops/login")


def test_without_a_grant_the_provider_sees_404_on_every_city_route(provider: tuple[FlaskClient, str]) -> None:
    client, _ = provider
    for path in (
        "/osaka/",
        "/osaka/residents?kana=ヤマダ",
        "/api/v1/osaka/residents?kana=ヤマダ",
        "/osaka/admin/",
    ):
        assert client.get(path).status_code == 404, path


def test_request_approve_read_and_the_city_sees_every_read(
    provider: tuple[FlaskClient, str], city_admin: FlaskClient
) -> None:
    client, provider_id = provider
    _request(client)
    grant_id = _grant_id()
    assert client.get("/osaka/residents?kana=ヤマダ").status_code == 404  # requested, not approved
    page = city_admin.get("/osaka/admin/breakglass").get_data(as_text=True)
    assert PURPOSE in page
    assert "承認待ち" in page
    _decide(city_admin, grant_id, "approve")
    assert client.get("/osaka/residents?kana=ヤマダ&purpose=調査").status_code == 200
    assert client.get("/api/v1/osaka/residents?kana=ヤマダ").status_code == 200
    assert client.get("/osaka/admin/users").status_code == 403  # never administration
    assert client.get("/osaka/linkage/batches").status_code == 403  # not in this grant's scope
    assert client.get("/gobo/residents?kana=ヤマダ").status_code == 404  # another city: no grant there
    with tenant_session("osaka") as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.actor_type == "provider").order_by(AuditEntry.id)
        ).all()
    assert {e.actor_id for e in entries} == {provider_id}
    actions = [e.action for e in entries]
    assert "breakglass.requested" in actions
    assert actions.count("breakglass.access") >= 4  # refused requests under the grant are logged too
    assert "resident.search" in actions  # the search itself, logged by the residents service
    listing = city_admin.get(f"/osaka/admin/breakglass/{grant_id}")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert "resident.search" in text
    assert "/api/v1/osaka/residents" in text
    assert '"kana": "ヤマダ"' in text  # what was searched for, as the residents service logs it


def test_an_expired_grant_reads_nothing(provider: tuple[FlaskClient, str]) -> None:
    client, _ = provider
    _request(client)
    grant_id = _grant_id()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    with tenant_session("osaka") as session:  # approved three hours ago for 60 minutes
        breakglass.approve(session, grant_id, by="1", by_name="管理 花子", now=long_ago)
        session.commit()
    for path in ("/osaka/residents?kana=ヤマダ", "/osaka/residents/1", "/api/v1/osaka/residents?kana=ヤマダ"):
        assert client.get(path).status_code == 404, path
    with tenant_session("osaka") as session:
        grant = session.get(BreakglassGrant, grant_id)
        assert grant is not None
        assert grant.status == "approved"
        assert not grant.active_at(dt.datetime.now(dt.UTC))
        reads = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.actor_type == "provider", AuditEntry.action != "breakglass.requested"
            )
        ).all()
    assert reads == []  # nothing was read, nothing was even admitted


def test_the_city_can_reject_or_end_a_grant(
    provider: tuple[FlaskClient, str], city_admin: FlaskClient
) -> None:
    client, _ = provider
    _request(client)
    _decide(city_admin, _grant_id(), "reject")
    assert client.get("/osaka/residents?kana=ヤマダ").status_code == 404
    _request(client)
    second = _grant_id()
    _decide(city_admin, second, "approve")
    assert client.get("/osaka/residents?kana=ヤマダ").status_code == 200
    _decide(city_admin, second, "revoke")
    assert client.get("/osaka/residents?kana=ヤマダ").status_code == 404


def test_another_citys_administrator_cannot_see_or_approve_the_request(
    app: Flask, provider: tuple[FlaskClient, str]
) -> None:
    client, _ = provider
    _request(client)
    grant_id = _grant_id()
    make_staff("gobo", "gobo-kanri", groups=("管理者",))
    gobo_admin = app.test_client()
    login(gobo_admin, "gobo", "gobo-kanri")
    assert PURPOSE not in gobo_admin.get("/gobo/admin/breakglass").get_data(as_text=True)
    token = csrf_token(gobo_admin, "/gobo/admin/breakglass")
    response = gobo_admin.post(
        "/gobo/admin/breakglass", data={"grant_id": str(grant_id), "action": "approve", "csrf_token": token}
    )
    assert response.status_code == 400  # no such request in Gobo's schema
    assert gobo_admin.get(f"/osaka/admin/breakglass/{grant_id}").status_code == 404
    assert client.get("/osaka/residents?kana=ヤマダ").status_code == 404


def test_grants_cannot_include_administration() -> None:
    with pytest.raises(breakglass.GrantInputError):
        breakglass.request_grant(
            None,  # type: ignore[arg-type]
            provider_id="1",
            provider_name="x",
            reason=PURPOSE,
            scope=["admin.users"],
            duration_minutes=60,
        )


def test_a_clerk_cannot_approve(client_for: object, provider: tuple[FlaskClient, str]) -> None:
    client, _ = provider
    _request(client)
    clerk = client_for("osaka")  # type: ignore[operator]
    token = csrf_token(clerk, "/osaka/")
    response = clerk.post(
        "/osaka/admin/breakglass",
        data={"grant_id": str(_grant_id()), "action": "approve", "csrf_token": token},
    )
    assert response.status_code == 403
