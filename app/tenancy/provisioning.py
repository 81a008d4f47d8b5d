"""Provisioning: ``tenants sync`` creates and migrates tenant schemas, roles and registry rows.

Kept apart from the runtime registry so web processes never import Alembic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditRetention
from app.config import get_settings
from app.dates import JST
from app.db import migrate, provision
from app.db.engine import admin_engine
from app.db.models import control_metadata, tenant_metadata
from app.db.names import control_binding, tenant_binding
from app.forms.loader import FormSource
from app.forms.models import FormVersion
from app.forms.service import dumped_content_hash
from app.guidance.catalogue import Catalogue
from app.guidance.models import CatalogueVersion
from app.guidance.service import forget_pinned_catalogues
from app.identity.provisioning import RoleSeedError, seed_roles
from app.tenancy.config import TenantConfig
from app.tenancy.loader import dumped_config_hash, load_all
from app.tenancy.models import Tenant, TenantDecommission
from app.tenancy.service import registry

log = logging.getLogger(__name__)


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


def provision_tenant(conn: Connection, config: TenantConfig, *, from_script: bool = True) -> SyncResult:
    """Create or migrate one tenant's schema and register it, in the caller's transaction.

    A new schema is built from the rendered chain (``migrate.new_schema_script``) in one round trip;
    ``from_script=False`` walks it through the chain op by op instead, like an existing schema.
    """
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
    existed, role_existed = provision.schema_and_role_exist(conn, binding)
    login = _runtime_login()
    if not existed and from_script:
        before = None
        revision = provision.create_tenant_schema(
            conn,
            binding,
            login,
            tenant_metadata,
            migrate.new_schema_script("tenant"),
            create_role=not role_existed,
        )
    else:
        before = migrate.current_revision(conn, "tenant", binding.schema) if existed else None
        provision.ensure_schema(conn, binding, login)
        provision.set_search_path(conn, binding.schema)
        revision = migrate.upgrade(conn, "tenant", binding.schema)
        provision.grant_tables(conn, binding, tenant_metadata)
    dumped = config.model_dump(mode="json")  # once: registry row, config hash, forms
    store_audit_retention(conn, config.sla.audit.retention_years)
    if config.catalogue is not None:
        store_catalogue(conn, config.catalogue)
    store_forms(conn, config.forms, dumped["forms"])
    try:
        seed_roles(conn, config.roles)
    except RoleSeedError as exc:
        raise TenantSyncError(f"{ident.id}: {exc}") from exc
    digest = dumped_config_hash(dumped)
    row: dict[str, Any] = {
        "id": ident.id,
        "code": ident.code,
        "schema_name": binding.schema,
        "name": ident.name,
        "config": dumped,
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


def store_forms(
    conn: Connection, forms: list[FormSource], dumped: list[dict[str, Any]] | None = None
) -> None:
    """Every version of every form from the files, once per content (search path: the tenant).

    One statement for all forms (executemany, sent as multi-row INSERTs). ``dumped``: the forms
    already dumped with ``model_dump(mode="json")`` (as in the dumped configuration), if at hand.
    """
    if not forms:
        return
    if dumped is None:
        dumped = [source.model_dump(mode="json") for source in forms]
    stmt = insert(FormVersion).values(
        status="approved",
        origin="file",
        created_by="tenants sync",
        approved_by="tenants sync",
        approved_at=func.now(),
    )
    conn.execute(
        stmt.on_conflict_do_nothing(index_elements=[FormVersion.form_id, FormVersion.content_hash]),
        [
            {
                "form_id": source.definition.id,
                "version": source.definition.version,
                "effective_from": source.definition.effective_from,
                "definition": data["definition"],
                "template": source.template,
                "content_hash": dumped_content_hash(data),
            }
            for source, data in zip(forms, dumped, strict=True)
        ],
    )


class SyncFailed(TenantSyncError):
    """A ``tenants sync`` run stopped at a failing tenant; ``results`` holds the tenants done."""

    def __init__(self, message: str, results: list[SyncResult]) -> None:
        super().__init__(message)
        self.results = results


def _failure_message(exc: BaseException) -> str:
    """What went wrong, without the SQL of the statement (the rendered chain is ~30 kB)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {str(exc.orig).strip()}"
    return str(exc) or type(exc).__name__


