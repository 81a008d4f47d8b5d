"""Test set-up: real PostgreSQL and Redis from var/services.env, on the test database.

- ``provisioned`` (session): the three cities from tenants/ synced into the test database.
- ``db`` (function): sessions and requests join per-tenant outer transactions that are rolled back.
- ``committed`` (function): for tests that need real commits (subprocess CLI, pools, forked
  workers); it empties the tenant tables afterwards.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.forms_support",
    "tests.browser_support",
]  # the forms tenant fixtures, for every forms test module

ROOT = Path(__file__).resolve().parent.parent


def _load_services_env() -> None:
    env_file = ROOT / "var" / "services.env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            if not line.startswith("export "):
                continue
            for assignment in shlex.split(line[len("export ") :]):
                key, _, value = assignment.partition("=")
                os.environ.setdefault(key, value)
    missing = [k for k in ("MADOGUCHI_TEST_DATABASE_URL", "MADOGUCHI_TEST_REDIS_URL") if k not in os.environ]
    if missing:
        raise pytest.UsageError(f"{missing} not set: run 'make services' (or 'make test')")
    # The suite always runs against the test database and Redis db, never development data.
    os.environ["MADOGUCHI_DATABASE_URL"] = os.environ["MADOGUCHI_TEST_DATABASE_URL"]
    os.environ["MADOGUCHI_ADMIN_DATABASE_URL"] = os.environ["MADOGUCHI_TEST_ADMIN_DATABASE_URL"]
    os.environ["MADOGUCHI_REDIS_URL"] = os.environ["MADOGUCHI_TEST_REDIS_URL"]
    os.environ["MADOGUCHI_ENV"] = "test"
    os.environ["MADOGUCHI_TENANT_CACHE_SECONDS"] = "0"
    # Scrapes wait for the first metrics snapshot (tests expect the figures; see test_metrics).
    os.environ.setdefault("MADOGUCHI_METRICS_COLD_WAIT_SECONDS", "600")
    os.environ.setdefault("MADOGUCHI_LOG_LEVEL", "WARNING")
    os.environ["MADOGUCHI_TENANTS_DIR"] = str(ROOT / "tenants")
    os.environ["MADOGUCHI_DOCUMENTS_BUCKET"] = "madoguchi-test-documents"
    # Cheap argon2 for the hundreds of accounts the suite creates; the production parameters are
    # asserted in tests/test_login_hardening.py and measured by `make bench identity`.
    os.environ["MADOGUCHI_ARGON2_TIME_COST"] = "1"
    os.environ["MADOGUCHI_ARGON2_MEMORY_KIB"] = "8192"


def without_forms(folder: Path) -> None:
    """A copied city folder without its form definitions and back-linkage targets, for tests that
    bring their own catalogue or forms (the city's outbound targets name the city's forms)."""
    forms = folder / "forms"
    if forms.is_dir():
        for child in forms.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    linkage = folder / "linkage.yaml"
    if linkage.is_file():
        text = linkage.read_text(encoding="utf-8")
        linkage.write_text(text.split("\noutbound:", 1)[0], encoding="utf-8")


_load_services_env()

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app import create_app  # noqa: E402
from app.db import session as db_session  # noqa: E402
from app.db.engine import admin_engine  # noqa: E402
from app.db.models import tenant_metadata  # noqa: E402
from app.db.session import new_session  # noqa: E402
from app.identity.service import create_user  # noqa: E402
from app.kv import get_redis  # noqa: E402
from app.tenancy.provisioning import sync  # noqa: E402
from app.tenancy.service import TenantRecord, registry  # noqa: E402

CITIES = ("osaka", "gobo", "yamaguchi")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def provisioned() -> dict[str, TenantRecord]:
    sync()
    records = {tid: registry.get(tid) for tid in CITIES}
    assert all(records.values()), records
    return {k: v for k, v in records.items() if v is not None}


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    from app.audit.service import actor_var

    get_redis().flushdb()
    token = actor_var.set(None)
    yield
    actor_var.reset(token)


@pytest.fixture
def db(provisioned: dict[str, TenantRecord]) -> Iterator[None]:
    """Everything in the test runs inside outer transactions that are rolled back."""
    db_session.begin_test_isolation()
    try:
        yield
    finally:
        db_session.end_test_isolation()


# written by tenants sync, not by the tests (form and catalogue versions, groups made from roles.yaml,
# audit retention)
PROVISIONED_TABLES = {
    "catalogue_versions",
    "form_versions",
    "staff_groups",
    "staff_group_permissions",
    "audit_retention",
}


# Staff accounts and their memberships: a test that empties the data keeps its logged-in clerk.
STAFF_TABLES = frozenset({"staff_users", "staff_group_members"})


def truncate_tenant_tables(tenants: dict[str, TenantRecord], keep: frozenset[str] = frozenset()) -> None:
    tables = ", ".join(f'"{t}"' for t in sorted(set(tenant_metadata.tables) - PROVISIONED_TABLES - keep))
    with admin_engine().begin() as conn:
        for record in tenants.values():
            conn.execute(text(f"SET LOCAL search_path TO {record.schema_name}"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
            if not keep:
                conn.execute(text("DELETE FROM staff_groups WHERE NOT managed"))  # groups a test created


@pytest.fixture
def committed(provisioned: dict[str, TenantRecord]) -> Iterator[dict[str, TenantRecord]]:
    truncate_tenant_tables(provisioned)
    yield provisioned
    truncate_tenant_tables(provisioned)


@pytest.fixture
def app(provisioned: dict[str, TenantRecord]) -> Flask:
    flask_app = create_app()
    flask_app.config["TESTING"] = True
    return flask_app


def madoguchi(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real ``madoguchi`` entry point in a child process (``python -m app.cli ARGS``)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=os.environ.copy() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tenant_session(tenant: str) -> Session:
    record = registry.get(tenant)
    assert record is not None
    return new_session(record.binding)


DEFAULT_GROUPS = ("窓口職員",)  # counter clerk: residents, guidance, calendar


def make_staff(
    tenant: str,
    login: str = "clerk",
    name: str = "窓口 太郎",
    password: str = PASSWORD,
    groups: tuple[str, ...] = DEFAULT_GROUPS,
) -> int:
    """A staff account in ``groups`` (roles from tenants/_defaults/roles.yaml, e.g. 管理者)."""
    with tenant_session(tenant) as session:
        user = create_user(session, login, name, password, groups=groups)
        session.commit()
        return user.id


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


# TOTP secrets the login helper enrolled, and the last time step it used, per (tenant, login).
TOTP_SECRETS: dict[tuple[str, str], str] = {}
_TOTP_LAST_STEP: dict[tuple[str, str], int] = {}


def totp_code(key: tuple[str, str]) -> str:
    """A code for the account's next unused time step (the server refuses a step used before)."""
    import pyotp

    totp = pyotp.TOTP(TOTP_SECRETS[key])
    while True:
        step = max(totp.timecode(time.time()), _TOTP_LAST_STEP.get(key, -1) + 1)
        if step <= totp.timecode(time.time()) + 1:  # the server accepts one step of drift
            _TOTP_LAST_STEP[key] = step
            return totp.generate_otp(step)
        time.sleep(1)


