"""Streaming reader for linkage files: bytes → physical lines → decoded text → CSV records.

Lines are split on the raw bytes (``\\n`` never occurs inside a cp932 or UTF-8 multibyte character),
then decoded one by one, so a decoding error or a NUL byte is reported with its exact line and the
rest of the file is still read. The csv module then joins quoted fields that span lines (方書 with a
line break), and every record knows the physical line it starts on. Nothing holds more than one
record in memory.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

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

    __slots__ = ("has_private_use", "line", "number", "problems", "row_hash", "values")

    def __init__(self, number: int, line: int, values: list[str]):
        self.number = number  # data record number (1 = first record after the header)
        self.line = line  # physical line the record starts on
        self.values = values
        self.problems: list[Problem] = []
        self.has_private_use = False  # 外字 left after the tenant's map: the validator names the column
        self.row_hash: int | None = None  # set once by whoever computes it first (fingerprints)


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


def read_records(
    stream: BinaryIO,
    layout: Layout,
    standard: tuple[str, ...],
    optional: frozenset[str],
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[ColumnMap, Iterator[Record]]:
    """Open a file: returns its column map (from the header) and an iterator over its records.

    Raises ``FileRejected`` for problems that make the whole file unreadable (empty file, header,
    broken quoting); problems confined to a record are attached to that record.
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

    def lines() -> Iterator[str]:
        """Physical lines. Blocks of whole lines are decoded at once; a block with a problem
        (undecodable bytes, NUL, 外字) is redone line by line so each problem gets its line."""
        number = 0
        pending = b""
        first = True
        while True:
            block = stream.read(1 << 16)
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
            if first:
                first = False
                if codec == "utf-8" and data.startswith(BOM):
                    data = data[len(BOM) :]  # UTF-8 with or without BOM both read
            try:
                text = data.decode(codec)
                clean = "\x00" not in text and not private_use(text)
            except UnicodeDecodeError:
                clean = False
            if clean:
                parts = text.split("\n")
                if parts[-1] == "":
                    parts.pop()
                    number += len(parts)
                    yield from [p + "\n" for p in parts]
                else:  # the last line of the file, without a line break
                    number += len(parts)
                    yield from [p + "\n" for p in parts[:-1]]
                    yield parts[-1]
                continue
            for raw in _split_lf(data):
                number += 1
                yield careful_line(number, raw)

    reader = csv.reader(lines(), delimiter=layout.delimiter, strict=True)
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
        number = 0
        width = columns.width
        if pending is not None:
            rows: Iterator[list[str]] = itertools.chain((pending,), reader)
            start = 1
        else:
            rows = reader
            start = reader.line_num + 1
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRejected(
                    "csv", f'CSVとして読めません: 引用符（"）の対応を確認してください（{exc}）', start
                ) from exc
            end = reader.line_num
            if not values or values == [""]:
                line_problems.pop(start, None)
                start = end + 1
                continue  # a blank line
            number += 1
            record = Record(number, start, values)
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
            start = end + 1
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
