"""Row validation for linkage files: one record in, one staging row out (or its problems).

Every problem names the standard column, the value and a reason in Japanese, so the rejection
report can say file, line, column, value and why. Hot path: ~3 million rows per Osaka extract, so
lookups are precomputed and repeated values (dates, kana, addresses) are parsed once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Literal

from app.dates.japanese import DateError, JapaneseDate, parse
from app.linkage.checkdigit import is_valid
from app.linkage.config import RESIDENT_COLUMNS, Layout
from app.linkage.reader import ColumnMap, Problem, Record, private_use_characters
from app.residents.models import RESIDENT_KINDS, RESIDENT_STATUSES
from app.residents.normalize import is_kana, normalize_address, normalize_kana, normalize_name

_BASE_RELATIONS = (
    "世帯主", "夫", "妻", "子", "父", "母", "兄", "姉", "弟", "妹", "祖父", "祖母", "孫",
    "伯父", "伯母", "叔父", "叔母", "甥", "姪", "おじ", "おば", "いとこ",
)  # fmt: skip
_RELATION_TERMS = "子|父|母|兄|姉|弟|妹|夫|妻|祖父|祖母|孫"
_RELATION = re.compile(
    rf"^(?:{_RELATION_TERMS})(?:の(?:{_RELATION_TERMS})){{1,3}}$"
)  # 子の子 … 4 generations
_FIXED_RELATIONS = frozenset(
    (*_BASE_RELATIONS, "夫(未届)", "妻(未届)", "子(子の夫)", "子(子の妻)", "縁故者", "同居人")
)
_DIGITS = re.compile(r"^[0-9]+$")
_POSTAL = re.compile(r"^(\d{3})-?(\d{4})$")

Mode = Literal["full", "changes"]


def valid_relation(text: str) -> str | None:
    """The relation in normal form (full-width brackets folded), or None if not in the closed set."""
    value = unicodedata.normalize("NFKC", text).replace(" ", "")
    if value in _FIXED_RELATIONS or _RELATION.match(value):
        return value.replace("(", "（").replace(")", "）")
    return None


def row_hash(values: list[str]) -> int:
    """64-bit fingerprint of a record as delivered (unchanged rows are skipped on re-import)."""
    digest = hashlib.blake2b("\x1f".join(values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Cache(dict[str, Any]):
    """A size-bounded memo: ``cache[key]`` is a plain dict hit, computed on a miss.

    Birth dates repeat across millions of rows (~40,000 distinct in a full Osaka file); names and
    addresses repeat within households. The bound keeps memory flat whatever the file size.
    """

    def __init__(self, fn: Callable[[str], Any], limit: int = 20_000):
        super().__init__()
        self.fn = fn
        self.limit = limit

    def __missing__(self, key: str) -> Any:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.fn(key)
        return value

    def __call__(self, key: str) -> Any:
        return self[key]


NULL = "\\N"  # COPY text format
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """A value for COPY's text format (backslash, tab and line breaks escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


