"""Aggregation (smartregion.core.aggregation): raw and bucket paths against a naive reference.

How floating-point results are compared (ε = sys.float_info.epsilon = 2**-52):

* counts, min and max: exactly, always;
* integer-valued data (|x| < 2**20, so every partial sum is an exact float): sum, avg, sumsq
  and stddev exactly on the bucket path versus the raw path, except stddev, which the raw
  path computes two-pass (see below);
* float data: sum within 2ε·Σ|x| (each bucket sum is rounded once, and so is the total);
  avg within that divided by n plus ε·|avg|; sumsq within 2ε·Σx²;
* stddev, compared as variances: within 8ε·Σx²/n. This is the real error of computing a
  variance from count, sum and sum of squares (what roll-ups keep): it is small next to
  the mean square, not necessarily next to the variance itself when the values sit far from
  zero. The raw path (two-pass) is more accurate than that bound.
"""

from __future__ import annotations

import calendar
import math
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartregion.core.aggregation import (
    Bucket,
    PeriodGrid,
    Sample,
    aggregate_buckets,
    aggregate_samples,
    raw_ranges,
)
from smartregion.core.durations import Duration
from smartregion.errors import InvalidRequest

EPS = sys.float_info.epsilon
BASE = datetime(2024, 1, 1, tzinfo=UTC)
SECOND = 1_000_000
NUMERIC = ("totalCount", "sum", "avg", "min", "max", "stddev", "sumsq")


# --------------------------------------------------------------------------------------------
# the naive reference: its own calendar arithmetic, periods found by walking, exact fractions


def ref_start(origin: datetime, months: int, micros: int, k: int) -> datetime:
    index = origin.year * 12 + origin.month - 1 + k * months
    year, month0 = divmod(index, 12)
    day = min(origin.day, calendar.monthrange(year, month0 + 1)[1])
    return origin.replace(year=year, month=month0 + 1, day=day) + timedelta(microseconds=k * micros)


def ref_period(origin: datetime, duration: Duration, at: datetime) -> tuple[datetime, datetime]:
    # start from a bound that longest months (31 days) give, then walk one period at a time
    span = (at - origin) // timedelta(microseconds=1)
    k = span // (duration.months * 31 * 86_400 * SECOND + duration.micros)
    while ref_start(origin, duration.months, duration.micros, k) > at:
        k -= 1
    while ref_start(origin, duration.months, duration.micros, k + 1) <= at:
        k += 1
    return (
        ref_start(origin, duration.months, duration.micros, k),
        ref_start(origin, duration.months, duration.micros, k + 1),
    )


def ref_value(method: str, values: list[float]) -> Any:
    exact = [Fraction(v) for v in values]
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len(set(values))
    if method == "min":
        return min(values)
    if method == "max":
        return max(values)
    if method == "sum":
        return float(sum(exact))
    if method == "avg":
        return float(sum(exact) / len(exact))
    if method == "sumsq":
        return float(sum(x * x for x in exact))
    return statistics.pstdev(values)  # exact internally (fractions)


def reference(
    samples: Sequence[Sample], methods: Sequence[str], grid: PeriodGrid
) -> dict[str, list[tuple[Any, datetime, datetime]]]:
    groups: dict[tuple[datetime, datetime], list[float]] = {}
    for sample in samples:
        if grid.duration.is_zero:
            period = (grid.origin, grid.end or sample.at)
        else:
            period = ref_period(grid.origin, grid.duration, sample.at)
        groups.setdefault(period, []).append(float(sample.value))
    return {m: [(ref_value(m, v), s, e) for (s, e), v in sorted(groups.items())] for m in methods}


# --------------------------------------------------------------------------------------------
# comparison with the stated tolerances


def assert_close(
    method: str,
    got: Any,
    want: Any,
    values: list[float],
) -> None:
    if method in ("totalCount", "distinctCount", "min", "max"):
        assert got == want
        return
    n = len(values)
    abs_sum = math.fsum(abs(v) for v in values)
    squares = math.fsum(v * v for v in values)
    if method == "sum":
        assert abs(got - want) <= 2 * EPS * abs_sum
    elif method == "avg":
        assert abs(got - want) <= 2 * EPS * abs_sum / n + EPS * abs(want)
    elif method == "sumsq":
        assert abs(got - want) <= 2 * EPS * squares
    else:  # stddev, as variances
        assert abs(got * got - want * want) <= 8 * EPS * squares / n + 4 * EPS * want * want


