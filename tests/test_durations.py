"""ISO 8601 durations and calendar arithmetic (smartregion.core.durations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartregion.core.durations import (
    Duration,
    add_months,
    format_instant,
    format_instant_micros,
    parse_duration,
)
from smartregion.errors import BadRequestData

HOUR = 3_600_000_000
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("text", "months", "micros"),
    [
        ("PT1H", 0, HOUR),
        ("P1D", 0, DAY),
        ("P2W", 0, 14 * DAY),
        ("P1M", 1, 0),
        ("P1Y", 12, 0),
        ("P3Y6M4DT12H30M5S", 42, 4 * DAY + 12 * HOUR + 30 * 60_000_000 + 5_000_000),
        ("PT0.5S", 0, 500_000),
        ("PT0,25S", 0, 250_000),  # ISO 8601 allows a decimal comma
        ("PT1.5H", 0, 90 * 60_000_000),
        ("P1DT", None, None),
        ("P0D", 0, 0),
        ("PT0S", 0, 0),
        ("PT0.000001S", 0, 1),
    ],
)
def test_parse_duration(text: str, months: int | None, micros: int | None) -> None:
    if months is None:
        with pytest.raises(BadRequestData):
            parse_duration(text)
        return
    duration = parse_duration(text)
    assert (duration.months, duration.micros) == (months, micros)
    assert duration.is_zero == (months == 0 and micros == 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "ISO 8601 duration"),
        ("P", "not an ISO 8601 duration"),
        ("PT", "not an ISO 8601 duration"),
        ("1H", "not an ISO 8601 duration"),
        ("-P1D", "not an ISO 8601 duration"),
        ("P1W2D", "not an ISO 8601 duration"),  # weeks stand alone
        ("P0003-06-04T12:30:05", "not an ISO 8601 duration"),  # §4.5.19.1: not allowed
        ("PT1M1H", "not an ISO 8601 duration"),  # wrong order
        ("P1.5M", "cannot be fractional"),
        ("P0.5Y", "cannot be fractional"),
        ("P1.5DT2H", "only the last element"),
        ("PT0.0000001S", "finer than a microsecond"),
        ("P99999Y", "longer than 10,000 years"),
    ],
)
def test_bad_durations_are_precise(text: str, message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        parse_duration(text)


def test_months_clamp_from_the_origin_not_cumulatively() -> None:
    origin = datetime(2020, 1, 31, 10, 0, tzinfo=UTC)
    month = parse_duration("P1M")
    assert [month.shift(origin, k).date().isoformat() for k in range(-2, 4)] == [
        "2019-11-30",
        "2019-12-31",
        "2020-01-31",
        "2020-02-29",
        "2020-03-31",
        "2020-04-30",
    ]
    assert add_months(datetime(2021, 1, 29, tzinfo=UTC), 1).day == 28


def test_years_keep_leap_days_where_they_exist() -> None:
    origin = datetime(2020, 2, 29, tzinfo=UTC)
    year = parse_duration("P1Y")
    assert year.shift(origin, 1) == datetime(2021, 2, 28, tzinfo=UTC)
    assert year.shift(origin, 4) == datetime(2024, 2, 29, tzinfo=UTC)


def test_shift_outside_the_calendar_is_bad_request() -> None:
    with pytest.raises(BadRequestData, match="outside the years"):
        parse_duration("P1Y").shift(datetime(9999, 6, 1, tzinfo=UTC), 1)
    with pytest.raises(BadRequestData, match="outside the years"):
        parse_duration("P1D").shift(datetime(9999, 12, 31, tzinfo=UTC), 1)


durations = st.builds(
    lambda months, micros: Duration(months=months, micros=micros),
    st.integers(0, 30),
    st.integers(0, 40 * DAY),
).filter(lambda d: not d.is_zero)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2050, 1, 1), timezones=st.just(UTC)
)


@given(durations, instants, instants)
def test_index_of_finds_the_period_holding_an_instant(
    duration: Duration, origin: datetime, instant: datetime
) -> None:
    k = duration.index_of(origin, instant)
    assert duration.shift(origin, k) <= instant < duration.shift(origin, k + 1)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2020, 8, 1, 12, 3, tzinfo=UTC), "2020-08-01T12:03:00Z"),
        (datetime(2020, 8, 1, 12, 3, 0, 250_000, tzinfo=UTC), "2020-08-01T12:03:00.250Z"),
        (datetime(2020, 8, 1, 12, 3, 0, 1, tzinfo=UTC), "2020-08-01T12:03:00.000001Z"),
        (datetime(2020, 8, 1, 14, 3, tzinfo=UTC) + timedelta(hours=-2), "2020-08-01T12:03:00Z"),
        (datetime(999, 1, 2, tzinfo=UTC), "0999-01-02T00:00:00Z"),
    ],
)
def test_format_instant_is_as_short_as_exact(value: datetime, text: str) -> None:
    assert format_instant(value) == text


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
        ),
    )
)
def test_format_instant_writes_the_utc_instant_whatever_was_written_before(value: datetime) -> None:
    # the day and clock texts are cached across calls: every instant still reads back exactly
    text = format_instant(value)
    assert text.endswith("Z")
    assert datetime.fromisoformat(text[:-1] + "+00:00") == value
    fraction = text[20:-1] if len(text) > 20 else ""
    assert fraction in (
        "",
        f"{value.microsecond:06d}"[:3]
        if value.microsecond % 1000 == 0
        else f"{value.microsecond:06d}",
    )


@given(
    st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999),
    st.sampled_from([1, 1_000, 1_000_000, 3_600_000_000]),
)
def test_an_instant_in_micros_is_written_as_its_datetime(us: int, grain: int) -> None:
    """The roll-up path writes period bounds from µs (broker/aggregates.py): the same text as
    the datetime path, whole seconds, milliseconds and microseconds alike, BCE excluded."""
    us -= us % grain
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    assert format_instant_micros(us) == format_instant(moment)
