"""Sign-in hardening: argon2 parameters, lockout, rate limits failing closed, TOTP without reuse,
session timeouts, disabled accounts."""

from __future__ import annotations

import datetime as dt
import json

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app import create_app
from app.audit.models import AuditEntry
from app.config import Settings, get_settings
from app.identity import sessions
from app.identity.models import StaffUser
from app.identity.passwords import hash_password
from app.kv import get_redis
from tests.conftest import PASSWORD, TOTP_SECRETS, csrf_token, login, make_staff, tenant_session, totp_code


def _post_login(client: FlaskClient, tenant: str, login_id: str, password: str) -> object:
    token = csrf_token(client, f"/{tenant}/login")
    return client.post(
        f"/{tenant}/login", data={"login": login_id, "password": password, "csrf_token": token}
    )


def _post_code(client: FlaskClient, tenant: str, code: str) -> object:
    token = csrf_token(client, f"/{tenant}/login/totp")
    return client.post(f"/{tenant}/login/totp", data={"code": code, "csrf_token": token})


def test_production_argon2_parameters_are_the_chosen_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MADOGUCHI_ARGON2_TIME_COST", "MADOGUCHI_ARGON2_MEMORY_KIB", "MADOGUCHI_ARGON2_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism) == (
        2,
        65536,
        1,
    )
    # The suite hashes cheaply; the stored hash says which parameters made it.
    assert hash_password("x" * 12).startswith("$argon2id$v=19$m=8192,t=1,p=1$")


def test_an_old_hash_is_upgraded_at_login(app: Flask, db: None) -> None:
    from argon2 import PasswordHasher

    user_id = make_staff("gobo", "oldhash")
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2).hash(PASSWORD)
    with tenant_session("gobo") as session:
        session.execute(update(StaffUser).where(StaffUser.id == user_id).values(password_hash=old))
        session.commit()
    login(app.test_client(), "gobo", "oldhash")
    with tenant_session("gobo") as session:
        assert "p=1" in session.get(StaffUser, user_id).password_hash  # type: ignore[union-attr]


def test_brute_force_locks_the_account(app: Flask, db: None) -> None:
    make_staff("gobo", "target")
    client = app.test_client()
    for _ in range(5):  # security.yaml default: 5 consecutive failures
        assert _post_login(client, "gobo", "target", "wrong password!").status_code == 200  # type: ignore[attr-defined]
    locked = _post_login(client, "gobo", "target", PASSWORD)
    assert locked.status_code == 200  # type: ignore[attr-defined]  # the form again, same message
    assert "ログインIDまたはパスワードが正しくありません" in locked.get_data(as_text=True)  # type: ignore[attr-defined]
    assert client.get("/gobo/").status_code == 302
    with tenant_session("gobo") as session:
        user = session.scalars(select(StaffUser).where(StaffUser.login == "target")).one()
        assert user.locked_until is not None
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login_failed")).all()
        assert any(e.details.get("locked") for e in entries)
        # when the lock runs out, the right password works again
        user.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.commit()
    assert _post_login(client, "gobo", "target", PASSWORD).status_code == 302  # type: ignore[attr-defined]


def test_rate_limit_per_address_across_accounts(app: Flask, db: None) -> None:
    client = app.test_client()
    statuses = [
        _post_login(client, "gobo", f"nobody{i}", "wrong password!").status_code  # type: ignore[attr-defined]
        for i in range(31)
    ]
    assert statuses[:30] == [200] * 30  # "30 per 10 minutes" counts failures from one address
    assert statuses[30] == 429
    # another city keeps its own counter
    assert _post_login(client, "osaka", "nobody", "wrong password!").status_code == 200  # type: ignore[attr-defined]


