"""Dates as the core 住民記録 systems keep them: 和暦, possibly off-calendar or uncertain (不詳日).

A ``JapaneseDate`` keeps the structure (era, year, month, day, qualifier) and the original text,
plus a Gregorian ``date`` when the value is a real calendar day — ages and deadlines use that;
uncertain values are passed on unchanged.

Accepted inputs (``parse``):
- ISO ``2026-05-01``;
- 和暦 text ``令和8年5月1日``, ``令和元年5月1日``, full-width digits, ``R8.5.1``-style is not accepted;
- the compact era code ``R080501`` (era letter + yymmdd; ``00`` month/day = unknown);
- uncertain forms ``令和3年頃``, ``昭和50年5月頃``, ``推定昭和50年5月1日``, ``昭和50年 月日不詳``,
  ``昭和50年5月 日不詳``, ``年月日不詳``.

Off-calendar values the core systems legitimately hold are kept (``calendar_valid`` False):
29 February of a non-leap year. An era's last year may run to the day its successor began
(明治45年7月30日, 大正15年12月25日, 昭和64年1月8日). Errors (``DateError``) carry a Japanese reason.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from app.dates.wareki import Era, era_of, eras

DateStyle = Literal["iso", "wareki", "era_code", "auto"]
QUALIFIERS = ("頃", "推定", "年月日不詳", "月日不詳", "日不詳")


class DateError(ValueError):
    """A value that is not a date in any accepted form; ``reason`` is Japanese, for the report."""

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason
        super().__init__(f"{text!r}: {reason}")


@dataclass(frozen=True)
class JapaneseDate:
    text: str  # as delivered
    era: str | None  # 令和 ..., None when the input was Gregorian (ISO)
    year: int | None  # year of the era (or the Gregorian year when era is None)
    month: int | None
    day: int | None
    qualifier: str | None  # one of QUALIFIERS, or None for an exact date
    gregorian: dt.date | None  # the calendar day, when there is exactly one

    @property
    def is_exact(self) -> bool:
        return self.gregorian is not None and self.qualifier is None

    @property
    def calendar_valid(self) -> bool:
        """False for day values no calendar has (2/29 of a non-leap year)."""
        return self.gregorian is not None or self.day is None or self.month is None

    @property
    def gregorian_year(self) -> int | None:
        if self.year is None:
            return None
        if self.era is None:
            return self.year
        return _era(self.era).start.year + self.year - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "era": self.era,
            "year": self.year,
            "month": self.month,
            "day": self.day,
            "qualifier": self.qualifier,
            "date": self.gregorian.isoformat() if self.gregorian else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JapaneseDate:
        return cls(
            text=data["text"],
            era=data.get("era"),
            year=data.get("year"),
            month=data.get("month"),
            day=data.get("day"),
            qualifier=data.get("qualifier"),
            gregorian=dt.date.fromisoformat(data["date"]) if data.get("date") else None,
        )

    def wareki(self) -> str:
        """Display form in 和暦: 令和8年5月1日, 昭和50年5月頃, 年月日不詳 ..."""
        if self.qualifier == "年月日不詳":
            return "年月日不詳"
        era, year = self.era, self.year
        if era is None and self.gregorian is not None:
            e, year = era_of(self.gregorian)
            era = e.name
        elif era is None and year is not None:
            e, year = era_of(dt.date(year, self.month or 12, self.day or 28))
            era = e.name
        prefix = "推定" if self.qualifier == "推定" else ""
        text = f"{prefix}{era}{'元' if year == 1 else year}年"
        if self.month is None:
            return text + ("頃" if self.qualifier == "頃" else " 月日不詳")
        text += f"{self.month}月"
        if self.day is None:
            return text + ("頃" if self.qualifier == "頃" else " 日不詳")
        return text + f"{self.day}日"


def _era(name: str) -> Era:
    for era in eras():
        if era.name == name:
            return era
    raise KeyError(name)


def _era_by_letter(letter: str) -> Era | None:
    return next((e for e in eras() if e.letter == letter.upper()), None)


def _next_era_start(era: Era) -> dt.date | None:
    table = eras()
    i = table.index(era)
    return table[i + 1].start if i + 1 < len(table) else None


_ERA_NAMES = "|".join(re.escape(e.name) for e in eras())
_WAREKI = re.compile(
    rf"^(?P<est>推定)?(?P<era>{_ERA_NAMES})(?P<year>元|\d{{1,2}})年"
    r"(?:(?P<month>\d{1,2})月(?:(?P<day>\d{1,2})日)?)?"
    r"(?P<tail>頃|月日不詳|日不詳)?$"
)
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ERA_CODE = re.compile(r"^([A-Za-z])(\d{2})(\d{2})(\d{2})$")


def _clean(text: str) -> str:
    # Full-width digits and letters to ASCII; spaces (either width) carry no meaning here.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _build(
    text: str, era: Era, year: int, month: int | None, day: int | None, qualifier: str | None
) -> JapaneseDate:
    if year < 1:
        raise DateError(text, f"{era.name}{year}年は存在しません")
    if month is not None and not 1 <= month <= 12:
        raise DateError(text, f"{month}月は存在しません")
    g_year = era.start.year + year - 1
    leap_day_off_calendar = False
    if day is not None:
        assert month is not None
        last = calendar.monthrange(g_year, month)[1]
        leap_day_off_calendar = month == 2 and day == 29 and last == 28
        if not 1 <= day <= last and not leap_day_off_calendar:
            raise DateError(text, f"{month}月{day}日は存在しません")
    # The span the value may denote must touch the era: from its first day up to and including
    # the day its successor began (the core systems hold e.g. 明治45年7月30日).
    if month is None:
        lo, hi = dt.date(g_year, 1, 1), dt.date(g_year, 12, 31)
    elif day is None or leap_day_off_calendar:
        lo = dt.date(g_year, month, 1)
        hi = dt.date(g_year, month, calendar.monthrange(g_year, month)[1])
    else:
        lo = hi = dt.date(g_year, month, day)
    nxt = _next_era_start(era)
    if hi < era.start or (nxt is not None and lo > nxt):
        period = f"{era.start.isoformat()}〜{nxt.isoformat() if nxt else ''}"
        raise DateError(text, f"{era.name}の期間（{period}）の外の日付です")
    exact = month is not None and day is not None and not leap_day_off_calendar
    gregorian = dt.date(g_year, month, day) if exact and qualifier in (None, "推定") else None  # type: ignore[arg-type]
    return JapaneseDate(text, era.name, year, month, day, qualifier, gregorian)


@lru_cache(maxsize=200_000)
def parse(text: str, style: DateStyle = "auto") -> JapaneseDate:
    """Parse one delivered date value (cached: birth dates repeat across millions of rows)."""
    cleaned = _clean(text)
    if not cleaned:
        raise DateError(text, "日付が空です")
    if style in ("iso", "auto") and (m := _ISO.fullmatch(cleaned)):
        try:
            iso_day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise DateError(text, "存在しない日付です") from None
        if iso_day < eras()[0].start:
            raise DateError(text, "明治より前の日付は扱えません")
        return JapaneseDate(text, None, iso_day.year, iso_day.month, iso_day.day, None, iso_day)
    if style in ("era_code", "auto") and (m := _ERA_CODE.fullmatch(cleaned)):
        era = _era_by_letter(m.group(1))
        if era is None:
            raise DateError(text, f"元号コード「{m.group(1)}」は元号表にありません")
        code_year, code_month, code_day = int(m.group(2)), int(m.group(3)), int(m.group(4))
        qualifier = None if code_month and code_day else ("月日不詳" if not code_month else "日不詳")
        return _build(text, era, code_year, code_month or None, code_day or None, qualifier)
    if style in ("wareki", "auto"):
        if cleaned == "年月日不詳":
            return JapaneseDate(text, None, None, None, None, "年月日不詳", None)
        if m := _WAREKI.fullmatch(cleaned):
            era = _era(m.group("era"))
            year = 1 if m.group("year") == "元" else int(m.group("year"))
            month = int(m.group("month")) if m.group("month") else None
            day = int(m.group("day")) if m.group("day") else None
            tail = m.group("tail")
            qualifier = "推定" if m.group("est") else tail
            if m.group("est") and tail:
                raise DateError(text, "「推定」と「頃・不詳」は同時に使えません")
            if tail == "頃" and day is not None:
                raise DateError(text, "日まで分かっている日付に「頃」は付けられません")
            if tail == "月日不詳" and month is not None:
                raise DateError(text, "月があるのに「月日不詳」となっています")
            if tail == "日不詳" and (month is None or day is not None):
                raise DateError(text, "「日不詳」は年と月だけの日付に付けます")
            if tail is None and not m.group("est") and (month is None or day is None):
                raise DateError(
                    text, "日付が途中までしかありません（不詳なら「日不詳」などを付けてください）"
                )
            return _build(text, era, year, month, day, qualifier)
    expected = {
        "iso": "YYYY-MM-DD",
        "wareki": "令和8年5月1日 の形",
        "era_code": "R080501 の形",
        "auto": "YYYY-MM-DD、令和8年5月1日 または R080501 の形",
    }[style]
    raise DateError(text, f"日付として読めません（{expected}）")


def parse_day(text: str) -> dt.date:
    """A day typed at the counter or on a resident's phone: ISO, 和暦 or era code, to the day.
    ``DateError`` otherwise; ``user_message`` says what was wrong with it."""
    value = parse(text[:40])
    if value.qualifier is None and value.gregorian is None:
        raise DateError(text, "存在しない日付です")
    if not value.is_exact or value.gregorian is None:
        raise DateError(text, "年・月・日まで分かる日付を入力してください")
    return value.gregorian


def user_message(exc: DateError) -> str:
    """The refusal as shown on a screen: the value as typed and the reason."""
    return f"日付「{exc.text[:40]}」: {exc.reason}"


def format_era_code(value: JapaneseDate) -> str:
    """R080501 form (month/day 00 when unknown); ``年月日不詳`` has no code form."""
    if value.year is None:
        raise DateError(value.text, "年が不明な日付は元号コードで表せません")
    if value.era is None:
        assert value.gregorian is not None
        era, year = era_of(value.gregorian)
    else:
        era, year = _era(value.era), value.year
    return f"{era.letter}{year:02d}{value.month or 0:02d}{value.day or 0:02d}"


def age_on(birth: dt.date, on: dt.date) -> int:
    """Age under the Japanese legal rule (年齢計算ニ関スル法律): reached the day before the birthday.

    Born 29 February: the age increases on 28 February in non-leap years.
    """
    # Counting from the birth day itself, the anniversary day's *eve* is when the year completes,
    # so compare with the day after ``on``.
    next_day = on + dt.timedelta(days=1)
    age = next_day.year - birth.year
    if (next_day.month, next_day.day) < (birth.month, birth.day):
        age -= 1
    return age


def school_year_start(day: dt.date) -> dt.date:
    """1 April of the school year (学年) that ``day`` falls in."""
    return dt.date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def school_age(birth: dt.date, on: dt.date) -> int:
    """Age that places a child in a school year: 6 in 小学校1年, 14 in 中学校3年.

    A child starts school in the first school year after the day following the day it reaches 6
    (学校教育法 17条); reaching an age is the eve of the birthday, so the age on 31 March decides:
    born 1 April joins the year above those born 2 April.
    """
    return age_on(birth, school_year_start(on) - dt.timedelta(days=1))
