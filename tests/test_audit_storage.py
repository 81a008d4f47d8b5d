"""Seals and archives in real object storage (the moto server), retention per tenant, the jobs."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

from app.audit import Actor
from app.audit.archive import ArchiveRefused, archive, retention_boundary
from app.audit.jobs import schedule_audit_jobs, seal_job
from app.audit.sealing import seal
from app.audit.service import actor_var
from app.audit.signing import SigningKeyError, public_key_text, public_keys, signing_key, verify_document
from app.audit.storage import AuditStore
from app.audit.verify import verify
from app.config import get_settings
from app.db.session import session_scope
from app.jobs import queue
from app.tenancy.calendar import JST
from app.tenancy.service import TenantRecord
from tests.audit_support import admin, append_aged, rows, run_cli, schema, write

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _operator() -> None:
    actor_var.set(Actor("cli", "cli:test", None, "test-host"))  # reset by conftest after each test


def years_ago(years: float) -> dt.datetime:
    return NOW - dt.timedelta(days=365.25 * years)


def test_a_seal_is_a_signed_object_under_object_lock(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    gobo = committed["gobo"]
    with session_scope(gobo.binding) as session:
        assert seal(gobo, session, audit_store).action == "empty"
    write("gobo", 3)
    with session_scope(gobo.binding) as session:
        result = seal(gobo, session, audit_store)
        again = seal(gobo, session, audit_store)
    head = rows("gobo")[-1]
    assert (result.action, result.seq, result.hash) == ("sealed", 3, head.hash)
    assert result.key == f"{audit_store.root}{schema('gobo')}/seals/000000000003-{head.hash}.json"
    assert (again.action, again.key) == ("unchanged", result.key)
    document = json.loads(audit_store.get(result.key))
    assert verify_document(document, public_keys()) is None
    assert (document["tenant"], document["seq"], document["hash"]) == ("302058", 3, head.hash)
    lock = audit_store.client.head_object(Bucket=audit_store.bucket, Key=result.key)
    assert lock["ObjectLockMode"] == "GOVERNANCE"
    assert lock["ObjectLockRetainUntilDate"] > NOW + dt.timedelta(days=365)  # Gobo keeps 1 year
    document["seq"] = 4  # a changed seal no longer verifies
    assert verify_document(document, public_keys()) == "署名が一致しません"


def test_a_tampered_chain_is_never_sealed(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    gobo = committed["gobo"]
    write("gobo", 3)
    with session_scope(gobo.binding) as session:
        seal(gobo, session, audit_store)
    admin("gobo", "UPDATE audit_log SET action = 'forged' WHERE seq = 3")
    write("gobo", 2)
    with session_scope(gobo.binding) as session:
        refused = seal(gobo, session, audit_store)
    assert refused.action == "refused"
    assert [(p.kind, p.first_seq) for p in refused.problems] == [("edited", 3)]
    assert [s.seq for s in audit_store.seals(schema("gobo"))[0]] == [3]


def test_the_seal_job_runs_for_its_tenant_and_is_scheduled_once(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    write("gobo", 2)
    assert seal_job("gobo")["action"] == "sealed"
    first = schedule_audit_jobs()
    assert {s.job_id for s in first} == {
        f"{t}__audit_{kind}" for t in ("osaka", "gobo", "yamaguchi") for kind in ("seal", "archive")
    }
    assert {s.action for s in first} == {"scheduled"}
    assert {s.action for s in schedule_audit_jobs()} == {"kept"}
    assert set(queue().scheduled_job_registry.get_job_ids()) == {s.job_id for s in first}


def test_archive_then_delete_and_verification_chains_across_the_boundary(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    gobo = committed["gobo"]
    append_aged("gobo", [years_ago(3), years_ago(2.5), years_ago(2), years_ago(1.5), years_ago(1.2)])
    write("gobo", 3)
    with session_scope(gobo.binding) as session:
        done = archive(gobo, session, audit_store)
    assert (done.action, done.first_seq, done.last_seq, done.entries) == ("archived", 1, 5, 5)
    remaining = rows("gobo")
    assert [r.seq for r in remaining] == [6, 7, 8, 9]
    assert remaining[-1].action == "audit.archived"
    cut = admin("gobo", "SELECT first_seq, last_seq, last_hash, object_key FROM audit_archives")
    assert [(c.first_seq, c.last_seq, c.object_key) for c in cut] == [(1, 5, done.object_key)]
    assert remaining[0].prev_hash == cut[0].last_hash  # the first remaining entry chains to the cut

    manifest = json.loads(audit_store.get(done.manifest_key))  # type: ignore[arg-type]
    assert verify_document(manifest, public_keys()) is None
    assert (manifest["first_seq"], manifest["last_seq"], manifest["head"]["hash"]) == (1, 5, cut[0].last_hash)
    lines = gzip.decompress(audit_store.get(done.object_key)).splitlines()  # type: ignore[arg-type]
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert audit_store.seals(schema("gobo"))[0][-1].seq == 8  # the head was sealed before the delete

    report = verify(gobo, audit_store)
    assert report.ok, [p.message for p in report.problems]
    assert (report.first_seq, report.last_seq, report.archives, report.archived_entries) == (6, 9, 1, 5)
    deep = verify(gobo, audit_store, deep=True)
    assert deep.ok, [p.message for p in deep.problems]
    assert deep.entries == 9

    # nothing is archived twice; a cut row removed by an administrator is noticed
    with session_scope(gobo.binding) as session:
        assert archive(gobo, session, audit_store).action == "nothing"
    admin("gobo", "DELETE FROM audit_archives")
    assert {(p.kind, p.first_seq, p.last_seq) for p in verify(gobo, audit_store).problems} == {
        ("missing", 1, 5)
    }


def test_retention_follows_each_tenants_years(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    for tenant in ("gobo", "yamaguchi"):
        append_aged(tenant, [years_ago(6), years_ago(3), years_ago(0.5)])
        write(tenant, 1)
    archived = {}
    for tenant in ("gobo", "yamaguchi"):
        with session_scope(committed[tenant].binding) as session:
            archived[tenant] = archive(committed[tenant], session, audit_store)
    assert (archived["gobo"].retention_years, archived["gobo"].last_seq) == (1, 2)  # 6 and 3 years old
    assert (archived["yamaguchi"].retention_years, archived["yamaguchi"].last_seq) == (5, 1)  # 6 years old
    today = dt.datetime.now(JST).date()
    assert archived["gobo"].cutoff.startswith(retention_boundary(1, today).isoformat())
    for tenant in ("gobo", "yamaguchi"):
        report = verify(committed[tenant], audit_store)
        assert report.ok, (tenant, [p.message for p in report.problems])

    # an earlier cut is allowed; a later one never
    with session_scope(committed["yamaguchi"].binding) as session, pytest.raises(ArchiveRefused, match="5年"):
        archive(
            committed["yamaguchi"],
            session,
            audit_store,
            before=retention_boundary(5, today) + dt.timedelta(1),
        )
    assert retention_boundary(1, dt.date(2028, 2, 29)) == dt.date(2027, 2, 28)


def test_a_broken_chain_is_not_archived(committed: dict[str, TenantRecord], audit_store: AuditStore) -> None:
    append_aged("gobo", [years_ago(3), years_ago(2)])
    admin("gobo", 'UPDATE audit_log SET details = \'{"aged": "forged"}\' WHERE seq = 1')
    with session_scope(committed["gobo"].binding) as session, pytest.raises(ArchiveRefused) as refused:
        archive(committed["gobo"], session, audit_store)
    assert [(p.kind, p.first_seq) for p in refused.value.problems] == [("edited", 1)]
    assert [r.seq for r in rows("gobo")] == [1, 2]
    assert list(audit_store.keys(audit_store.tenant_prefix(schema("gobo")))) == []


def test_archive_and_seal_from_the_command_line(
    committed: dict[str, TenantRecord], audit_store: AuditStore
) -> None:
    append_aged("gobo", [years_ago(2)])
    write("gobo", 1)
    refused = run_cli("archive", "gobo", "--before", "2099-01-01")
    assert refused.exit_code == 1
    assert "保存期間（1年）内の記録は退避・削除できません" in refused.output
    done = run_cli("archive", "gobo", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["last_seq"] == 1
    sealed = run_cli("seal", "gobo")
    assert sealed.exit_code == 0, sealed.output
    assert sealed.output.startswith("封印しました: 連番3")  # 2 and the audit.archived entry


def test_verification_needs_only_the_public_key(
    committed: dict[str, TenantRecord], audit_store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("gobo", 2)
    with session_scope(committed["gobo"].binding) as session:
        seal(committed["gobo"], session, audit_store)
    public = public_key_text(signing_key())
    monkeypatch.setenv("MADOGUCHI_AUDIT_SEAL_KEY_REF", "env:MADOGUCHI_NO_SUCH_KEY")
    monkeypatch.setenv("MADOGUCHI_AUDIT_SEAL_PUBLIC_KEYS", public)
    get_settings.cache_clear()
    report = verify(committed["gobo"], audit_store)
    assert report.ok
    assert report.latest_seal["seq"] == 2  # type: ignore[index]
    write("gobo", 1)
    with (
        session_scope(committed["gobo"].binding) as session,
        pytest.raises(SigningKeyError, match="封印用の鍵"),
    ):
        seal(committed["gobo"], session, audit_store)
