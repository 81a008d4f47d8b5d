"""Front-linkage import (前方連携 取込): one file → one batch, applied completely or not at all.

Flow for a local file (adapters download to a temporary file first):
1. hash the content; the same content already applied makes a ``duplicate`` batch and nothing more;
2. in one transaction, under a per-tenant advisory lock: stream records through the validator into
   the UNLOGGED staging table (COPY), reject or quarantine bad rows per the tenant's policy, and
   apply the staged rows set-based (unchanged rows skipped);
3. a rejected file leaves the data as it was and a report naming file, line, column, value and
   reason in Japanese.
Progress (bytes and rows) is written to the batch row from a second session every second, so the
operator can watch a long import; the CLI shows the same progress as a bar.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.config import get_settings
from app.dates.wareki import ERAS_FILE
from app.db import imports as sql
from app.db.session import new_session
from app.linkage.config import (
    ATTRIBUTE_COLUMNS,
    OPTIONAL_ATTRIBUTE_COLUMNS,
    OPTIONAL_RESIDENT_COLUMNS,
    RESIDENT_COLUMNS,
    STANDARD,
    FileKind,
    Layout,
    LinkageConfig,
)
from app.linkage.fingerprints import Fingerprints
from app.linkage.models import ImportBatch, ImportRejection
from app.linkage.reader import FileRejected, Problem, Record, SourceHashing, read_records
from app.linkage.validate import (
    ATTRIBUTE_STAGING_COLUMNS,
    RESIDENT_STAGING_COLUMNS,
    AttributeValidator,
    ResidentValidator,
)
from app.linkage.webhooks import emit
from app.residents.normalize import variant_key
from app.tenancy.config import TenantConfig
from app.tenancy.service import TenantRecord, registry

log = logging.getLogger(__name__)
MAX_VALUE = 200  # characters of a rejected value kept in the report


class ImportInputError(ValueError):
    """The request itself is wrong (unknown kind, unreadable path); Japanese message."""


@dataclass(frozen=True)
class RejectionEntry:
    line: int | None
    record: int | None
    column: str | None
    value: str | None
    code: str
    reason: str


@dataclass
class ImportOutcome:
    batch_id: int
    status: str  # applied | rejected | duplicate | failed
    kind: str
    mode: str
    file_name: str
    rows_read: int = 0
    rows_rejected: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    rejections: list[RejectionEntry] = field(default_factory=list)  # the reported ones (bounded)
    message: str = ""
    duplicate_of: int | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds: reading and staging, applying

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "kind": self.kind,
            "mode": self.mode,
            "file": self.file_name,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "counts": self.counts,
            "message": self.message,
            "duplicate_of": self.duplicate_of,
            "phases": self.phases,
            "rejections": [r.__dict__ for r in self.rejections],
        }


Progress = Callable[[int, int], None]  # (bytes read so far, records read so far)


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def detect_kind(path: Path, layouts: LinkageConfig) -> FileKind:
    """Residents or attributes, from the header: an attributes file has 項目 and 値."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    kinds: tuple[FileKind, ...] = ("attributes", "residents")
    for kind in kinds:
        layout = layouts.layout(kind)
        codec = "cp932" if layout.encoding == "cp932" else "utf-8"
        first = head.split(b"\n", 1)[0].decode(codec, errors="replace").lstrip("\ufeff")
        names = {h.strip().strip('"') for h in first.split(layout.delimiter)}
        if kind == "attributes" and {layout.header_for("項目"), layout.header_for("値")} <= names:
            return "attributes"
    return "residents"


class _Reporter:
    """Keeps the first N rejections, counts the rest; rows rejected counted once per record."""

    def __init__(self, file_name: str, limit: int):
        self.file_name = file_name
        self.limit = limit
        self.entries: list[RejectionEntry] = []
        self.problems = 0
        self.rejected_records: set[int] = set()

    def add(self, line: int | None, record: int | None, problem: Problem) -> None:
        self.problems += 1
        if record is not None:
            self.rejected_records.add(record)
        if len(self.entries) < self.limit:
            value = None if problem.value is None else problem.value[:MAX_VALUE]
            self.entries.append(
                RejectionEntry(line, record, problem.column, value, problem.code, problem.reason)
            )

    def add_record(self, record: Record) -> None:
        for problem in record.problems:
            self.add(record.line, record.number, problem)


