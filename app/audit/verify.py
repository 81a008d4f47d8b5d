"""Verification of a tenant's operation log: recompute the chain, compare it with the seals.

``verify(record)`` reads, in one REPEATABLE READ snapshot, the archival cuts and then every entry
in ``seq`` order through a server-side cursor, recomputes each hash (``app.audit.canonical``) and
checks the links. The seals are listed from object storage *before* the snapshot is taken, so
every seal refers to entries the snapshot can see. What it finds, by kind:

- ``edited``: an entry no longer matches its own hash;
- ``missing``: seq numbers are absent (entries deleted);
- ``inserted``: two entries chain onto the same predecessor (one was slipped in, or the chain
  forked);
- ``reordered``: an entry matches its hash only under another seq number (moved or renumbered);
- ``foreign``: an entry matches its hash only as another tenant's entry (moved between tenants);
- ``chain``: an entry does not chain onto the one before it (that one was replaced);
- ``seal_mismatch``: a seal records another hash at its seq (history rewritten and rehashed);
- ``cut_tail``: the seals show more entries than the table holds (the newest entries deleted);
- ``seal_invalid``: a seal or manifest whose signature does not verify, or a stray object;
- ``archive``: an archival cut without a valid manifest, or archived data that does not verify.

Across the archive boundary the first remaining entry must chain onto the head recorded in the
last cut and its signed manifest; ``deep=True`` also downloads every archive and recomputes it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import multiprocessing as mp
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.audit.canonical import GENESIS, canonical_text, digest, entry_object
from app.audit.models import AuditArchive
from app.audit.signing import public_keys, verify_document
from app.audit.storage import AuditStore, SealRef, StorageError
from app.db.audit import export_snapshot, seq_range, stream_entries, stream_in_snapshot
from app.db.names import DbBinding, code_for_schema
from app.db.session import new_session
from app.tenancy.service import TenantRecord, registry

log = logging.getLogger(__name__)

MAX_PROBLEMS = 200
_NEAR = (-1, 1, -2, 2, -3, 3)  # seq offsets tried when an entry matches only under another seq
_RECENT = 64  # predecessors remembered for telling inserted entries from replaced ones

KIND_JA = {
    "edited": "内容の改ざん",
    "missing": "記録の欠落（削除）",
    "inserted": "記録の挿入・分岐",
    "reordered": "順序の入れ替え・連番の付け替え",
    "foreign": "他の自治体からの移動",
    "chain": "連結の不整合",
    "seal_mismatch": "封印との不一致",
    "cut_tail": "末尾の切り取り",
    "seal_invalid": "封印・目録の署名不正",
    "archive": "退避データの不整合",
}


@dataclass
class Problem:
    kind: str
    first_seq: int | None
    last_seq: int | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        if self.first_seq is None:
            return ""
        if self.last_seq is None or self.last_seq == self.first_seq:
            return f"連番{self.first_seq}"
        return f"連番{self.first_seq}〜{self.last_seq}"

    @property
    def message(self) -> str:
        i = self.info
        text = {
            "edited": "記録の内容がハッシュと一致しません（記録が書き換えられています）",
            "missing": "この範囲の記録がありません（削除されています）",
            "inserted": "同じ直前記録に連結する記録が複数あります（後から挿入されたか、連鎖が分岐しています）",
            "reordered": f"記録は本来 {self._written_as()} の位置のものです（並べ替えまたは連番の付け替え）",
            "foreign": f"記録は本来 {i.get('tenant')} の 連番{i.get('written_as')} です（他の自治体から移されています）",
            "chain": "直前の記録に連結していません（直前の記録が差し替えられています）",
            "seal_mismatch": f"封印（{i.get('sealed_at', '日時不明')}）のハッシュと一致しません（履歴が再計算されています）",
            "cut_tail": f"封印は 連番{i.get('sealed_seq')} までの記録を示していますが、記録は 連番{i.get('table_seq')} までしかありません（末尾が削除されています）",
            "seal_invalid": f"{i.get('key', '')}: {i.get('reason', '')}",
            "archive": f"{i.get('key', '')}: {i.get('reason', '')}",
        }[self.kind]
        return f"{self.where}: {text}" if self.where else text

    def _written_as(self) -> str:
        shift = int(self.info.get("written_as", 0)) - (self.first_seq or 0)
        if self.last_seq is None or self.last_seq == self.first_seq:
            return f"連番{self.info.get('written_as')}"
        return f"連番{(self.first_seq or 0) + shift}〜{self.last_seq + shift}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "kind_ja": KIND_JA[self.kind],
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "message": self.message,
            **({"info": self.info} if self.info else {}),
        }


@dataclass
class Report:
    tenant: str
    code: str
    entries: int = 0  # checked in the table (and in archives with deep)
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str | None = None
    seals: int = 0
    latest_seal: dict[str, Any] | None = None
    unsealed: int = 0  # entries newer than the latest seal
    archives: int = 0
    archived_entries: int = 0
    deep: bool = False
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    seconds: float = 0.0
    ranges: int = 1  # the table's entries were checked in this many ranges at once (one snapshot)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [p.as_dict() for p in self.problems]
        return {"ok": self.ok, **data}


class ChainChecker:
    """Feeds on entries in seq order (``app.db.audit.STREAM_COLUMNS`` tuples) and records problems."""

    def __init__(
        self,
        tenant: str,
        start_seq: int = 1,
        start_prev: str = GENESIS,
        seals: Mapping[int, str] | None = None,
        others: Mapping[str, str] | None = None,  # code -> tenant id, for "foreign"
    ) -> None:
        self.tenant = tenant
        self.expected = start_seq
        self.prev = start_prev  # stored hash of the previous entry
        self.prev_link: str | None = None  # prev_hash of the previous entry
        self.seals = dict(seals or {})
        self.others = dict(others or {})
        self.count = 0
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.mismatched_seals: list[tuple[int, str]] = []  # (seq, stored hash)
        self._recent: deque[tuple[str, int]] = deque(maxlen=_RECENT)  # (stored hash, seq)

    def feed(self, rows: Iterable[Sequence[Any]]) -> None:
        tenant, seals, sha256 = self.tenant, self.seals, hashlib.sha256
        expected, prev, prev_link, count = self.expected, self.prev, self.prev_link, self.count
        recent = self._recent
        for row in rows:
            seq, link, stored = row[0], row[1], row[2]
            computed = sha256(canonical_text(tenant, seq, link, *row[3:14]).encode("utf-8")).hexdigest()
            if computed != stored or link != prev or seq != expected:
                self.expected, self.prev, self.prev_link = expected, prev, prev_link
                self._anomaly(row, entry_object(tenant, seq, link, *row[3:14]), computed == stored)
            if seals and seq in seals and seals[seq] != stored:
                self.mismatched_seals.append((seq, stored))
            recent.append((stored, seq))
            expected, prev, prev_link = seq + 1, stored, link
            count += 1
        self.expected, self.prev, self.prev_link, self.count = expected, prev, prev_link, count

    def _anomaly(self, row: Sequence[Any], obj: dict[str, Any], content_ok: bool) -> None:
        seq, link = row[0], row[1]
        gap = seq != self.expected
        if seq > self.expected:
            self._add(Problem("missing", self.expected, seq - 1))
        elif seq < self.expected:  # the same seq twice: only without the unique constraint
            self._add(Problem("inserted", seq, seq))
        if not content_ok:
            kind, info = self._explain(obj, row[2])
            if kind == "reordered" and info["written_as"] == seq - 1 and link == self.prev_link:
                self._add(Problem("inserted", seq - 1, seq - 1))  # an entry slipped in before this one
            self._add(Problem(kind, seq, seq, info))
        elif not gap and link != self.prev:
            if link == self.prev_link:
                self._add(Problem("inserted", seq - 1, seq - 1))
            elif not (any(h == link for h, _ in self._recent) and self._reported_near(seq)):
                # (a link to an earlier entry right after entries reported as moved is their echo)
                self._add(Problem("chain", seq, seq))

    def _reported_near(self, seq: int) -> bool:
        last = self.problems[-1] if self.problems else None
        return last is not None and last.last_seq is not None and last.last_seq >= seq - _RECENT

    def _explain(self, obj: dict[str, Any], stored: str) -> tuple[str, dict[str, Any]]:
        """Why an entry does not match its hash: moved from another tenant, renumbered, or edited."""
        seq = obj["seq"]
        for code, tenant_id in self.others.items():
            for offset in (0, *_NEAR):
                if digest({**obj, "tenant": code, "seq": seq + offset}) == stored:
                    return "foreign", {"tenant": tenant_id, "code": code, "written_as": seq + offset}
        for offset in _NEAR:
            if seq + offset > 0 and digest({**obj, "seq": seq + offset}) == stored:
                return "reordered", {"written_as": seq + offset}
        return "edited", {}

    def _add(self, problem: Problem) -> None:
        last = self.problems[-1] if self.problems else None
        if (
            last is not None
            and last.kind == problem.kind
            and last.kind in ("edited", "missing", "reordered", "chain")
            and last.last_seq is not None
            and problem.first_seq == last.last_seq + 1
            and (last.kind != "reordered" or self._same_shift(last, problem))
        ):
            last.last_seq = problem.last_seq
            return
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @staticmethod
    def _same_shift(a: Problem, b: Problem) -> bool:
        return bool(
            a.first_seq is not None
            and b.first_seq is not None
            and a.info.get("written_as", 0) - a.first_seq == b.info.get("written_as", 0) - b.first_seq
        )


# --- parallel range verification ----------------------------------------------------------------
# Below this many entries one stream is quicker than starting worker processes.
PARALLEL_MIN_ENTRIES = 200_000


def parallel_workers() -> int:
    """Worker processes for range verification: one per CPU this process may run on (at most 8)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return min(cpus, 8)


