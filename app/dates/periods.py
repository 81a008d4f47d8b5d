"""Periods counted as Japanese law counts them (民法 第138条-第143条, 戸籍法 第43条).

- 民法140条: a period in days, weeks, months or years starts on the day after the event (初日不算入),
  unless the law counts the first day. 戸籍法43条1項 does: 届出期間は届出事件発生の日から起算する,
  so 出生届の14日 includes the day of birth and ends 13 days after it.
- 民法141条: the period ends at the end of its last day.
- 民法143条: months and years follow the calendar. The period ends on the day before the day of the
  last month that corresponds to the day counting started (起算日); when that month has no such day
  (31 January + 1 month), it ends on the last day of that month.

The extension to the next working day when the last day is a holiday (民法142条, 行政機関の休日に関する
法律 2条, 地方自治法 4条の2) is not applied here: it depends on the city's calendar.
"""

from __future__ import annotations

import calendar
import datetime as dt


def period_end(
    event: dt.date, *, days: int | None = None, months: int | None = None, count_first_day: bool = False
) -> dt.date:
    """The last day of a period of ``days`` or ``months`` after ``event``."""
    if (days is None) == (months is None):
        raise ValueError("give either days or months")
    start = event if count_first_day else event + dt.timedelta(days=1)  # 起算日
    if days is not None:
        if days < 1:
            return event
        return start + dt.timedelta(days=days - 1)
    assert months is not None
    years, month0 = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month0 + 1
    last = calendar.monthrange(year, month)[1]
    if start.day > last:  # no corresponding day in the last month: its last day
        return dt.date(year, month, last)
    return dt.date(year, month, start.day) - dt.timedelta(days=1)
