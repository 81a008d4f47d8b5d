"""API clients: OAuth2 client credentials per tenant, scopes, hashed tokens, 404 across tenants."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, text, update

from app.cli import main
from app.identity.models import ApiClient, ApiToken
from tests.conftest import tenant_session


def _add_client(tenant: str, *scopes: str) -> tuple[str, str]:
    args = ["clients", "add", tenant, "基幹連携"]
    for scope in scopes:
        args += ["--scope", scope]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    return out.output.split("client_id: ")[1].split()[0], out.output.split("client_secret: ")[1].split()[0]


def _token(app: Flask, tenant: str, client_id: str, secret: str, **data: str) -> dict[str, object]:
    response = app.test_client().post(
        f"/api/v1/{tenant}/oauth/token",
        data={"grant_type": "client_credentials", **data},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_client_credentials_token_reaches_only_its_scopes(app: Flask, db: None) -> None:
    client_id, secret = _add_client("osaka", "tenant.read", "residents.read")
    issued = _token(app, "osaka", client_id, secret)
    assert issued["token_type"] == "Bearer"
    assert issued["scope"] == "residents.read tenant.read"
    assert issued["expires_in"] == 3600
    token = str(issued["access_token"])
    assert token.startswith("mdg.osaka.")
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/osaka/tenant", headers=bearer).status_code == 200
    assert api.get("/api/v1/osaka/residents?kana=ヤマダ", headers=bearer).status_code == 200
    assert api.get("/api/v1/osaka/linkage/batches", headers=bearer).status_code == 403
    assert api.post("/api/v1/osaka/guidance", json={"event": "tennyu"}, headers=bearer).status_code == 403
    # a token never opens the staff screens
    assert api.get("/osaka/", headers=bearer).status_code == 302


def test_a_narrower_scope_can_be_requested_but_not_a_wider_one(app: Flask, db: None) -> None:
    client_id, secret = _add_client("gobo", "tenant.read", "residents.read")
    narrow = _token(app, "gobo", client_id, secret, scope="tenant.read")
    bearer = {"Authorization": f"Bearer {narrow['access_token']}"}
    assert app.test_client().get("/api/v1/gobo/residents?kana=ア", headers=bearer).status_code == 403
    wider = app.test_client().post(
        "/api/v1/gobo/oauth/token",
        data={"grant_type": "client_credentials", "scope": "guidance"},
        auth=(client_id, secret),
    )
    assert wider.status_code == 400
    assert wider.get_json()["error"] == "invalid_scope"


def test_wrong_secret_and_unknown_client_are_refused(app: Flask, db: None) -> None:
    client_id, _ = _add_client("gobo", "tenant.read")
    for auth in ((client_id, "not the secret"), ("gobo-0000000000000000", "x")):
        response = app.test_client().post(
            "/api/v1/gobo/oauth/token", data={"grant_type": "client_credentials"}, auth=auth
        )
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"


def test_a_client_of_one_city_cannot_get_a_token_from_another(app: Flask, db: None) -> None:
    client_id, secret = _add_client("osaka", "tenant.read")
    response = app.test_client().post(
        "/api/v1/gobo/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 401  # the client does not exist in Gobo's schema


def test_token_of_tenant_a_on_tenant_b_is_404_like_an_unknown_tenant(app: Flask, db: None) -> None:
    client_id, secret = _add_client("osaka", "tenant.read", "residents.read")
    bearer = {"Authorization": f"Bearer {_token(app, 'osaka', client_id, secret)['access_token']}"}
    api = app.test_client()
    for path in ("/tenant", "/residents?kana=ヤマダ", "/residents/1", "/calendar"):
        wrong = api.get(f"/api/v1/gobo{path}", headers=bearer)
        unknown = api.get(f"/api/v1/atlantis{path}", headers=bearer)
        assert wrong.status_code == unknown.status_code == 404, path
        assert wrong.get_data() == unknown.get_data()
        assert wrong.content_type == unknown.content_type


def test_tokens_are_stored_hashed(app: Flask, db: None) -> None:
    client_id, secret = _add_client("gobo", "tenant.read")
    token = str(_token(app, "gobo", client_id, secret)["access_token"])
    with tenant_session("gobo") as session:
        row = session.scalars(select(ApiToken)).one()
        client = session.scalars(select(ApiClient)).one()
        dump = " ".join(
            str(v)
            for v in session.execute(
                text("SELECT t::text FROM api_tokens t UNION ALL SELECT c::text FROM api_clients c")
            ).scalars()
        )
    assert token not in dump
    assert secret not in dump
    assert len(row.token_hash) == 64
    assert client.secret_hash != secret


def test_revoked_client_and_expired_token_stop_working(app: Flask, db: None) -> None:
    client_id, secret = _add_client("gobo", "tenant.read")
    token = str(_token(app, "gobo", client_id, secret)["access_token"])
    bearer = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    assert api.get("/api/v1/gobo/tenant", headers=bearer).status_code == 200
    with tenant_session("gobo") as session:
        session.execute(update(ApiToken).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        session.commit()
    assert api.get("/api/v1/gobo/tenant", headers=bearer).status_code == 401
    fresh = {"Authorization": f"Bearer {_token(app, 'gobo', client_id, secret)['access_token']}"}
    assert api.get("/api/v1/gobo/tenant", headers=fresh).status_code == 200
    out = CliRunner().invoke(main, ["clients", "revoke", "gobo", client_id])
    assert out.exit_code == 0, out.output
    assert api.get("/api/v1/gobo/tenant", headers=fresh).status_code == 401
    again = app.test_client().post(
        "/api/v1/gobo/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert again.status_code == 401


def test_clients_cli_list_and_bad_scope(db: None) -> None:
    client_id, _ = _add_client("yamaguchi", "linkage.read")
    listed = CliRunner().invoke(main, ["clients", "list", "yamaguchi"])
    assert client_id in listed.output
    assert "linkage.read" in listed.output
    bad = CliRunner().invoke(main, ["clients", "add", "yamaguchi", "x", "--scope", "admin.users"])
    assert bad.exit_code == 2  # not a scope at all


def test_token_issuance_is_in_the_operation_log(app: Flask, db: None) -> None:
    from app.audit.models import AuditEntry

    client_id, secret = _add_client("gobo", "tenant.read")
    _token(app, "gobo", client_id, secret)
    with tenant_session("gobo") as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "api.token_issued")).all()
    assert [(e.actor_type, e.actor_id) for e in entries] == [("api_client", client_id)]
