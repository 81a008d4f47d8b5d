"""tenant: staff groups and permissions, login hardening, API clients and tokens, break-glass grants

Revision ID: t0006
Revises: t0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0006"
down_revision: str | Sequence[str] | None = "t0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_token_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_api_clients_client_id")),
    )
    op.create_table(
        "breakglass_grants",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("provider_name", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), server_default="requested", nullable=False),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_by_name", sa.Text(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status <> 'approved' OR expires_at IS NOT NULL",
            name=op.f("ck_breakglass_grants_approved_expires"),
        ),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'revoked')",
            name=op.f("ck_breakglass_grants_status"),
        ),
        sa.CheckConstraint("duration_minutes BETWEEN 1 AND 1440", name=op.f("ck_breakglass_grants_duration")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breakglass_grants")),
    )
    op.create_index(
        op.f("ix_breakglass_grants_provider_id_status"),
        "breakglass_grants",
        ["provider_id", "status"],
        unique=False,
    )
    op.create_table(
        "staff_groups",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("managed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_staff_groups_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("client_pk", sa.BigInteger(), nullable=False),
        sa.Column("scopes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["api_clients.id"],
            name=op.f("fk_api_tokens_client_pk_api_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_client_pk"), "api_tokens", ["client_pk"], unique=False)
    op.create_index(op.f("ix_api_tokens_expires_at"), "api_tokens", ["expires_at"], unique=False)
    op.create_table(
        "staff_group_members",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["staff_groups.id"],
            name=op.f("fk_staff_group_members_group_id_staff_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_group_members_user_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_staff_group_members")),
    )
    op.create_index(op.f("ix_staff_group_members_user_id"), "staff_group_members", ["user_id"], unique=False)
    op.create_table(
        "staff_group_permissions",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("permission", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["staff_groups.id"],
            name=op.f("fk_staff_group_permissions_group_id_staff_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "permission", name=op.f("pk_staff_group_permissions")),
    )
    op.add_column("staff_users", sa.Column("oidc_issuer", sa.Text(), nullable=True))
    op.add_column("staff_users", sa.Column("oidc_subject", sa.Text(), nullable=True))
    op.add_column(
        "staff_users", sa.Column("must_change_password", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column(
        "staff_users", sa.Column("failed_logins", sa.SmallInteger(), server_default="0", nullable=False)
    )
    op.add_column("staff_users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("staff_users", sa.Column("totp_secret", sa.Text(), nullable=True))
    op.add_column("staff_users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_staff_users_oidc_issuer_oidc_subject"), "staff_users", ["oidc_issuer", "oidc_subject"]
    )
    op.create_check_constraint(
        op.f("ck_staff_users_oidc_pair"), "staff_users", "(oidc_issuer IS NULL) = (oidc_subject IS NULL)"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_staff_users_oidc_pair"), "staff_users", type_="check")
    op.drop_constraint(op.f("uq_staff_users_oidc_issuer_oidc_subject"), "staff_users", type_="unique")
    op.drop_column("staff_users", "totp_last_step")
    op.drop_column("staff_users", "totp_secret")
    op.drop_column("staff_users", "locked_until")
    op.drop_column("staff_users", "failed_logins")
    op.drop_column("staff_users", "must_change_password")
    op.drop_column("staff_users", "oidc_subject")
    op.drop_column("staff_users", "oidc_issuer")
    op.drop_table("staff_group_permissions")
    op.drop_index(op.f("ix_staff_group_members_user_id"), table_name="staff_group_members")
    op.drop_table("staff_group_members")
    op.drop_index(op.f("ix_api_tokens_expires_at"), table_name="api_tokens")
    op.drop_index(op.f("ix_api_tokens_client_pk"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("staff_groups")
    op.drop_index(op.f("ix_breakglass_grants_provider_id_status"), table_name="breakglass_grants")
    op.drop_table("breakglass_grants")
    op.drop_table("api_clients")
