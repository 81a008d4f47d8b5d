"""和暦 and 不詳日 dates from the core systems: kept as delivered, calendar day where there is one."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dates.japanese import DateError, JapaneseDate, age_on, format_era_code, parse
from app.dates.wareki import format_wareki

DAYS = st.dates(min_value=dt.date(1868, 10, 23), max_value=dt.date(2100, 12, 31))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01", dt.date(2026, 5, 1)),
        ("令和8年5月1日", dt.date(2026, 5, 1)),
        ("令和８年５月１日", dt.date(2026, 5, 1)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("R080501", dt.date(2026, 5, 1)),
        ("Ｓ５００１０１", dt.date(1975, 1, 1)),
        ("明治45年7月30日", dt.date(1912, 7, 30)),  # the day 大正 began: kept under 明治
        ("大正15年12月25日", dt.date(1926, 12, 25)),
        ("推定昭和50年5月1日", dt.date(1975, 5, 1)),
    ],
)
def test_calendar_days(text: str, expected: dt.date) -> None:
    assert parse(text).gregorian == expected


@pytest.mark.parametrize(
    ("text", "qualifier", "parts"),
    [
        ("令和3年頃", "頃", (3, None, None)),
        ("昭和50年5月頃", "頃", (50, 5, None)),
        ("昭和50年 月日不詳", "月日不詳", (50, None, None)),
        ("昭和50年5月 日不詳", "日不詳", (50, 5, None)),
        ("年月日不詳", "年月日不詳", (None, None, None)),
        ("S500500", "日不詳", (50, 5, None)),
    ],
)
def test_uncertain_dates_are_kept_as_is(text: str, qualifier: str, parts: tuple[int | None, ...]) -> None:
    value = parse(text)
    assert value.qualifier == qualifier
    assert (value.year, value.month, value.day) == parts
    assert value.gregorian is None
    assert value.text == text


def test_leap_day_of_a_non_leap_year_is_allowed_but_has_no_calendar_day() -> None:
    value = parse("平成3年2月29日")
    assert (value.era, value.year, value.month, value.day) == ("平成", 3, 2, 29)
    assert value.gregorian is None
    assert not value.calendar_valid
    assert value.wareki() == "平成3年2月29日"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("令和0年1月1日", "令和0年は存在しません"),
        ("令和元年4月30日", "令和の期間"),
        ("平成32年1月1日", "平成の期間"),
        ("昭和64年1月9日", "昭和の期間"),
        ("令和8年2月30日", "2月30日は存在しません"),
        ("令和8年13月1日", "13月は存在しません"),
        ("2026-02-30", "存在しない日付"),
        ("昭和50年", "途中まで"),
        ("X010101", "元号コード「X」"),
        ("", "空"),
        ("きのう", "日付として読めません"),
        ("推定昭和50年頃", "同時に"),
    ],
)
def test_errors_say_why_in_japanese(text: str, reason: str) -> None:
    with pytest.raises(DateError) as info:
        parse(text)
    assert reason in info.value.reason


def test_styles_restrict_the_accepted_form() -> None:
    assert parse("R080501", "era_code").gregorian == dt.date(2026, 5, 1)
    with pytest.raises(DateError, match="YYYY-MM-DD"):
        parse("令和8年5月1日", "iso")
    with pytest.raises(DateError):
        parse("2026-05-01", "wareki")


@given(DAYS)
def test_wareki_text_round_trips(day: dt.date) -> None:
    assert parse(format_wareki(day)).gregorian == day


@given(DAYS)
def test_era_code_round_trips(day: dt.date) -> None:
    assert parse(format_era_code(parse(day.isoformat()))).gregorian == day


@given(st.builds(lambda d: parse(format_wareki(d)), DAYS))
def test_json_round_trips(value: JapaneseDate) -> None:
    assert JapaneseDate.from_json(value.to_json()) == value


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2090, 12, 31)), st.integers(0, 100))
def test_age_is_reached_on_the_eve_of_the_birthday(birth: dt.date, years: int) -> None:
    try:
        anniversary = birth.replace(year=birth.year + years)
    except ValueError:  # born 29 February, anniversary year not leap: the eve is 28 February
        anniversary = dt.date(birth.year + years, 3, 1)
    eve = anniversary - dt.timedelta(days=1)
    if eve >= birth:
        assert age_on(birth, eve) == years
    if years > 0:
        assert age_on(birth, eve - dt.timedelta(days=1)) == years - 1


def test_school_year_boundary_april_first_and_second() -> None:
    # Born 1 April: 6 on 31 March, so in the school year that starts the next day; born 2 April is not.
    assert age_on(dt.date(2020, 4, 1), dt.date(2026, 3, 31)) == 6
    assert age_on(dt.date(2020, 4, 2), dt.date(2026, 3, 31)) == 5
    assert age_on(dt.date(2020, 4, 2), dt.date(2026, 4, 1)) == 6