def login(
    client: FlaskClient, tenant: str, login_id: str = "clerk", password: str = PASSWORD, prefix: str = ""
) -> None:
    """Sign in through the login form, and through the TOTP step (enrolling) when the city asks."""
    base = prefix or f"/{tenant}"
    token = csrf_token(client, f"{base}/login")
    response = client.post(
        f"{base}/login", data={"login": login_id, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    if response.headers["Location"].endswith("/login/totp"):
        key = (tenant, login_id)
        page = client.get(f"{base}/login/totp").get_data(as_text=True)
        enrol = re.search(r'<code class="secret">([A-Z2-7]{16,})</code>', page)
        if enrol:
            TOTP_SECRETS[key] = html.unescape(enrol.group(1))
            _TOTP_LAST_STEP.pop(key, None)
        token = csrf_token(client, f"{base}/login/totp")
        response = client.post(f"{base}/login/totp", data={"code": totp_code(key), "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def client_for(app: Flask, db: None) -> Iterator[object]:
    """``client_for("gobo")``: a test client logged in as a fresh clerk (窓口職員) of that tenant;
    ``client_for("gobo", "admin", groups=("管理者",))`` for other roles."""

    def make(tenant: str, login_id: str = "clerk", groups: tuple[str, ...] = DEFAULT_GROUPS) -> FlaskClient:
        make_staff(tenant, login_id, groups=groups)
        client = app.test_client()
        login(client, tenant, login_id)
        return client

    return make


def runtime_engine() -> Engine:
    from app.db.engine import get_engine

    return get_engine()


def provider_client(
    app: Flask, login_id: str = "ops-sato", name: str = "運用 佐藤"
) -> tuple[FlaskClient, str]:
    """A client signed in at /ops as provider staff (TOTP enrolled at the first login)."""
    from app.config import get_settings
    from app.db.names import control_binding
    from app.identity.models import ProviderStaff
    from app.identity.passwords import hash_password

    with new_session(control_binding(get_settings().role_prefix)) as session:
        staff = ProviderStaff(login=login_id, display_name=name, password_hash=hash_password(PASSWORD))
        session.add(staff)
        session.commit()
        provider_id = str(staff.id)
    client = app.test_client()
    login(client, "ops", login_id, prefix="/ops")
    return client, provider_id


@pytest.fixture
def audit_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A fresh prefix for operation-log seals and archives in the test bucket (also seen by CLI
    subprocesses, through the environment)."""
    import uuid

    from app.audit.storage import AuditStore
    from app.config import get_settings

    monkeypatch.setenv("MADOGUCHI_AUDIT_BUCKET", "madoguchi-audit-test")
    monkeypatch.setenv("MADOGUCHI_AUDIT_PREFIX", f"test-{uuid.uuid4().hex[:12]}/")
    get_settings.cache_clear()
    try:
        yield AuditStore.from_settings()
    finally:
        get_settings.cache_clear()