class _ProgressWriter:
    """Writes bytes/rows read to the batch row (own short transactions) at most once a second."""

    def __init__(self, session: Session, batch_id: int, callback: Progress | None):
        self.session = session
        self.batch_id = batch_id
        self.callback = callback
        self.bytes = 0
        self.rows = 0
        self._last = time.monotonic()

    def on_bytes(self, n: int) -> None:
        self.bytes += n
        if self.callback is not None:
            self.callback(self.bytes, self.rows)
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            self.flush()

    def flush(self) -> None:
        self.session.execute(
            update(ImportBatch)
            .where(ImportBatch.id == self.batch_id)
            .values(bytes_read=self.bytes, rows_read=self.rows)
        )
        self.session.commit()


def import_local_file(
    tenant: TenantRecord,
    path: Path,
    *,
    actor: Actor,
    file_name: str | None = None,
    source: str = "cli",
    source_ref: str | None = None,
    kind: FileKind | None = None,
    mode: Literal["full", "changes"] | None = None,
    standard_layout: bool = False,
    progress: Progress | None = None,
    batch_id: int | None = None,
) -> ImportOutcome:
    """Import one local file into the tenant's schema. Never raises for bad content: see outcome.

    ``batch_id`` continues a batch created when a background job was queued.
    """
    if not path.is_file():
        raise ImportInputError(f"ファイル {path} が見つかりません")
    config: TenantConfig = registry.config(tenant)
    layouts = STANDARD if standard_layout else config.linkage
    name = file_name or path.name
    kind = kind or detect_kind(path, layouts)
    layout = layouts.layout(kind)
    chosen_mode = mode or layout.mode_for(name)
    digest, size = sha256_of(path)

    status_session = new_session(tenant.binding)
    try:
        values: dict[str, Any] = {
            "kind": kind,
            "mode": chosen_mode,
            "layout": layout.variant,
            "policy": config.linkage.policy,
            "source": source,
            "source_ref": source_ref or str(path),
            "file_name": name,
            "content_sha256": digest,
            "size_bytes": size,
            "status": "running",
            "started_at": dt.datetime.now(dt.UTC),
        }
        queued = status_session.get(ImportBatch, batch_id) if batch_id is not None else None
        if batch_id is not None and (queued is None or queued.status != "queued"):
            raise ImportInputError(f"バッチ #{batch_id} は待機中ではありません")
        if queued is not None:
            for key, value in values.items():
                setattr(queued, key, value)
            batch = queued
        else:
            batch = ImportBatch(created_by=actor.id, **values)
            status_session.add(batch)
        status_session.commit()
        outcome = ImportOutcome(batch.id, "running", kind, chosen_mode, name)
        outcome_kind: FileKind = kind
        previous = _applied_with_same_content(status_session, kind, digest)
        if previous is not None:
            return _finish_duplicate(status_session, batch, outcome, previous)
        try:
            _run(tenant, config, layout, outcome_kind, batch, path, outcome, status_session, progress)
        except Exception as exc:
            log.exception("import of %s failed", name)
            status_session.rollback()
            _finish(
                status_session,
                batch,
                outcome,
                "failed",
                f"取込中にエラーが発生しました（{type(exc).__name__}）",
            )
            raise
        return outcome
    finally:
        status_session.close()


def _applied_with_same_content(session: Session, kind: str, digest: str) -> int | None:
    return session.scalar(
        select(ImportBatch.id).where(
            ImportBatch.kind == kind, ImportBatch.content_sha256 == digest, ImportBatch.status == "applied"
        )
    )


def _finish_duplicate(
    session: Session, batch: ImportBatch, outcome: ImportOutcome, previous: int
) -> ImportOutcome:
    outcome.duplicate_of = previous
    _finish(
        session,
        batch,
        outcome,
        "duplicate",
        f"同じ内容のファイルは取込済みです（バッチ #{previous}）。何も変更していません。",
        duplicate_of=previous,
    )
    return outcome