def test_rate_limit_per_account(app: Flask, db: None) -> None:
    make_staff("gobo", "victim")
    statuses = []
    for i in range(11):
        client = app.test_client()  # as from different addresses: only the account is the same
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i + 1}"
        statuses.append(_post_login(client, "gobo", "victim", "wrong password!").status_code)  # type: ignore[attr-defined]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_successful_logins_do_not_count(app: Flask, db: None) -> None:
    """A city hall behind one address signs in all at once at 8:30."""
    for i in range(35):
        make_staff("gobo", f"morning{i}")
    client = app.test_client()
    for i in range(35):
        assert _post_login(client, "gobo", f"morning{i}", PASSWORD).status_code == 302  # type: ignore[attr-defined]


def test_limiter_fails_closed_when_redis_is_unreachable(provisioned: object, db: None) -> None:
    dead = Settings(**{**get_settings().model_dump(), "redis_url": "redis://127.0.0.1:1/0"})  # type: ignore[arg-type]
    make_staff("gobo", "suzuki")
    app = create_app(dead)
    app.config["TESTING"] = True
    client = app.test_client()
    response = _post_login(client, "gobo", "suzuki", PASSWORD)
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert "ただいまログインを受け付けられません" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Set-Cookie" not in response.headers or "madoguchi_sid" not in response.headers["Set-Cookie"]  # type: ignore[attr-defined]
    with tenant_session("gobo") as session:  # refused before the password was even looked at
        assert session.scalars(select(AuditEntry)).all() == []
    # the token endpoint refuses the same way
    token = client.post(
        "/api/v1/gobo/oauth/token", data={"grant_type": "client_credentials"}, auth=("x", "y")
    )
    assert token.status_code == 503


# --- TOTP ------------------------------------------------------------------------------------------


def test_totp_is_enrolled_then_required_and_a_code_cannot_be_reused(app: Flask, db: None) -> None:
    make_staff("yamaguchi", "tanaka")  # Yamaguchi: TOTP for all staff (tenants/yamaguchi/security.yaml)
    first = app.test_client()
    assert _post_login(first, "yamaguchi", "tanaka", PASSWORD).headers["Location"].endswith("/login/totp")  # type: ignore[attr-defined]
    page = first.get("/yamaguchi/login/totp").get_data(as_text=True)
    assert "認証アプリ" in page
    assert "キー" in page
    assert first.get("/yamaguchi/").status_code == 302  # no session before the code
    login(first, "yamaguchi", "tanaka")  # the helper enrols (reads the key) and enters a code
    assert first.get("/yamaguchi/").status_code == 200
    key = ("yamaguchi", "tanaka")
    with tenant_session("yamaguchi") as session:
        user = session.scalars(select(StaffUser).where(StaffUser.login == "tanaka")).one()
        used_step = user.totp_last_step
        assert used_step is not None
        assert user.totp_secret
        assert TOTP_SECRETS[key] not in user.totp_secret
    reused = pyotp.TOTP(TOTP_SECRETS[key]).generate_otp(used_step)
    second = app.test_client()
    assert _post_login(second, "yamaguchi", "tanaka", PASSWORD).headers["Location"].endswith("/login/totp")  # type: ignore[attr-defined]
    again = _post_code(second, "yamaguchi", reused)
    assert again.status_code == 200  # type: ignore[attr-defined]
    assert "確認コードが正しくありません" in again.get_data(as_text=True)  # type: ignore[attr-defined]
    assert second.get("/yamaguchi/").status_code == 302
    assert _post_code(second, "yamaguchi", totp_code(key)).status_code == 302  # type: ignore[attr-defined]
    assert second.get("/yamaguchi/").status_code == 200


def test_totp_only_for_privileged_staff_where_the_city_says_so(app: Flask, db: None) -> None:
    make_staff("osaka", "clerk1")
    make_staff("osaka", "admin1", groups=("管理者",))
    assert _post_login(app.test_client(), "osaka", "clerk1", PASSWORD).headers["Location"] == "/osaka/"  # type: ignore[attr-defined]
    assert (
        _post_login(app.test_client(), "osaka", "admin1", PASSWORD)
        .headers["Location"]
        .endswith(  # type: ignore[attr-defined]
            "/login/totp"
        )
    )


