"""Streaming reader for linkage files: bytes → physical lines → decoded text → CSV records.

Lines are split on the raw bytes (``\\n`` never occurs inside a cp932 or UTF-8 multibyte character),
then decoded one by one, so a decoding error or a NUL byte is reported with its exact line and the
rest of the file is still read. The csv module then joins quoted fields that span lines (方書 with a
line break), and every record knows the physical line it starts on. Nothing holds more than one
record in memory.

Source hashes (``SourceHashing``): for a full residents extract every record also gets a 64-bit
salted hash of its bytes as delivered. A record whose hash is that of a resident's current row (the
row was made from exactly these bytes, under the same layout and rules) is skipped before it is
decoded or parsed: a nightly full extract is ~99 % such records. A line is only ever skipped where
a record starts, so a quoted line break (方書) never desynchronises the CSV parser.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import blake2b
from typing import BinaryIO, Protocol

import numpy as np

from app.linkage.config import Layout

BOM = b"\xef\xbb\xbf"
CODECS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp932": "cp932"}
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM付き)", "cp932": "Shift_JIS (cp932)"}
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


class FileRejected(Exception):
    """The file as a whole cannot be read: nothing from it is applied, whatever the policy."""

    def __init__(self, code: str, reason: str, line: int | None = None, column: str | None = None):
        self.code = code
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(f"{code} (line {line}): {reason}")


@dataclass
class Problem:
    code: str
    reason: str
    column: str | None = None
    value: str | None = None


class Record:
    """One CSV record. A plain slotted class: millions are made per import."""

    __slots__ = ("has_private_use", "line", "number", "problems", "row_hash", "source_hash", "values")

    def __init__(self, number: int, line: int, values: list[str]):
        self.number = number  # data record number (1 = first record after the header)
        self.line = line  # physical line the record starts on
        self.values = values
        self.problems: list[Problem] = []
        self.has_private_use = False  # 外字 left after the tenant's map: the validator names the column
        self.row_hash: int | None = None  # set once by whoever computes it first
        self.source_hash: int | None = None  # of the record's bytes as delivered (SourceHashing)


class SourceIndex(Protocol):
    """Which source hashes are those of current rows (``app.linkage.fingerprints.Fingerprints``)."""

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """For each hash, a position >= 0 if a current row was made from such a record, else -1."""

    def skip(self, positions: np.ndarray) -> None:
        """These records were skipped (unchanged): count them and note whose they were."""


class SourceHashing:
    """Salted 64-bit hashes of records as delivered, and skipping the records already applied.

    ``key`` must cover everything besides the bytes that decides what is stored from a record (the
    layout, the tenant's rules, the era table, the import code's version); the header line is mixed
    in by the reader. ``index`` may be set after the header has been read (the importer loads the
    fingerprints once it knows the file's columns). 0 is never a hash: it stands for "none".
    """

    def __init__(self, key: bytes):
        self.key = key
        self.index: SourceIndex | None = None
        self.records = 0  # records read, the skipped included (the reader keeps it current)


def _source_hashes(lines: list[bytes], key: bytes) -> np.ndarray:
    digests = b"".join([blake2b(line, digest_size=8, salt=key).digest() for line in lines])
    hashes = np.frombuffer(digests, dtype=">i8").astype(np.int64)
    hashes[hashes == 0] = 1
    return hashes


def source_hash(lines: list[bytes], key: bytes) -> int:
    """The source hash of a record spanning ``lines`` (physical lines without their ``\\n``)."""
    return int(_source_hashes([b"\n".join(lines)], key)[0])


@dataclass
class ColumnMap:
    """Where each standard column sits in this file (None: the file has no such column)."""

    index: dict[str, int | None]
    names: dict[str, str]  # standard name -> the name in the file
    width: int


def map_header(
    header: list[str], layout: Layout, standard: tuple[str, ...], optional: frozenset[str], line: int
) -> ColumnMap:
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileRejected("header_duplicate", f"見出しに同じ列名が2回あります: {'、'.join(dupes)}", line)
    position = {name: i for i, name in enumerate(header)}
    names = {std: layout.header_for(std) for std in standard}
    missing = [std for std in standard if names[std] not in position and std not in optional]
    if missing:
        shown = "、".join(
            f"「{names[s]}」" + (f"（標準の「{s}」）" if names[s] != s else "") for s in missing
        )
        raise FileRejected("header_missing", f"必須の列がありません: {shown}", line)
    known = set(names.values())
    unknown = [h for h in header if h not in known]
    if unknown:
        raise FileRejected(
            "header_unknown",
            f"様式「{layout.variant}」にない列があります: {'、'.join(unknown)}（様式の設定を確認してください）",
            line,
        )
    return ColumnMap({std: position.get(names[std]) for std in standard}, names, len(header))


# Bytes read at a time: whole lines of it are decoded, hashed and looked up together. Large, because
# a lookup's cost per line falls with the number of lines looked up at once (sorted needles: 0.74
# µs a line at 1,000 lines, 0.23 at 17,000, against Osaka's 2.9 million fingerprints).
BLOCK = 1 << 22


def read_records(
    stream: BinaryIO,
    layout: Layout,
    standard: tuple[str, ...],
    optional: frozenset[str],
    on_bytes: Callable[[int], None] | None = None,
    hashing: SourceHashing | None = None,
) -> tuple[ColumnMap, Iterator[Record]]:
    """Open a file: returns its column map (from the header) and an iterator over its records.

    Raises ``FileRejected`` for problems that make the whole file unreadable (empty file, header,
    broken quoting); problems confined to a record are attached to that record. With ``hashing``
    every record gets its ``source_hash``, and records its index knows are skipped (not yielded).
    """
    codec = CODECS[layout.encoding]
    line_problems: dict[int, Problem] = {}
    private_use_lines: set[int] = set()
    gaiji = str.maketrans(layout.gaiji) if layout.gaiji else None

    private_use = _PRIVATE_USE.search

    def careful_line(number: int, raw: bytes) -> str:
        """One physical line, with its decoding/NUL/外字 problems recorded against its number."""
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            line_problems[number] = Problem(
                "encoding",
                f"{ENCODING_NAMES[layout.encoding]} として読めないバイト列があります"
                f"（{exc.start + 1}バイト目: 0x{raw[exc.start : exc.start + 2].hex()}）",
            )
            text = raw.decode(codec, errors="replace")
        if "\x00" in text:
            line_problems[number] = Problem("nul", "NUL文字（0x00）が含まれています")
            text = text.replace("\x00", "")
        if private_use(text):
            if gaiji is not None:
                text = text.translate(gaiji)
            if private_use(text):
                private_use_lines.add(number)
        return text

    # Shared by lines() and records(): where the CSV parser stands. ``at_start``: the next line it
    # asks for begins a record (only such a line may be skipped); the record in progress began on
    # line ``record_line`` and its bytes hash to ``record_hash`` (one line) or are ``record_raw``.
    at_start = False
    record_line = 0
    record_hash = 0
    record_raw: list[bytes] = []
    records_read = 0
    key = hashing.key if hashing is not None else b""

    def decoded(data: bytes, raw_lines: list[bytes], complete: bool, number: int) -> list[str]:
        """The block's lines as text (each with its line break, but a last line without one)."""
        try:
            text = data.decode(codec)
            clean = "\x00" not in text and not private_use(text)
        except UnicodeDecodeError:
            clean = False
        if not clean:
            last = len(raw_lines) - 1
            return [
                careful_line(number + i + 1, raw + b"\n" if i < last or complete else raw)
                for i, raw in enumerate(raw_lines)
            ]
        texts = [p + "\n" for p in text.split("\n")]
        texts.pop()  # what follows the last line break ("" at the end of a block)
        if not complete:  # the last line of the file, without a line break
            texts.append(text[text.rfind("\n") + 1 :])
        return texts

    def lines() -> Iterator[str]:
        """Physical lines. Blocks of whole lines are decoded at once; a block with a problem
        (undecodable bytes, NUL, 外字) is redone line by line so each problem gets its line.
        Once the index is known, runs of known records are skipped without a Python step per
        line, and only the lines the parser gets are decoded, one by one."""
        nonlocal at_start, record_line, record_hash, record_raw, records_read, key
        number = 0
        pending = b""
        first = True
        while True:
            block = stream.read(BLOCK)
            if on_bytes is not None and block:
                on_bytes(len(block))
            data = pending + block
            if block:
                cut = data.rfind(b"\n") + 1
                data, pending = data[:cut], data[cut:]
            if not data:
                if block:
                    continue
                return
            if first and codec == "utf-8" and data.startswith(BOM):
                data = data[len(BOM) :]  # UTF-8 with or without BOM both read
            raw_lines = data.split(b"\n")
            complete = raw_lines[-1] == b""  # the block ends with a line break
            if complete:
                raw_lines.pop()
            count = len(raw_lines)
            found = np.zeros(0, dtype=np.int64)
            if hashing is not None:
                if first and layout.header:
                    # The header (column order) is part of what a record's bytes mean.
                    key = blake2b(raw_lines[0], digest_size=16, key=hashing.key).digest()
                found = _source_hashes(raw_lines, key)
            index = hashing.index if hashing is not None else None
            first = False
            if index is None:
                # A first load, and the header's block (the index is set once the header is read:
                # the rest of this block is looked up then, at once).
                positions: list[int] | None = None
                known: list[int] = []
                for i, line in enumerate(decoded(data, raw_lines, complete, number)):
                    number += 1
                    if at_start:
                        if hashing is not None and hashing.index is not None:
                            if positions is None:
                                positions = hashing.index.lookup(found).tolist()
                            if positions[i] >= 0:
                                known.append(positions[i])
                                records_read += 1
                                continue
                        at_start = False
                        record_line = number
                        if hashing is not None:
                            record_hash = int(found[i])
                            record_raw = [raw_lines[i]]
                    elif hashing is not None:
                        record_raw.append(raw_lines[i])
                    yield line
                if known and hashing is not None and hashing.index is not None:
                    hashing.index.skip(np.array(known, dtype=np.int64))
                    hashing.records = records_read
                continue
            found_at = index.lookup(found)
            unknown = np.flatnonzero(found_at < 0).tolist()
            unknown.append(count)
            skipped: list[np.ndarray] = []
            u = 0
            i = 0
            while i < count:
                if at_start:
                    while unknown[u] < i:
                        u += 1
                    j = unknown[u]
                    if j > i:  # lines i..j-1 are known records: skipped unread
                        skipped.append(found_at[i:j])
                        records_read += j - i
                        number += j - i
                        i = j
                        continue
                    number += 1
                    at_start = False
                    record_line = number
                    record_hash = int(found[i])
                    record_raw = [raw_lines[i]]
                else:
                    number += 1
                    record_raw.append(raw_lines[i])
                raw = raw_lines[i]
                i += 1
                yield careful_line(number, raw + b"\n" if i < count or complete else raw)
            if skipped:
                index.skip(np.concatenate(skipped))
            assert hashing is not None
            hashing.records = records_read

    reader = csv.reader(lines(), delimiter=layout.delimiter, strict=True)
    at_start = not layout.header  # without a header, the first line starts the first record
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise FileRejected("csv", f"見出し行を読めません（{exc}）", 1) from exc
    if first is None:
        raise FileRejected("empty", "ファイルが空です（0バイト、または見出し行もありません）")
    if layout.header:
        if 1 in line_problems:
            problem = line_problems.pop(1)
            raise FileRejected(problem.code, f"見出し行: {problem.reason}", 1)
        columns = map_header(first, layout, standard, optional, 1)
        pending: list[str] | None = None
    else:
        columns = ColumnMap(
            {std: i for i, std in enumerate(standard)}, {s: s for s in standard}, len(standard)
        )
        pending = first

    def records() -> Iterator[Record]:
        nonlocal at_start, records_read
        width = columns.width
        rows: Iterator[list[str]] = reader if pending is None else itertools.chain((pending,), reader)
        at_start = pending is None
        while True:
            try:
                values = next(rows)
            except StopIteration:
                if hashing is not None:
                    hashing.records = records_read
                return
            except csv.Error as exc:
                raise FileRejected(
                    "csv", f'CSVとして読めません: 引用符（"）の対応を確認してください（{exc}）', record_line
                ) from exc
            at_start = True
            start = record_line
            end = start + len(record_raw) - 1 if hashing is not None else reader.line_num
            if not values or values == [""]:
                for ln in range(start, end + 1):
                    line_problems.pop(ln, None)
                continue  # a blank line
            records_read += 1
            record = Record(records_read, start, values)
            if hashing is not None:
                record.source_hash = record_hash if len(record_raw) == 1 else source_hash(record_raw, key)
            if line_problems or private_use_lines:
                for ln in range(start, end + 1):
                    problem = line_problems.pop(ln, None)
                    if problem is not None:
                        record.problems.append(problem)
                    if ln in private_use_lines:
                        private_use_lines.discard(ln)
                        record.has_private_use = True
            if len(values) != width:
                record.problems.append(
                    Problem("column_count", f"列の数が{len(values)}個です（見出しは{width}列）")
                )
            yield record

    return columns, records()


def _split_lf(data: bytes) -> list[bytes]:
    """Split on line feeds only (bytes.splitlines would also split on a lone CR)."""
    parts = data.split(b"\n")
    tail = parts.pop()
    out = [p + b"\n" for p in parts]
    if tail:
        out.append(tail)
    return out


def private_use_characters(value: str) -> list[str]:
    """Private-use (外字) characters left after the tenant's map: each makes the value unusable."""
    return _PRIVATE_USE.findall(value)
