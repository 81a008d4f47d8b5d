"""The minimal audit writer: who, when, terminal, action, subject, purpose — from day one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit import Actor, record
from app.audit.models import AuditEntry
from app.audit.service import NoActorError
from tests.conftest import tenant_session


def test_record_needs_an_actor(db: None) -> None:
    with tenant_session("gobo") as session, pytest.raises(NoActorError):
        record(session, "resident.view", subject_type="resident", subject_id=1)


def test_record_writes_every_field(db: None) -> None:
    actor = Actor("staff", "42", "窓口 太郎", "counter-3")
    with tenant_session("gobo") as session:
        record(
            session,
            "resident.view",
            subject_type="resident",
            subject_id=1001,
            purpose="住民記録",
            actor=actor,
            details={"fields": ["氏名"]},
        )
        session.commit()
        entry = session.scalars(select(AuditEntry)).one()
    assert (entry.actor_type, entry.actor_id, entry.actor_name, entry.terminal) == (
        "staff",
        "42",
        "窓口 太郎",
        "counter-3",
    )
    assert (entry.action, entry.subject_type, entry.subject_id, entry.purpose) == (
        "resident.view",
        "resident",
        "1001",
        "住民記録",
    )
    assert entry.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert entry.details == {"fields": ["氏名"]}


def test_unknown_actor_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown actor type"):
        Actor("hacker", "1")