def _finish(
    session: Session, batch: ImportBatch, outcome: ImportOutcome, status: str, message: str, **values: Any
) -> None:
    outcome.status = status
    outcome.message = message
    session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch.id)
        .values(
            status=status,
            message=message,
            finished_at=dt.datetime.now(dt.UTC),
            rows_read=outcome.rows_read,
            rows_rejected=outcome.rows_rejected,
            **values,
        )
    )
    _emit_finished(session, batch, outcome)
    session.commit()


def _emit_finished(session: Session, batch: ImportBatch, outcome: ImportOutcome) -> None:
    emit(session, "import.finished", batch_id=batch.id, kind=batch.kind, status=outcome.status,
         rows_read=outcome.rows_read, rows_rejected=outcome.rows_rejected)  # fmt: skip


def _save_rejections(session: Session, batch_id: int, entries: list[RejectionEntry]) -> None:
    session.add_all(
        ImportRejection(
            batch_id=batch_id,
            line=e.line,
            record=e.record,
            column=e.column,
            value=e.value,
            code=e.code,
            reason=e.reason,
        )
        for e in entries
    )


def _run(
    tenant: TenantRecord,
    config: TenantConfig,
    layout: Layout,
    kind: FileKind,
    batch: ImportBatch,
    path: Path,
    outcome: ImportOutcome,
    status_session: Session,
    progress: Progress | None,
) -> None:
    mode = outcome.mode
    reporter = _Reporter(outcome.file_name, config.linkage.max_reported_rejections)
    meter = _ProgressWriter(status_session, batch.id, progress)
    session = new_session(tenant.binding)
    try:
        sql.lock_imports(session, kind, get_settings().import_statement_timeout_ms)
        previous = _applied_with_same_content(session, kind, batch.content_sha256 or "")
        if previous is not None:  # applied by another import while we waited for the lock
            session.rollback()
            _finish_duplicate(status_session, batch, outcome, previous)
            return
        sql.truncate_staging(session, kind)
        started = time.perf_counter()
        try:
            try:
                staged, fingerprints, direct = _stage(
                    session, config, layout, kind, mode, batch.id, path, reporter, meter
                )
            except sql.DuplicateKey:
                # A first load hit a repeated 宛名番号 in the residents table: do it the careful
                # way, through staging, which reports every copy of it.
                session.rollback()
                sql.lock_imports(session, kind, get_settings().import_statement_timeout_ms)
                sql.truncate_staging(session, kind)
                reporter = _Reporter(outcome.file_name, config.linkage.max_reported_rejections)
                meter.rows = meter.bytes = 0
                staged, fingerprints, direct = _stage(
                    session, config, layout, kind, mode, batch.id, path, reporter, meter, allow_direct=False
                )
        except FileRejected as exc:
            session.rollback()
            reporter.add(exc.line, None, Problem(exc.code, exc.reason, exc.column))
            outcome.rows_read = meter.rows
            _reject(status_session, batch, outcome, reporter, f"ファイル全体を取り込めません: {exc.reason}")
            return
        outcome.rows_read = meter.rows
        # The people staged are a small part of the residents (a nightly's changes): look them up
        # one by one (sql.prefer_index_lookups) when settling and applying.
        few = fingerprints is not None and staged * 10 < fingerprints.people
        if kind == "residents" and mode == "full" and not direct:
            if fingerprints is not None:
                fingerprints.settle(session, batch.id, few=few)
                _reject_fingerprint_duplicates(session, layout, batch.id, path, fingerprints, reporter)
            else:
                _reject_duplicates(session, batch.id, reporter)
        outcome.rows_rejected = len(reporter.rejected_records)
        if outcome.rows_read == 0 and mode == "full":
            session.rollback()
            reporter.add(
                None, None, Problem("no_rows", "全件ファイルにデータ行がありません（見出し行だけです）")
            )
            _reject(
                status_session,
                batch,
                outcome,
                reporter,
                "全件ファイルにデータ行がないため取り込みませんでした。",
            )
            return
        if outcome.rows_rejected and config.linkage.policy == "reject_all":
            session.rollback()
            _reject(
                status_session,
                batch,
                outcome,
                reporter,
                f"{outcome.rows_rejected}行に誤りがあるため、ファイル全体を取り込みませんでした（何も変更していません）。",
            )
            return
        staged_at = time.perf_counter()
        sql.analyze(session, "staging")
        if direct:
            sql.finish_direct_load(session)
            counts = {"inserted": staged, "updated": 0, "unchanged": 0, "missing": 0}
        elif kind == "residents":
            counts = sql.apply_residents(session, batch.id, mode, count_missing=fingerprints is None, few=few)
            if fingerprints is not None:
                counts["unchanged"] += fingerprints.unchanged
                counts["missing"] = fingerprints.missing
        else:
            counts = sql.apply_attributes(session, batch.id, mode)
        if (
            direct
            or kind != "residents"
            or (counts["inserted"] + counts["updated"]) * 10 >= outcome.rows_read
        ):
            sql.analyze(session, kind)  # else autovacuum's analyze keeps up (it too waits for 10 %)
        sql.truncate_staging(session, kind)
        log.info(
            "import batch %s: %s rows staged in %.1f s, applied in %.1f s",
            batch.id,
            staged,
            staged_at - started,
            time.perf_counter() - staged_at,
        )
        outcome.counts = counts
        outcome.phases = {
            "read_and_stage": round(staged_at - started, 2),
            "apply": round(time.perf_counter() - staged_at, 2),
        }
        outcome.rejections = reporter.entries
        _save_rejections(session, batch.id, reporter.entries)
        held = f"、{outcome.rows_rejected}行は誤りのため保留" if outcome.rows_rejected else ""
        outcome.status = "applied"
        outcome.message = (
            f"{outcome.rows_read - outcome.rows_rejected}行を取り込みました"
            f"（追加 {counts.get('inserted', 0)}、更新 {counts.get('updated', 0)}、変更なし {counts.get('unchanged', 0)}{held}）。"
        )
        session.execute(
            update(ImportBatch)
            .where(ImportBatch.id == batch.id)
            .values(
                status="applied",
                message=outcome.message,
                rows_read=outcome.rows_read,
                rows_rejected=outcome.rows_rejected,
                rows_inserted=counts.get("inserted", 0),
                rows_updated=counts.get("updated", 0),
                rows_unchanged=counts.get("unchanged", 0),
                rows_missing=counts.get("missing", 0),
                bytes_read=meter.bytes,
                finished_at=dt.datetime.now(dt.UTC),
            )
        )
        _emit_finished(session, batch, outcome)
        session.commit()
    finally:
        session.close()


