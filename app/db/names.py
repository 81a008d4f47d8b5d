"""Database object names for tenants: schema ``t_<local-government code>`` and one NOLOGIN role each.

Role names carry a prefix (by default the database name) because PostgreSQL roles are cluster-wide
while schemas are per database: the development and test databases share one cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CONTROL_SCHEMA = "control"


def checked_identifier(name: str) -> str:
    """Return ``name`` if it is a plain lower-case identifier; raise otherwise.

    Every identifier we splice into DDL passes through here, so quoting can never be escaped.
    """
    if not _IDENT.fullmatch(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def quoted(name: str) -> str:
    return f'"{checked_identifier(name)}"'


def schema_for_code(code: str) -> str:
    if not re.fullmatch(r"\d{6}", code):
        raise ValueError(f"local-government code must be 6 digits: {code!r}")
    return f"t_{code}"


def code_for_schema(schema: str) -> str:
    """The local-government code a tenant schema is named after (inverse of ``schema_for_code``)."""
    m = re.fullmatch(r"t_(\d{6})", schema)
    if not m:
        raise ValueError(f"not a tenant schema: {schema!r}")
    return m.group(1)


@dataclass(frozen=True)
class DbBinding:
    """What one Session is bound to: a search path (never ``public``) and a NOLOGIN role."""

    key: str  # tenant id, or "control"
    schema: str
    role: str

    @property
    def search_path(self) -> str:
        return checked_identifier(self.schema)


def tenant_binding(prefix: str, tenant_id: str, code: str) -> DbBinding:
    schema = schema_for_code(code)
    return DbBinding(key=tenant_id, schema=schema, role=checked_identifier(f"{prefix}_{schema}"))


def control_binding(prefix: str) -> DbBinding:
    return DbBinding(key="control", schema=CONTROL_SCHEMA, role=checked_identifier(f"{prefix}_control"))
