"""Provisioning: ``tenants sync`` creates and migrates tenant schemas, roles and registry rows.

Kept apart from the runtime registry so web processes never import Alembic.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url

from app.audit.models import AuditRetention
from app.config import get_settings
from app.db import migrate, provision
from app.db.engine import admin_engine
from app.db.models import control_metadata, tenant_metadata
from app.db.names import control_binding, tenant_binding
from app.forms.loader import FormSource
from app.forms.models import FormVersion
from app.forms.service import content_hash as form_content_hash
from app.guidance.catalogue import Catalogue
from app.guidance.models import CatalogueVersion
from app.guidance.service import forget_pinned_catalogues
from app.identity.provisioning import RoleSeedError, seed_roles
from app.tenancy.config import TenantConfig
from app.tenancy.loader import config_hash, load_all
from app.tenancy.models import Tenant
from app.tenancy.service import registry


class TenantSyncError(Exception):
    pass


@dataclass(frozen=True)
class SyncResult:
    tenant_id: str
    schema: str
    action: str  # created | migrated | config-updated | unchanged
    revision: str | None
    seconds: float


def _runtime_login() -> str:
    user = make_url(get_settings().database_url).username
    if not user:
        raise TenantSyncError("MADOGUCHI_DATABASE_URL names no user")
    return user


def prepare_control(conn: Connection) -> str | None:
    """Create/migrate the control schema; call inside a transaction holding the migration lock."""
    prefix = get_settings().role_prefix
    binding = control_binding(prefix)
    provision.set_migration_timeouts(conn)
    provision.runtime_role(conn, _runtime_login())
    provision.ensure_schema(conn, binding, _runtime_login())
    provision.set_search_path(conn, binding.schema)
    revision = migrate.upgrade(conn, "control", binding.schema)
    provision.grant_tables(conn, binding, control_metadata)
    return revision


def provision_tenant(conn: Connection, config: TenantConfig) -> SyncResult:
    """Create or migrate one tenant's schema and register it, in the caller's transaction."""
    started = time.perf_counter()
    ident = config.tenant
    prefix = get_settings().role_prefix
    binding = tenant_binding(prefix, ident.id, ident.code)
    existing = conn.execute(select(Tenant.code, Tenant.config_hash).where(Tenant.id == ident.id)).first()
    if existing is not None and existing.code != ident.code:
        raise TenantSyncError(
            f"{ident.id}: code {existing.code} cannot change to {ident.code} (the schema is named after it)"
        )
    provision.set_migration_timeouts(conn)
    existed = provision.schema_exists(conn, binding.schema)
    before = migrate.current_revision(conn, "tenant", binding.schema) if existed else None
    provision.ensure_schema(conn, binding, _runtime_login())
    provision.set_search_path(conn, binding.schema)
    revision = migrate.upgrade(conn, "tenant", binding.schema)
    provision.grant_tables(conn, binding, tenant_metadata)
    store_audit_retention(conn, config.sla.audit.retention_years)
    if config.catalogue is not None:
        store_catalogue(conn, config.catalogue)
    store_forms(conn, config.forms)
    try:
        seed_roles(conn, config.roles)
    except RoleSeedError as exc:
        raise TenantSyncError(f"{ident.id}: {exc}") from exc
    digest = config_hash(config)
    row: dict[str, Any] = {
        "id": ident.id,
        "code": ident.code,
        "schema_name": binding.schema,
        "name": ident.name,
        "config": config.model_dump(mode="json"),
        "config_hash": digest,
        "schema_revision": revision,
        "provisioned_at": func.now(),
    }
    stmt = insert(Tenant).values(**row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[Tenant.id],
            set_={**{k: stmt.excluded[k] for k in row if k != "id"}, "updated_at": func.now()},
        )
    )
    if not existed:
        action = "created"
    elif before != revision:
        action = "migrated"
    elif existing is None or existing.config_hash != digest:
        action = "config-updated"
    else:
        action = "unchanged"
    return SyncResult(ident.id, binding.schema, action, revision, time.perf_counter() - started)


def store_audit_retention(conn: Connection, years: int) -> None:
    """The tenant's log retention, where the deletion function reads it (search path: the tenant)."""
    stmt = insert(AuditRetention).values(id=1, retention_years=years)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[AuditRetention.id],
            set_={"retention_years": stmt.excluded.retention_years, "updated_at": func.now()},
            where=AuditRetention.retention_years != stmt.excluded.retention_years,
        )
    )


def store_catalogue(conn: Connection, catalogue: Catalogue) -> None:
    """Keep every catalogue version (search path: the tenant's schema); the same content once."""
    content = catalogue.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    stmt = insert(CatalogueVersion).values(
        version=catalogue.version,
        effective_from=catalogue.effective_from,
        content=content,
        content_hash=digest,
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[CatalogueVersion.content_hash]))


def store_forms(conn: Connection, forms: list[FormSource]) -> None:
    """Every version of every form from the files, once per content (search path: the tenant)."""
    for source in forms:
        definition = source.definition
        stmt = insert(FormVersion).values(
            form_id=definition.id,
            version=definition.version,
            effective_from=definition.effective_from,
            definition=definition.model_dump(mode="json"),
            template=source.template,
            content_hash=form_content_hash(source),
            status="approved",
            origin="file",
            created_by="tenants sync",
            approved_by="tenants sync",
            approved_at=func.now(),
        )
        conn.execute(
            stmt.on_conflict_do_nothing(index_elements=[FormVersion.form_id, FormVersion.content_hash])
        )


def sync(
    configs: Mapping[str, TenantConfig] | None = None,
    only: str | None = None,
    progress: Callable[[SyncResult], None] | None = None,
) -> list[SyncResult]:
    """Provision and migrate tenants: all of ``tenants/`` by default, or the given configs.

    Every configuration is validated before anything is changed. One transaction per tenant: a
    failure leaves that tenant exactly as it was and stops the run.
    """
    if configs is None:
        configs = {tid: loaded.config for tid, loaded in load_all(get_settings().tenants_dir).items()}
    if only is not None:
        if only not in configs:
            raise TenantSyncError(f"no tenant {only!r} in {get_settings().tenants_dir}")
        configs = {only: configs[only]}
    results: list[SyncResult] = []
    with admin_engine().connect() as conn:
        provision.take_migration_lock(conn)
        try:
            with conn.begin():
                prepare_control(conn)
            for tenant_id in sorted(configs):
                with conn.begin():
                    result = provision_tenant(conn, configs[tenant_id])
                results.append(result)
                if progress:
                    progress(result)
        finally:
            provision.release_migration_lock(conn)
    registry.invalidate()
    return results


def deprovision(tenant_ids: Iterable[str]) -> None:
    """Drop tenants' schemas, roles and registry rows (tests, benchmarks, contract end)."""
    prefix = get_settings().role_prefix
    with admin_engine().connect() as conn:
        provision.take_migration_lock(conn)
        try:
            for tenant_id in tenant_ids:
                with conn.begin():
                    code = conn.execute(select(Tenant.code).where(Tenant.id == tenant_id)).scalar()
                    if code is None:
                        continue
                    binding = tenant_binding(prefix, tenant_id, code)
                    provision.drop_schema(conn, binding)
                    conn.execute(delete(Tenant).where(Tenant.id == tenant_id))
                    forget_pinned_catalogues(binding.schema)  # a schema made again counts from 1
        finally:
            provision.release_migration_lock(conn)
    registry.invalidate()