@dataclass
class _Range:
    """What one worker found in its range: its ends, and whether every entry in it checked out."""

    first_seq: int | None = None
    first_link: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    last_link: str | None = None
    count: int = 0
    clean: bool = True
    mismatched_seals: list[tuple[int, str]] = field(default_factory=list)


def _check_range(task: tuple[DbBinding, str, str, int, int, dict[int, str]]) -> _Range:
    """In a worker process: recompute every hash of entries ``lo..hi`` in the exported snapshot
    and check the links inside the range; stop at the first anomaly (the caller then re-reads
    everything with ``ChainChecker``, which names it)."""
    binding, snapshot, tenant, lo, hi, seals = task
    sha256 = hashlib.sha256
    out = _Range()
    expected, prev, link = lo, None, None
    with stream_in_snapshot(binding, snapshot, lo, hi) as rows:
        for row in rows:
            seq, link, stored = row[0], row[1], row[2]
            if prev is None:
                out.first_seq, out.first_link, prev = seq, link, link
            computed = sha256(canonical_text(tenant, seq, link, *row[3:14]).encode("utf-8")).hexdigest()
            if computed != stored or link != prev or seq != expected:
                out.clean = False
                return out
            if seals and seq in seals and seals[seq] != stored:
                out.mismatched_seals.append((seq, stored))
            expected, prev = seq + 1, stored
            out.count += 1
    out.last_seq, out.last_hash, out.last_link = expected - 1, prev, link
    return out


