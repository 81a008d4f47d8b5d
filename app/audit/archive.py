"""Retention: move entries older than the tenant's retention to object storage, then delete them.

Order, so nothing leaves the database unarchived:

1. the cut: the longest prefix of the chain (after the previous cut) whose entries are all older
   than the cutoff (default: today in JST minus ``sla.audit.retention_years``; ``--before`` may
   only move it earlier);
2. the prefix is verified while it is written to a JSON Lines file, gzip (one canonical entry,
   ``app.audit.canonical``, plus its ``"hash"`` per line): a broken chain is never archived;
3. the file, then its signed manifest, go to ``archive/<first>-<last>.jsonl.gz`` and
   ``.manifest.json`` under Object Lock, and both are read back and compared;
4. the current head is sealed;
5. ``audit_delete_archived`` (SECURITY DEFINER, the only way rows leave ``audit_log``) deletes the
   prefix and records the cut — refusing anything inside the retention it reads from the tenant's
   own ``audit_retention`` — and an ``audit.archived`` entry is written in the same transaction.

Manifest (JSON, signed)::

    {"v": 1, "kind": "archive", "tenant": "302058", "tenant_id": "gobo", "schema": "t_302058",
     "first_seq": 1, "last_seq": 5000, "count": 5000, "prev_hash": "<hash before first_seq>",
     "head": {"seq": 5000, "hash": "<hex>", "at": "<UTC>"},   # the chain head at the cut
     "chain_head": {"seq": 7100, "hash": "<hex>"},           # the newest entry at archival
     "cutoff": "2025-11-21T00:00:00+09:00", "object": "<key>", "sha256": "<of the .jsonl.gz>",
     "bytes": 123456, "format": "...", "created_at": "<UTC>", "alg", "key_id", "sig"}

Deleting an archive object is left to the bucket's lifecycle after its Object Lock date.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.canonical import GENESIS, canonical_bytes, encode_json, entry_object
from app.audit.models import AuditArchive, AuditEntry
from app.audit.sealing import seal
from app.audit.service import record
from app.audit.signing import signing_key
from app.audit.storage import AuditStore
from app.audit.verify import ChainChecker, Problem
from app.dates import JST
from app.db.audit import delete_archived, stream_entries
from app.db.names import code_for_schema
from app.tenancy.service import TenantRecord, registry

FORMAT = 'JSON Lines, gzip: one canonical entry (app.audit.canonical v1) plus its "hash" per line'


class ArchiveRefused(Exception):
    """The archive cannot be made (retention, or a broken chain); the message is Japanese."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class ArchiveResult:
    tenant: str
    action: str  # archived | nothing
    cutoff: str
    retention_years: int
    first_seq: int | None = None
    last_seq: int | None = None
    entries: int = 0
    object_key: str | None = None
    manifest_key: str | None = None
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [p.as_dict() for p in self.problems]
        return data


