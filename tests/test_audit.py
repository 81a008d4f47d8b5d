"""The operation log writer (who, when, terminal, action, subject, purpose) and its hash chain."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.pq import TransactionStatus
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from app.audit import Actor, record
from app.audit.canonical import (
    GENESIS,
    AuditValueError,
    canonical_bytes,
    canonical_text,
    digest,
    entry_object,
    entry_template,
    fill_template,
    format_time,
)
from app.audit.models import AuditEntry
from app.audit.service import NoActorError
from app.audit.storage import AuditStore
from app.audit.verify import verify
from app.config import get_settings
from app.db.audit import AUDIT_LOCK_CLASS
from app.db.engine import admin_engine, get_engine
from app.db.session import new_session, session_scope
from app.identity.service import create_user
from app.tenancy.service import TenantRecord, registry
from tests.audit_support import CLERK, admin, rows, write
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


# --- the hash chain --------------------------------------------------------------------------------


def test_canonical_form_is_exactly_specified() -> None:
    at = format_time(dt.datetime(2026, 11, 21, 9, 30, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=9))))
    obj = entry_object(
        "302058", 7, GENESIS, at, "staff", "42", "窓口 太郎", None, "resident.view", "resident", "1001",
        "住民記録", None, {"z": [1, True, None], "a": "\"引用\"\n"},
    )  # fmt: skip
    assert at == "2026-11-21T00:30:00.000005Z"
    assert canonical_bytes(obj).decode() == (
        '{"action":"resident.view","actor":{"id":"42","name":"窓口 太郎","type":"staff"},'
        '"at":"2026-11-21T00:30:00.000005Z","details":{"a":"\\"引用\\"\\n","z":[1,true,null]},'
        f'"prev":"{GENESIS}","purpose":"住民記録","request_id":null,"seq":7,'
        '"subject":{"id":"1001","type":"resident"},"tenant":"302058","terminal":null,"v":1}'
    )
    # sha256 of exactly those bytes (printf ... | sha256sum agrees)
    assert digest(obj) == "aa8a1a739e8100236e66d838ba0ce6575bd4051c320feaac75a51603650a431c"


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"ratio": 0.5}, "floats are not allowed"),
        ({1: "x"}, "keys must be text"),
        ({"name": "a\x00b"}, "NUL"),
        ({"when": dt.date(2026, 1, 1)}, "date is not allowed"),
    ],
)
def test_details_that_have_no_canonical_form_are_refused(db: None, details: dict, message: str) -> None:  # type: ignore[type-arg]
    with tenant_session("gobo") as session, pytest.raises(AuditValueError, match=message):
        record(session, "test.entry", details=details, actor=CLERK)


def test_entries_are_chained_in_order_across_transactions(db: None) -> None:
    with tenant_session("gobo") as session:
        first = [record(session, "test.entry", details={"n": n}, actor=CLERK) for n in range(3)]
        session.commit()
        later = record(session, "test.entry", actor=CLERK)
        session.commit()
    entries = [*first, later]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert entries[0].occurred_at == entries[2].occurred_at <= entries[3].occurred_at
    code = registry.get("gobo").schema_name[2:]  # type: ignore[union-attr]
    e = entries[1]
    assert e.hash == digest(
        entry_object(code, 2, e.prev_hash, format_time(e.occurred_at), "staff", "7", "窓口 花子", "counter-1",
                     "test.entry", None, None, None, None, {"n": 1})
    )  # fmt: skip


def test_the_database_clock_and_the_canonical_time_format_agree(db: None) -> None:
    with tenant_session("gobo") as session:
        entry = record(session, "test.entry", actor=CLERK)
        session.flush()
        sql_text = session.execute(
            text(
                "SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM audit_log"
            )
        ).scalar_one()
    assert sql_text == format_time(entry.occurred_at)


def test_chaining_refuses_repeatable_read(committed: dict[str, TenantRecord]) -> None:
    """Both ways of chaining refuse a snapshot older than the lock: at commit (an entry recorded in
    the transaction) and when a flush writes an entry recorded inside a savepoint. (Entries of a
    session that never read anything are appended in a transaction of their own at READ COMMITTED.)"""
    for in_savepoint in (False, True):
        session = new_session(committed["gobo"].binding, isolation_level="REPEATABLE READ")
        try:
            session.execute(text("SELECT 1"))  # the snapshot is taken
            if in_savepoint:
                savepoint = session.begin_nested()
                record(session, "test.entry", actor=CLERK)
                with pytest.raises(DBAPIError, match="READ COMMITTED only"):
                    savepoint.commit()
            else:
                record(session, "test.entry", actor=CLERK)
                with pytest.raises(DBAPIError, match="READ COMMITTED only"):
                    session.commit()
        finally:
            session.close()
    assert rows("gobo") == []


def test_eight_concurrent_writers_never_fork_the_chain(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer() -> None:
        try:
            start.wait()
            write("gobo", 150)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    chain = rows("gobo")
    assert [r.seq for r in chain] == list(range(1, 1201))
    assert len({r.prev_hash for r in chain}) == 1200  # no two entries share a predecessor: no fork
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    report = verify(committed["gobo"], audit_store)
    assert report.ok, [p.message for p in report.problems]
    assert (report.entries, report.first_seq, report.last_seq) == (1200, 1, 1200)


def test_commits_wait_for_the_flush_and_synchronous_commit_is_reset(
    committed: dict[str, TenantRecord],
) -> None:
    with session_scope(committed["gobo"].binding) as session:
        with session.begin_nested():  # recorded in a savepoint: chained when the savepoint flushes
            record(session, "test.entry", actor=CLERK)
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "off"  # early lock release
        written = session.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar()
    with session_scope(committed["gobo"].binding) as session:
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"
        assert session.execute(
            text("SELECT pg_current_wal_flush_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": written}
        ).scalar()


def test_the_runtime_role_cannot_write_cuts_or_retention_nor_delete_within_retention(db: None) -> None:
    with tenant_session("gobo") as session:
        entry = record(session, "test.entry", actor=CLERK)
        session.flush()
        for statement in (
            "INSERT INTO audit_archives (first_seq, last_seq, last_hash, entries, object_key, manifest_sha256)"
            " VALUES (1, 1, repeat('0', 64), 1, 'x', 'y')",
            "UPDATE audit_retention SET retention_years = 1",
            "DELETE FROM audit_retention",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"), session.begin_nested():
                session.execute(text(statement))
        with pytest.raises(DBAPIError, match="inside the retention"), session.begin_nested():
            session.execute(
                text("SELECT audit_delete_archived(:s, :h, 'k', 'm')"), {"s": entry.seq, "h": entry.hash}
            )


def test_retention_is_stored_per_tenant_by_sync(provisioned: dict[str, TenantRecord]) -> None:
    years = {t: admin(t, "SELECT retention_years FROM audit_retention")[0][0] for t in provisioned}
    assert years == {"osaka": 5, "gobo": 1, "yamaguchi": 5}


def test_a_released_savepoint_does_not_commit_the_transaction_early(
    committed: dict[str, TenantRecord],
) -> None:
    session = new_session(committed["gobo"].binding)
    try:
        with session.begin_nested():  # chained as the savepoint is released: the transaction will
            record(session, "test.entry", actor=CLERK)  # commit asynchronously, then wait for the flush
        with session.begin_nested():
            session.execute(text("SELECT 1"))
        session.rollback()
    finally:
        session.close()
    assert rows("gobo") == []


def test_entries_commit_with_the_work_of_their_transaction_or_not_at_all(
    committed: dict[str, TenantRecord],
) -> None:
    """An entry still unwritten at commit is appended with the commit, after the transaction's other
    changes, in the same transaction: both are there, or, when chaining is refused, neither."""
    gobo = committed["gobo"]
    with session_scope(gobo.binding) as session:
        user = create_user(session, "kept", "窓口 次郎", None)
        user.display_name = "窓口 次郎（変更）"  # changed after the last flush: flushed before the entry
        entry = record(session, "user.created", subject_type="user", subject_id="kept", actor=CLERK)
        assert entry.seq is None
    assert (entry.seq, entry.prev_hash) == (1, GENESIS)
    refused = new_session(gobo.binding, isolation_level="REPEATABLE READ")
    try:
        create_user(refused, "dropped", "窓口 三郎", None)
        record(refused, "user.created", subject_type="user", subject_id="dropped", actor=CLERK)
        with pytest.raises(DBAPIError, match="READ COMMITTED only"):
            refused.commit()
    finally:
        refused.close()
    users = admin("gobo", "SELECT login, display_name FROM staff_users ORDER BY login")
    assert [tuple(u) for u in users] == [("kept", "窓口 次郎（変更）")]
    assert [(r.seq, r.action, r.subject_id, r.hash) for r in rows("gobo")] == [
        (1, "user.created", "kept", entry.hash)
    ]


def test_an_entry_recorded_before_other_work_takes_the_chain_lock_only_at_commit(
    committed: dict[str, TenantRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clerk's request records its read, then flushes and queries: the tenant's chain lock is not
    taken by those flushes but at commit, so other clerks' entries are not held up behind the rest
    of the request (here one commits meanwhile under a 300 ms statement timeout), and the entry
    chains after them."""
    gobo = committed["gobo"]
    session = new_session(gobo.binding)
    try:
        mine = record(session, "resident.view", subject_type="resident", subject_id="7", actor=CLERK)
        create_user(session, "busy", "窓口 四郎", None)  # flushes
        assert session.execute(text("SELECT count(*) FROM staff_users")).scalar_one() == 1  # autoflush
        assert mine.seq is None
        monkeypatch.setenv("MADOGUCHI_DB_STATEMENT_TIMEOUT_MS", "300")
        get_settings.cache_clear()
        try:
            write("gobo", 2)  # would wait for the lock past the timeout if the flushes had taken it
        finally:
            monkeypatch.delenv("MADOGUCHI_DB_STATEMENT_TIMEOUT_MS")
            get_settings.cache_clear()
        session.commit()
    finally:
        session.close()
    chain = rows("gobo")
    assert [(r.seq, r.action) for r in chain] == [(1, "test.entry"), (2, "test.entry"), (3, "resident.view")]
    assert (mine.seq, mine.prev_hash, mine.hash) == (3, chain[1].hash, chain[2].hash)
    assert admin("gobo", "SELECT login FROM staff_users")[0][0] == "busy"