def compare(
    got: dict[str, list[tuple[Any, datetime, datetime]]],
    want: dict[str, list[tuple[Any, datetime, datetime]]],
    samples: Sequence[Sample],
    grid: PeriodGrid,
) -> None:
    assert got.keys() == want.keys()
    for method in want:
        assert [(s, e) for _, s, e in got[method]] == [(s, e) for _, s, e in want[method]]
        for (g, start, _), (w, _, _) in zip(got[method], want[method], strict=True):
            in_period = [float(x.value) for x in samples if grid.period(x.at)[0] == start]
            assert_close(method, g, w, in_period)


# --------------------------------------------------------------------------------------------
# strategies

integers = st.integers(-(2**20), 2**20)
floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
offsets = st.integers(0, 400 * 86_400 * SECOND)  # about 13 months of microseconds


@st.composite
def series(draw: st.DrawFn, values: st.SearchStrategy[Any] = floats) -> list[Sample]:
    """Samples with distinct times (a store keeps one instance per instant and instanceId)."""
    times = draw(st.lists(offsets, min_size=1, max_size=60, unique=True))
    coarse = draw(st.booleans())  # whole minutes make ties with period bounds likely
    return [
        Sample(BASE + timedelta(microseconds=t - t % (60 * SECOND) if coarse else t), draw(values))
        for t in times
    ]


