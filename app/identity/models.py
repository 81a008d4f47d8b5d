"""Identity tables.

Per tenant schema: municipal staff (職員), groups with permissions, API clients and their tokens,
and break-glass grants (the city approves, so the record lives with the city's data and its role).
In ``control``: provider staff (事業者の運用担当), who sign in at ``/ops/``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import ControlBase, TenantBase, id_column


class LoginAccount:
    """Columns shared by every account that signs in with a password (lockout, TOTP)."""

    id: Mapped[int] = id_column()
    login: Mapped[str] = mapped_column(unique=True)
    display_name: Mapped[str]
    password_hash: Mapped[str | None]
    is_active: Mapped[bool] = mapped_column(server_default="true")
    failed_logins: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    locked_until: Mapped[dt.datetime | None]
    # TOTP secret, encrypted with a key derived from the application secret (app.identity.totp).
    totp_secret: Mapped[str | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # reuse prevention
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[dt.datetime | None]


class StaffUser(LoginAccount, TenantBase):
    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("oidc_issuer", "oidc_subject"),
        CheckConstraint("(oidc_issuer IS NULL) = (oidc_subject IS NULL)", name="oidc_pair"),
    )

    # password_hash None: signs in through the city's identity provider only.
    # Identity at the city's IdP: issuer + subject, never the e-mail address.
    oidc_issuer: Mapped[str | None]
    oidc_subject: Mapped[str | None]
    must_change_password: Mapped[bool] = mapped_column(server_default="false")


class StaffGroup(TenantBase):
    """A group of staff and what it may do. ``managed`` groups come from roles.yaml (tenants sync)."""

    __tablename__ = "staff_groups"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str] = mapped_column(server_default="")
    managed: Mapped[bool] = mapped_column(server_default="false")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class GroupPermission(TenantBase):
    __tablename__ = "staff_group_permissions"

    group_id: Mapped[int] = mapped_column(ForeignKey("staff_groups.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(primary_key=True)


class GroupMember(TenantBase):
    __tablename__ = "staff_group_members"
    __table_args__ = (Index(None, "user_id"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("staff_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)


class ApiClient(TenantBase):
    """An external system calling the API with OAuth2 client credentials (one tenant only)."""

    __tablename__ = "api_clients"

    id: Mapped[int] = id_column()
    client_id: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    secret_hash: Mapped[str]  # SHA-256 of a 256-bit random secret
    scopes: Mapped[list[str]] = mapped_column(JSONB)
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[dt.datetime | None]
    last_token_at: Mapped[dt.datetime | None]


class ApiToken(TenantBase):
    """An issued access token, stored as its SHA-256 only."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "expires_at"),)

    id: Mapped[int] = id_column()
    token_hash: Mapped[str] = mapped_column(unique=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSONB)
    issued_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


GRANT_STATUSES = ("requested", "approved", "rejected", "revoked")


class BreakglassGrant(TenantBase):
    """Time-limited access of one provider staff member to this city's data, approved by the city."""

    __tablename__ = "breakglass_grants"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'approved', 'rejected', 'revoked')", name="status"),
        CheckConstraint("duration_minutes BETWEEN 1 AND 1440", name="duration"),
        CheckConstraint("status <> 'approved' OR expires_at IS NOT NULL", name="approved_expires"),
        Index(None, "provider_id", "status"),
    )

    id: Mapped[int] = id_column()
    provider_id: Mapped[str]
    provider_name: Mapped[str]
    reason: Mapped[str]
    scope: Mapped[list[str]] = mapped_column(JSONB)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(server_default="requested")
    requested_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    decided_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None]
    decided_by_name: Mapped[str | None]
    decision_note: Mapped[str | None]
    approved_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]

    def active_at(self, now: dt.datetime) -> bool:
        return (
            self.status == "approved"
            and self.approved_at is not None
            and self.expires_at is not None
            and self.approved_at <= now < self.expires_at
        )


class ProviderStaff(LoginAccount, ControlBase):
    """The service provider's operators. They see no personal data without a break-glass grant."""

    __tablename__ = "provider_staff"