class ResidentValidator:
    """Validates residents records against the standard layout (shared/domain/residents.md).

    ``validate`` returns the staging row as COPY text fields (after batch id, record and line), so
    the hot path builds one tab-separated line per record without per-value type dispatch.
    """

    def __init__(
        self,
        columns: ColumnMap,
        layout: Layout,
        mode: Mode,
        name_variants: tuple[tuple[str, str], ...],
        address_prefixes: tuple[str, ...],
    ):
        self.width = columns.width
        # Missing optional columns read the empty string appended after the record's values.
        self.getter = itemgetter(
            *(columns.index[c] if columns.index[c] is not None else columns.width for c in RESIDENT_COLUMNS)
        )
        self.mode = mode
        self.check_atena = layout.check_digits.atena_no
        self.check_household = layout.check_digits.household_no
        self.remainder_one = layout.check_digits.remainder_one
        self.style = layout.date_style
        self._dates = _Cache(self._parse_date, limit=100_000)
        self._kana = _Cache(lambda v: (copy_text(v), copy_text(normalize_kana(v)), is_kana(v)))
        self._names = _Cache(lambda v: (copy_text(v), copy_text(normalize_name(v, name_variants))))
        self._addresses = _Cache(lambda v: (copy_text(v), copy_text(normalize_address(v, address_prefixes))))
        self._households = _Cache(lambda v: is_valid(v, self.remainder_one))
        self._relations = _Cache(valid_relation)
        self._postal = _Cache(self._parse_postal)

    @staticmethod
    def _timestamp_ok(text: str) -> bool:
        """ISO 8601 with an offset; PostgreSQL parses the text itself (most values are unique)."""
        try:
            return dt.datetime.fromisoformat(text).tzinfo is not None
        except ValueError:
            return False

    def _parse_date(self, text: str) -> tuple[str, str] | str:
        """(the text as delivered as COPY text, calendar day as ISO or NULL), or the Japanese reason
        it is no date. Only the text is stored: it alone determines the structured value
        (``app.residents.models.StructuredDate``)."""
        try:
            value = parse(text, self.style)
        except DateError as exc:
            return exc.reason
        day = value.gregorian.isoformat() if value.gregorian else NULL
        return copy_text(value.text), day

    @staticmethod
    def _parse_postal(text: str) -> str | None:
        m = _POSTAL.match(unicodedata.normalize("NFKC", text))
        return f"{m.group(1)}-{m.group(2)}" if m else None

    def _date(self, text: str, column: str, problems: list[Problem], required: bool) -> tuple[str, str]:
        if not text:
            if required:
                problems.append(Problem("required", f"{column}がありません", column, ""))
            return NULL, NULL
        parsed = self._dates[text]
        if isinstance(parsed, str):
            problems.append(Problem("date", parsed, column, text))
            return NULL, NULL
        return parsed  # type: ignore[no-any-return]

    def validate(self, record: Record) -> list[str] | None:
        """COPY text fields from 宛名番号 to source_hash for a valid record; else None, problems added."""
        problems = record.problems
        if problems and any(p.code == "column_count" for p in problems):
            return None  # values cannot be trusted to be in their columns
        values = record.values
        (
            atena, household, order_text, name, kana, confirmed, former, birth_text, sex, relation_text,
            postal_text, address, extra, became_text, address_set_text, status, kind, reason, change_text,
            updated_text,
        ) = map(str.strip, self.getter([*values, ""]))  # fmt: skip

        if not atena:
            problems.append(Problem("required", "宛名番号がありません", "宛名番号", ""))
        elif not atena.isdigit() or not atena.isascii():
            problems.append(Problem("digits", "宛名番号は数字だけで書きます", "宛名番号", atena))
        elif self.check_atena and not is_valid(atena, self.remainder_one):
            problems.append(Problem("check_digit", "宛名番号の検査数字が合いません", "宛名番号", atena))
        if not household:
            problems.append(Problem("required", "世帯番号がありません", "世帯番号", ""))
        elif not household.isdigit() or not household.isascii():
            problems.append(Problem("digits", "世帯番号は数字だけで書きます", "世帯番号", household))
        elif self.check_household and not self._households[household]:
            problems.append(Problem("check_digit", "世帯番号の検査数字が合いません", "世帯番号", household))
        if not (order_text.isdigit() and order_text.isascii() and 0 < int(order_text) < 1000):
            problems.append(Problem("order", "世帯内順は1〜999の整数で書きます", "世帯内順", order_text))
        if not name:
            problems.append(Problem("required", "氏名がありません", "氏名", ""))
        kana_fields = self._kana[kana] if kana else (NULL, NULL, True)
        if not kana_fields[2]:
            problems.append(Problem("kana", "フリガナにカナ以外の文字があります", "氏名フリガナ", kana))
        if confirmed not in ("0", "1", ""):
            problems.append(Problem("flag", "フリガナ確認は 1 か 0 で書きます", "フリガナ確認", confirmed))
        if not address:
            problems.append(Problem("required", "住所がありません", "住所", ""))
        if record.has_private_use:
            for column, text in (("氏名", name), ("旧氏", former), ("住所", address), ("方書", extra)):
                if text and (found := private_use_characters(text)):
                    codes = "、".join(f"U+{ord(c):04X}" for c in found)
                    problems.append(
                        Problem(
                            "gaiji",
                            f"外字 {codes} が外字変換表にありません（MJ+の文字に変換できません）",
                            column,
                            text,
                        )
                    )
        birth = self._date(birth_text, "生年月日", problems, required=True)
        if sex not in ("1", "2", "9"):
            problems.append(Problem("sex", "性別は 1（男）、2（女）、9（適用不能）で書きます", "性別", sex))
        relation = self._relations[relation_text] if relation_text else None
        if relation is None:
            problems.append(Problem("relation", "続柄が決められた値ではありません", "続柄", relation_text))
        postal = NULL
        if postal_text:
            postal = self._postal[postal_text] or NULL
            if postal == NULL:
                problems.append(Problem("postal", "郵便番号は7桁の数字で書きます", "郵便番号", postal_text))
        became = self._date(became_text, "住民となった日", problems, required=False)
        address_set = self._date(address_set_text, "住定日", problems, required=False)
        if status not in RESIDENT_STATUSES:
            problems.append(
                Problem(
                    "status", f"住民状態は {'・'.join(RESIDENT_STATUSES)} のいずれかです", "住民状態", status
                )
            )
        if kind not in RESIDENT_KINDS:
            problems.append(Problem("kind", "住民種別は 日本人 か 外国人 です", "住民種別", kind))
        change = self._date(change_text, "異動日", problems, required=self.mode == "changes")
        updated = NULL
        if updated_text:
            if not self._timestamp_ok(updated_text):
                problems.append(
                    Problem(
                        "timestamp",
                        "更新日時は時差付きの ISO 8601 で書きます（例: 2026-11-21T03:00:00+09:00）",
                        "更新日時",
                        updated_text,
                    )
                )
            else:
                updated = copy_text(updated_text)
        if problems:
            return None
        name_fields = self._names[name]
        address_fields = self._addresses[address]
        return [
            atena,
            household,
            order_text,
            name_fields[0],
            name_fields[1],
            kana_fields[0],
            kana_fields[1],
            "t" if confirmed == "1" else "f",
            copy_text(former) if former else NULL,
            birth[0],
            birth[1],
            sex,
            relation,
            postal,
            address_fields[0],
            copy_text(extra) if extra else NULL,
            address_fields[1],
            became[0],
            address_set[0],
            status,
            kind,
            copy_text(reason) if reason else NULL,
            change[0],
            change[1],
            updated,
            str(row_hash(values) if record.row_hash is None else record.row_hash),
            NULL if record.source_hash is None else str(record.source_hash),
        ]


