"""Helpers for the operation-log tests: a private S3 prefix, the CLI, and an admin's hands."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Sequence
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.audit import Actor, record
from app.audit.canonical import GENESIS, digest, entry_object, format_time
from app.cli import main
from app.db.engine import admin_engine
from app.db.session import session_scope
from app.residents.models import Resident
from app.tenancy.service import registry
from tests.conftest import madoguchi

CLERK = Actor("staff", "7", "窓口 花子", "counter-1")


def write(tenant: str, count: int, *, action: str = "test.entry", per_transaction: int = 1) -> None:
    target = registry.get(tenant)
    assert target is not None
    done = 0
    while done < count:
        with session_scope(target.binding) as session:
            for _ in range(min(per_transaction, count - done)):
                record(session, action, subject_type="resident", subject_id=done + 1, actor=CLERK)
                done += 1


def schema(tenant: str) -> str:
    target = registry.get(tenant)
    assert target is not None
    return target.schema_name


def admin(
    tenant: str, sql: str, params: dict[str, Any] | Sequence[dict[str, Any]] | None = None
) -> list[Any]:
    """Run SQL as the schema owner in the tenant's schema: how a rogue administrator would tamper."""
    with admin_engine().begin() as conn:
        conn.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema(tenant)})
        result = conn.execute(text(sql), params or {})
        return list(result) if result.returns_rows else []


def rows(tenant: str) -> list[Any]:
    return admin(tenant, "SELECT * FROM audit_log ORDER BY seq")


def rehash(tenant: str, from_seq: int = 1, to_seq: int | None = None) -> None:
    """Recompute the hashes from ``from_seq`` (to ``to_seq``), as an attacker who knows the
    algorithm would."""
    code = schema(tenant)[2:]
    entries = rows(tenant)
    prev = GENESIS
    updates = []
    for r in entries:
        if from_seq <= r.seq <= (to_seq or r.seq):
            obj = entry_object(
                code, r.seq, prev, format_time(r.occurred_at), r.actor_type, r.actor_id, r.actor_name,
                r.terminal, r.action, r.subject_type, r.subject_id, r.purpose, r.request_id, r.details,
            )  # fmt: skip
            updates.append({"id": r.id, "prev": prev, "hash": digest(obj)})
            prev = updates[-1]["hash"]
        else:
            prev = r.hash
    admin(tenant, "UPDATE audit_log SET prev_hash = :prev, hash = :hash WHERE id = :id", updates)


def append_aged(tenant: str, times: Sequence[dt.datetime]) -> None:
    """Chain entries with the given (old) times, as if written then: the clock cannot be faked."""
    code = schema(tenant)[2:]
    head = admin(tenant, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (head[0].seq, head[0].hash) if head else (0, GENESIS)
    values = []
    for at in times:
        seq += 1
        details = {"aged": at.date().isoformat()}
        obj = entry_object(code, seq, prev, format_time(at), "system", "test", None, None, "test.aged",
                           None, None, None, None, details)  # fmt: skip
        prev = digest(obj)
        values.append(
            {"seq": seq, "prev": obj["prev"], "hash": prev, "at": at, "details": json.dumps(details)}
        )
    admin(
        tenant,
        "INSERT INTO audit_log (seq, prev_hash, hash, occurred_at, actor_type, actor_id, action, details)"
        " VALUES (:seq, :prev, :hash, :at, 'system', 'test', 'test.aged', CAST(:details AS jsonb))",
        values,
    )


def run_cli(*args: str) -> Result:
    """``madoguchi audit ...`` in this process (fast; ``cli`` runs the real entry point)."""
    return CliRunner().invoke(main, ["audit", *args])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return madoguchi("audit", *args)


def resident(session: Session, n: int, name: str) -> int:
    person = Resident(
        atena_no=f"9000{n:05d}", household_no="800000001", household_order=n, name=name, name_search=name,
        kana=None, kana_search=None, kana_confirmed=False, birth={"text": "1980-01-01"}, sex=1, relation="世帯主",
        address="御坊市薗1番地", address_search="御坊市薗1", status="住民", kind="日本人", row_hash=n,
        last_batch_id=0,
    )  # fmt: skip
    session.add(person)
    session.flush()
    return person.id
