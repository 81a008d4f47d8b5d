"""The month a report covers: ``[start, end)`` in Japan time (JST = UTC+9, no daylight saving)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from app.dates import JST

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class MonthInputError(ValueError):
    """A month that is not YYYY-MM; Japanese message."""


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, value: str) -> Month:
        match = _MONTH.fullmatch(value.strip())
        if match is None:
            raise MonthInputError(f"月は YYYY-MM の形で指定してください（例: 2026-10）: {value!r}")
        year = int(match.group(1))
        if not 2000 <= year <= 2999:
            raise MonthInputError(f"対象外の年です: {year}")
        return cls(year, int(match.group(2)))

    @classmethod
    def previous(cls, now: dt.datetime) -> Month:
        """The month before the one ``now`` falls in, in JST (what the 1st-of-month job reports)."""
        local = now.astimezone(JST)
        return cls(local.year - 1, 12) if local.month == 1 else cls(local.year, local.month - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=JST)

    @property
    def end(self) -> dt.datetime:
        nxt = Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)
        return nxt.start

    @property
    def days(self) -> list[dt.date]:
        first = self.start.date()
        return [first + dt.timedelta(days=i) for i in range((self.end.date() - first).days)]

    @property
    def label(self) -> str:
        from app.dates.wareki import format_wareki

        text = format_wareki(self.start.date())  # 令和8年10月1日
        return text[: text.index("月") + 1]