def _reject(
    session: Session, batch: ImportBatch, outcome: ImportOutcome, reporter: _Reporter, message: str
) -> None:
    outcome.rows_rejected = max(outcome.rows_rejected, len(reporter.rejected_records))
    outcome.rejections = reporter.entries
    _save_rejections(session, batch.id, reporter.entries)
    _finish(session, batch, outcome, "rejected", message)


# Part of every source hash's key: bump it when the import stores other values from the same bytes
# (a normalisation or validation change), so that the next full extract reads every record again.
SOURCE_HASH_VERSION = 1


def source_hash_key(config: TenantConfig, layout: Layout) -> bytes:
    """The key of a full residents extract's source hashes: what, besides a record's bytes (and the
    file's header, which the reader adds), decides what is stored from it."""
    material = json.dumps(
        {
            "version": SOURCE_HASH_VERSION,
            "layout": layout.model_dump(mode="json"),
            "name_variants": sorted(config.residents.name_variants.items()),
            "tenant": [config.tenant.prefecture, config.tenant.name],
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()
    return hashlib.blake2b(material + ERAS_FILE.read_bytes(), digest_size=16).digest()


def _stage(
    session: Session,
    config: TenantConfig,
    layout: Layout,
    kind: FileKind,
    mode: Literal["full", "changes"] | str,
    batch_id: int,
    path: Path,
    reporter: _Reporter,
    meter: _ProgressWriter,
    allow_direct: bool = True,
) -> tuple[int, Fingerprints | None, bool]:
    """Read, validate and COPY every new or changed valid record into staging.

    Returns how many records were staged, for a full residents extract the fingerprints that let
    the reader skip unchanged records unread (see app.linkage.fingerprints), and whether the
    rows went straight into the empty residents table (a first load: PostgreSQL then maintains the
    indexes on its own core while Python parses, instead of after it).
    """
    staged = 0
    fingerprints: Fingerprints | None = None
    direct = False
    hashing: SourceHashing | None = None
    with path.open("rb") as stream:
        if kind == "residents":
            if mode == "full":
                hashing = SourceHashing(source_hash_key(config, layout))
            columns, records = read_records(
                stream, layout, RESIDENT_COLUMNS, OPTIONAL_RESIDENT_COLUMNS, meter.on_bytes, hashing
            )
            ident = config.tenant
            validator: ResidentValidator | AttributeValidator = ResidentValidator(
                columns,
                layout,
                "changes" if mode == "changes" else "full",
                variant_key(config.residents.name_variants),
                (ident.prefecture, ident.name),
            )
            table, names = "import_staging_residents", tuple(RESIDENT_STAGING_COLUMNS)
            atena_column = columns.index["宛名番号"]
            if hashing is not None and atena_column is not None:
                sources, departed, residents = sql.load_resident_sources(session)
                fingerprints = Fingerprints(sources, departed, residents, atena_column)
                if np.any(sources):
                    hashing.index = fingerprints  # the reader skips records it finds there
                if allow_direct and len(sources) == 0 and sql.residents_empty(session):
                    direct = True
                    table, names = "residents", (*RESIDENT_STAGING_COLUMNS[3:], "last_batch_id")
                    sql.begin_direct_load(session)
        else:
            columns, records = read_records(
                stream, layout, ATTRIBUTE_COLUMNS, OPTIONAL_ATTRIBUTE_COLUMNS, meter.on_bytes
            )
            validator = AttributeValidator(columns, layout)
            table, names = "import_staging_attributes", tuple(ATTRIBUTE_STAGING_COLUMNS)

        def candidates() -> Iterator[Record]:
            for record in records:
                meter.rows = record.number
                yield record
            if hashing is not None and hashing.index is not None:
                meter.rows = hashing.records  # the skipped records after the last one read

        def valid_lines() -> Iterator[str]:
            nonlocal staged
            prefix = f"{batch_id}\t"
            suffix = f"\t{batch_id}\n"
            for record in candidates():
                fields = validator.validate(record)
                if fields is None:
                    reporter.add_record(record)
                    if fingerprints is not None and not direct:
                        fingerprints.note_rejected(record)
                    continue
                staged += 1
                if direct:
                    yield "\t".join(fields) + suffix
                else:
                    yield f"{prefix}{record.number}\t{record.line}\t" + "\t".join(fields) + "\n"

        # Millions of short-lived records, none in a reference cycle: the cyclic collector would
        # only rescan them (about a quarter of the Python time at 300,000 rows). Reference
        # counting still frees each record as soon as it is staged.
        collecting = gc.isenabled()
        gc.disable()
        try:
            sql.copy_lines(session, table, names, valid_lines())
        finally:
            if collecting:
                gc.enable()
    meter.flush()
    return staged, fingerprints, direct


def _reject_fingerprint_duplicates(
    session: Session,
    layout: Layout,
    batch_id: int,
    path: Path,
    fingerprints: Fingerprints,
    reporter: _Reporter,
) -> None:
    """Duplicates may hide among skipped (unchanged) rows: find their lines with a second read."""
    duplicate = fingerprints.duplicates
    if not duplicate:
        return
    with path.open("rb") as stream:
        _, records = read_records(stream, layout, RESIDENT_COLUMNS, OPTIONAL_RESIDENT_COLUMNS)
        column = fingerprints.atena_column
        for record in records:
            atena = record.values[column].strip() if column < len(record.values) else ""
            if atena in duplicate:
                reporter.add(
                    record.line,
                    record.number,
                    Problem("duplicate", "同じ宛名番号がファイル内に2回以上あります", "宛名番号", atena),
                )
    sql.drop_staged_atena(session, batch_id, sorted(duplicate))


def _reject_duplicates(session: Session, batch_id: int, reporter: _Reporter) -> None:
    """A full extract holds each person once: every row of a repeated 宛名番号 is held back."""
    rows = sql.duplicate_records(session, batch_id)
    if not rows:
        return
    for atena, record, line in rows:
        reporter.add(
            line, record, Problem("duplicate", "同じ宛名番号がファイル内に2回以上あります", "宛名番号", atena)
        )
    sql.drop_staged_records(session, "import_staging_residents", batch_id, [r[1] for r in rows])
