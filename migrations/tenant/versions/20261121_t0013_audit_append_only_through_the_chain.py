"""tenant: the operation log is written only through audit_append(), which runs with its owner's
rights; the runtime role keeps SELECT on audit_log (its INSERT is revoked by ``tenants sync``), and
the hash-format check, which only guarded rows the runtime role could insert directly, goes

Revision ID: t0013
Revises: t0012
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0013"
down_revision: str | Sequence[str] | None = "t0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEX64 = "'^[0-9a-f]{64}$'"


def upgrade() -> None:
    # Before: the runtime role inserted into audit_log itself (SECURITY INVOKER), so it could also
    # insert rows around the chain lock, and the check kept their hashes hex. Now nothing but the
    # function writes there for it: the hashes are sha256 hex by construction, and the two regular
    # expressions per entry (~10 % of PostgreSQL's CPU for an entry; ADR 0005) are not run.
    op.execute("ALTER FUNCTION audit_append(boolean, jsonb) SECURITY DEFINER")
    op.drop_constraint(op.f("ck_audit_log_hashes_hex"), "audit_log", type_="check")


def downgrade() -> None:
    op.create_check_constraint(
        op.f("ck_audit_log_hashes_hex"), "audit_log", f"hash ~ {HEX64} AND prev_hash ~ {HEX64}"
    )
    op.execute("ALTER FUNCTION audit_append(boolean, jsonb) SECURITY INVOKER")
