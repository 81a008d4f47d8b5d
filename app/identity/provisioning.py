"""Seed roles.yaml into each tenant's groups during ``tenants sync`` (admin connection, tenant search path).

Groups made from roles are ``managed``: their permissions follow the configuration at every sync, so a
permission added by a release reaches every city. A role removed from the configuration removes its
group (members lose what it gave). Groups the city created in the admin screens are never touched.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from app.identity.config import RolesConfig
from app.identity.models import GroupPermission, StaffGroup


class RoleSeedError(Exception):
    pass


def seed_roles(conn: Connection, roles: RolesConfig | None) -> None:
    """Set-based: a handful of statements whatever the number of roles and permissions."""
    if roles is None:
        return
    wanted = roles.active()
    existing = {
        row.name: row for row in conn.execute(select(StaffGroup.id, StaffGroup.name, StaffGroup.managed))
    }
    for name in wanted:
        row = existing.get(name)
        if row is not None and not row.managed:
            raise RoleSeedError(
                f"role {name!r}: the city already has a group of that name created in the admin screens"
            )
    group_ids: dict[str, int] = {}
    if wanted:
        stmt = insert(StaffGroup).values(managed=True)
        rows = conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[StaffGroup.name],
                set_={"description": stmt.excluded.description, "updated_at": func.now()},
            ).returning(StaffGroup.id, StaffGroup.name),
            [{"name": name, "description": role.description} for name, role in wanted.items()],
        )
        group_ids = {row.name: row.id for row in rows}
    kept = [(group_ids[name], p) for name, role in wanted.items() for p in role.permissions]
    if existing:  # a new schema has no permissions to take away
        conn.execute(
            delete(GroupPermission).where(
                GroupPermission.group_id.in_(list(group_ids.values())),
                tuple_(GroupPermission.group_id, GroupPermission.permission).not_in(kept),
            )
        )
    if kept:
        conn.execute(
            insert(GroupPermission).on_conflict_do_nothing(),
            [{"group_id": group_id, "permission": p} for group_id, p in kept],
        )
    stale = [row.id for name, row in existing.items() if row.managed and name not in wanted]
    if stale:
        conn.execute(delete(StaffGroup).where(StaffGroup.id.in_(stale)))
