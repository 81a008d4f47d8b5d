"""Tampering with the operation log as the schema owner would, and verification catching it.

Gobo's chain has 12 entries, sealed at 10. Each test changes the table with the admin connection
(the runtime role cannot: the log is append-only for it) and expects ``verify`` to name the
damage and where, and ``madoguchi audit verify`` to exit 1.
"""

from __future__ import annotations

import json

import pytest

from app.audit import verify as audit_verify
from app.audit.canonical import digest, entry_object, format_time
from app.audit.sealing import seal
from app.audit.storage import AuditStore
from app.audit.verify import Report, verify
from app.db.session import session_scope
from app.tenancy.service import TenantRecord, registry
from tests.audit_support import admin, cli, rehash, rows, run_cli, schema, write

COLUMNS = (
    "seq, prev_hash, hash, occurred_at, actor_type, actor_id, actor_name, terminal, action, subject_type,"
    " subject_id, purpose, request_id, details"
)


@pytest.fixture(params=["one stream", "parallel ranges"])
def chain(
    request: pytest.FixtureRequest,
    committed: dict[str, TenantRecord],
    audit_store: AuditStore,
    monkeypatch: pytest.MonkeyPatch,
) -> AuditStore:
    """Every case twice: read in one stream, and split into 3 ranges checked by worker processes
    in one exported snapshot (what happens to a long chain): the damage is named the same."""
    if request.param == "parallel ranges":
        monkeypatch.setattr(audit_verify, "PARALLEL_MIN_ENTRIES", 1)
        monkeypatch.setattr(audit_verify, "parallel_workers", lambda: 3)
    write("gobo", 10)
    with session_scope(committed["gobo"].binding) as session:
        assert seal(committed["gobo"], session, audit_store).action == "sealed"
    write("gobo", 2)
    report = verify(committed["gobo"], audit_store)
    assert report.ok, [p.message for p in report.problems]
    assert (report.last_seq, report.latest_seal["seq"], report.unsealed) == (12, 10, 2)  # type: ignore[index]
    assert report.ranges == (3 if request.param == "parallel ranges" else 1)
    return audit_store


def broken(store: AuditStore, tenant: str = "gobo") -> Report:
    target = registry.get(tenant)
    assert target is not None
    report = verify(target, store)
    assert not report.ok
    return report


def found(report: Report) -> set[tuple[str, int | None, int | None]]:
    return {(p.kind, p.first_seq, p.last_seq) for p in report.problems}


def test_an_edited_entry_is_named(chain: AuditStore) -> None:
    admin("gobo", "UPDATE audit_log SET purpose = '改ざん' WHERE seq = 5")
    report = broken(chain)
    assert found(report) == {("edited", 5, 5)}
    assert "連番5" in report.problems[0].message


def test_an_edited_entry_with_its_own_hash_recomputed_breaks_the_next_link(chain: AuditStore) -> None:
    admin("gobo", "UPDATE audit_log SET purpose = '改ざん' WHERE seq = 5")
    rehash("gobo", from_seq=5, to_seq=5)
    assert found(broken(chain)) == {("chain", 6, 6)}


def test_an_edited_entry_with_every_later_hash_recomputed_contradicts_the_seal(chain: AuditStore) -> None:
    admin("gobo", "UPDATE audit_log SET purpose = '改ざん' WHERE seq = 5")
    rehash("gobo", from_seq=5)
    report = broken(chain)
    assert found(report) == {("seal_mismatch", 10, 10)}
    assert "封印（20" in report.problems[0].message  # names when the contradicted seal was made


def test_a_deleted_entry_is_named(chain: AuditStore) -> None:
    admin("gobo", "DELETE FROM audit_log WHERE seq = 5")
    assert found(broken(chain)) == {("missing", 5, 5)}


def test_a_deletion_hidden_by_renumbering_and_rehashing_contradicts_the_seals(chain: AuditStore) -> None:
    admin("gobo", "DELETE FROM audit_log WHERE seq = 5")
    admin("gobo", "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 5")
    admin("gobo", "UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000")
    rehash("gobo", from_seq=5)
    assert "seal_mismatch" in broken(chain).kinds()


