"""Write resident and attribute rows the way a tenant's core system delivers them.

The other side of the front linkage: given rows keyed by the *standard* column names
(shared/domain/residents.md) and a ``Layout`` from ``tenants/<id>/linkage.yaml``, write the file
with the tenant's column names, encoding, delimiter, date style and header. Used by the synthetic
demo extracts (``madoguchi demo seed``) and by tests that need files in a tenant's dialect; it never
reads files.

Why it does what it does:

- RFC 4180 quoting through the ``csv`` module (fields with the delimiter, quotes or line breaks are
  quoted; CRLF between records), also for tab-separated files.
- Values: ``str``/``int`` as they are, ``None`` as empty, ``datetime`` as ISO 8601 with offset
  (更新日時), ``date`` and ``JapaneseDate`` in the layout's date style: ``iso`` (and ``auto``, the
  standard layout) ``2026-05-01``, ``wareki`` ``令和8年5月1日``, ``era_code`` ``R080501``.
- Uncertain dates (不詳日, ``JapaneseDate`` without a single calendar day) are written as they are in
  ``wareki`` (``昭和50年 月日不詳``, ``大正15年頃``) and with ``00`` for the unknown parts in
  ``era_code`` (``S500000``; 頃 cannot be told apart there). An ISO file cannot express them at all,
  so there the writer puts the **first day of the span** the value denotes (``昭和50年 月日不詳`` →
  ``1975-01-01``, ``昭和50年5月 日不詳`` → ``1975-05-01``), as core systems do when they export to
  ISO; ``年月日不詳`` has no such day and is refused (``ValueError``).
- 外字: the layout's ``gaiji`` table says which MJ+ characters the core system holds as
  private-use codes (U+E000–U+F8FF), so the writer maps text through it backwards — every such
  character (or IVS sequence such as 葛 + U+E0100; longest first) is written as its code, in any
  encoding. That is how 𠮷, which cp932 (Shift_JIS as Windows writes it) cannot hold, reaches a
  cp932 file: as the tenant's code, e.g. U+E000 (bytes F0 40).
- Whatever cp932 still cannot hold after that: variation selectors are dropped (the base character
  stays; the importer's search ignores them anyway) and any other character becomes 〓 (ゲタ, the
  customary mark for a missing glyph). ``WriteStats`` counts both so a caller can refuse a lossy
  file; the synthetic residents produce none.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from app.dates.japanese import DateError, JapaneseDate, format_era_code
from app.dates.wareki import era_of, format_wareki
from app.linkage.config import (
    ATTRIBUTE_COLUMNS,
    RESIDENT_COLUMNS,
    AttributesLayout,
    Layout,
    ResidentsLayout,
)

Value = str | int | dt.date | dt.datetime | JapaneseDate | None
Row = Mapping[str, Value]
WrittenDateStyle = Literal["iso", "wareki", "era_code"]

GETA = "〓"
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_BATCH_ROWS = 2000
_AS_IS = frozenset({str, int, type(None)})


@dataclass(frozen=True)
class WriteStats:
    path: Path
    rows: int  # data rows, header not counted
    bytes: int
    sha256: str
    gaiji: int = 0  # characters (or IVS sequences) written as private-use 外字 codes
    selectors_dropped: int = 0  # variation selectors left out (base character kept)
    replaced: int = 0  # characters written as 〓 (lossy)


def standard_columns(layout: Layout) -> tuple[str, ...]:
    if isinstance(layout, ResidentsLayout):
        return RESIDENT_COLUMNS
    if isinstance(layout, AttributesLayout):
        return ATTRIBUTE_COLUMNS
    raise TypeError("pass columns= for a plain Layout")


def written_date_style(layout: Layout) -> WrittenDateStyle:
    """``auto`` (the standard layout) is written as ISO."""
    return "iso" if layout.date_style == "auto" else layout.date_style


@lru_cache(maxsize=65_536)
def format_date(value: dt.date | JapaneseDate, style: WrittenDateStyle) -> str:
    """One date value as text in ``style`` (cached: birth dates repeat across millions of rows)."""
    if isinstance(value, JapaneseDate):
        if value.gregorian is not None and value.qualifier is None:
            return format_date(value.gregorian, style)
        if style == "wareki":
            return value.wareki()
        if style == "era_code":
            return format_era_code(value)
        return _iso_stand_in(value).isoformat()
    if style == "iso":
        return value.isoformat()
    if style == "wareki":
        return format_wareki(value)
    era, year = era_of(value)
    return f"{era.letter}{year:02d}{value.month:02d}{value.day:02d}"


def _iso_stand_in(value: JapaneseDate) -> dt.date:
    if value.gregorian is not None:  # 推定 with a full date
        return value.gregorian
    year = value.gregorian_year
    if year is None:
        raise DateError(value.text, "年月日不詳は ISO 形式の日付にできません")
    return dt.date(year, value.month or 1, 1)


class TextEncoder:
    """Text → bytes in the layout's encoding, with the 外字 mapping described in the module."""

    def __init__(self, layout: Layout):
        # The BOM of utf-8-sig is written by LayoutWriter itself: a failed first encode() of the
        # incremental utf-8-sig encoder would lose it.
        self.encoding = "utf-8" if layout.encoding == "utf-8-sig" else layout.encoding
        self._encoder = codecs.getincrementalencoder(self.encoding)(errors="strict")
        # MJ+ text → private-use code. Every character in the table is written as its code (that is
        # what the table says: the core system holds these as 外字), whether or not the encoding
        # could hold the character itself; multi-character targets (IVS sequences) go first.
        self._reverse = sorted(
            ((target, code) for code, target in layout.gaiji.items()), key=lambda p: -len(p[0])
        )
        self.gaiji = self.selectors_dropped = self.replaced = 0

    def encode(self, text: str, final: bool = False) -> bytes:
        for target, code in self._reverse:  # substring tests in C: cheap when absent
            if target in text:
                self.gaiji += text.count(target)
                text = text.replace(target, code)
        try:
            return self._encoder.encode(text, final)
        except UnicodeEncodeError:
            return self._encoder.encode(self._fallback(text), final)

    def _fallback(self, text: str) -> str:
        """Drop variation selectors and write 〓 for each character the encoding cannot hold.

        Each *distinct* character is tried once and the replacements are made in C: a 10 MB export
        with one 𠮷 per record took seconds when every character was encoded on its own.
        """
        text, dropped = _VARIATION_SELECTORS.subn("", text)
        self.selectors_dropped += dropped
        unencodable = []
        for ch in set(text):
            try:
                ch.encode(self.encoding)
            except UnicodeEncodeError:
                unencodable.append(ch)
        if not unencodable:
            return text
        pattern = re.compile("[" + "".join(re.escape(ch) for ch in unencodable) + "]")
        text, replaced = pattern.subn(GETA, text)
        self.replaced += replaced
        return text


