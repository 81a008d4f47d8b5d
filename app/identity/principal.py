"""Who is making a request: a municipal staff member, provider staff, or an API client."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.audit.service import Actor


@dataclass(frozen=True)
class Principal:
    kind: str  # "staff" | "provider" | "api_client"
    tenant_id: str | None  # None only for provider staff (control)
    subject_id: str
    display_name: str
    session_id: str | None = None
    auth_method: str = "password"  # password | totp | oidc | client_credentials
    # Resolved by the tenant guard for this request (groups, break-glass grant or token scopes).
    permissions: frozenset[str] = field(default_factory=frozenset)
    grant_id: int | None = None  # provider staff: the break-glass grant in force

    def actor(self, terminal: str | None) -> Actor:
        return Actor(type=self.kind, id=self.subject_id, name=self.display_name, terminal=terminal)

    def can(self, permission: str) -> bool:
        return permission in self.permissions