def _split(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    size = -(-(hi - lo + 1) // parts)
    return [(a, min(a + size - 1, hi)) for a in range(lo, hi + 1, size)]


def _check_in_parallel(
    session: Session, checker: ChainChecker, first_seq: int, last_seq: int | None, workers: int
) -> int:
    """Check entries ``first_seq..last_seq`` in ranges, one worker process per range, all reading
    the snapshot of ``session``'s transaction; then check the links where the ranges meet.

    Returns the number of ranges when the whole span checked out (``checker`` then stands after the
    last entry, as if it had been fed them: count, head, seal mismatches), 0 when anything looked
    wrong or a worker failed: then nothing was changed and the caller feeds ``checker`` sequentially, so
    problems are named exactly as before.
    """
    bounds = seq_range(session, first_seq, last_seq)
    if bounds is None or bounds[0] != first_seq or bounds[1] - bounds[0] + 1 < PARALLEL_MIN_ENTRIES:
        return 0
    snapshot = export_snapshot(session)
    binding: DbBinding = session.info["binding"]
    tasks = [
        (binding, snapshot, checker.tenant, a, b, {q: h for q, h in checker.seals.items() if a <= q <= b})
        for a, b in _split(bounds[0], bounds[1], workers)
    ]
    try:
        with mp.get_context("fork").Pool(len(tasks)) as pool:
            ranges = pool.map(_check_range, tasks, chunksize=1)
    except Exception:  # a worker could not connect or died: the sequential path still decides
        log.warning("parallel audit verification failed; verifying in one stream", exc_info=True)
        return 0
    prev_hash: str | None = checker.prev
    for (a, b), r in zip(((t[3], t[4]) for t in tasks), ranges, strict=True):
        if not (r.clean and r.first_seq == a and r.first_link == prev_hash and r.last_seq == b):
            return 0
        prev_hash = r.last_hash
    last = ranges[-1]
    assert last.last_seq is not None
    assert last.last_hash is not None
    checker.count += sum(r.count for r in ranges)
    checker.expected, checker.prev, checker.prev_link = last.last_seq + 1, last.last_hash, last.last_link
    for r in ranges:
        checker.mismatched_seals.extend(r.mismatched_seals)
    return len(ranges)


def check_table(session: Session, checker: ChainChecker, first_seq: int, last_seq: int | None = None) -> int:
    """Feed ``checker`` the table's entries ``first_seq..last_seq`` (``checker.expected`` must be
    ``first_seq``): in parallel ranges when the span is large and ``session`` really is a
    transaction of its own (not joined to a test's outer transaction, which other connections
    cannot see), otherwise, or when anything looks wrong, in one stream. Returns the number of
    ranges that decided (1: one stream)."""
    workers = parallel_workers()
    if workers > 1 and isinstance(session.bind, Engine) and not mp.current_process().daemon:
        ranges = _check_in_parallel(session, checker, first_seq, last_seq, workers)
        if ranges:
            return ranges
    checker.feed(stream_entries(session, first_seq, last_seq))
    return 1


def _archive_rows(lines: Iterable[bytes]) -> Iterator[Sequence[Any]]:
    """Archive lines (canonical entry + ``hash``) as ``STREAM_COLUMNS`` tuples."""
    for line in lines:
        e = json.loads(line)
        actor, subject = e.get("actor") or {}, e.get("subject") or {}
        yield (
            e.get("seq"), e.get("prev"), e.get("hash"), e.get("at"), actor.get("type"), actor.get("id"),
            actor.get("name"), e.get("terminal"), e.get("action"), subject.get("type"), subject.get("id"),
            e.get("purpose"), e.get("request_id"), e.get("details"), None,
        )  # fmt: skip


class _Verification:
    def __init__(self, record: TenantRecord, store: AuditStore, deep: bool) -> None:
        self.record = record
        self.store = store
        self.deep = deep
        self.code = code_for_schema(record.schema_name)
        self.report = Report(record.id, self.code, deep=deep)
        self.keys = public_keys()
        self.extra: list[Problem] = []

    def problem(self, kind: str, first: int | None, last: int | None = None, **info: Any) -> None:
        self.extra.append(Problem(kind, first, first if last is None else last, info))

    def run(self) -> Report:
        started = time.perf_counter()
        # Seals first: each refers to entries committed before it was written, so all of them are
        # visible to the snapshot taken next.
        seals, strays = self.store.seals(self.record.schema_name)
        for key in strays:
            self.problem("seal_invalid", None, key=key, reason="封印ではないオブジェクトがあります")
        self.report.seals = len(seals)
        session = new_session(self.record.binding, isolation_level="REPEATABLE READ")
        try:
            cuts = list(session.scalars(select(AuditArchive).order_by(AuditArchive.last_seq)))
            start_seq, start_prev = self._check_cuts(cuts)
            others = {code_for_schema(r.schema_name): r.id for r in registry.all() if r.id != self.record.id}
            first_checked = 1 if self.deep else start_seq
            checker = ChainChecker(
                self.code,
                first_checked,
                GENESIS if self.deep else start_prev,
                _seal_map([s for s in seals if s.seq >= first_checked]),
                others,
            )
            if self.deep:
                self._feed_archives(cuts, checker)
            archived_count = checker.count
            self.report.ranges = check_table(session, checker, start_seq)
        finally:
            session.close()
        report = self.report
        report.entries = checker.count
        table_entries = checker.count - archived_count
        report.last_seq = checker.expected - 1 if checker.count or cuts else None
        report.first_seq = start_seq if table_entries else None
        report.head_hash = checker.prev if report.last_seq else None
        self._check_seals(seals, checker, report.last_seq or 0)
        problems = [*checker.problems, *self.extra]
        problems.sort(key=lambda p: (p.first_seq is None, p.first_seq or 0))
        report.problems = problems[:MAX_PROBLEMS]
        report.problem_count = checker.problem_count + len(self.extra)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _check_cuts(self, cuts: list[AuditArchive]) -> tuple[int, str]:
        """Archival cuts against their signed manifests; returns where the table must start."""
        last, head = 0, GENESIS
        for cut in cuts:
            key = AuditStore.manifest_key(cut.object_key)
            if cut.first_seq != last + 1:
                self.problem("missing", last + 1, cut.first_seq - 1)
            try:
                body = self.store.get(key)
            except StorageError as exc:
                self.problem(
                    "archive", cut.first_seq, cut.last_seq, key=key, reason=f"目録を読めません（{exc}）"
                )
            else:
                self._check_manifest(cut, key, body, head)
            self.report.archives += 1
            self.report.archived_entries += cut.entries
            last, head = cut.last_seq, cut.last_hash
        return last + 1, head

    def _check_manifest(self, cut: AuditArchive, key: str, body: bytes, prev: str) -> None:
        if hashlib.sha256(body).hexdigest() != cut.manifest_sha256:
            self.problem(
                "archive", cut.first_seq, cut.last_seq, key=key, reason="目録が退避記録と一致しません"
            )
            return
        doc = json.loads(body)
        reason = verify_document(doc, self.keys)
        if reason:
            self.problem("seal_invalid", cut.first_seq, cut.last_seq, key=key, reason=reason)
            return
        expected = {
            "tenant": self.code,
            "first_seq": cut.first_seq,
            "last_seq": cut.last_seq,
            "prev_hash": prev,
            "head": cut.last_hash,
            "object": cut.object_key,
        }
        actual = {**{k: doc.get(k) for k in expected}, "head": (doc.get("head") or {}).get("hash")}
        wrong = sorted(k for k in expected if actual[k] != expected[k])
        if wrong:
            self.problem(
                "archive",
                cut.first_seq,
                cut.last_seq,
                key=key,
                reason=f"目録の {', '.join(wrong)} が一致しません",
            )

    def _feed_archives(self, cuts: list[AuditArchive], checker: ChainChecker) -> None:
        for cut in cuts:
            expected_sha = ""
            try:
                manifest = json.loads(self.store.get(AuditStore.manifest_key(cut.object_key)))
                expected_sha = str(manifest.get("sha256"))
                with tempfile.TemporaryFile() as tmp:
                    self.store.download(cut.object_key, tmp)
                    tmp.seek(0)
                    sha = hashlib.sha256()
                    for block in iter(lambda: tmp.read(1 << 20), b""):
                        sha.update(block)
                    if sha.hexdigest() != expected_sha:
                        self.problem(
                            "archive", cut.first_seq, cut.last_seq, key=cut.object_key,
                            reason="退避ファイルが目録のハッシュと一致しません",
                        )  # fmt: skip
                    tmp.seek(0)
                    with gzip.open(tmp, "rb") as lines:
                        checker.feed(_archive_rows(lines))
            except (StorageError, OSError, ValueError) as exc:
                self.problem("archive", cut.first_seq, cut.last_seq, key=cut.object_key, reason=str(exc))
                checker.expected, checker.prev = cut.last_seq + 1, cut.last_hash
            if checker.expected != cut.last_seq + 1 or checker.prev != cut.last_hash:
                self.problem(
                    "archive",
                    cut.first_seq,
                    cut.last_seq,
                    key=cut.object_key,
                    reason="退避ファイルの末尾が目録と一致しません",
                )
                checker.expected, checker.prev = cut.last_seq + 1, cut.last_hash

    def _check_seals(self, seals: list[SealRef], checker: ChainChecker, table_last: int) -> None:
        """The newest authentic seal (cut tail?) and every seal the chain disagrees with."""
        by_seq: dict[int, list[SealRef]] = {}
        for ref in seals:
            by_seq.setdefault(ref.seq, []).append(ref)
        for seq, stored in checker.mismatched_seals[:MAX_PROBLEMS]:
            for ref in by_seq.get(seq, []):
                if ref.hash == stored:
                    continue
                doc, reason = self._seal_document(ref)
                if reason:
                    self.problem("seal_invalid", seq, key=ref.key, reason=reason)
                else:
                    assert doc is not None
                    self.problem("seal_mismatch", seq, sealed_at=doc.get("sealed_at"), key=ref.key)
        for ref in reversed(seals):
            doc, reason = self._seal_document(ref)
            if reason:
                self.problem("seal_invalid", ref.seq, key=ref.key, reason=reason)
                continue
            assert doc is not None
            self.report.latest_seal = {"seq": ref.seq, "hash": ref.hash, "sealed_at": doc.get("sealed_at")}
            if ref.seq > table_last:
                self.problem("cut_tail", table_last + 1, ref.seq, sealed_seq=ref.seq, table_seq=table_last)
            else:
                self.report.unsealed = table_last - ref.seq
            break

    def _seal_document(self, ref: SealRef) -> tuple[dict[str, Any] | None, str | None]:
        try:
            doc = json.loads(self.store.get(ref.key))
        except (StorageError, ValueError) as exc:
            return None, f"封印を読めません（{exc}）"
        reason = verify_document(doc, self.keys)
        if reason:
            return doc, reason
        if (doc.get("tenant"), doc.get("seq"), doc.get("hash")) != (self.code, ref.seq, ref.hash):
            return doc, "封印の内容がオブジェクト名と一致しません"
        return doc, None


def _seal_map(seals: list[SealRef]) -> dict[int, str]:
    """seq -> sealed hash; two seals that disagree on one seq cannot both match (marked '?')."""
    out: dict[int, str] = {}
    for ref in seals:
        out[ref.seq] = ref.hash if out.get(ref.seq, ref.hash) == ref.hash else "?"
    return out


def verify(record: TenantRecord, store: AuditStore | None = None, *, deep: bool = False) -> Report:
    """Verify one tenant's chain, archives and seals (read-only; the caller audit-logs the read)."""
    return _Verification(record, store or AuditStore.from_settings(), deep).run()
