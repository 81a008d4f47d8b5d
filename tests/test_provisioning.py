"""tenants sync: idempotent, serialised by an advisory lock, migrations equal to the models."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from app.config import get_settings
from app.db import migrate
from app.db.engine import admin_engine
from app.db.provision import MIGRATION_LOCK_KEY
from app.tenancy.config import TenantConfig, code_check_digit
from app.tenancy.loader import load_all
from app.tenancy.provisioning import TenantSyncError, deprovision, sync
from app.tenancy.service import registry
from tests.conftest import ROOT, tenant_session


def synthetic_config(tenant_id: str, first5: str) -> TenantConfig:
    base = load_all(ROOT / "tenants")["gobo"].config.model_dump(mode="json")
    base["tenant"]["id"] = tenant_id
    base["tenant"]["code"] = first5 + str(code_check_digit(first5))
    base["tenant"]["name"] = f"テスト市{first5}"
    return TenantConfig.model_validate(base)


def test_sync_is_idempotent(provisioned: object) -> None:
    results = sync()
    assert {r.tenant_id: r.action for r in results} == {
        "gobo": "unchanged",
        "osaka": "unchanged",
        "yamaguchi": "unchanged",
    }
    assert {r.revision for r in results} == {migrate.head("tenant")}


def test_models_and_migrations_agree(provisioned: object) -> None:
    with admin_engine().connect() as conn:
        conn.execute(text("SET search_path TO t_271004"))
        assert migrate.differences(conn, "tenant", "t_271004") == []
        conn.execute(text("SET search_path TO control"))
        assert migrate.differences(conn, "control", "control") == []
        conn.rollback()


def test_provision_and_remove_a_new_tenant(provisioned: object) -> None:
    config = synthetic_config("test-city", "99001")
    try:
        (result,) = sync({"test-city": config})
        assert result.action == "created"
        record = registry.get("test-city")
        assert record is not None
        assert record.schema_name == f"t_{config.tenant.code}"
        with tenant_session("test-city") as session:
            assert (
                session.execute(text("SELECT current_setting('search_path')")).scalar() == record.schema_name
            )
        with admin_engine().connect() as conn:
            app_role = f"{get_settings().role_prefix}_app"
            member = conn.execute(
                text("SELECT pg_has_role(:app, :role, 'MEMBER')"),
                {"app": app_role, "role": record.binding.role},
            ).scalar()
            assert member is True
    finally:
        deprovision(["test-city"])
    assert registry.get("test-city") is None
    with admin_engine().connect() as conn:
        assert conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = 't_990018'")).scalar() is None


def test_a_tenant_code_cannot_change(provisioned: object) -> None:
    config = load_all(ROOT / "tenants")["gobo"].config.model_dump(mode="json")
    config["tenant"]["code"] = "302066"  # another valid code
    with pytest.raises(TenantSyncError, match="cannot change"):
        sync({"gobo": TenantConfig.model_validate(config)})


def test_concurrent_syncs_wait_for_the_advisory_lock(provisioned: object) -> None:
    finished = threading.Event()
    with admin_engine().connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        holder.commit()
        worker = threading.Thread(target=lambda: (sync(only="gobo"), finished.set()))
        worker.start()
        try:
            waiting = 0
            for _ in range(200):
                waiting = holder.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                        " AND objid = (CAST(:k AS bigint) & 4294967295)"
                    ),
                    {"k": MIGRATION_LOCK_KEY},
                ).scalar_one()
                holder.commit()
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting == 1
            assert not finished.is_set()
        finally:
            holder.rollback()
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            holder.commit()
        worker.join(timeout=60)
    assert finished.is_set()


def test_the_runtime_role_writes_the_audit_log_only_through_the_chain(db: None) -> None:
    """``audit.record`` chains entries (``audit_append()`` runs with its owner's rights); the runtime
    role itself can neither insert a row around the chain lock nor change or delete one."""
    from app.audit import Actor, record

    with tenant_session("osaka") as session:
        entry = record(session, "test.entry", actor=Actor("system", "test"))
        session.flush()
        assert entry.seq == 1
        forged = (
            "INSERT INTO audit_log (seq, prev_hash, hash, actor_type, actor_id, action)"
            " SELECT seq + 1, hash, hash, 'system', 'test', 'forged' FROM audit_log"
        )
        for statement in (forged, "UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
            with (
                pytest.raises(ProgrammingError, match="permission denied for table audit_log"),
                session.begin_nested(),
            ):
                session.execute(text(statement))


def test_runtime_role_cannot_touch_the_migration_version(db: None) -> None:
    with tenant_session("osaka") as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrate.head(
            "tenant"
        )
        with pytest.raises(ProgrammingError, match="permission denied"):
            session.execute(text("UPDATE alembic_version SET version_num = 'x'"))