def test_an_inserted_entry_is_named(chain: AuditStore) -> None:
    code = schema("gobo")[2:]
    before = rows("gobo")[3]  # seq 4
    admin("gobo", "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
    admin("gobo", "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
    forged = entry_object(code, 5, before.hash, format_time(before.occurred_at), "staff", "7", "窓口 花子",
                          "counter-1", "resident.view", "resident", "99", None, None, {})  # fmt: skip
    admin(
        "gobo",
        "INSERT INTO audit_log (seq, prev_hash, hash, occurred_at, actor_type, actor_id, actor_name, terminal,"
        " action, subject_type, subject_id, details) VALUES (5, :prev, :hash, :at, 'staff', '7', '窓口 花子',"
        " 'counter-1', 'resident.view', 'resident', '99', '{}')",
        {"prev": before.hash, "hash": digest(forged), "at": before.occurred_at},
    )
    report = broken(chain)
    assert ("inserted", 5, 5) in found(report)
    assert ("reordered", 6, 13) in found(report)  # every later entry moved up by one
    assert "連番5〜12 の位置" in next(p.message for p in report.problems if p.kind == "reordered")


def test_reordered_entries_are_named(chain: AuditStore) -> None:
    admin("gobo", "UPDATE audit_log SET seq = 1005 WHERE seq = 5")
    admin("gobo", "UPDATE audit_log SET seq = 5 WHERE seq = 6")
    admin("gobo", "UPDATE audit_log SET seq = 6 WHERE seq = 1005")
    report = broken(chain)
    assert found(report) == {("reordered", 5, 5), ("reordered", 6, 6)}
    assert "本来 連番6" in report.problems[0].message


def test_an_entry_moved_to_another_tenant_is_named_in_both(chain: AuditStore) -> None:
    write("yamaguchi", 4)
    copy = f"INSERT INTO {schema('yamaguchi')}.audit_log ({COLUMNS}) SELECT {COLUMNS} FROM {schema('gobo')}.audit_log"  # noqa: S608
    admin("gobo", copy + " WHERE seq = 5")
    admin("gobo", "DELETE FROM audit_log WHERE seq = 5")
    assert found(broken(chain)) == {("missing", 5, 5)}
    moved = broken(chain, "yamaguchi")
    assert found(moved) == {("foreign", 5, 5)}
    assert moved.problems[0].info["tenant"] == "gobo"


def test_a_cut_tail_is_named(chain: AuditStore) -> None:
    admin("gobo", "DELETE FROM audit_log WHERE seq >= 9")
    report = broken(chain)
    assert found(report) == {("cut_tail", 9, 10)}
    assert "連番10 までの記録" in report.problems[0].message


def test_a_forged_seal_is_named(chain: AuditStore) -> None:
    head = rows("gobo")[-1]
    key = chain.seal_key(schema("gobo"), head.seq, head.hash)
    chain.put(key, json.dumps({"tenant": schema("gobo")[2:], "seq": head.seq, "hash": head.hash}).encode(),
              "application/json", retain_years=1)  # fmt: skip
    assert found(broken(chain)) == {("seal_invalid", 12, 12)}


def test_the_cli_exits_0_on_a_sound_chain_and_1_naming_the_damage(chain: AuditStore) -> None:
    done = run_cli("verify", "gobo")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("検証OK: 御坊市（gobo）連番1〜12")
    admin("gobo", "DELETE FROM audit_log WHERE seq IN (3, 11)")
    assert "[記録の欠落（削除）] 連番3: この範囲の記録がありません" in run_cli("verify", "gobo").output
    process = cli("verify", "gobo", "--json")  # the installed entry point and its exit code
    assert process.returncode == 1, process.stdout + process.stderr
    report = json.loads(process.stdout)
    assert report["ok"] is False
    assert [(p["kind"], p["first_seq"]) for p in report["problems"]] == [("missing", 3), ("missing", 11)]
    # every verification is itself in the log
    assert [r.action for r in rows("gobo")[-3:]] == ["audit.verified"] * 3