def sync(
    configs: Mapping[str, TenantConfig] | None = None,
    only: str | None = None,
    progress: Callable[[SyncResult], None] | None = None,
    *,
    workers: int = 2,
    from_script: bool = True,
) -> list[SyncResult]:
    """Provision and migrate tenants: all of ``tenants/`` by default, or the given configs.

    Every configuration is validated before anything is changed. The advisory lock is held for the
    whole run; ``workers`` connections provision tenants side by side, one transaction per tenant:
    a failure leaves that tenant exactly as it was, lets the tenants already under way finish and
    stops the run with ``SyncFailed`` naming the tenant and the reason (a rerun continues, since
    sync is idempotent). New schemas are built from the rendered chain unless ``from_script`` is
    False.
    """
    if configs is None:
        configs = {tid: loaded.config for tid, loaded in load_all(get_settings().tenants_dir).items()}
    if only is not None:
        if only not in configs:
            raise TenantSyncError(f"no tenant {only!r} in {get_settings().tenants_dir}")
        configs = {only: configs[only]}
    pending = sorted(configs)
    results: list[SyncResult] = []
    failures: list[tuple[str, str]] = []
    lock = threading.Lock()

    def next_tenant() -> str | None:
        with lock:
            return pending.pop(0) if pending and not failures else None

    def work() -> None:
        tenant_id = None
        try:
            with admin_engine().connect() as conn:
                while (tenant_id := next_tenant()) is not None:
                    with conn.begin():
                        result = provision_tenant(conn, configs[tenant_id], from_script=from_script)
                    with lock:
                        results.append(result)
                        if progress:
                            progress(result)
        except Exception as exc:  # reported below; the tenant's transaction has been rolled back
            log.warning("tenants sync: %s failed", tenant_id or "a worker", exc_info=True)
            with lock:
                failures.append((tenant_id or "(no tenant yet)", _failure_message(exc)))

    with admin_engine().connect() as conn:
        provision.take_migration_lock(conn)
        try:
            with conn.begin():
                prepare_control(conn)
                gone = decommissioned_ids(conn, pending)
            if gone:
                raise TenantSyncError(
                    "契約終了でデータを消去したテナントは作成し直しません: "
                    + ", ".join(
                        f"{t}（{at.astimezone(JST):%Y-%m-%d} 消去）" for t, at in sorted(gone.items())
                    )
                    + "。tenants/ からそのフォルダーを削除してください"
                )
            if from_script and pending:
                migrate.new_schema_script("tenant")  # rendered once, before the workers start
            # Counted once: the workers empty ``pending`` as they go, so it cannot say whom to join.
            threads = [
                threading.Thread(target=work, name=f"tenants-sync-{i}")
                for i in range(min(max(1, workers), len(pending)))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            provision.release_migration_lock(conn)
            registry.invalidate()
    results.sort(key=lambda r: r.tenant_id)
    if failures or pending:
        done = ", ".join(r.tenant_id for r in results[:5]) + (" ..." if len(results) > 5 else "")
        lines = [
            message if message.startswith(f"{tenant_id}: ") else f"{tenant_id}: {message}"
            for tenant_id, message in sorted(failures)
        ]
        raise SyncFailed(
            "\n".join(lines)
            + f"\n(nothing was changed for the tenant(s) above; {len(results)} tenant(s) done"
            + (f": {done}" if results else "")
            + f"; {len(pending)} not attempted: run tenants sync again once fixed)",
            results,
        )
    return results


def decommissioned_ids(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """Which of these tenant ids were decommissioned at contract end (ADR 0013), and when."""
    ids = list(tenant_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(TenantDecommission.id, TenantDecommission.decommissioned_at).where(
            TenantDecommission.id.in_(ids)
        )
    ).all()
    return {r[0]: r[1] for r in rows}


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
