"""DDL for schemas, roles and grants. Runs as the admin role, inside the caller's transaction.

Identifiers are validated by ``app.db.names`` before they are spliced in; everything else is bound.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, MetaData, text

from app.db.names import DbBinding, quoted

# Session-level advisory lock key shared by every process that migrates ("madoguchi" in ASCII).
MIGRATION_LOCK_KEY = 0x6D61646F6775


def role_exists(conn: Connection, role: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar())


def ensure_role(conn: Connection, role: str) -> None:
    if not role_exists(conn, role):
        conn.exec_driver_sql(f"CREATE ROLE {quoted(role)} NOLOGIN NOINHERIT")


def runtime_role(conn: Connection, runtime_login: str) -> str:
    """Check the runtime login role is NOINHERIT (it must SET ROLE to reach any data)."""
    inherits = conn.execute(
        text("SELECT rolinherit FROM pg_roles WHERE rolname = :r"), {"r": runtime_login}
    ).scalar()
    if inherits is None:
        raise RuntimeError(f"runtime role {runtime_login!r} does not exist")
    if inherits:
        raise RuntimeError(f"runtime role {runtime_login!r} must be NOINHERIT")
    return runtime_login


def ensure_schema(conn: Connection, binding: DbBinding, runtime_login: str) -> None:
    """Schema owned by the admin role; the binding's role may use it, nobody else."""
    ensure_role(conn, binding.role)
    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted(binding.schema)}")
    conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {quoted(binding.schema)} FROM PUBLIC")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quoted(binding.schema)} TO {quoted(binding.role)}")
    conn.exec_driver_sql(f"GRANT {quoted(binding.role)} TO {quoted(runtime_login)}")


def grant_tables(conn: Connection, binding: DbBinding, metadata: MetaData) -> None:
    """Give the binding's role DML on its schema's tables; append-only tables get no UPDATE/DELETE,
    read-only tables (written by the schema owner) SELECT only."""
    schema, role = quoted(binding.schema), quoted(binding.role)
    conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
    conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    conn.exec_driver_sql(f"REVOKE ALL ON {schema}.alembic_version FROM {role}")
    conn.exec_driver_sql(f"GRANT SELECT ON {schema}.alembic_version TO {role}")
    for table in append_only_tables(metadata):
        conn.exec_driver_sql(f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{quoted(table)} FROM {role}")
    for table in read_only_tables(metadata):
        conn.exec_driver_sql(
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.{quoted(table)} FROM {role}"
        )
    for table in staging_tables(metadata):
        conn.exec_driver_sql(f"GRANT TRUNCATE ON {schema}.{quoted(table)} TO {role}")
    # Functions in a tenant schema are SECURITY DEFINER helpers (migrations revoke PUBLIC).
    conn.exec_driver_sql(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}")


def append_only_tables(metadata: MetaData) -> Iterable[str]:
    return sorted(t.name for t in metadata.tables.values() if t.info.get("append_only"))


def read_only_tables(metadata: MetaData) -> Iterable[str]:
    return sorted(t.name for t in metadata.tables.values() if t.info.get("read_only"))


def staging_tables(metadata: MetaData) -> Iterable[str]:
    return sorted(t.name for t in metadata.tables.values() if t.info.get("staging"))


def set_migration_timeouts(
    conn: Connection, lock_timeout: str = "10s", statement_timeout: str = "300s"
) -> None:
    conn.execute(
        text("SELECT set_config('lock_timeout', :l, true), set_config('statement_timeout', :s, true)"),
        {"l": lock_timeout, "s": statement_timeout},
    )


def set_search_path(conn: Connection, schema: str) -> None:
    conn.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})


def take_migration_lock(conn: Connection, wait: str = "60s") -> None:
    """Session-level advisory lock so two deploys never migrate at once."""
    conn.execute(text("SELECT set_config('lock_timeout', :w, false)"), {"w": wait})
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    conn.execute(text("SELECT set_config('lock_timeout', '0', false)"))
    conn.commit()  # the advisory lock is session-level: it outlives this transaction


def release_migration_lock(conn: Connection) -> None:
    if conn.in_transaction():
        conn.rollback()
    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
    conn.commit()


def schema_exists(conn: Connection, schema: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar())


def drop_schema(conn: Connection, binding: DbBinding) -> None:
    """Remove a tenant's schema and role (tests, benchmarks, contract-end deletion)."""
    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted(binding.schema)} CASCADE")
    if role_exists(conn, binding.role):
        conn.exec_driver_sql(f"DROP ROLE {quoted(binding.role)}")


def list_tenant_schemas(conn: Connection) -> list[str]:
    rows = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9]{6}$' ORDER BY 1"))
    return [r[0] for r in rows]
