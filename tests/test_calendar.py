"""Service calendars from the cities' specifications, and temporary openings/closures."""

from __future__ import annotations

import datetime as dt

import jpholiday
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dates import JST
from app.tenancy.calendar import Override, ServiceCalendar, calendars_for
from app.tenancy.loader import load_all
from app.tenancy.service import OverrideInputError, add_override, revoke_override, tenant_calendars
from tests.conftest import ROOT, tenant_session

CONFIGS = {k: v.config for k, v in load_all(ROOT / "tenants").items()}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=JST)


def osaka(overrides: list[Override] | None = None) -> tuple[ServiceCalendar, ServiceCalendar]:
    return calendars_for(CONFIGS["osaka"].sla, overrides or [])


def first_friday_holiday(year: int) -> dt.date:
    day = dt.date(year, 1, 1)
    while not (day.weekday() == 4 and jpholiday.is_holiday(day) and day.month != 1):
        day += dt.timedelta(days=1)
    return day


def test_osaka_friday_evening_extension() -> None:
    service, _ = osaka()
    assert service.is_open(at("2026-11-20T18:30"))  # Friday
    assert not service.is_open(at("2026-11-20T19:00"))
    assert not service.is_open(at("2026-11-19T18:30"))  # Thursday


def test_osaka_friday_extension_not_on_a_holiday() -> None:
    service, _ = osaka()
    holiday = first_friday_holiday(2027)
    assert not service.is_open(dt.datetime.combine(holiday, dt.time(18, 30), JST))
    assert not service.is_open(dt.datetime.combine(holiday, dt.time(10, 0), JST))


def test_osaka_fourth_sunday_only() -> None:
    service, _ = osaka()
    assert service.is_open(at("2026-11-22T10:00"))  # 4th Sunday
    assert not service.is_open(at("2026-11-15T10:00"))  # 3rd Sunday
    assert not service.is_open(at("2026-11-29T10:00"))  # 5th Sunday
    assert not service.is_open(at("2026-11-22T17:30"))


def test_year_end_and_national_holidays_are_closed() -> None:
    service, _ = osaka()
    assert not service.is_open(at("2026-12-30T10:00"))  # Wednesday, 年末年始
    assert not service.is_open(at("2027-01-04T08:59"))
    assert service.is_open(at("2027-01-04T09:00"))
    assert not service.is_open(at("2026-11-23T10:00"))  # 勤労感謝の日 (Monday)
    assert service.day_status(dt.date(2026, 11, 23)).closed_reason == "勤労感謝の日"
    assert service.day_status(dt.date(2026, 12, 31)).closed_reason == "年末年始"


def test_osaka_support_desk_is_service_hours_plus_30_minutes() -> None:
    _, desk = osaka()
    assert desk.is_open(at("2026-11-19T08:30"))
    assert not desk.is_open(at("2026-11-19T08:29"))
    assert desk.is_open(at("2026-11-20T19:29"))  # Friday extension + 30
    assert not desk.is_open(at("2026-11-20T19:30"))


def test_yamaguchi_desk_has_its_own_hours() -> None:
    service, desk = calendars_for(CONFIGS["yamaguchi"].sla)
    moment = at("2026-11-19T17:45")
    assert service.is_open(moment)
    assert not desk.is_open(moment)
    assert desk.is_open(at("2026-11-19T08:30"))


def test_gobo_weekday_hours() -> None:
    service, desk = calendars_for(CONFIGS["gobo"].sla)
    assert service.is_open(at("2026-11-19T19:59"))
    assert not service.is_open(at("2026-11-19T20:00"))
    assert not service.is_open(at("2026-11-21T10:00"))  # Saturday
    assert desk.hours_on(dt.date(2026, 11, 19)) == service.hours_on(dt.date(2026, 11, 19))


