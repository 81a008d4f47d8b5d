"""New tenant schemas from the rendered chain: the same schema, rights and rows as the online
Alembic chain, isolated like every tenant, and a failing tenant leaves nothing behind."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import ProgrammingError

from app.config import get_settings
from app.db import migrate, provision
from app.db.engine import admin_engine
from app.identity.models import GroupPermission, StaffGroup
from app.tenancy import provisioning
from app.tenancy.config import TenantConfig
from app.tenancy.provisioning import SyncFailed, TenantSyncError, deprovision, sync
from app.tenancy.service import registry
from tests.catalog_snapshot import snapshot
from tests.conftest import tenant_session
from tests.test_provisioning import synthetic_config

FAST, FAST2, ONLINE = "script-city", "script-city-2", "online-city"


def _snapshot(tenant_id: str) -> dict[str, Any]:
    record = registry.get(tenant_id)
    assert record is not None
    login = f"{get_settings().role_prefix}_app"
    with admin_engine().connect() as conn:
        shot = snapshot(conn, record.schema_name, record.binding.role, login)
        conn.rollback()
    return shot


def _schemas_and_roles(conn: Connection, codes: list[str]) -> list[tuple[str, str]]:
    prefix = get_settings().role_prefix
    found = []
    for code in codes:
        schema = f"t_{code}"
        if conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar():
            found.append((code, "schema"))
        role = f"{prefix}_{schema}"
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
            found.append((code, "role"))
    return found


class Fresh:
    """``fresh(*ids)``: these tenants do not exist now (left over from an interrupted run) and are
    deprovisioned after the test."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, *tenant_ids: str) -> None:
        deprovision(tenant_ids)
        self.ids += tenant_ids


@pytest.fixture
def fresh(provisioned: object) -> Iterator[Fresh]:
    tenants = Fresh()
    yield tenants
    deprovision(tenants.ids)


def _assert_same(fast: dict[str, Any], online: dict[str, Any]) -> None:
    assert fast.keys() == online.keys()
    for key in fast:
        assert fast[key] == online[key], f"{key} differs between the rendered script and the online chain"


def test_the_whole_tenant_chain_renders_as_one_script() -> None:
    chain = migrate.render_chain("tenant")
    assert chain.online_from is None, (
        f"migration {chain.online_from} needs a live database to render ({chain.reason}): new tenants "
        "would run it and every later migration online, op by op. If its data step has nothing to do "
        "on a new schema, skip it when migrate.rendering_new_schema(op.get_context()) is true."
    )
    assert chain.revision == migrate.head("tenant")
    assert chain.steps[0][0] == "t0001"
    assert not re.search(r"t_\d{6}", chain.sql)  # names no tenant schema: the search path decides