def test_an_entry_of_a_transaction_rolled_back_or_closed_is_never_written(
    committed: dict[str, TenantRecord],
) -> None:
    gobo = committed["gobo"]
    session = new_session(gobo.binding)
    try:
        record(session, "test.dropped", actor=CLERK)
        session.rollback()
        record(session, "test.closed", actor=CLERK)
    finally:
        session.close()
    with session_scope(gobo.binding) as session:  # a session reused after its rollback
        record(session, "test.rolled_back", actor=CLERK)
        session.rollback()
        record(session, "test.kept", actor=CLERK)
    assert [r.action for r in rows("gobo")] == ["test.kept"]


def test_an_entry_recorded_before_a_savepoint_survives_its_rollback(
    committed: dict[str, TenantRecord],
) -> None:
    with session_scope(committed["gobo"].binding) as session:
        record(session, "test.before", actor=CLERK)
        savepoint = session.begin_nested()
        record(session, "test.inside", actor=CLERK)
        with pytest.raises(ProgrammingError):
            session.execute(text("SELECT * FROM no_such_table"))
        savepoint.rollback()
        record(session, "test.after", actor=CLERK)
    assert [r.action for r in rows("gobo")] == ["test.before", "test.after"]


def test_entries_alone_commit_in_one_exchange_and_leave_the_pooled_connection_as_it_was(
    committed: dict[str, TenantRecord],
) -> None:
    """A transaction with nothing but entries runs on a pooled connection in autocommit mode with
    its own BEGIN; the connection goes back to the pool in the normal mode, without tenant
    settings, and the next writer chains onto the entries."""
    write("gobo", 3)
    engine = get_engine()
    pooled = engine.raw_connection()
    try:
        raw = pooled.driver_connection
        assert raw is not None
        assert raw.autocommit is False
        row = raw.execute(
            "SELECT current_user = session_user, current_setting('search_path') NOT LIKE 't\\_%',"
            " current_setting('synchronous_commit')"
        ).fetchone()
        assert row == (True, True, "on")
        raw.rollback()
    finally:
        pooled.close()
    chain = rows("gobo")
    assert [r.seq for r in chain] == [1, 2, 3]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


