"""NGSI-LD time stamps: the exact rendering every stored and returned DateTime uses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartregion.core import times
from smartregion.core.times import format_datetime, parse_datetime, utc_now

_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def test_utc_now_has_the_exact_format() -> None:
    stamp = utc_now()
    assert _FORMAT.fullmatch(stamp), stamp
    assert abs(parse_datetime(stamp) - datetime.now(UTC)) < timedelta(seconds=5)


@given(st.lists(st.integers(0, 253_402_300_799_999_999_999), min_size=1, max_size=20))
def test_utc_now_renders_the_clock_it_reads(readings: list[int]) -> None:
    # the date and time of day are formatted once per second and reused: across seconds, back
    # and forth, every reading must still come out as its own instant, truncated to microseconds
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.MonkeyPatch.context() as patch:
        for ns in sorted(readings) + readings + [readings[0] + 1]:
            patch.setattr(times.time, "time_ns", lambda ns=ns: ns)
            expected = format_datetime(epoch + timedelta(microseconds=ns // 1000))
            assert utc_now() == expected


def test_whole_seconds_keep_their_microseconds() -> None:
    # isoformat() would drop ".000000" without timespec: the format is fixed-width
    assert (
        format_datetime(datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC))
        == "2024-02-29T23:59:59.000000Z"
    )


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-14 * 60, 14 * 60),
)
def test_format_matches_strftime_rendering(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    expected = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_datetime(aware) == expected
    if aware.astimezone(UTC).year >= 1000:  # strftime does not pad years below 1000
        assert parse_datetime(format_datetime(aware)) == aware


def test_naive_values_are_taken_as_utc() -> None:
    assert format_datetime(datetime(2020, 1, 1, 12)) == "2020-01-01T12:00:00.000000Z"
