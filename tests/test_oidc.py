"""Sign-in through a city's identity provider, against a real OIDC provider on loopback
(tests/oidc_provider.py: Authlib's authorization server, PKCE, ID tokens, JWKS, userinfo)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity import oidc
from app.identity.service import create_user
from app.tenancy.config import code_check_digit
from app.tenancy.loader import load_tenant
from app.tenancy.provisioning import deprovision, sync
from tests.conftest import ROOT, tenant_session
from tests.oidc_provider import Provider, User

TENANT = "oidctest"
CALLBACK = f"http://localhost/{TENANT}/login/oidc/callback"
SECRET_ENV = "OIDCTEST_CLIENT_SECRET"


@pytest.fixture(scope="module")
def idp(provisioned: object) -> Iterator[Provider]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http on loopback in tests only
        mp.setenv(SECRET_ENV, "loopback-client-secret")
        provider = Provider(
            "madoguchi", "loopback-client-secret", CALLBACK, User("staff-001", "認証 太郎")
        ).start()
        try:
            yield provider
        finally:
            provider.stop()


@pytest.fixture(scope="module")
def oidc_tenant(idp: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("oidc")
    shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    (root / TENANT).mkdir()
    shutil.copy(ROOT / "tenants" / "gobo" / "sla.yaml", root / TENANT / "sla.yaml")
    code = "99020" + str(code_check_digit("99020"))
    text = (ROOT / "tenants" / "gobo" / "tenant.yaml").read_text(encoding="utf-8")
    text = text.replace("id: gobo", f"id: {TENANT}").replace('code: "302058"', f'code: "{code}"')
    (root / TENANT / "tenant.yaml").write_text(text, encoding="utf-8")
    (root / TENANT / "security.yaml").write_text(
        f"oidc:\n  issuer: {idp.issuer}\n  client_id: madoguchi\n  client_secret: env:{SECRET_ENV}\n"
        "  label: 庁内認証でログイン\n",
        encoding="utf-8",
    )
    sync({TENANT: load_tenant(root / TENANT, root).config})
    yield TENANT
    deprovision([TENANT])


@pytest.fixture
def staff(oidc_tenant: str, idp: Provider, db: None) -> Iterator[int]:
    idp.reset()
    oidc.forget_metadata()
    with tenant_session(TENANT) as session:
        user = create_user(
            session,
            "ninsho",
            "認証 太郎",
            None,
            groups=("窓口職員",),
            oidc_issuer=idp.issuer,
            oidc_subject="staff-001",
        )
        session.commit()
        yield user.id


def _through_idp(client: FlaskClient) -> tuple[object, str]:
    """Start at our login, let the provider answer, come back: (callback response, authorize URL)."""
    start = client.get(f"/{TENANT}/login/oidc?next=/{TENANT}/residents")
    assert start.status_code == 302, start.get_data(as_text=True)
    authorize = start.headers["Location"]
    answer = requests.get(authorize, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(f"{back.path}?{back.query}"), authorize


def test_login_page_offers_the_citys_provider(app: Flask, staff: int) -> None:
    page = app.test_client().get(f"/{TENANT}/login").get_data(as_text=True)
    assert "庁内認証でログイン" in page
    assert 'name="password"' in page  # password_login stays on by default


def test_oidc_login_happy_path_with_pkce(app: Flask, staff: int, idp: Provider) -> None:
    client = app.test_client()
    response, authorize = _through_idp(client)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "nonce" in query
    assert idp.seen_challenges[-1] == (query["code_challenge"][0], "S256")
    assert response.status_code == 302, response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.headers["Location"] == f"/{TENANT}/residents"  # type: ignore[attr-defined]
    home = client.get(f"/{TENANT}/")
    assert home.status_code == 200
    assert "認証 太郎 さん" in home.get_data(as_text=True)
    with tenant_session(TENANT) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login")).one()
    assert entry.details == {"method": "oidc"}
    assert entry.actor_id == str(staff)


def test_missing_userinfo_is_refused(app: Flask, staff: int, idp: Provider) -> None:
    idp.userinfo_status = 503
    client = app.test_client()
    response, _ = _through_idp(client)
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "利用者情報（userinfo）を取得できなかった" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert client.get(f"/{TENANT}/").status_code == 302


def test_userinfo_for_another_subject_is_refused(app: Flask, staff: int, idp: Provider) -> None:
    idp.userinfo_sub = "staff-999"
    response, _ = _through_idp(app.test_client())
    assert response.status_code == 401  # type: ignore[attr-defined]


def test_id_token_from_a_wrong_issuer_is_refused(app: Flask, staff: int, idp: Provider) -> None:
    idp.id_token_issuer = "http://127.0.0.1:1/evil"
    client = app.test_client()
    response, _ = _through_idp(client)
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "ID トークンを確認できなかった" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert client.get(f"/{TENANT}/").status_code == 302


def test_a_provider_advertising_another_issuer_is_refused(app: Flask, staff: int, idp: Provider) -> None:
    idp.advertised_issuer = "https://idp.example.org"
    response = app.test_client().get(f"/{TENANT}/login/oidc")
    assert response.status_code == 503
    assert "発行者（issuer）が設定と一致しない" in response.get_data(as_text=True)


def test_an_unregistered_subject_is_refused_never_matched_by_email(
    app: Flask, staff: int, idp: Provider
) -> None:
    with tenant_session(TENANT) as session:  # the registered staff member now has another subject
        from app.identity.models import StaffUser

        user = session.get(StaffUser, staff)
        assert user is not None
        user.oidc_subject = "staff-002"
        session.commit()
    response, _ = _through_idp(app.test_client())
    assert response.status_code == 403  # type: ignore[attr-defined]
    with tenant_session(TENANT) as session:
        refused = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.oidc_unknown")).one()
    assert refused.details["subject"] == "staff-001"


def test_a_callback_cannot_be_replayed_or_forged(app: Flask, staff: int) -> None:
    client = app.test_client()
    response, _ = _through_idp(client)
    assert response.status_code == 302  # type: ignore[attr-defined]
    path = response.request.path  # type: ignore[attr-defined]
    assert path.endswith("/callback")
    other = app.test_client()  # no flow cookie: a forged or replayed callback
    forged = other.get(f"/{TENANT}/login/oidc/callback?code=abc&state=xyz")
    assert forged.status_code == 400


def test_a_disabled_staff_member_cannot_sign_in_through_the_provider(app: Flask, staff: int) -> None:
    from app.identity.service import disable_user

    with tenant_session(TENANT) as session:
        disable_user(session, TENANT, staff)
        session.commit()
    response, _ = _through_idp(app.test_client())
    assert response.status_code == 403  # type: ignore[attr-defined]
