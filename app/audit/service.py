"""``audit.record(...)``: write one operation-log entry in the current tenant's schema.

Who acted comes from the request, job or CLI context (``actor_var``) unless given. Every text and
the details pass the My Number scanner (``app.audit.mynumber``): a valid My Number is masked
before anything is stored, and a warning without the number is logged.

Chaining (docs/adr/0005-audit-chain.md). ``audit_append()`` takes the tenant's transaction-level
advisory lock, reads the newest entry in a statement of its own at READ COMMITTED (so it sees every
entry committed before the lock was granted), inserts the entries with the next ``seq`` numbers,
the database's clock and their hashes, and returns them. The lock is held until the transaction
ends, so the next writer chains onto them. Under REPEATABLE READ the head would come from a
snapshot older than the lock and fork the chain: the function refuses it (and the unique ``seq``
would reject a fork anyway). The entries travel as canonical text split around ``at``, ``prev``
and ``seq`` (``entry_template``).

Since the lock lasts until the transaction ends, entries are chained at commit: ``record`` keeps
an entry out of the session's unit of work (flushes and autoflushes before queries do not write
it), and ``_chain_at_commit`` flushes the caller's changes, then appends the entries and commits in
one round trip. So the lock is held inside the database for that one exchange, not for the rest
of a request. Entries recorded inside a savepoint, and sessions joined to a test's outer
transaction, are added to the session instead and chained by ``_chain_pending`` when it flushes
them (holding the lock until commit): a savepoint rolled back must take its entries with it.

With ``audit_early_lock_release`` (the default) the transaction commits with
``synchronous_commit = off``, so the lock goes as soon as the commit record is written, and the
committing thread then waits in ``durability_barrier`` until the WAL is flushed: nobody returns
before the entry is durable, yet writers no longer queue behind each other's disk flushes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction, make_transient_to_detached

from app.audit.canonical import checked_text, entry_template, normalized
from app.audit.models import ACTOR_TYPES, AuditEntry
from app.audit.mynumber import mask_text, mask_value
from app.config import get_settings
from app.db.audit import append_and_commit, append_entries, append_in_own_transaction, durability_barrier
from app.db.names import DbBinding, code_for_schema
from app.db.session import context_params
from app.logs import request_id_var

log = logging.getLogger(__name__)

_PENDING = "audit_pending"  # session.info: entries recorded, not yet chained (in record order)
_DEFERRED = "audit_deferred"  # session.info: ids of the pending entries kept out of the session
_BARRIER = "audit_barrier"  # session.info: the connection that commits asynchronously
_CONNECTED = "audit_connected"  # session.info: the transaction has a database connection


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


def _text(value: str | None, field: str, masked: list[str]) -> str | None:
    if value is None:
        return None
    value, found = mask_text(checked_text(value, field))
    if found:
        masked.append(field)
    return value


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
    """Add an entry to ``session`` (committed with the caller's work, so it cannot be lost alone).

    Raises ``AuditValueError`` for details the log cannot hold (floats, non-text keys, NUL).
    """
    actor = actor or actor_var.get()
    if actor is None:
        raise NoActorError(f"audit.record({action!r}) without an actor: set actor_var or pass actor=")
    binding: DbBinding | None = session.info.get("binding")
    if binding is None or binding.key == "control":
        raise RuntimeError("audit.record needs a tenant session (app.db.session.new_session)")
    masked: list[str] = []
    clean_details, found = mask_value(normalized(details or {}))
    if found:
        masked.append("details")
    entry = AuditEntry(
        actor_type=actor.type,
        actor_id=_text(actor.id, "actor_id", masked),
        actor_name=_text(actor.name, "actor_name", masked),
        terminal=_text(actor.terminal, "terminal", masked),
        action=_text(action, "action", masked),
        subject_type=_text(subject_type, "subject_type", masked),
        subject_id=_text(None if subject_id is None else str(subject_id), "subject_id", masked),
        purpose=_text(purpose, "purpose", masked),
        request_id=_text(request_id_var.get(), "request_id", masked),
        details=clean_details,
    )
    if masked:
        log.warning(
            "個人番号と判定される値を操作ログに記録しようとしたため秘匿しました（操作 %s、項目 %s）",
            entry.action,
            ", ".join(masked),
        )
    if _chains_on_flush(session):
        session.add(entry)
    else:
        if not session.in_transaction():
            session.begin()  # so that a rollback or close before commit ends it and forgets the entry
        session.info.setdefault(_DEFERRED, set()).add(id(entry))
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


def _chains_on_flush(session: Session) -> bool:
    """Entries recorded now are chained when a flush writes them, not at commit: in a savepoint (a
    rollback of it must take them along) and in sessions joined to a test's outer transaction."""
    return isinstance(session.bind, Connection) or session.in_nested_transaction()


def _unwritten(session: Session) -> list[AuditEntry]:
    """The recorded entries still to chain at commit, in record order."""
    deferred: set[int] = session.info.get(_DEFERRED, set())
    recorded: list[AuditEntry] = session.info.get(_PENDING, [])
    return [e for e in recorded if _unchained(e) and (id(e) in deferred or e in session.new)]


def _unchained(entry: AuditEntry) -> bool:
    return entry.__dict__.get("seq") is None


_COLUMNS = (
    "actor_type", "actor_id", "actor_name", "terminal", "action", "subject_type", "subject_id", "purpose",
    "request_id", "details",
)  # fmt: skip


def _payload(pending: list[AuditEntry], tenant: str) -> list[dict[str, Any]]:
    """What ``audit_append()`` takes per entry: the canonical text split around ``at``, ``prev``
    and ``seq`` (``c0``..``c3``) and the columns."""
    payload = []
    for e in pending:
        columns = (
            e.actor_type, e.actor_id, e.actor_name, e.terminal, e.action, e.subject_type, e.subject_id,
            e.purpose, e.request_id, e.details,
        )  # fmt: skip
        c0, c1, c2, c3 = entry_template(tenant, *columns)
        payload.append({"c0": c0, "c1": c1, "c2": c2, "c3": c3, **dict(zip(_COLUMNS, columns, strict=True))})
    return payload


def _attach(session: Session | None, pending: list[AuditEntry], chained: Sequence[Sequence[Any]]) -> None:
    """The database inserted the rows: the entries become detached copies of them (all values
    loaded), and persistent in ``session`` if given, so that no flush writes them again."""
    for entry, row in zip(pending, chained, strict=True):
        if session is not None:
            session.expunge(entry)
        entry.id, entry.seq, entry.prev_hash, entry.hash, entry.occurred_at = tuple(row)
        make_transient_to_detached(entry)
        if session is not None:
            session.add(entry)


@event.listens_for(Session, "before_flush")
def _chain_pending(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    recorded: list[AuditEntry] = session.info.get(_PENDING, [])
    pending = [e for e in recorded if e in session.new and _unchained(e)]
    if any(isinstance(o, AuditEntry) and _unchained(o) and o not in pending for o in session.new):
        raise RuntimeError(
            "audit entries are written through app.audit.record only (it scans and checks them)"
        )
    if not pending:
        return
    deferred: set[int] = session.info.get(_DEFERRED, set())
    session.info[_PENDING] = [e for e in recorded if id(e) in deferred]  # still for the commit
    binding: DbBinding = session.info["binding"]
    # Sessions joined to an outer test transaction never really commit: no barrier for them.
    early = get_settings().audit_early_lock_release and not isinstance(session.bind, Connection)
    chained = append_entries(session, early, _payload(pending, code_for_schema(binding.schema)))
    _attach(session, pending, chained)
    if early:
        session.info[_BARRIER] = session.connection()


@event.listens_for(Session, "before_commit")
def _chain_at_commit(session: Session) -> None:
    """Entries unwritten at commit: the caller's other changes are flushed first, then the entries
    are appended and the transaction committed in one round trip (``append_and_commit``), so the
    chain lock lives only inside the database for one exchange. A session that has not touched the
    database (nothing but entries) does the whole transaction in that one round trip on a pooled
    connection (``append_in_own_transaction``). Sessions joined to a test's outer transaction, and
    savepoints, keep the flush path."""
    if _chains_on_flush(session):
        return
    pending = _unwritten(session)
    if not pending:
        return
    for entry in pending:
        if entry in session:
            session.expunge(entry)
    session.info[_PENDING] = []
    session.info[_DEFERRED] = set()
    session.flush()  # the caller's own changes, in this transaction, before its commit
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        # flush hooks left more work: the entries go back and take the flush path
        for entry in pending:
            session.add(entry)
        session.info[_PENDING] = [*pending, *session.info.get(_PENDING, [])]
        return
    binding: DbBinding = session.info["binding"]
    early = get_settings().audit_early_lock_release
    payload = _payload(pending, code_for_schema(binding.schema))
    if session.info.get(_CONNECTED):
        raw = session.connection().connection.driver_connection
        chained = append_and_commit(raw, binding, early, payload)
    else:
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        chained = append_in_own_transaction(engine, binding, context_params(binding), early, payload)
    _attach(None, pending, chained)  # committed: nothing left for the session to do with them


@event.listens_for(Session, "after_begin")
def _note_connection(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    session.info[_CONNECTED] = True


@event.listens_for(Session, "after_commit")
def _wait_for_durability(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released; the transaction goes on
        return
    connection: Connection | None = session.info.pop(_BARRIER, None)
    if connection is not None:
        durability_barrier(connection, session.info["binding"])


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction (a savepoint keeps both)
        session.info.pop(_BARRIER, None)
        session.info.pop(_PENDING, None)
        session.info.pop(_DEFERRED, None)
        session.info.pop(_CONNECTED, None)