def test_temporary_opening_wins_over_the_file_calendar() -> None:
    sunday = dt.date(2026, 11, 29)
    opening = Override(sunday, "open", (9 * 60, 12 * 60), at("2026-11-25T10:00"), reason="休日臨時窓口")
    service, desk = calendars_for(CONFIGS["gobo"].sla, [opening])
    assert service.is_open(at("2026-11-29T10:00"))
    assert not service.is_open(at("2026-11-29T12:00"))
    assert desk.is_open(at("2026-11-29T10:00"))  # Gobo's desk follows the service hours


def test_an_override_applies_from_the_moment_it_was_entered() -> None:
    closure = Override(dt.date(2026, 11, 24), "closed", None, at("2026-11-24T13:00"), reason="停電")
    service, _ = osaka([closure])
    assert service.is_open(at("2026-11-24T10:00"))  # the morning stays as it was
    assert not service.is_open(at("2026-11-24T14:00"))
    windows = service.open_windows(at("2026-11-24T00:00"), at("2026-11-25T00:00"))
    assert windows == [(at("2026-11-24T09:00"), at("2026-11-24T13:00"))]


def test_a_revoked_override_stops_applying() -> None:
    closure = Override(
        dt.date(2026, 11, 26), "closed", None, at("2026-11-20T09:00"), revoked_at=at("2026-11-25T09:00")
    )
    service, _ = osaka([closure])
    assert service.is_open(at("2026-11-26T10:00"))
    assert service.hours_on(dt.date(2026, 11, 26), as_of=at("2026-11-21T00:00")) == []


def test_partial_closure_cuts_the_day() -> None:
    closure = Override(dt.date(2026, 11, 26), "closed", (12 * 60, 13 * 60), at("2026-11-20T09:00"))
    service, _ = osaka([closure])
    assert service.hours_on(dt.date(2026, 11, 26)) == [(540, 720), (780, 1050)]


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 12, 31)))
def test_osaka_desk_is_open_whenever_the_service_is(moment: dt.datetime) -> None:
    service, desk = osaka()
    aware = moment.replace(tzinfo=JST)
    if service.is_open(aware):
        assert desk.is_open(aware)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2028, 12, 31)))
def test_open_windows_agree_with_is_open(moment: dt.datetime) -> None:
    service, _ = osaka()
    aware = moment.replace(tzinfo=JST, second=0, microsecond=0)
    day_start = aware.replace(hour=0, minute=0)
    windows = service.open_windows(day_start, day_start + dt.timedelta(days=1))
    assert service.is_open(aware) == any(s <= aware < e for s, e in windows)


def test_overrides_are_stored_per_tenant_and_read_back(db: None) -> None:
    day = dt.datetime.now(JST).date() + dt.timedelta(days=7)
    day += dt.timedelta(days=6 - day.weekday())  # a Sunday: Gobo is closed unless opened
    with tenant_session("gobo") as session:
        row = add_override(
            session, on_date=day, kind="open", hours="09:00-12:00", reason="臨時窓口", entered_by="t"
        )
        session.commit()
        service, _ = tenant_calendars(session, CONFIGS["gobo"])
        assert service.hours_on(day) == [(540, 720)]
        revoke_override(session, row.id, "t")
        session.commit()
        service, _ = tenant_calendars(session, CONFIGS["gobo"])
        assert service.hours_on(day) == []


@pytest.mark.parametrize(
    ("kind", "hours", "reason", "message"),
    [
        ("open", None, "臨時", "時間帯"),
        ("open", "9時から", "臨時", "時間帯「9時から」"),
        ("closed", None, " ", "理由"),
        ("half", None, "x", "種別"),
    ],
)
def test_override_input_errors_are_specific_and_japanese(
    db: None, kind: str, hours: str | None, reason: str, message: str
) -> None:
    with tenant_session("gobo") as session, pytest.raises(OverrideInputError, match=message):
        add_override(
            session, on_date=dt.date(2099, 1, 5), kind=kind, hours=hours, reason=reason, entered_by="t"
        )


def test_override_in_the_past_is_refused(db: None) -> None:
    with tenant_session("gobo") as session, pytest.raises(OverrideInputError, match="過去の日付"):
        add_override(
            session, on_date=dt.date(2020, 1, 6), kind="closed", hours=None, reason="x", entered_by="t"
        )