durations = st.one_of(
    st.sampled_from(
        [
            Duration(micros=3600 * SECOND, text="PT1H"),
            Duration(micros=86_400 * SECOND, text="P1D"),
            Duration(micros=7 * 86_400 * SECOND, text="P1W"),
            Duration(months=1, text="P1M"),
            Duration(months=12, text="P1Y"),
            Duration(months=1, micros=86_400 * SECOND + 1, text="P1M1DT0.000001S"),
            Duration(text="P0D"),
        ]
    ),
    st.builds(
        lambda m, us: Duration(months=m, micros=us),
        st.integers(0, 3),
        st.integers(0, 20 * 86_400 * SECOND),
    ).filter(lambda d: d.months or d.micros >= 600 * SECOND),  # at most ~1,000 periods a year
)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(timeAt, lower, upper) of a random temporal query."""
    timerel = draw(st.sampled_from([None, "before", "after", "between"]))
    a = BASE + timedelta(microseconds=draw(offsets))
    b = BASE + timedelta(microseconds=draw(offsets))
    if timerel is None:
        return None, None, None
    if timerel == "before":
        return a, None, a
    if timerel == "after":
        return a, a, None
    assume(a != b)
    lo, hi = min(a, b), max(a, b)
    return lo, lo, hi


def grid_for(
    samples: list[Sample],
    duration: Duration,
    time_at: datetime | None,
    lower: datetime | None,
    upper: datetime | None,
) -> tuple[list[Sample], PeriodGrid] | None:
    inside = [
        s for s in samples if (lower is None or s.at >= lower) and (upper is None or s.at < upper)
    ]
    if not inside:
        return None
    grid = PeriodGrid.for_window(
        duration,
        time_at=time_at,
        lower=lower,
        upper=upper,
        first=min(s.at for s in inside),
        last=max(s.at for s in inside),
    )
    return inside, grid


def roll_up(samples: list[Sample], origin: datetime, width: int, keep: set[int]) -> list[Bucket]:
    """Buckets of `width` µs from `origin`, as a store would keep them (sums rounded once)."""
    groups: dict[int, list[float]] = {}
    for sample in samples:
        k = ((sample.at - origin) // timedelta(microseconds=1)) // width
        groups.setdefault(k, []).append(float(sample.value))
    return [
        Bucket(
            start=origin + timedelta(microseconds=k * width),
            end=origin + timedelta(microseconds=(k + 1) * width),
            count=len(values),
            sum=math.fsum(values),
            sumsq=math.fsum(v * v for v in values),
            min=min(values),
            max=max(values),
        )
        for k, values in groups.items()
        if k % 7 in keep  # some roll-ups missing: their range must then be read raw
    ]


# --------------------------------------------------------------------------------------------
# properties


@settings(max_examples=150, deadline=None)
@given(st.one_of(series(floats), series(integers)), durations, windows())
def test_raw_path_matches_the_reference(
    samples: list[Sample], duration: Duration, window: Any
) -> None:
    time_at, lower, upper = window
    found = grid_for(samples, duration, time_at, lower, upper)
    assume(found is not None)
    assert found is not None
    inside, grid = found
    methods = (*NUMERIC, "distinctCount")
    compare(
        aggregate_samples(inside, methods, grid), reference(inside, methods, grid), inside, grid
    )


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(series(floats), series(integers)),
    durations,
    windows(),
    st.sampled_from([60, 3600, 86_400, 7 * 86_400, 1234567]),
    st.integers(0, 86_400 * SECOND),
    st.sets(st.integers(0, 6), min_size=1),
)
def test_bucket_path_matches_the_raw_path(
    samples: list[Sample],
    duration: Duration,
    window: Any,
    width_s: int,
    bucket_shift: int,
    keep: set[int],
) -> None:
    time_at, lower, upper = window
    found = grid_for(samples, duration, time_at, lower, upper)
    assume(found is not None)
    assert found is not None
    inside, grid = found
    buckets = roll_up(
        samples,
        BASE + timedelta(microseconds=bucket_shift) - timedelta(days=400),
        width_s * SECOND,
        keep,
    )
    ranges = raw_ranges(buckets, grid, lower=lower, upper=upper)
    edges = [
        s
        for s in samples
        if any((a is None or s.at >= a) and (b is None or s.at < b) for a, b in ranges)
    ]
    got = aggregate_buckets(buckets, edges, NUMERIC, grid, lower=lower, upper=upper)
    want = aggregate_samples(inside, NUMERIC, grid)
    compare(got, want, inside, grid)
    if all(float(s.value).is_integer() for s in samples):
        for method in ("totalCount", "sum", "sumsq", "min", "max"):
            assert [v for v, _, _ in got[method]] == [v for v, _, _ in want[method]]


@settings(max_examples=100, deadline=None)
@given(series(), durations, windows())
def test_passing_every_raw_sample_to_the_bucket_path_changes_nothing(
    samples: list[Sample], duration: Duration, window: Any
) -> None:
    # samples inside a used bucket are ignored: a store may pass more than the edges
    time_at, lower, upper = window
    found = grid_for(samples, duration, time_at, lower, upper)
    assume(found is not None)
    assert found is not None
    grid = found[1]
    buckets = roll_up(samples, BASE, 3600 * SECOND, set(range(7)))
    ranges = raw_ranges(buckets, grid, lower=lower, upper=upper)
    edges = [
        s
        for s in samples
        if any((a is None or s.at >= a) and (b is None or s.at < b) for a, b in ranges)
    ]
    assert aggregate_buckets(buckets, samples, NUMERIC, grid, lower=lower, upper=upper) == (
        aggregate_buckets(buckets, edges, NUMERIC, grid, lower=lower, upper=upper)
    )


# --------------------------------------------------------------------------------------------
# examples


def test_a_year_at_p1m_reads_buckets_and_only_the_raw_edges() -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(365 * 24)]
    buckets = [
        Bucket(h, h + timedelta(hours=1), count=60, sum=60.0, sumsq=60.0, min=1.0, max=1.0)
        for h in hours
    ]
    lower = datetime(2023, 1, 1, 0, 30, tzinfo=UTC)  # the first hour is only half inside
    upper = datetime(2024, 1, 1, tzinfo=UTC)
    grid = PeriodGrid.for_window(
        Duration(months=1, text="P1M"),
        time_at=lower,
        lower=lower,
        upper=upper,
        first=lower,
        last=upper,
    )
    ranges = raw_ranges(buckets, grid, lower=lower, upper=upper)
    # periods start at 00:30 on the 1st: the bucket holding each month boundary is read raw
    assert len(ranges) == 12
    assert ranges[0] == (lower, datetime(2023, 1, 1, 1, tzinfo=UTC))
    assert ranges[-1] == (datetime(2023, 12, 1, tzinfo=UTC), datetime(2023, 12, 1, 1, tzinfo=UTC))
    edges = [
        Sample(a + timedelta(minutes=m), 1.0)
        for a, b in ranges
        for m in range(60)
        if a is not None and a + timedelta(minutes=m) < (b or upper)
    ]
    rows = aggregate_buckets(buckets, edges, ("totalCount", "avg"), grid, lower=lower, upper=upper)
    assert [v for v, _, _ in rows["avg"]] == [1.0] * 12
    assert sum(v for v, _, _ in rows["totalCount"]) == 365 * 24 * 60 - 30


def test_distinct_count_cannot_come_from_buckets() -> None:
    grid = PeriodGrid(origin=BASE, duration=Duration(micros=3600 * SECOND))
    with pytest.raises(ValueError, match="distinctCount"):
        aggregate_buckets([], [], ("distinctCount",), grid, lower=None, upper=None)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


HOUR_GRID = PeriodGrid(origin=BASE, duration=Duration(micros=3600 * SECOND))


def test_booleans_count_as_one_and_zero() -> None:
    samples = [Sample(at(1), True), Sample(at(2), False), Sample(at(3), True)]
    rows = aggregate_samples(samples, ("sum", "avg", "min", "max", "distinctCount"), HOUR_GRID)
    assert {m: r[0][0] for m, r in rows.items()} == {
        "sum": 2.0,
        "avg": 2 / 3,
        "min": 0.0,
        "max": 1.0,
        "distinctCount": 2,
    }


def test_arrays_aggregate_their_sizes() -> None:
    samples = [Sample(at(1), [1, 2]), Sample(at(2), [1, 2, 3, 4])]
    rows = aggregate_samples(samples, ("sum", "avg", "min", "max"), HOUR_GRID)
    assert {m: r[0][0] for m, r in rows.items()} == {"sum": 6.0, "avg": 3.0, "min": 2.0, "max": 4.0}
    with pytest.raises(InvalidRequest, match="stddev does not apply"):
        aggregate_samples(samples, ("stddev",), HOUR_GRID)


def test_strings_and_date_times() -> None:
    words = [Sample(at(1), "pear"), Sample(at(2), "apple"), Sample(at(3), "pear")]
    rows = aggregate_samples(words, ("min", "max", "distinctCount", "totalCount"), HOUR_GRID)
    assert {m: r[0][0] for m, r in rows.items()} == {
        "min": "apple",
        "max": "pear",
        "distinctCount": 2,
        "totalCount": 3,
    }
    stamps = [
        Sample(at(1), {"@type": "DateTime", "@value": "2020-08-01T12:03:00.5Z"}),
        Sample(at(2), {"@type": "DateTime", "@value": "2020-08-01T12:03:00.25Z"}),
    ]
    rows = aggregate_samples(stamps, ("min", "max"), HOUR_GRID)
    assert rows["min"][0][0]["@value"] == "2020-08-01T12:03:00.25Z"
    assert rows["max"][0][0]["@value"] == "2020-08-01T12:03:00.5Z"
    for method in ("avg", "sum", "sumsq", "stddev"):
        with pytest.raises(InvalidRequest, match=f"{method} does not apply"):
            aggregate_samples(words, (method,), HOUR_GRID)


def test_min_over_numbers_and_strings_in_one_period_is_invalid() -> None:
    with pytest.raises(InvalidRequest, match="mixes"):
        aggregate_samples([Sample(at(1), 3), Sample(at(2), "3")], ("min",), HOUR_GRID)


def test_objects_are_only_counted() -> None:
    samples = [Sample(at(1), {"a": 1, "b": [1, 2]}), Sample(at(2), {"b": [1, 2], "a": 1})]
    rows = aggregate_samples(samples, ("totalCount", "distinctCount"), HOUR_GRID)
    assert (rows["totalCount"][0][0], rows["distinctCount"][0][0]) == (2, 1)
    with pytest.raises(InvalidRequest, match="max does not apply"):
        aggregate_samples(samples, ("max",), HOUR_GRID)


def test_relationships_are_only_counted() -> None:
    samples = [Sample(at(1), "urn:a:1"), Sample(at(2), "urn:a:1")]
    rows = aggregate_samples(samples, ("distinctCount",), HOUR_GRID, relationship=True)
    assert rows["distinctCount"][0][0] == 1
    with pytest.raises(InvalidRequest, match="min does not apply to the attribute"):
        aggregate_samples(samples, ("min",), HOUR_GRID, relationship=True)


def test_empty_periods_are_not_listed() -> None:
    samples = [Sample(at(5), 1.0), Sample(at(185), 2.0)]
    rows = aggregate_samples(samples, ("totalCount",), HOUR_GRID)
    assert [(v, s) for v, s, _ in rows["totalCount"]] == [(1, at(0)), (1, at(180))]


def test_periods_before_the_origin() -> None:
    # timerel=before: the origin is timeAt, the periods run backwards from it
    samples = [Sample(at(-30), 1.0), Sample(at(-90), 2.0)]
    rows = aggregate_samples(samples, ("sum",), HOUR_GRID)
    assert [(v, s, e) for v, s, e in rows["sum"]] == [
        (2.0, at(-120), at(-60)),
        (1.0, at(-60), at(0)),
    ]
