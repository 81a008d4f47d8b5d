"""Build linkage files for tests: rows in standard column names, written in any tenant's layout.

Deliberately independent of the production writer, and able to produce broken files (NUL bytes,
short rows, bad encodings) that no writer would.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from app.dates.japanese import format_era_code, parse
from app.dates.wareki import format_wareki
from app.linkage.checkdigit import with_check_digit
from app.linkage.config import RESIDENT_COLUMNS, Layout

BASE: dict[str, str] = {
    "世帯内順": "1",
    "氏名": "山田　太郎",
    "氏名フリガナ": "ヤマダ タロウ",
    "フリガナ確認": "1",
    "旧氏": "",
    "生年月日": "1980-04-02",
    "性別": "1",
    "続柄": "世帯主",
    "郵便番号": "644-0001",
    "住所": "和歌山県御坊市御坊100番地",
    "方書": "",
    "住民となった日": "2001-04-01",
    "住定日": "2001-04-01",
    "住民状態": "住民",
    "住民種別": "日本人",
    "異動事由": "転入",
    "異動日": "2001-04-01",
    "更新日時": "2026-11-01T03:00:00+09:00",
}
DATE_COLUMNS = ("生年月日", "住民となった日", "住定日", "異動日")


def number(n: int, digits: int = 9, check: bool = True, remainder_one: str = "reject") -> str:
    """A distinct 宛名番号/世帯番号 for each ``n``, with a valid check digit.

    Bodies are n*10+k for the first k giving an issued number (one of ten always does), so two
    different ``n`` never collide.
    """
    for k in range(10):
        body = f"{n * 10 + k:0{digits}d}"
        if not check:
            return body + "0"
        full = with_check_digit(body, remainder_one)  # type: ignore[arg-type]
        if full is not None:
            return full
    raise AssertionError("unreachable: one of ten consecutive bodies has an issued check digit")


def person(atena: int, household: int, **values: str) -> dict[str, str]:
    return {**BASE, "宛名番号": number(atena), "世帯番号": number(household), **values}


def _date_text(value: str, style: str) -> str:
    if not value or style in ("iso", "auto"):
        return value
    try:
        parsed = parse(value, "iso")
    except ValueError:
        return value  # already in another form (不詳 dates in 和暦): written as given
    return format_wareki(parsed.gregorian) if style == "wareki" else format_era_code(parsed)  # type: ignore[arg-type]


def render(rows: list[dict[str, Any]], layout: Layout, columns: tuple[str, ...] = RESIDENT_COLUMNS) -> bytes:
    """The file's bytes in ``layout`` (header names, delimiter, date style, encoding)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=layout.delimiter, lineterminator="\r\n")
    if layout.header:
        writer.writerow([layout.header_for(c) for c in columns])
    for row in rows:
        writer.writerow(
            [
                _date_text(str(row.get(c, "")), layout.date_style) if c in DATE_COLUMNS else row.get(c, "")
                for c in columns
            ]
        )
    text = out.getvalue()
    if layout.encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.encode(layout.encoding)


def write(
    path: Path, rows: list[dict[str, Any]], layout: Layout, columns: tuple[str, ...] = RESIDENT_COLUMNS
) -> Path:
    path.write_bytes(render(rows, layout, columns))
    return path
