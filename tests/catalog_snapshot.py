"""What PostgreSQL knows about one tenant schema, with its own names replaced, for comparing two
schemas built different ways (the rendered script and the online Alembic chain)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

# Each query takes :s (the schema) and returns rows in a stable order. Text that names the schema
# or the tenant role is normalised afterwards.
CATALOG_QUERIES: dict[str, str] = {
    "schema": """
        SELECT pg_get_userbyid(n.nspowner), n.nspacl::text, obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace n WHERE n.nspname = :s""",
    "default_privileges": """
        SELECT d.defaclobjtype, d.defaclacl::text FROM pg_default_acl d
        JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = :s ORDER BY 1, 2""",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
               c.reloptions::text, pg_get_userbyid(c.relowner), c.relacl::text,
               obj_description(c.oid, 'pg_class'), c.reltoastrelid <> 0, c.relhasindex,
               c.relhastriggers, c.relhasrules, c.relnatts, c.relchecks, c.relreplident,
               c.relispartition, am.amname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_am am ON am.oid = c.relam
        WHERE n.nspname = :s ORDER BY c.relname""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid), co.collname,
               a.attacl::text, col_description(c.oid, a.attnum), a.attstorage, a.attcompression,
               a.attstattarget, a.attisdropped
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE n.nspname = :s AND a.attnum > 0 ORDER BY c.relname, a.attnum""",
    "indexes": """
        SELECT ic.relname, t.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
               i.indisexclusion, i.indimmediate, i.indisclustered, i.indisvalid, i.indisreplident,
               i.indnullsnotdistinct
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = :s ORDER BY ic.relname""",
    "constraints": """
        SELECT t.relname, c.conname, c.contype, pg_get_constraintdef(c.oid), c.condeferrable,
               c.condeferred, c.convalidated, c.connoinherit, ic.relname
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        LEFT JOIN pg_class t ON t.oid = c.conrelid LEFT JOIN pg_class ic ON ic.oid = c.conindid
        WHERE n.nspname = :s ORDER BY t.relname, c.conname""",
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax,
               s.seqmin, s.seqcache, s.seqcycle, dep.refobjsubid, dt.relname, dep.deptype
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
             AND dep.refclassid = 'pg_class'::regclass
        LEFT JOIN pg_class dt ON dt.oid = dep.refobjid
        WHERE n.nspname = :s ORDER BY c.relname""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               p.proacl::text, p.prosecdef, p.proconfig::text, pg_get_userbyid(p.proowner),
               obj_description(p.oid, 'pg_proc'), p.provolatile, p.proparallel, p.prokind
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = :s ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :s AND NOT t.tgisinternal ORDER BY 1, 2""",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = :s ORDER BY 1",
    "rules": "SELECT tablename, rulename, definition FROM pg_rules WHERE schemaname = :s ORDER BY 1, 2",
    "policies": """
        SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check
        FROM pg_policies WHERE schemaname = :s ORDER BY 1, 2""",
    "types": """
        SELECT t.typname, t.typtype, t.typcategory, pg_get_userbyid(t.typowner), t.typacl::text
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = :s ORDER BY 1""",
    "statistics": """
        SELECT s.stxname, pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s
        JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE n.nspname = :s ORDER BY 1""",
}

# Rows sync writes into the tenant schema (created/updated stamps and ids left out where they are
# moments, not content).
DATA_QUERIES: dict[str, str] = {
    "alembic_version": "SELECT version_num FROM {s}.alembic_version",
    "audit_retention": "SELECT id, retention_years FROM {s}.audit_retention ORDER BY id",
    "catalogue_versions": (
        "SELECT id, version, effective_from, content_hash, content FROM {s}.catalogue_versions ORDER BY id"
    ),
    "form_versions": (
        "SELECT id, form_id, version, effective_from, definition, template, content_hash, status, origin,"
        " created_by, approved_by, approved_at IS NOT NULL FROM {s}.form_versions ORDER BY id"
    ),
    "staff_groups": "SELECT id, name, description, managed FROM {s}.staff_groups ORDER BY id",
    "staff_group_permissions": (
        "SELECT g.name, p.permission FROM {s}.staff_group_permissions p"
        " JOIN {s}.staff_groups g ON g.id = p.group_id ORDER BY 1, 2"
    ),
    "audit_log": "SELECT count(*) FROM {s}.audit_log",
}


def _normalised(value: Any, schema: str, role: str) -> Any:
    if isinstance(value, str):
        return value.replace(role, "<role>").replace(schema, "<schema>")
    if isinstance(value, dict | list):
        return json.loads(_normalised(json.dumps(value, ensure_ascii=False, sort_keys=True), schema, role))
    return value


def snapshot(conn: Connection, schema: str, role: str, runtime_login: str) -> dict[str, Any]:
    """The schema's catalog and the rows sync wrote, the names ``schema`` and ``role`` normalised."""
    out: dict[str, Any] = {}
    for name, query in CATALOG_QUERIES.items():
        rows = conn.execute(text(query), {"s": schema}).all()
        out[name] = [tuple(_normalised(v, schema, role) for v in row) for row in rows]
    for name, query in DATA_QUERIES.items():
        rows = conn.execute(text(query.format(s=schema))).all()
        out[f"data.{name}"] = [tuple(_normalised(v, schema, role) for v in row) for row in rows]
    out["role"] = conn.execute(
        text(
            "SELECT r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,"
            " r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolconfig::text,"
            " pg_has_role(:login, r.oid, 'MEMBER'), pg_has_role(:login, r.oid, 'USAGE'),"
            " (SELECT array_agg(m.admin_option) FROM pg_auth_members m WHERE m.roleid = r.oid)::text,"
            " (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)"
            " FROM pg_roles r WHERE r.rolname = :r"
        ),
        {"r": role, "login": runtime_login},
    ).all()
    return out
