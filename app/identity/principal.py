"""Who is making a request: a municipal staff member, provider staff, or an API client."""

from __future__ import annotations

from dataclasses import dataclass

from app.audit.service import Actor


@dataclass(frozen=True)
class Principal:
    kind: str  # "staff" | "provider" | "api_client"
    tenant_id: str | None  # None only for provider staff (control)
    subject_id: str
    display_name: str
    session_id: str | None = None

    def actor(self, terminal: str | None) -> Actor:
        return Actor(type=self.kind, id=self.subject_id, name=self.display_name, terminal=terminal)