def test_wrong_totp_codes_lock_the_account(app: Flask, db: None) -> None:
    make_staff("yamaguchi", "guess")
    client = app.test_client()
    login(client, "yamaguchi", "guess")  # enrolled
    attacker = app.test_client()
    assert _post_login(attacker, "yamaguchi", "guess", PASSWORD).status_code == 302  # type: ignore[attr-defined]
    for _ in range(4):
        assert _post_code(attacker, "yamaguchi", "000000").status_code == 200  # type: ignore[attr-defined]
    last = _post_code(attacker, "yamaguchi", "000000")
    assert last.status_code == 302  # type: ignore[attr-defined]
    assert last.headers["Location"].endswith("/yamaguchi/login")  # type: ignore[attr-defined]
    with tenant_session("yamaguchi") as session:
        user = session.scalars(select(StaffUser).where(StaffUser.login == "guess")).one()
        assert user.locked_until is not None


def test_totp_step_without_a_password_goes_back_to_login(app: Flask, db: None) -> None:
    client = app.test_client()
    assert client.get("/yamaguchi/login/totp").headers["Location"] == "/yamaguchi/login"


# --- sessions ----------------------------------------------------------------------------------


def _stored_session(client: FlaskClient) -> tuple[str, dict[str, object]]:
    cookie = client.get_cookie("madoguchi_sid")
    assert cookie is not None
    key = sessions._key(cookie.value)
    raw = get_redis().get(key)
    assert raw is not None
    return key, json.loads(raw)


def test_idle_timeout_ends_the_session(client_for: object) -> None:
    client = client_for("gobo")  # type: ignore[operator]
    key, data = _stored_session(client)
    assert data["idle_seconds"] == 30 * 60
    assert data["absolute_seconds"] == 12 * 3600
    data["last_seen"] = float(data["last_seen"]) - 31 * 60  # type: ignore[arg-type]
    get_redis().set(key, json.dumps(data))
    assert client.get("/gobo/").status_code == 302
    assert get_redis().get(key) is None


def test_absolute_timeout_ends_an_active_session(client_for: object) -> None:
    client = client_for("gobo")  # type: ignore[operator]
    key, data = _stored_session(client)
    data["created_at"] = float(data["created_at"]) - 12 * 3600  # type: ignore[arg-type]
    get_redis().set(key, json.dumps(data))
    assert client.get("/gobo/").status_code == 302


def test_the_session_key_expires_in_redis_after_the_idle_time(client_for: object) -> None:
    client = client_for("gobo")  # type: ignore[operator]
    key, _ = _stored_session(client)
    assert 0 < get_redis().ttl(key) <= 30 * 60


def test_a_disabled_user_is_refused_even_if_revocation_missed_a_session(
    app: Flask, client_for: object
) -> None:
    client = client_for("gobo", "late")  # type: ignore[operator]
    with tenant_session("gobo") as session:  # disabled behind the service's back (no revoke_all)
        session.execute(update(StaffUser).where(StaffUser.login == "late").values(is_active=False))
        session.commit()
    assert client.get("/gobo/").status_code == 302
    assert client.get("/api/v1/gobo/tenant").status_code == 401


def test_group_changes_apply_on_the_next_request(client_for: object) -> None:
    from app.identity.models import GroupMember

    client = client_for("gobo", "mover")  # type: ignore[operator]
    assert client.get("/gobo/residents").status_code == 200
    with tenant_session("gobo") as session:
        user_id = session.scalars(select(StaffUser.id).where(StaffUser.login == "mover")).one()
        session.execute(GroupMember.__table__.delete().where(GroupMember.user_id == user_id))
        session.commit()
    assert client.get("/gobo/residents").status_code == 403
