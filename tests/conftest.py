"""Test set-up: real PostgreSQL and Redis from var/services.env, on the test database.

- ``provisioned`` (session): the three cities from tenants/ synced into the test database.
- ``db`` (function): sessions and requests join per-tenant outer transactions that are rolled back.
- ``committed`` (function): for tests that need real commits (subprocess CLI, pools, forked
  workers); it empties the tenant tables afterwards.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    os.environ.setdefault("MADOGUCHI_LOG_LEVEL", "WARNING")
    os.environ["MADOGUCHI_TENANTS_DIR"] = str(ROOT / "tenants")


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


PROVISIONED_TABLES = {"catalogue_versions", "audit_retention"}  # written by tenants sync, not by the tests


def truncate_tenant_tables(tenants: dict[str, TenantRecord]) -> None:
    tables = ", ".join(f'"{t}"' for t in sorted(set(tenant_metadata.tables) - PROVISIONED_TABLES))
    with admin_engine().begin() as conn:
        for record in tenants.values():
            conn.execute(text(f"SET LOCAL search_path TO {record.schema_name}"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))


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


def tenant_session(tenant: str) -> Session:
    record = registry.get(tenant)
    assert record is not None
    return new_session(record.binding)


def make_staff(tenant: str, login: str = "clerk", name: str = "窓口 太郎", password: str = PASSWORD) -> int:
    with tenant_session(tenant) as session:
        user = create_user(session, login, name, password)
        session.commit()
        return user.id


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, tenant: str, login_id: str = "clerk", password: str = PASSWORD) -> None:
    token = csrf_token(client, f"/{tenant}/login")
    response = client.post(
        f"/{tenant}/login", data={"login": login_id, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def client_for(app: Flask, db: None) -> Iterator[object]:
    """``client_for("gobo")``: a test client logged in as a fresh clerk of that tenant."""

    def make(tenant: str, login_id: str = "clerk") -> FlaskClient:
        make_staff(tenant, login_id)
        client = app.test_client()
        login(client, tenant, login_id)
        return client

    return make


def runtime_engine() -> Engine:
    from app.db.engine import get_engine

    return get_engine()


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