def test_entries_alone_that_fail_to_chain_leave_nothing_and_no_spoiled_connection(
    committed: dict[str, TenantRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-exchange path's error side: the chain lock is held elsewhere past the statement
    timeout. The caller gets the error, no entry is written, every pooled connection is back in
    its normal state, and the next entries chain on as if nothing had happened."""
    write("gobo", 2)
    monkeypatch.setenv("MADOGUCHI_DB_STATEMENT_TIMEOUT_MS", "300")
    get_settings.cache_clear()
    holder = admin_engine().connect()
    try:
        holder.execute(
            text("SELECT pg_advisory_xact_lock(:c, :t)"),
            {"c": AUDIT_LOCK_CLASS, "t": int(committed["gobo"].schema_name[2:])},
        )
        with (
            pytest.raises(DBAPIError, match="statement timeout"),
            session_scope(committed["gobo"].binding) as s,
        ):
            record(s, "resident.view", subject_type="resident", subject_id="1", actor=CLERK)
    finally:
        holder.rollback()
        holder.close()
        get_settings.cache_clear()
    assert [r.seq for r in rows("gobo")] == [1, 2]
    engine = get_engine()
    pooled = [engine.raw_connection() for _ in range(engine.pool.size())]
    try:
        for connection in pooled:
            raw = connection.driver_connection
            assert raw is not None
            assert raw.autocommit is False
            assert raw.info.transaction_status == TransactionStatus.IDLE
            assert raw.execute("SELECT current_user = session_user").fetchone() == (True,)
            raw.rollback()
    finally:
        for connection in pooled:
            connection.close()
    write("gobo", 1)
    chain = rows("gobo")
    assert [r.seq for r in chain] == [1, 2, 3]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


def test_entries_only_come_through_record(db: None) -> None:
    with tenant_session("gobo") as session:
        session.add(AuditEntry(actor_type="system", actor_id="x", action="forged", details={}))
        with pytest.raises(RuntimeError, match=r"app\.audit\.record only"):
            session.flush()


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(details=st.dictionaries(st.sampled_from(["at", "prev", "seq", "subject", "x", "\"at\":\""]), _json, max_size=5),
       text_value=st.one_of(st.none(), st.text(max_size=10)), seq=st.integers(min_value=1, max_value=10**12))  # fmt: skip
def test_the_template_the_database_fills_is_the_canonical_form(
    details: dict, text_value: str | None, seq: int
) -> None:  # type: ignore[type-arg]
    """audit_append() hashes c0 + at + c1 + prev + c2 + seq + c3: it must be the canonical text."""
    at, prev = "2026-11-21T00:30:00.000005Z", "ab" * 32
    columns = ("staff", "1", text_value, text_value, "a.b", None, text_value, text_value, None, details)
    filled = fill_template(entry_template("302058", *columns), at, prev, seq)
    assert filled == canonical_bytes(entry_object("302058", seq, prev, at, *columns)).decode()


@given(details=st.dictionaries(st.text(max_size=4), _json, max_size=5),
       text_value=st.one_of(st.none(), st.text(max_size=10)), seq=st.integers(min_value=1, max_value=10**12))  # fmt: skip
def test_the_text_verification_hashes_is_the_canonical_form(
    details: dict, text_value: str | None, seq: int
) -> None:  # type: ignore[type-arg]
    """Verification writes the canonical text directly (``canonical_text``): byte for byte what
    the general encoder writes, quotes, backslashes, control and non-ASCII characters included."""
    at = "2026-11-21T00:30:00.000005Z"
    columns = ("staff", text_value or "1", text_value, text_value, "a.b", text_value, text_value, text_value,
               text_value, details)  # fmt: skip
    expected = canonical_bytes(entry_object("302058", seq, GENESIS, at, *columns)).decode()
    assert canonical_text("302058", seq, GENESIS, at, *columns) == expected


def test_values_of_another_type_take_the_general_path() -> None:
    """A tampered archive line can hold anything: the result is still what the encoder writes."""
    odd = ("302058", True, 5, "t", "staff", 42, None, ["x"], "a.b", None, None, None, None, {"k": [1]})
    assert canonical_text(*odd) == canonical_bytes(entry_object(*odd)).decode()  # type: ignore[arg-type]
