"""Seed roles.yaml into each tenant's groups during ``tenants sync`` (admin connection, tenant search path).

Groups made from roles are ``managed``: their permissions follow the configuration at every sync, so a
permission added by a release reaches every city. A role removed from the configuration removes its
group (members lose what it gave). Groups the city created in the admin screens are never touched.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.identity.config import RolesConfig
from app.identity.models import GroupPermission, StaffGroup


class RoleSeedError(Exception):
    pass


def seed_roles(conn: Connection, roles: RolesConfig | None) -> None:
    if roles is None:
        return
    wanted = roles.active()
    existing = {
        row.name: row for row in conn.execute(select(StaffGroup.id, StaffGroup.name, StaffGroup.managed))
    }
    for name, role in wanted.items():
        row = existing.get(name)
        if row is not None and not row.managed:
            raise RoleSeedError(
                f"role {name!r}: the city already has a group of that name created in the admin screens"
            )
        if row is None:
            group_id = conn.execute(
                insert(StaffGroup)
                .values(name=name, description=role.description, managed=True)
                .returning(StaffGroup.id)
            ).scalar_one()
        else:
            group_id = row.id
            conn.execute(
                update(StaffGroup)
                .where(StaffGroup.id == group_id)
                .values(description=role.description, updated_at=func.now())
            )
        conn.execute(
            delete(GroupPermission).where(
                GroupPermission.group_id == group_id, GroupPermission.permission.not_in(role.permissions)
            )
        )
        conn.execute(
            insert(GroupPermission)
            .values([{"group_id": group_id, "permission": p} for p in role.permissions])
            .on_conflict_do_nothing()
        )
    stale = [row.id for name, row in existing.items() if row.managed and name not in wanted]
    if stale:
        conn.execute(delete(StaffGroup).where(StaffGroup.id.in_(stale)))
