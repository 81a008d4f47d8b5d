"""Sealing: a signed record of the chain head (seq, hash, time) in write-once object storage.

A seal proves later that the log held at least ``seq`` entries ending in ``hash``: rewriting any
of them, or deleting the newest ones, contradicts it. Before sealing, the entries added since the
previous seal are verified (a tampered chain is never sealed: the job logs the problems and
refuses), and the WAL is flushed (``flush_wal``), so a seal never covers an entry a crash
could still lose.

Seal document (JSON, signed, ``app.audit.signing``)::

    {"v": 1, "kind": "seal", "tenant": "302058", "tenant_id": "gobo", "schema": "t_302058",
     "seq": 1200, "hash": "<hex>", "at": "<time of entry 1200>", "sealed_at": "<UTC>",
     "alg": "Ed25519", "key_id": "<16 hex>", "sig": "<base64>"}
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.canonical import canonical_bytes, format_time
from app.audit.models import AuditArchive, AuditEntry
from app.audit.signing import signing_key
from app.audit.storage import AuditStore
from app.audit.verify import ChainChecker, Problem, check_table
from app.db.audit import flush_wal
from app.db.names import code_for_schema
from app.tenancy.service import TenantRecord, registry

log = logging.getLogger(__name__)
RECENT = 100_000  # entries back from the head where the previous seal is looked for first


@dataclass
class SealResult:
    tenant: str
    action: str  # sealed | unchanged | empty | refused
    seq: int | None = None
    hash: str | None = None
    key: str | None = None
    sealed_at: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.action != "refused"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [p.as_dict() for p in self.problems]
        return {"ok": self.ok, **data}


def _head(session: Session) -> tuple[int, str, dt.datetime | None] | None:
    row = session.execute(
        select(AuditEntry.seq, AuditEntry.hash, AuditEntry.occurred_at)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).first()
    if row is not None:
        return row.seq, row.hash, row.occurred_at
    cut = session.execute(
        select(AuditArchive.last_seq, AuditArchive.last_hash).order_by(AuditArchive.last_seq.desc()).limit(1)
    ).first()
    return (cut.last_seq, cut.last_hash, None) if cut is not None else None


def _check_since(session: Session, code: str, since: tuple[int, str] | None, head_seq: int) -> list[Problem]:
    """Verify the entries from the previous seal (included, its hash compared) to ``head_seq``."""
    first_in_table = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq).limit(1))
    if first_in_table is None:
        return []
    start = max(since[0] if since else 1, first_in_table)
    start_prev = session.scalar(select(AuditEntry.prev_hash).where(AuditEntry.seq == start))
    if start_prev is None:  # a gap exactly there: let the checker name it from the row before
        start_prev = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == start - 1)) or ""
    seals = {since[0]: since[1]} if since and since[0] >= start else {}
    checker = ChainChecker(code, start, start_prev, seals)
    check_table(session, checker, start, head_seq)
    problems = list(checker.problems)
    if checker.mismatched_seals:
        problems.append(Problem("seal_mismatch", since[0] if since else None, None))
    if checker.expected - 1 < head_seq:
        problems.append(Problem("missing", checker.expected, head_seq))
    return problems


def seal(record: TenantRecord, session: Session, store: AuditStore | None = None) -> SealResult:
    """Seal the tenant's current chain head unless it is already sealed (idempotent)."""
    store = store or AuditStore.from_settings()
    code = code_for_schema(record.schema_name)
    head = _head(session)
    if head is None:
        return SealResult(record.id, "empty")
    seq, hash_, at = head
    # The previous seal is normally a few minutes of entries back: list from there, not from 1.
    seals = (
        store.seals(record.schema_name, from_seq=max(0, seq - RECENT))[0]
        or store.seals(record.schema_name)[0]
    )
    last = seals[-1] if seals else None
    result = SealResult(record.id, "refused", seq, hash_)
    if last is not None and last.seq > seq:
        result.problems = [Problem("cut_tail", seq + 1, last.seq, {"sealed_seq": last.seq, "table_seq": seq})]
    elif last is not None and last.seq == seq:
        if last.hash == hash_:
            return SealResult(record.id, "unchanged", seq, hash_, last.key)
        result.problems = [Problem("seal_mismatch", seq, seq)]
    else:
        result.problems = _check_since(session, code, (last.seq, last.hash) if last else None, seq)
    if result.problems:
        log.error(
            "audit seal refused for %s: %s", record.id, "; ".join(p.message for p in result.problems[:5])
        )
        return result
    flush_wal(session)  # the entries up to seq are on disk before a seal vouches for them
    now = dt.datetime.now(dt.UTC)
    document = signing_key().sign(
        {
            "v": 1,
            "kind": "seal",
            "tenant": code,
            "tenant_id": record.id,
            "schema": record.schema_name,
            "seq": seq,
            "hash": hash_,
            "at": format_time(at) if at else None,
            "sealed_at": format_time(now),
        }
    )
    key = store.seal_key(record.schema_name, seq, hash_)
    years = registry.config(record).sla.audit.retention_years
    store.put(key, canonical_bytes(document), "application/json", retain_years=years)
    return SealResult(record.id, "sealed", seq, hash_, key, document["sealed_at"])