class LayoutWriter:
    """Streams rows into one file in a tenant's layout; ``close()`` returns ``WriteStats``.

    The file is written as ``<name>.part`` and renamed when closed without error, so a poller never
    sees half a file. Memory stays constant: rows go out in batches of a few thousand.
    """

    def __init__(self, layout: Layout, path: Path, columns: Sequence[str] | None = None):
        self.layout = layout
        self.path = Path(path)
        self.columns = tuple(columns) if columns is not None else standard_columns(layout)
        self._style = written_date_style(layout)
        self._encoder = TextEncoder(layout)
        self._buffer = io.StringIO()
        self._csv = csv.writer(
            self._buffer, delimiter=layout.delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
        )
        self._pending = 0
        self.rows = 0
        self._bytes = 0
        self._hash = hashlib.sha256()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = self.path.with_name(self.path.name + ".part")
        self._file = self._part.open("wb")
        self.stats: WriteStats | None = None
        if layout.encoding == "utf-8-sig":
            self._emit(codecs.BOM_UTF8)
        if layout.header:
            self._csv.writerow([layout.header_for(c) for c in self.columns])

    def write(self, row: Row) -> None:
        # str, int and None go to the csv module as they are (it writes None as empty); only dates
        # need formatting. Checking the exact type keeps this the hot loop's cheapest path.
        get = row.get
        values = [
            value if type(value) in _AS_IS else self._convert(value) for value in map(get, self.columns)
        ]
        self._csv.writerow(values)
        self.rows += 1
        self._pending += 1
        if self._pending >= _BATCH_ROWS:
            self._flush()

    def _convert(self, value: Value) -> str | int:
        if value is None or isinstance(value, str | int):  # subclasses (bool, str enums)
            return "" if value is None else value
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return format_date(value, self._style)

    def write_all(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self, final: bool = False) -> None:
        data = self._encoder.encode(self._buffer.getvalue(), final)
        self._buffer.seek(0)
        self._buffer.truncate()
        self._pending = 0
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self._bytes += len(data)

    def close(self) -> WriteStats:
        self._flush(final=True)
        self._file.close()
        os.replace(self._part, self.path)
        return WriteStats(
            path=self.path,
            rows=self.rows,
            bytes=self._bytes,
            sha256=self._hash.hexdigest(),
            gaiji=self._encoder.gaiji,
            selectors_dropped=self._encoder.selectors_dropped,
            replaced=self._encoder.replaced,
        )

    def abort(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.stats = self.close()
        else:
            self.abort()


def write_rows(
    rows: Iterable[Row], layout: Layout, path: Path, columns: Sequence[str] | None = None
) -> WriteStats:
    """Write ``rows`` (standard column names → values) to ``path`` in ``layout``."""
    writer = LayoutWriter(layout, path, columns)
    try:
        writer.write_all(rows)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