RESIDENT_STAGING_COLUMNS: tuple[str, ...] = (
    "batch_id", "record", "line", "atena_no", "household_no", "household_order", "name", "name_search", "kana",
    "kana_search", "kana_confirmed", "former_surname", "birth", "birth_date", "sex", "relation",
    "postal_code", "address", "address_extra", "address_search", "became_resident", "address_set",
    "status", "kind", "change_reason", "change", "change_date", "core_updated_at", "row_hash", "source_hash",
)  # fmt: skip


class AttributeValidator:
    """Validates attribute facts (宛名番号, 項目, 値, 開始日, 終了日)."""

    def __init__(self, columns: ColumnMap, layout: Layout):
        self.ix = dict(columns.index)
        self.check_atena = layout.check_digits.atena_no
        self.remainder_one = layout.check_digits.remainder_one
        self.style = layout.date_style
        self._dates = _Cache(self._parse_date)

    def _parse_date(self, text: str) -> dt.date | str:
        try:
            value: JapaneseDate = parse(text, self.style)
        except DateError as exc:
            return exc.reason
        if value.gregorian is None or value.qualifier is not None:
            return "資格・受給の開始日・終了日は暦の上の日付で書きます（不詳の日付は使えません）"
        return value.gregorian

    def _get(self, values: list[str], column: str) -> str:
        i = self.ix.get(column)
        return values[i].strip() if i is not None and i < len(values) else ""

    def validate(self, record: Record) -> list[str] | None:
        """COPY text fields from 宛名番号 to 終了日 for a valid record; else None, problems added."""
        problems = record.problems
        if any(p.code == "column_count" for p in problems):
            return None
        v = record.values
        atena = self._get(v, "宛名番号")
        if not atena or not atena.isdigit() or not atena.isascii():
            problems.append(Problem("digits", "宛名番号は数字だけで書きます", "宛名番号", atena))
        elif self.check_atena and not is_valid(atena, self.remainder_one):
            problems.append(Problem("check_digit", "宛名番号の検査数字が合いません", "宛名番号", atena))
        item = self._get(v, "項目")
        if not item:
            problems.append(Problem("required", "項目がありません", "項目", ""))
        value = self._get(v, "値")
        dates: list[dt.date | None] = []
        for column in ("開始日", "終了日"):
            text = self._get(v, column)
            if not text:
                dates.append(None)
                continue
            parsed = self._dates(text)
            if isinstance(parsed, str):
                problems.append(Problem("date", parsed, column, text))
                dates.append(None)
            else:
                dates.append(parsed)
        if dates[0] and dates[1] and dates[1] < dates[0]:
            problems.append(
                Problem("date_order", "終了日が開始日より前です", "終了日", self._get(v, "終了日"))
            )
        if problems:
            return None
        return [
            atena,
            copy_text(item),
            copy_text(value),
            dates[0].isoformat() if dates[0] else NULL,
            dates[1].isoformat() if dates[1] else NULL,
        ]


ATTRIBUTE_STAGING_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "record",
    "line",
    "atena_no",
    "item",
    "value",
    "start_date",
    "end_date",
)
