"""Per-tenant identity configuration: ``roles.yaml`` (groups seeded by ``tenants sync``) and
``security.yaml`` (password, lockout, rate limits, TOTP, session timeouts, the city's OIDC provider).

Both merge over ``tenants/_defaults/``; unknown keys and unknown permission names are rejected.
"""

from __future__ import annotations

from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator

from app.identity.permissions import unknown_permissions
from app.validation import StrictModel


class Role(StrictModel):
    description: str = ""
    permissions: list[str] = Field(min_length=1)

    @field_validator("permissions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = unknown_permissions(value)
        if unknown:
            raise ValueError(f"unknown permissions {unknown}")
        if len(set(value)) != len(value):
            raise ValueError("a permission is listed twice")
        return sorted(value)


class RolesConfig(StrictModel):
    """Role name (Japanese, shown to staff) → role. ``null`` removes a default role for a city."""

    roles: dict[str, Role | None] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _names(cls, value: dict[str, Role | None]) -> dict[str, Role | None]:
        for name in value:
            if not 1 <= len(name.strip()) <= 40 or name != name.strip():
                raise ValueError(f"role name {name!r} must be 1-40 characters without outer spaces")
        return value

    def active(self) -> dict[str, Role]:
        return {name: role for name, role in self.roles.items() if role is not None}


class PasswordPolicy(StrictModel):
    min_length: int = Field(default=12, ge=8, le=128)


class LockoutPolicy(StrictModel):
    max_failures: int = Field(default=5, ge=3, le=20, description="consecutive failures before a lock")
    minutes: int = Field(default=15, ge=1, le=1440)


class RateLimits(StrictModel):
    """Flask-Limiter strings, checked with ``limits`` (e.g. ``20 per 10 minutes``)."""

    per_address: str = "30 per 10 minutes"
    per_account: str = "10 per 15 minutes"

    @field_validator("per_address", "per_account")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit: {value!r} (e.g. '20 per 10 minutes')") from exc
        return value


class TotpPolicy(StrictModel):
    """Who must use a TOTP code after the password: nobody, holders of privileged permissions
    (administration, audit, imports), or every staff member. OIDC logins rely on the IdP's MFA."""

    required_for: Literal["none", "privileged", "all"] = "privileged"


class SessionPolicy(StrictModel):
    idle_minutes: int = Field(default=30, ge=5, le=480)
    absolute_hours: int = Field(default=12, ge=1, le=24)


class OidcConfig(StrictModel):
    """The city's identity provider (authorization code + PKCE). Staff are matched by issuer + subject."""

    issuer: str = Field(pattern=r"^https?://[^\s]+$")
    client_id: str = Field(min_length=1)
    client_secret: str = Field(pattern=r"^[a-z0-9-]+:.+$", description="secret reference, e.g. env:NAME")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"])
    label: str = "庁内の認証基盤でログイン"
    password_login: bool = Field(default=True, description="also offer ID + password on the login page")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("scopes must include 'openid'")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return value.rstrip("/") if value.count("/") > 2 else value


class SecurityConfig(StrictModel):
    password: PasswordPolicy = PasswordPolicy()
    lockout: LockoutPolicy = LockoutPolicy()
    rate_limits: RateLimits = RateLimits()
    totp: TotpPolicy = TotpPolicy()
    sessions: SessionPolicy = SessionPolicy()
    oidc: OidcConfig | None = None
