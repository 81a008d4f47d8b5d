"""Alembic, driven in-process: the ``control`` tree once, the ``tenant`` tree once per tenant schema.

Running Alembic's environment directly (instead of one ``alembic`` process per tenant, ~0.35 s
each) keeps provisioning of 1,741 schemas within minutes. The caller owns the connection and its
transaction; see ``app.tenancy.provisioning.sync``.

A schema that does not exist yet is not walked through the chain op by op: the chain is rendered
once per process with Alembic's offline mode into one SQL script (``new_schema_script``), which
``app.db.provision.create_tenant_schema`` runs in one round trip under the new schema's search
path (ADR 0001, addendum "fast path"). Existing schemas upgrade online, step by step, as before.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine.mock import MockConnection
from sqlalchemy.sql.ddl import ExecutableDDLElement

from app.config import PROJECT_ROOT
from app.db.models import control_metadata, tenant_metadata

log = logging.getLogger(__name__)

Tree = Literal["control", "tenant"]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(tree: Tree) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR / tree))
    cfg.set_main_option("version_path_separator", "os")
    return cfg


@lru_cache(maxsize=2)
def script_directory(tree: Tree) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(tree))


def head(tree: Tree) -> str:
    revision = script_directory(tree).get_current_head()
    if revision is None:
        raise RuntimeError(f"migrations/{tree} has no revisions")
    return revision


def _configure_kwargs(tree: Tree, schema: str) -> dict[str, Any]:
    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        if type_ == "schema":  # the tenant tree reflects the search path's schema as None
            return name == schema or (tree == "tenant" and name is None)
        return not (type_ == "table" and name == "alembic_version")

    return {
        "target_metadata": control_metadata if tree == "control" else tenant_metadata,
        "version_table_schema": schema,
        "include_schemas": tree == "control",
        "include_name": include_name,
        "compare_type": True,
        "transaction_per_migration": False,
    }


# ``alembic.op`` and ``alembic.context`` are module-level proxies to the running migration: two
# threads migrating at once would send one thread's operations to the other's connection. Every
# Alembic run in this process (online upgrade, rendering) holds this lock.
_alembic_lock = threading.RLock()


def upgrade(conn: Connection, tree: Tree, schema: str, target: str = "heads") -> str | None:
    """Upgrade ``schema`` inside the caller's transaction; return the resulting revision."""
    script = script_directory(tree)
    cfg = alembic_config(tree)

    def steps(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(target, rev)

    with _alembic_lock, EnvironmentContext(cfg, script, fn=steps, destination_rev=target) as env:
        env.configure(connection=conn, **_configure_kwargs(tree, schema))
        env.run_migrations()
    return current_revision(conn, tree, schema)


# --- new schemas: the chain rendered once as one script ------------------------------------------

# Set on the Alembic config while the chain is rendered for new schemas (``rendering_new_schema``).
RENDER_NEW_SCHEMA = "madoguchi.render_new_schema"


class NeedsLiveDatabase(Exception):
    """A migration asked the database something while the chain was rendered as a script."""


@dataclass(frozen=True)
class ChainScript:
    """The tenant chain from nothing, as SQL naming no schema: it runs under the new schema's
    search path, exactly as the online chain does (the migrations never name a schema)."""

    tree: Tree
    head: str
    sql: str  # "" when not even the first revision could be rendered
    steps: tuple[tuple[str, int], ...]  # (revision, end offset of its SQL in ``sql``), in order
    online_from: str | None  # the first revision that needs a live database: it and later ones run online
    reason: str | None  # why ``online_from`` could not be rendered
    digest: str  # sha256 over the migration files rendered (for the logs)

    @property
    def revision(self) -> str | None:
        """Where the script leaves a new schema."""
        return self.steps[-1][0] if self.steps else None

    def until(self, revision: str) -> ChainScript:
        """The script cut after ``revision`` (the rest then runs online)."""
        revisions = [rev for rev, _ in self.steps]
        if revision not in revisions:
            raise ValueError(f"{revision!r} is not in the rendered {self.tree} chain {revisions}")
        keep = self.steps[: revisions.index(revision) + 1]
        nxt = self.steps[len(keep)][0] if len(keep) < len(self.steps) else self.online_from
        return replace(self, sql=self.sql[: keep[-1][1]], steps=keep, online_from=nxt, reason="cut")


def rendering_new_schema(context: MigrationContext) -> bool:
    """For a migration's data step: True while the chain is rendered into the script for a schema
    that does not exist yet, where there is no data to read or rewrite (and nothing can be read:
    the script is written before any database is asked). Online, it is always False."""
    config = context.config
    return bool(context.as_sql and config is not None and config.attributes.get(RENDER_NEW_SCHEMA))


def _migration_files_digest(script: ScriptDirectory) -> str:
    digest = hashlib.sha256()
    for rev in sorted(script.walk_revisions(), key=lambda r: r.revision):
        digest.update(rev.revision.encode() + b"\0")
        with open(rev.path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def render_chain(tree: Tree, script_location: str | None = None) -> ChainScript:
    """Render ``tree`` from nothing to its head with Alembic's offline mode (no database).

    A migration that uses the connection for anything but DDL (reads, updates with parameters,
    ``current_schema()``) cannot be rendered: the script stops before it and the provisioning runs
    it and every later revision online. A data step that is a no-op on a new schema says so with
    ``rendering_new_schema`` and stays in the script. ``script_location``: another migrations
    folder (tests).
    """
    cfg = alembic_config(tree)
    if script_location is not None:
        cfg.set_main_option("script_location", script_location)
    script = ScriptDirectory.from_config(cfg) if script_location else script_directory(tree)
    target = script.get_current_head()
    if target is None:
        raise RuntimeError(f"{script.dir} has no revisions")
    cfg.attributes[RENDER_NEW_SCHEMA] = True
    buffer = io.StringIO()
    ends: list[tuple[str, int]] = []
    running: list[str] = []

    def steps(rev: Any, context: Any) -> Any:
        for step in script._upgrade_revs(target, rev):
            running[:] = [step.revision.revision]
            yield step

    def applied(
        ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
    ) -> None:
        ends.append((running[0], buffer.tell()))

    online_from: str | None = None
    reason: str | None = None
    with (
        _alembic_lock,
        EnvironmentContext(
            cfg, script, fn=steps, as_sql=True, starting_rev=None, destination_rev=target
        ) as env,
    ):
        env.configure(
            dialect_name="postgresql",
            dialect_opts={"paramstyle": "named"},  # no %-escaping in the rendered text
            output_buffer=buffer,
            transactional_ddl=False,  # no BEGIN/COMMIT: the caller's transaction wraps it
            literal_binds=True,
            on_version_apply=applied,
            version_table_schema=None,  # under the search path, like every other object
        )
        context = env.get_context()
        guard = _ddl_only_bind(context)
        context.connection = guard  # type: ignore[assignment]
        context.impl.connection = guard  # type: ignore[assignment]
        try:
            env.run_migrations()
        except Exception as exc:  # a migration that cannot be rendered runs online
            if not running:
                raise
            online_from = running[0]
            reason = f"{type(exc).__name__}: {exc}"
    sql = buffer.getvalue()[: ends[-1][1]] if ends else ""
    return ChainScript(tree, target, sql, tuple(ends), online_from, reason, _migration_files_digest(script))


def _ddl_only_bind(context: MigrationContext) -> MockConnection:
    """The bind a migration sees while rendering: DDL is written to the script; anything else
    (a query, a statement with parameters) would need the database and stops the rendering."""

    def execute(construct: Any, *multiparams: Any, **params: Any) -> None:
        if (multiparams and multiparams[0]) or params or not isinstance(construct, ExecutableDDLElement):
            raise NeedsLiveDatabase(f"the migration executes {type(construct).__name__} on the connection")
        context.impl._exec(construct)

    return MockConnection(context.dialect, execute)


@lru_cache(maxsize=4)
def _cached_chain(tree: Tree, head_revision: str) -> ChainScript:
    chain = render_chain(tree)
    if chain.online_from is None:
        log.info(
            "%s chain rendered up to %s (%d bytes, files %s)",
            tree,
            chain.revision,
            len(chain.sql),
            chain.digest[:12],
        )
    else:
        log.warning(
            "%s chain rendered only up to %s: new schemas run %s and later revisions online, op by op (%s)",
            tree,
            chain.revision,
            chain.online_from,
            chain.reason,
        )
    return chain


def new_schema_script(tree: Tree = "tenant") -> ChainScript:
    """The rendered chain, once per process and head revision."""
    return _cached_chain(tree, head(tree))


def current_revision(conn: Connection, tree: Tree, schema: str) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table_schema": schema})
    return context.get_current_revision()


def differences(conn: Connection, tree: Tree, schema: str) -> list[Any]:
    """Autogenerate's diff between the models and a migrated schema: empty when they agree."""
    opts = _configure_kwargs(tree, schema)
    opts.pop("transaction_per_migration")
    metadata = opts.pop("target_metadata")
    context = MigrationContext.configure(conn, opts=opts)
    return list(compare_metadata(context, metadata))


def run_env_for_cli(tree: Tree) -> None:
    """Body of migrations/<tree>/env.py, for the ``alembic`` command line (revision --autogenerate).

    The tenant tree needs ``-x schema=t_NNNNNN`` naming an existing, migrated tenant schema.
    """
    from alembic import context
    from sqlalchemy import text

    from app.db.engine import admin_engine

    schema = "control" if tree == "control" else context.get_x_argument(as_dictionary=True).get("schema")
    if not schema:
        raise SystemExit("tenant migrations need -x schema=t_NNNNNN (an existing tenant schema)")
    with admin_engine().connect() as conn, conn.begin():
        conn.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})
        context.configure(connection=conn, **_configure_kwargs(tree, schema))
        context.run_migrations()
