"""Service calendars (開庁カレンダー): when a tenant's counters and support desk are open.

A day's hours come from the tenant's rules unless it is a closed day (national holiday from
jpholiday, 年末年始, a municipal closing day). Temporary openings and closures (臨時開庁・臨時閉庁)
entered by the municipal administrator then apply on top, in the order they were entered, and only
from the moment they were entered: an SLA computed for yesterday morning is not rewritten by a
closure entered at noon.

All times are JST (UTC+9 all year; Japan has no daylight saving).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jpholiday

from app.dates import JST
from app.tenancy.config import WEEKDAYS, CalendarConfig, SlaConfig

Interval = tuple[int, int]  # minutes since 00:00 JST, end exclusive, end may be 1440


@dataclass(frozen=True)
class Override:
    """A temporary opening (``open``) or closure (``closed``) of one date.

    ``hours`` None on a closure closes the whole day; on an opening it is required.
    """

    on_date: dt.date
    kind: str  # "open" | "closed"
    hours: Interval | None
    entered_at: dt.datetime
    revoked_at: dt.datetime | None = None
    reason: str = ""

    def active_at(self, moment: dt.datetime) -> bool:
        return self.entered_at <= moment and (self.revoked_at is None or moment < self.revoked_at)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(intervals: Sequence[Interval], cut: Interval) -> list[Interval]:
    out: list[Interval] = []
    for start, end in intervals:
        if cut[1] <= start or end <= cut[0]:
            out.append((start, end))
            continue
        if start < cut[0]:
            out.append((start, cut[0]))
        if cut[1] < end:
            out.append((cut[1], end))
    return out


def week_of_month(day: dt.date) -> int:
    """1 for days 1-7, 2 for 8-14 ...: the n-th occurrence of that weekday in the month."""
    return (day.day - 1) // 7 + 1


def closed_reason(config: CalendarConfig, day: dt.date) -> str | None:
    """Why the file calendar is closed all day on ``day`` (祝日名, 年末年始, 休庁日), else None."""
    closed = config.closed
    if day in closed.dates:
        return "休庁日"
    if closed.year_end and closed.year_end.contains(day):
        return "年末年始"
    if closed.national_holidays:
        name = jpholiday.is_holiday_name(day)
        if name:
            return str(name)
    return None


def rule_hours(config: CalendarConfig, day: dt.date) -> list[Interval]:
    """Hours from the file rules alone (before temporary openings and closures)."""
    weekday = WEEKDAYS[day.weekday()]
    is_closed = closed_reason(config, day) is not None
    hours: list[Interval] = []
    for rule in config.rules:
        if weekday not in rule.days:
            continue
        if rule.weeks_of_month is not None and week_of_month(day) not in rule.weeks_of_month:
            continue
        if (rule.valid_from and day < rule.valid_from) or (rule.valid_until and day > rule.valid_until):
            continue
        if is_closed and not rule.on_closed_days:
            continue
        hours.extend((h.start, h.end) for h in rule.hours)
    return merge(hours)


class ServiceCalendar:
    """One calendar (service hours or support desk) of one tenant, with its overrides."""

    def __init__(self, config: CalendarConfig, overrides: Iterable[Override] = (), margin_minutes: int = 0):
        self.config = config
        self.margin = margin_minutes
        self._overrides: dict[dt.date, list[Override]] = {}
        for o in sorted(overrides, key=lambda o: o.entered_at):
            self._overrides.setdefault(o.on_date, []).append(o)

    def hours_on(self, day: dt.date, as_of: dt.datetime | None = None) -> list[Interval]:
        """Open intervals on ``day`` as known at ``as_of`` (default: now)."""
        as_of = as_of or dt.datetime.now(JST)
        hours = rule_hours(self.config, day)
        for o in self._overrides.get(day, ()):
            if not o.active_at(as_of):
                continue
            if o.kind == "open" and o.hours is not None:
                hours = merge([*hours, o.hours])
            elif o.kind == "closed":
                hours = [] if o.hours is None else subtract(hours, o.hours)
        if self.margin and hours:
            hours = merge((max(0, s - self.margin), min(1440, e + self.margin)) for s, e in hours)
        return hours

    def is_open(self, moment: dt.datetime) -> bool:
        """Open at ``moment``, judged with the overrides entered by then.

        A margin (support desk) is clamped to the day: no calendar here runs past midnight.
        """
        if moment.tzinfo is None:
            raise ValueError("is_open needs an aware datetime")
        local = moment.astimezone(JST)
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.hours_on(local.date(), as_of=moment))

    def day_status(self, day: dt.date, as_of: dt.datetime | None = None) -> DayStatus:
        as_of = as_of or dt.datetime.now(JST)
        notes = [o for o in self._overrides.get(day, ()) if o.active_at(as_of)]
        return DayStatus(
            day=day,
            hours=self.hours_on(day, as_of),
            closed_reason=closed_reason(self.config, day),
            overrides=notes,
        )

    def open_windows(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """Open periods between two instants; every instant is judged as ``is_open`` would."""
        out: list[tuple[dt.datetime, dt.datetime]] = []
        day = start.astimezone(JST).date()
        while (midnight := dt.datetime.combine(day, dt.time(), JST)) < end:
            next_midnight = midnight + dt.timedelta(days=1)
            # Within a day the answer changes only where an override was entered or revoked.
            cuts = {midnight, next_midnight}
            for o in self._overrides.get(day, ()):
                cuts.update(t for t in (o.entered_at, o.revoked_at) if t and midnight < t < next_midnight)
            points = sorted(cuts)
            for seg_start, seg_end in itertools.pairwise(points):
                for s, e in self.hours_on(day, as_of=seg_start):
                    ws = max(midnight + dt.timedelta(minutes=s), seg_start, start)
                    we = min(midnight + dt.timedelta(minutes=e), seg_end, end)
                    if ws < we:
                        if out and out[-1][1] == ws:
                            out[-1] = (out[-1][0], we)
                        else:
                            out.append((ws, we))
            day += dt.timedelta(days=1)
        return out


@dataclass(frozen=True)
class DayStatus:
    day: dt.date
    hours: list[Interval]
    closed_reason: str | None
    overrides: list[Override]


def calendars_for(
    sla: SlaConfig, overrides: Sequence[Override] = ()
) -> tuple[ServiceCalendar, ServiceCalendar]:
    """(service hours, support desk) for a tenant; the desk follows overrides when it follows hours."""
    service = ServiceCalendar(sla.service_hours, overrides)
    desk_cfg = sla.support_desk
    if desk_cfg.follows_service_hours:
        desk = ServiceCalendar(sla.service_hours, overrides, margin_minutes=desk_cfg.margin_minutes)
    else:
        assert desk_cfg.calendar is not None
        desk = ServiceCalendar(desk_cfg.calendar)
    return service, desk