def test_a_script_built_schema_equals_the_online_chain(fresh: Fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first schema built from a script is granted ON ALL ... IN SCHEMA, later ones on the
    # objects read from the first: both must equal the online chain.
    monkeypatch.setattr(provision, "_objects_by_script", {})
    fresh(FAST, FAST2, ONLINE)
    (first,) = sync({FAST: synthetic_config(FAST, "99011")})
    (second,) = sync({FAST2: synthetic_config(FAST2, "99013")})
    (online,) = sync({ONLINE: synthetic_config(ONLINE, "99012")}, from_script=False)
    assert (first.action, second.action, online.action) == ("created", "created", "created")
    assert first.revision == second.revision == online.revision == migrate.head("tenant")
    reference = _snapshot(ONLINE)
    assert len(reference["relations"]) > 100
    assert reference["functions"]
    assert reference["data.form_versions"]
    _assert_same(_snapshot(FAST), reference)
    _assert_same(_snapshot(FAST2), reference)


def test_a_partly_rendered_chain_continues_online_to_the_same_schema(
    fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that reads the database stops the script: it and later ones run online."""
    cut = migrate.new_schema_script("tenant").until("t0007")
    assert cut.online_from == "t0008"
    assert cut.revision == "t0007"
    monkeypatch.setattr(migrate, "new_schema_script", lambda tree="tenant": cut)
    fresh(FAST, ONLINE)
    (fast,) = sync({FAST: synthetic_config(FAST, "99011")})
    monkeypatch.undo()
    (online,) = sync({ONLINE: synthetic_config(ONLINE, "99012")}, from_script=False)
    assert fast.revision == online.revision == migrate.head("tenant")
    _assert_same(_snapshot(FAST), _snapshot(ONLINE))


def _write_revision(folder: Path, rev: str, down: str | None, body: str) -> None:
    (folder / f"{rev}.py").write_text(
        textwrap.dedent(
            f"""
            import sqlalchemy as sa
            from alembic import op

            from app.db.migrate import rendering_new_schema

            revision = {rev!r}
            down_revision = {down!r}
            branch_labels = None
            depends_on = None


            def upgrade():
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


def test_a_migration_that_queries_the_database_stops_the_script_before_it(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    _write_revision(versions, "r1", None, 'op.create_table("one", sa.Column("id", sa.BigInteger))\n')
    _write_revision(
        versions,
        "r2",
        "r1",
        """
        if not rendering_new_schema(op.get_context()):
            op.get_bind().execute(sa.text("SELECT count(*) FROM one")).scalar()
        op.create_table("two", sa.Column("id", sa.BigInteger))
        """,
    )
    _write_revision(
        versions, "r3", "r2", 'n = op.get_bind().execute(sa.text("SELECT count(*) FROM two")).scalar()\n'
    )
    _write_revision(versions, "r4", "r3", 'op.create_table("four", sa.Column("id", sa.BigInteger))\n')
    chain = migrate.render_chain("tenant", script_location=str(tmp_path))
    assert chain.revision == "r2"  # the guarded data step stays in the script
    assert chain.online_from == "r3"
    assert "NeedsLiveDatabase" in (chain.reason or "")
    assert "CREATE TABLE one" in chain.sql
    assert "CREATE TABLE two" in chain.sql
    assert "four" not in chain.sql
    assert "SELECT count" not in chain.sql
    assert chain.sql.rstrip().endswith("WHERE alembic_version.version_num = 'r1';")


def test_script_built_tenants_are_isolated_like_every_tenant(fresh: Fresh) -> None:
    fresh(FAST)
    sync({FAST: synthetic_config(FAST, "99011")})
    record = registry.get(FAST)
    assert record is not None
    with tenant_session(FAST) as session:
        with pytest.raises(ProgrammingError, match="permission denied for schema t_271004"):
            session.execute(text("SELECT count(*) FROM t_271004.audit_log")).scalar()
        session.rollback()
        for statement in (
            "INSERT INTO audit_log (seq, prev_hash, hash, actor_type, actor_id, action)"
            " VALUES (1, repeat('0', 64), repeat('0', 64), 'system', 'x', 'forged')",
            "UPDATE audit_log SET action = 'forged'",
            "DELETE FROM audit_log",
        ):
            with pytest.raises(ProgrammingError, match="permission denied for table audit_log"):
                session.execute(text(statement))
            session.rollback()
        with pytest.raises(ProgrammingError, match="permission denied for table alembic_version"):
            session.execute(text("UPDATE alembic_version SET version_num = 'x'"))
        session.rollback()
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrate.head(
            "tenant"
        )
    with tenant_session("osaka") as osaka, pytest.raises(ProgrammingError, match="permission denied"):
        osaka.execute(text(f"SELECT count(*) FROM {record.schema_name}.staff_users")).scalar()  # noqa: S608


def test_a_failing_tenant_leaves_nothing_behind_and_the_run_says_which_and_why(
    fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = {
        f"fail-{i}": synthetic_config(f"fail-{i}", first5)
        for i, first5 in enumerate(("99021", "99022", "99023"))
    }
    codes = [c.tenant.code for c in configs.values()]
    fresh(*configs)
    real_seed = provisioning.seed_roles

    def seed_or_fail(conn: Connection, roles: Any) -> None:
        # late in the tenant's transaction: schema, role, tables, grants and forms already made
        if conn.execute(text("SELECT current_schema()")).scalar() == f"t_{codes[1]}":
            raise RuntimeError("disk quota exceeded (simulated)")
        real_seed(conn, roles)

    monkeypatch.setattr(provisioning, "seed_roles", seed_or_fail)
    with pytest.raises(SyncFailed) as failed:
        sync(configs)
    message = str(failed.value)
    assert "fail-1: disk quota exceeded (simulated)" in message
    assert "nothing was changed for the tenant(s) above" in message
    assert "run tenants sync again" in message
    done = {r.tenant_id for r in failed.value.results}
    assert "fail-1" not in done
    assert "fail-0" in done
    registry.invalidate()
    assert registry.get("fail-1") is None
    with admin_engine().connect() as conn:
        left = _schemas_and_roles(conn, codes)
        conn.rollback()
    expected = [(configs[t].tenant.code, kind) for t in sorted(done) for kind in ("schema", "role")]
    assert left == expected  # the failed tenant (and any not attempted) left no schema and no role
    for tenant_id in done:
        assert registry.get(tenant_id) is not None

    monkeypatch.undo()
    results = sync(configs)  # once fixed, a rerun completes the rest
    actions = {r.tenant_id: r.action for r in results}
    assert actions["fail-1"] == "created"
    assert all(actions[t] == "unchanged" for t in done)


def _roles_config(tenant_id: str, first5: str, change: dict[str, Any]) -> TenantConfig:
    data = synthetic_config(tenant_id, first5).model_dump(mode="json")
    data["roles"]["roles"].update(change)
    return TenantConfig.model_validate(data)


def _groups(tenant_id: str) -> dict[str, tuple[bool, set[str]]]:
    with tenant_session(tenant_id) as session:
        groups = {g.name: (g.managed, set()) for g in session.scalars(select(StaffGroup))}
        by_id = {g.id: g.name for g in session.scalars(select(StaffGroup))}
        for perm in session.scalars(select(GroupPermission)):
            groups[by_id[perm.group_id]][1].add(perm.permission)
    return groups


def test_roles_follow_the_configuration_at_every_sync(fresh: Fresh) -> None:
    fresh(FAST)
    base = synthetic_config(FAST, "99011")
    assert base.roles is not None
    sync({FAST: base})
    wanted = {name: (True, set(role.permissions)) for name, role in base.roles.active().items()}
    assert _groups(FAST) == wanted

    changed = _roles_config(
        FAST,
        "99011",
        {
            "窓口職員": {"description": "変更後", "permissions": ["calendar.view", "residents.search"]},
            "受付担当": None,
            "臨時職員": {"description": "追加", "permissions": ["calendar.view"]},
        },
    )
    (result,) = sync({FAST: changed})
    assert result.action == "config-updated"
    groups = _groups(FAST)
    assert groups["窓口職員"] == (True, {"calendar.view", "residents.search"})
    assert groups["臨時職員"] == (True, {"calendar.view"})
    assert "受付担当" not in groups
    assert groups["管理者"] == wanted["管理者"]
    with tenant_session(FAST) as session:
        description = session.scalar(select(StaffGroup.description).where(StaffGroup.name == "窓口職員"))
    assert description == "変更後"


def test_a_role_named_like_a_city_group_is_refused_and_nothing_changes(fresh: Fresh) -> None:
    fresh(FAST)
    sync({FAST: synthetic_config(FAST, "99011")})
    with tenant_session(FAST) as session:
        session.add(StaffGroup(name="臨時職員", description="市が作成", managed=False))
        session.commit()
    before = _groups(FAST)
    changed = _roles_config(
        FAST, "99011", {"臨時職員": {"description": "追加", "permissions": ["calendar.view"]}}
    )
    with pytest.raises(TenantSyncError, match=r"臨時職員.*created in the admin screens"):
        sync({FAST: changed})
    assert _groups(FAST) == before


def test_sync_returns_only_when_every_tenant_is_ready(fresh: Fresh) -> None:
    # The workers empty the queue as they go: a run must still wait for each of them, so that a
    # caller (the CLI, a test fixture) never reads a tenant that is half made or not there yet.
    for ids in ([FAST], [FAST, FAST2, ONLINE]):
        fresh(*ids)
        codes = {FAST: "99011", FAST2: "99012", ONLINE: "99013"}
        results = sync({tid: synthetic_config(tid, codes[tid]) for tid in ids})
        assert [r.tenant_id for r in results] == sorted(ids)
        for tid in ids:
            record = registry.get(tid)
            assert record is not None, tid
            with tenant_session(tid) as session:
                assert session.execute(
                    text("SELECT version_num FROM alembic_version")
                ).scalar() == migrate.head("tenant")
