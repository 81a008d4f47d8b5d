"""``audit.record(...)``: write one operation-log entry in the current tenant's schema.

Who acted comes from the request, job or CLI context (``actor_var``) unless given; the My Number
must never be passed in ``details`` (issue 5 adds a scanner that enforces it).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.audit.models import ACTOR_TYPES, AuditEntry
from app.logs import request_id_var


@dataclass(frozen=True)
class Actor:
    type: str  # one of ACTOR_TYPES
    id: str
    name: str | None = None
    terminal: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ACTOR_TYPES:
            raise ValueError(f"unknown actor type {self.type!r}")


actor_var: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


class NoActorError(RuntimeError):
    pass


def record(
    session: Session,
    action: str,
    *,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Add an entry to ``session`` (committed with the caller's work, so it cannot be lost alone)."""
    actor = actor or actor_var.get()
    if actor is None:
        raise NoActorError(f"audit.record({action!r}) without an actor: set actor_var or pass actor=")
    entry = AuditEntry(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        terminal=actor.terminal,
        action=action,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id),
        purpose=purpose,
        request_id=request_id_var.get(),
        details=details or {},
    )
    session.add(entry)
    return entry
