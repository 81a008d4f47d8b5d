"""The Flask app: health, request ids and JSON logs, security headers, login and sessions."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from app import create_app
from app.audit.models import AuditEntry
from app.config import Settings, get_settings
from app.identity.service import disable_user
from tests.conftest import PASSWORD, csrf_token, login, make_staff, tenant_session


def test_healthz_and_readyz(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_reports_redis_down(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr("app.observability.health.get_redis", lambda: dead)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "unavailable"}


def test_request_id_is_echoed_or_generated(app: Flask) -> None:
    client = app.test_client()
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-12345678"}).headers["X-Request-ID"]
        == "abc-12345678"
    )
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert len(generated) == 32
    assert " " not in generated


def test_request_ids_never_carry_twelve_digits_in_a_row(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # A My Number sent as a request id would land in every log line; a generated id with such a
    # run would be masked in the audit log as if it were one.
    client = app.test_client()
    for sent in ("123456789018", "req-1234-5678-9018", "x1234567890123"):
        echoed = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
        assert echoed != sent
        assert not re.search(r"[0-9]{12}", echoed)
    unlucky = iter(
        [uuid.UUID("0123456789abcdef0123456789012345"), uuid.UUID("abcdef01abcdef01abcdef01abcdef01")]
    )
    monkeypatch.setattr(uuid, "uuid4", lambda: next(unlucky))
    assert client.get("/healthz").headers["X-Request-ID"] == "abcdef01abcdef01abcdef01abcdef01"


def test_a_request_leaves_no_id_or_tenant_behind_for_the_next_job_in_the_thread(provisioned: object) -> None:
    # A worker thread that served a request and then writes the audit log or logs for a job must
    # not stamp them with the finished request's id or tenant.
    from app.logs import request_id_var, tenant_var

    client = create_app().test_client()
    response = client.get("/gobo/login", headers={"X-Request-ID": "req-00000002"})
    assert response.headers["X-Request-ID"] == "req-00000002"
    assert request_id_var.get() is None
    assert tenant_var.get() is None


def test_access_log_is_json_with_request_id_and_tenant_and_no_query(
    provisioned: object, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(**{**get_settings().model_dump(), "log_level": "INFO"})  # type: ignore[arg-type]
    client = create_app(settings).test_client()
    client.get("/gobo/login?kana=ヤマダ", headers={"X-Request-ID": "req-00000001"})
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    access = [x for x in lines if x.get("logger") == "madoguchi.access"]
    assert access, lines
    entry = access[-1]
    assert entry["request_id"] == "req-00000001"
    assert entry["tenant"] == "gobo"
    assert entry["path"] == "/gobo/login"
    assert "ヤマダ" not in json.dumps(lines, ensure_ascii=False)


def test_security_headers_and_no_store_on_tenant_pages(app: Flask, provisioned: object) -> None:
    response = app.test_client().get("/osaka/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_page_is_a_japanese_404(app: Flask) -> None:
    response = app.test_client().get("/no/such/page")
    assert response.status_code == 404
    assert "ページが見つかりません" in response.get_data(as_text=True)


def test_login_logout_and_audit(app: Flask, db: None) -> None:
    make_staff("osaka", "tanaka", "田中 一郎")
    client = app.test_client()
    assert client.get("/osaka/").headers["Location"].startswith("/osaka/login")
    login(client, "osaka", "tanaka")
    home = client.get("/osaka/")
    assert home.status_code == 200
    page = home.get_data(as_text=True)
    assert "田中 一郎 さん" in page
    assert "東淀川区役所" in page
    assert "福島区役所" in page
    token = csrf_token(client, "/osaka/")
    assert client.post("/osaka/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/osaka/").status_code == 302
    with tenant_session("osaka") as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["auth.login", "auth.logout"]


def test_wrong_password_is_refused_and_recorded(app: Flask, db: None) -> None:
    make_staff("gobo", "suzuki")
    client = app.test_client()
    token = csrf_token(client, "/gobo/login")
    response = client.post("/gobo/login", data={"login": "suzuki", "password": "nope", "csrf_token": token})
    assert response.status_code == 200
    assert "ログインIDまたはパスワードが正しくありません" in response.get_data(as_text=True)
    assert client.get("/gobo/").status_code == 302
    with tenant_session("gobo") as session:
        entry = session.scalars(select(AuditEntry)).one()
    assert entry.action == "auth.login_failed"
    assert PASSWORD not in json.dumps(entry.details)
    assert "nope" not in json.dumps(entry.details)


def test_login_without_csrf_token_is_refused(app: Flask, db: None) -> None:
    make_staff("gobo", "suzuki")
    response = app.test_client().post("/gobo/login", data={"login": "suzuki", "password": PASSWORD})
    assert response.status_code == 400


def test_next_parameter_cannot_redirect_elsewhere(app: Flask, db: None) -> None:
    make_staff("gobo", "suzuki")
    client = app.test_client()
    token = csrf_token(client, "/gobo/login")
    for target in ("https://evil.example/", "//evil.example/", "/osaka/"):
        response = client.post(
            f"/gobo/login?next={target}", data={"login": "suzuki", "password": PASSWORD, "csrf_token": token}
        )
        assert response.headers["Location"] == "/gobo/"


def test_a_disabled_user_is_out_on_the_next_request(app: Flask, db: None) -> None:
    user_id = make_staff("yamaguchi", "yamada")
    client = app.test_client()
    login(client, "yamaguchi", "yamada")
    assert client.get("/yamaguchi/").status_code == 200
    with tenant_session("yamaguchi") as session:
        disable_user(session, "yamaguchi", user_id)
        session.commit()
    assert client.get("/yamaguchi/").status_code == 302
    assert client.get("/api/v1/yamaguchi/tenant").status_code == 401
    token = csrf_token(client, "/yamaguchi/login")
    again = client.post(
        "/yamaguchi/login", data={"login": "yamada", "password": PASSWORD, "csrf_token": token}
    )
    assert again.status_code == 200  # the form again, not a redirect into the app


def test_openapi_document_lists_tenant_paths(app: Flask) -> None:
    spec = app.test_client().get("/api/openapi.json").get_json()
    assert "/api/v1/{tenant}/calendar" in spec["paths"]
    assert spec["info"]["title"] == "Madoguchi API"


def test_every_api_route_is_in_the_openapi_document(app: Flask) -> None:
    spec = app.test_client().get("/api/openapi.json").get_json()
    routes = {
        re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.endpoint != "api-docs.openapi_json"
    }
    assert "/api/ops/incidents/{incident_id}/ack" in routes
    assert routes - set(spec["paths"]) == set()
    assert spec["paths"]["/api/ops/incidents/{incident_id}/ack"]["post"]["summary"].startswith("初動")


def test_api_validation_errors_name_the_field(client_for: object) -> None:
    gobo = client_for("gobo")  # type: ignore[operator]
    response = gobo.get("/api/v1/gobo/calendar?days=0")
    assert response.status_code == 422
    assert "days" in response.get_json()["errors"]["query"]


def test_a_request_does_not_inherit_the_previous_requests_actor(app: Flask, db: None) -> None:
    from app.audit.service import actor_var

    make_staff("gobo", "suzuki")
    client = app.test_client()
    login(client, "gobo", "suzuki")
    client.get("/gobo/")
    observed = []
    app.before_request_funcs.setdefault(None, []).append(lambda: observed.append(actor_var.get()) and None)
    app.test_client().get("/gobo/login")  # an anonymous request in the same thread
    assert observed == [None]


def test_behind_the_load_balancer_each_address_has_its_own_limit(provisioned: object) -> None:
    """The public pre-application allows 5 posts a minute per address. Behind the load balancer
    (``proxy_hops`` 1) the address is the client's from X-Forwarded-For, not the balancer's — else
    the whole city would share five; served directly, the header is ignored, so a sender cannot
    pick a new address per post to escape the limit."""
    run = uuid.uuid4().int
    net = run % 250
    url = "/gobo/pre/tenkyo"

    def posts(client: Any, balancer: str, forwarded: list[str]) -> list[int]:
        token = csrf_token(client, url)
        sent = []
        for address in forwarded:
            response = client.post(
                url,
                data={"csrf_token": token},
                headers={"X-Forwarded-For": address},
                environ_base={"REMOTE_ADDR": balancer},
            )
            sent.append(response.status_code)
        return sent

    settings = Settings(**{**get_settings().model_dump(), "proxy_hops": 1})  # type: ignore[arg-type]
    behind = create_app(settings).test_client()
    assert posts(behind, f"10.{net}.1.1", [f"203.0.{net}.7"] * 6) == [200] * 5 + [429]
    assert posts(behind, f"10.{net}.1.1", [f"203.0.{net}.8"]) == [200]  # another resident, same balancer

    direct = create_app().test_client()
    spoofed = [f"198.51.{net}.{n}" for n in range(6)]
    assert posts(direct, f"10.{net}.1.2", spoofed) == [200] * 5 + [429]