def retention_boundary(years: int, today: dt.date) -> dt.date:
    """The first day still inside the retention (29 February falls back to the 28th)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def _lines(
    code: str, rows: Iterator[Sequence[Any]], out: IO[bytes], last: dict[str, Any]
) -> Iterator[Sequence[Any]]:
    """Pass rows through, writing each as an archive line; remember the last one."""
    for row in rows:
        obj = entry_object(code, row[0], row[1], *row[3:14])
        obj["hash"] = row[2]
        out.write(encode_json(obj).encode("utf-8") + b"\n")
        last.update(seq=row[0], hash=row[2], at=row[3])
        yield row


def archive(
    tenant: TenantRecord,
    session: Session,
    store: AuditStore | None = None,
    *,
    before: dt.date | None = None,
    today: dt.date | None = None,
) -> ArchiveResult:
    """Archive and delete what the retention allows; the caller's session commits at the end."""
    store = store or AuditStore.from_settings()
    years = registry.config(tenant).sla.audit.retention_years
    boundary = retention_boundary(years, today or dt.datetime.now(JST).date())
    if before is not None and before > boundary:
        raise ArchiveRefused(
            f"保存期間（{years}年）内の記録は退避・削除できません: 指定日 {before.isoformat()} は"
            f" {boundary.isoformat()} より後です"
        )
    cutoff_day = before or boundary
    cutoff = dt.datetime.combine(cutoff_day, dt.time(0), JST)
    result = ArchiveResult(tenant.id, "nothing", cutoff.isoformat(), years)
    code = code_for_schema(tenant.schema_name)

    previous = session.execute(
        select(AuditArchive.last_seq, AuditArchive.last_hash).order_by(AuditArchive.last_seq.desc()).limit(1)
    ).first()
    first, prev = (previous.last_seq + 1, previous.last_hash) if previous else (1, GENESIS)
    newer = session.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.occurred_at >= cutoff))
    last = newer - 1 if newer is not None else session.scalar(select(func.max(AuditEntry.seq)))
    if last is None or last < first:
        return result
    newest = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).one()

    seals, _ = store.seals(tenant.schema_name)
    checker = ChainChecker(code, first, prev, {s.seq: s.hash for s in seals if first <= s.seq <= last})
    tail: dict[str, Any] = {}
    with tempfile.TemporaryFile() as tmp:
        with gzip.GzipFile(fileobj=tmp, mode="wb", mtime=0) as gz:
            checker.feed(_lines(code, stream_entries(session, first, last), gz, tail))  # type: ignore[arg-type]
        problems = list(checker.problems)
        if checker.mismatched_seals:
            problems.append(Problem("seal_mismatch", checker.mismatched_seals[0][0], None))
        if checker.count != last - first + 1 and not problems:
            problems.append(Problem("missing", checker.expected, last))
        if problems:
            raise ArchiveRefused("記録の連鎖に不整合があるため退避を中止しました", problems)
        size = tmp.tell()
        tmp.seek(0)
        sha = hashlib.sha256()
        for block in iter(lambda: tmp.read(1 << 20), b""):
            sha.update(block)
        digest = sha.hexdigest()
        data_key = store.archive_key(tenant.schema_name, first, last)
        tmp.seek(0)
        store.put(data_key, tmp, "application/gzip", retain_years=years)

    manifest = signing_key().sign(
        {
            "v": 1,
            "kind": "archive",
            "tenant": code,
            "tenant_id": tenant.id,
            "schema": tenant.schema_name,
            "first_seq": first,
            "last_seq": last,
            "count": checker.count,
            "prev_hash": prev,
            "head": {"seq": tail["seq"], "hash": tail["hash"], "at": tail["at"]},
            "chain_head": {"seq": newest.seq, "hash": newest.hash},
            "cutoff": cutoff.isoformat(),
            "object": data_key,
            "sha256": digest,
            "bytes": size,
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    manifest_bytes = canonical_bytes(manifest)
    manifest_key = store.manifest_key(data_key)
    store.put(manifest_key, manifest_bytes, "application/json", retain_years=years)
    # Read both back before a single row is deleted.
    stored = hashlib.sha256(store.get(data_key)).hexdigest()
    if stored != digest or store.get(manifest_key) != manifest_bytes:
        raise ArchiveRefused(f"{store.where(data_key)} を読み戻した内容が一致しないため削除を中止しました")

    sealed = seal(tenant, session, store)
    if not sealed.ok:
        raise ArchiveRefused("現在の記録を封印できないため削除を中止しました", sealed.problems)
    deleted = delete_archived(
        session, last, tail["hash"], data_key, hashlib.sha256(manifest_bytes).hexdigest()
    )
    record(
        session,
        "audit.archived",
        subject_type="audit_log",
        subject_id=f"{first}-{last}",
        details={
            "entries": deleted,
            "object": data_key,
            "cutoff": cutoff.isoformat(),
            "retention_years": years,
        },
    )
    result.action = "archived"
    result.first_seq, result.last_seq, result.entries = first, last, deleted
    result.object_key, result.manifest_key, result.bytes = data_key, manifest_key, size
    return result
