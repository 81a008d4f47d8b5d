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
an entry out of the session's unit of work (a plain ``RecordedEntry`` in ``session.info``: flushes
and autoflushes before queries do not write it), and ``_chain_at_commit`` flushes the caller's
changes, then appends the entries and commits in one round trip. So the lock is held inside the
database for that one exchange, not for the rest of a request. Entries recorded inside a
savepoint, and in sessions joined to a test's outer transaction, go into the session as a mapped
``AuditEntry`` instead and are chained by ``_chain_pending`` when it flushes them (holding the lock
until commit): a savepoint rolled back must take its entries with it.

With ``audit_early_lock_release`` (the default) the transaction commits with
``synchronous_commit = off``, so the lock goes as soon as the commit record is written, and the
committing thread then waits in ``durability_barrier`` until the WAL is flushed: nobody returns
before the entry is durable, yet writers no longer queue behind each other's disk flushes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
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


@dataclass(slots=True, eq=False)
class RecordedEntry:
    """An entry as ``record`` took it (scanned and checked); ``id``, ``seq``, ``prev_hash``,
    ``hash`` and ``occurred_at`` are filled in when it is chained.

    A plain object, not the mapped ``AuditEntry``: an entry chained at commit never enters the
    session, and building, then detaching, a mapped instance made a sixth of the Python calls of a
    request that reads and records one entry (904 → 751 without it). Entries chained on flush (in a
    savepoint) travel as an ``AuditEntry`` in ``row``.
    """

    actor_type: str
    actor_id: str
    actor_name: str | None
    terminal: str | None
    action: str
    subject_type: str | None
    subject_id: str | None
    purpose: str | None
    request_id: str | None
    details: dict[str, Any]
    id: int | None = None
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None
    occurred_at: dt.datetime | None = None
    row: AuditEntry | None = field(default=None, repr=False)  # the flush path's mapped instance

    def columns(self) -> tuple[Any, ...]:
        """The entry's own values, in ``_COLUMNS`` order."""
        return (
            self.actor_type, self.actor_id, self.actor_name, self.terminal, self.action, self.subject_type,
            self.subject_id, self.purpose, self.request_id, self.details,
        )  # fmt: skip

    def chained(self, values: Sequence[Any]) -> None:
        """Take (id, seq, prev hash, hash, time) as the database chained the entry."""
        self.id, self.seq, self.prev_hash, self.hash, self.occurred_at = values


def _text(value: str, field: str, masked: list[str]) -> str:
    value, found = mask_text(checked_text(value, field))
    if found:
        masked.append(field)
    return value


def _optional_text(value: str | None, field: str, masked: list[str]) -> str | None:
    return None if value is None else _text(value, field, masked)


def record(
    session: Session,
    action: str,
    *,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> RecordedEntry:
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
    entry = RecordedEntry(
        actor_type=actor.type,
        actor_id=_text(actor.id, "actor_id", masked),
        actor_name=_optional_text(actor.name, "actor_name", masked),
        terminal=_optional_text(actor.terminal, "terminal", masked),
        action=_text(action, "action", masked),
        subject_type=_optional_text(subject_type, "subject_type", masked),
        subject_id=_optional_text(None if subject_id is None else str(subject_id), "subject_id", masked),
        purpose=_optional_text(purpose, "purpose", masked),
        request_id=_optional_text(request_id_var.get(), "request_id", masked),
        details=clean_details,
    )
    if masked:
        log.warning(
            "個人番号と判定される値を操作ログに記録しようとしたため秘匿しました（操作 %s、項目 %s）",
            entry.action,
            ", ".join(masked),
        )
    if _chains_on_flush(session):
        _add_row(session, entry)
    elif not session.in_transaction():
        session.begin()  # so that a rollback or close before commit ends it and forgets the entry
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


def _add_row(session: Session, entry: RecordedEntry) -> None:
    """Give ``entry`` a mapped instance in the session, for a flush to chain."""
    entry.row = AuditEntry(**dict(zip(_COLUMNS, entry.columns(), strict=True)))
    session.add(entry.row)


def _chains_on_flush(session: Session) -> bool:
    """Entries recorded now are chained when a flush writes them, not at commit: in a savepoint (a
    rollback of it must take them along) and in sessions joined to a test's outer transaction."""
    return isinstance(session.bind, Connection) or session.in_nested_transaction()


def _unwritten(session: Session) -> list[RecordedEntry]:
    """The recorded entries still to chain at commit, in record order: those kept out of the
    session, and any whose mapped instance a flush has not written yet."""
    recorded: list[RecordedEntry] = session.info.get(_PENDING, [])
    return [e for e in recorded if e.seq is None and (e.row is None or e.row in session.new)]


_COLUMNS = (
    "actor_type", "actor_id", "actor_name", "terminal", "action", "subject_type", "subject_id", "purpose",
    "request_id", "details",
)  # fmt: skip


def _payload(pending: list[RecordedEntry], tenant: str) -> list[dict[str, Any]]:
    """What ``audit_append()`` takes per entry: the canonical text split around ``at``, ``prev``
    and ``seq`` (``c0``..``c3``) and the columns."""
    payload = []
    for e in pending:
        columns = e.columns()
        c0, c1, c2, c3 = entry_template(tenant, *columns)
        payload.append({"c0": c0, "c1": c1, "c2": c2, "c3": c3, **dict(zip(_COLUMNS, columns, strict=True))})
    return payload


def _attach_rows(session: Session, pending: list[RecordedEntry], chained: Sequence[Sequence[Any]]) -> None:
    """The database inserted the rows of entries chained on flush: their mapped instances become
    persistent copies of them (all values loaded), so that no flush writes them again."""
    for entry, values in zip(pending, chained, strict=True):
        entry.chained(values)
        row = entry.row
        assert row is not None
        session.expunge(row)
        row.id, row.seq, row.prev_hash, row.hash, row.occurred_at = tuple(values)
        make_transient_to_detached(row)
        session.add(row)


@event.listens_for(Session, "before_flush")
def _chain_pending(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    recorded: list[RecordedEntry] = session.info.get(_PENDING, [])
    pending = [e for e in recorded if e.seq is None and e.row is not None and e.row in session.new]
    ours = {id(e.row) for e in pending}
    if any(
        isinstance(o, AuditEntry) and o.__dict__.get("seq") is None and id(o) not in ours for o in session.new
    ):
        raise RuntimeError(
            "audit entries are written through app.audit.record only (it scans and checks them)"
        )
    if not pending:
        return
    session.info[_PENDING] = [e for e in recorded if e.row is None]  # still for the commit
    binding: DbBinding = session.info["binding"]
    # Sessions joined to an outer test transaction never really commit: no barrier for them.
    early = get_settings().audit_early_lock_release and not isinstance(session.bind, Connection)
    chained = append_entries(session, early, _payload(pending, code_for_schema(binding.schema)))
    _attach_rows(session, pending, chained)
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
        if entry.row is not None:  # recorded in a savepoint released without a flush
            session.expunge(entry.row)
            entry.row = None
    session.info[_PENDING] = []
    session.flush()  # the caller's own changes, in this transaction, before its commit
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        # flush hooks left more work: the entries go back and take the flush path
        for entry in pending:
            _add_row(session, entry)
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
    for entry, values in zip(pending, chained, strict=True):
        entry.chained(values)


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
    if transaction.parent is None:  # the outermost transaction (a savepoint's end keeps them)
        session.info.pop(_BARRIER, None)
        session.info.pop(_PENDING, None)
        session.info.pop(_CONNECTED, None)
