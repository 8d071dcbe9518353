"""Aggregated temporal values (ETSI GS CIM 009 V1.8 §4.5.19): periods and aggregation methods.

Two entry points compute the same `AggregateRows` (`method -> [(value, start, end), …]`, one
row per period that holds at least one value, in time order — the spec's own example C.5.14
lists only periods with data), and a third the same rows already written (`WrittenRows`):

* `aggregate_samples` from raw values (every method);
* `aggregate_buckets` from pre-aggregated roll-up `Bucket`s plus the raw values at the edges,
  so a year at `P1D` reads a few hundred buckets, not half a million instances.
  `raw_ranges` tells the store which time ranges it still has to read raw;
* `aggregate_periods` from merged columns per period (the roll-up path of broker/aggregates.py).

Periods (`PeriodGrid`): period k is `[origin + k×D, origin + (k+1)×D)` in calendar arithmetic
(`core.durations`). The origin is `timeAt` when the query has one (C.5.14: periods start at
timeAt), otherwise the earliest selected instance (suite 020_11: periods start at the first
observation). A zero duration (`P0D`, or no `aggrPeriodDuration`) is one period spanning the
query's range; where the range is open, the earliest/latest selected instance closes it.

What each method does with each kind of value (§4.5.19.1, tables 4.5.19.1-1 to -3):

| value                          | totalCount, distinctCount | sum, avg    | min, max        | stddev, sumsq |
| ------------------------------ | ------------------------- | ----------- | --------------- | ------------- |
| number                         | yes                       | yes         | yes             | yes           |
| boolean (true = 1, false = 0)  | yes                       | yes         | yes             | yes           |
| array                          | yes                       | of sizes    | of sizes        | N/A           |
| string                         | yes                       | N/A         | lexicographic   | N/A           |
| DateTime / Date / Time (@type) | yes                       | N/A         | chronological   | N/A           |
| other object, Relationship     | yes                       | N/A         | N/A             | N/A           |

A method that does not apply to a value is an InvalidRequest (§5.7.4.4); so is min/max over a
period mixing numbers and strings. Numeric results are JSON numbers as floats (the suite
expects `120.0` for the max of integers); counts are integers. `stddev` is the population
standard deviation (the spec does not say; with one value it is 0). The spec's "average time"
of Time values is not implemented (InvalidRequest).

Exactness: counts, min and max are exact on both paths. Raw sums use `math.fsum` (one
rounding); `stddev` is two-pass. From buckets, sums add the buckets' (already rounded) sums
with `fsum`, and `stddev` comes from count, sum and sum of squares — exact when the values are
integers below 2**26, otherwise within the bounds the property tests state
(tests/test_aggregation.py). `distinctCount` cannot come from buckets (it needs the values).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from smartregion.core.durations import Duration
from smartregion.core.temporal import AGGREGATION_METHODS
from smartregion.errors import InvalidRequest

__all__ = [
    "BUCKET_METHODS",
    "AggregateRows",
    "Bucket",
    "PeriodGrid",
    "Sample",
    "WrittenRows",
    "aggregate_buckets",
    "aggregate_periods",
    "aggregate_samples",
    "raw_ranges",
]

#: the methods a roll-up bucket can answer (distinctCount needs the raw values)
BUCKET_METHODS = frozenset(AGGREGATION_METHODS) - {"distinctCount"}
_TEMPORAL_TYPES = frozenset({"DateTime", "Date", "Time"})

#: method -> [(value, period start, period end), …]
AggregateRows = dict[str, list[tuple[Any, datetime, datetime]]]
#: method -> [(value, "start", "end"), …]: rows with their bounds written as the aggregated
#: representation shows them (§4.5.19, `format_instant`), built from columns by
#: `aggregate_periods` (orjson writes a tuple as an array)
WrittenRows = dict[str, list[tuple[Any, str, str]]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a series at one instant (the instance's Temporal Property)."""

    at: datetime
    value: Any


@dataclass(frozen=True, slots=True)
class Bucket:
    """A roll-up of the numeric values (numbers, booleans as 0/1) with time in [start, end).

    `count` counts the values; `sum`, `sumsq`, `min` and `max` are over them (None when
    `count` is 0). Buckets serve only series whose values are all numbers or booleans — a
    store keeps them for such series and aggregates others from raw instances.
    """

    start: datetime
    end: datetime
    count: int
    sum: float | None
    sumsq: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class PeriodGrid:
    """The aggregation periods: `origin + k × duration`; a zero duration is one [origin, end]."""

    origin: datetime
    duration: Duration
    end: datetime | None = None  # the end of the single period of a zero duration

    @classmethod
    def for_window(
        cls,
        duration: Duration,
        *,
        time_at: datetime | None,
        lower: datetime | None,
        upper: datetime | None,
        first: datetime,
        last: datetime,
    ) -> PeriodGrid:
        """The grid of a query: origin `timeAt` or `first`; a zero duration spans the range.

        `lower`/`upper` are the query window's bounds (None where open); `first`/`last` the
        earliest and latest selected instants (of the entity's requested attributes).
        """
        if duration.is_zero:
            start = lower if lower is not None else first
            end = upper if upper is not None else last
            return cls(origin=start, duration=duration, end=end)
        return cls(origin=time_at if time_at is not None else first, duration=duration)

    def period(self, instant: datetime) -> tuple[datetime, datetime]:
        """The period holding `instant`."""
        if self.duration.is_zero:
            return self.origin, self.end if self.end is not None else instant
        k = self.duration.index_of(self.origin, instant)
        return self.duration.shift(self.origin, k), self.duration.shift(self.origin, k + 1)

    def holds(self, bucket: Bucket) -> tuple[datetime, datetime] | None:
        """The period a bucket lies wholly inside, or None when it straddles a boundary."""
        if self.duration.is_zero:
            end = self.end
            inside = bucket.start >= self.origin and (end is None or bucket.end <= end)
            return (self.origin, end if end is not None else bucket.end) if inside else None
        start, end = self.period(bucket.start)
        return (start, end) if bucket.end <= end else None


# --------------------------------------------------------------------------------------------
# values


def _kind(value: Any) -> str:
    """The §4.5.19.1 class of a JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if (
        isinstance(value, dict)
        and value.get("@type") in _TEMPORAL_TYPES
        and isinstance(value.get("@value"), str)
    ):
        return "temporal"
    return "object"


def _not_applicable(method: str, what: str, kind: str) -> InvalidRequest:
    return InvalidRequest(
        f"aggregation method {method} does not apply to {what}: it has {kind} values "
        "(ETSI GS CIM 009 §4.5.19.1)"
    )


def _operand(value: Any, method: str, what: str, relationship: bool) -> float:
    """The number sum/avg/stddev/sumsq (and numeric min/max) use for a value."""
    kind = "a relationship's" if relationship else _kind(value)
    if kind == "number" or kind == "boolean":
        return float(value)
    if kind == "array" and method in ("sum", "avg", "min", "max"):
        return float(len(value))
    raise _not_applicable(method, what, kind)


def _distinct_key(value: Any) -> Any:
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)  # 1 and 1.0 are one JSON number
    if isinstance(value, str):
        return ("string", value)
    return ("json", _canonical(value))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[", *(_canonical(v) for v in value))
    return _distinct_key(value)


def _extreme(values: Sequence[Any], method: str, what: str, relationship: bool) -> Any:
    """min or max of one period's values (numbers, array sizes, strings or temporal values)."""
    kinds = {"a relationship's" if relationship else _kind(v) for v in values}
    pick = min if method == "min" else max
    if kinds <= {"string"}:
        return pick(values)
    if kinds == {"temporal"}:
        types = {v["@type"] for v in values}
        if len(types) > 1:
            raise InvalidRequest(f"{method} over {what} mixes {', '.join(sorted(types))} values")
        return pick(values, key=lambda v: _temporal_key(v["@value"]))
    if "string" in kinds or "temporal" in kinds:
        raise InvalidRequest(
            f"{method} over {what} mixes {', '.join(sorted(kinds))} values in one period"
        )
    return pick(_operand(v, method, what, relationship) for v in values)


def _temporal_key(text: str) -> Any:
    # DateTime values are UTC with "Z" (§4.6.3), Date and Time are fixed-width ISO 8601:
    # comparing the text after normalising the fraction's width orders them in time
    head, _, fraction = text.rstrip("Zz").partition(".")
    return head, fraction.ljust(9, "0")


def _pvariance(numbers: Sequence[float]) -> float:
    """Population variance, two-pass (accurate), from floats."""
    n = len(numbers)
    mean = math.fsum(numbers) / n
    return math.fsum((x - mean) * (x - mean) for x in numbers) / n


def _method_value(method: str, values: Sequence[Any], what: str, relationship: bool) -> Any:
    """One method over one period's raw values (at least one)."""
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len({_canonical(v) for v in values})
    if method in ("min", "max"):
        return _extreme(values, method, what, relationship)
    numbers = [_operand(v, method, what, relationship) for v in values]
    if method == "sum":
        return math.fsum(numbers)
    if method == "avg":
        return math.fsum(numbers) / len(numbers)
    if method == "sumsq":
        return math.fsum(x * x for x in numbers)
    if method == "stddev":
        return math.sqrt(_pvariance(numbers))
    raise InvalidRequest(f"unknown aggregation method {method!r}")


def _check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in AGGREGATION_METHODS]
    if unknown:
        raise InvalidRequest(f"unknown aggregation method(s): {', '.join(unknown)}")


def aggregate_samples(
    samples: Iterable[Sample],
    methods: Sequence[str],
    grid: PeriodGrid,
    *,
    what: str = "the attribute",
    relationship: bool = False,
) -> AggregateRows:
    """Aggregate raw samples per period (every method; only periods holding a sample).

    The samples must already be the selected ones (query window, deletions left out).
    `relationship` marks a Relationship's objects: only the counts apply (table 4.5.19.1-3).
    """
    _check_methods(methods)
    periods: dict[tuple[datetime, datetime], list[Any]] = {}
    for sample in samples:
        periods.setdefault(grid.period(sample.at), []).append(sample.value)
    rows: AggregateRows = {method: [] for method in methods}
    for (start, end), values in sorted(periods.items(), key=lambda item: item[0][0]):
        for method in methods:
            rows[method].append((_method_value(method, values, what, relationship), start, end))
    return rows


# --------------------------------------------------------------------------------------------
# from buckets


def _inside_window(bucket: Bucket, lower: datetime | None, upper: datetime | None) -> bool:
    return (lower is None or bucket.start >= lower) and (upper is None or bucket.end <= upper)


def _usable(
    buckets: Iterable[Bucket], grid: PeriodGrid, lower: datetime | None, upper: datetime | None
) -> list[tuple[Bucket, tuple[datetime, datetime]]]:
    """The non-empty buckets inside the window and inside one period, in time order."""
    usable = []
    for bucket in sorted(buckets, key=lambda b: b.start):
        if bucket.count <= 0 or not _inside_window(bucket, lower, upper):
            continue
        period = grid.holds(bucket)
        if period is not None:
            usable.append((bucket, period))
    return usable


def raw_ranges(
    buckets: Iterable[Bucket],
    grid: PeriodGrid,
    *,
    lower: datetime | None,
    upper: datetime | None,
) -> list[tuple[datetime | None, datetime | None]]:
    """The `[start, end)` ranges of the window the usable buckets do not cover (None = open).

    The store reads raw instances only there and passes them to `aggregate_buckets`.
    Buckets must not overlap each other.
    """
    ranges: list[tuple[datetime | None, datetime | None]] = []
    cursor = lower
    for bucket, _ in _usable(buckets, grid, lower, upper):
        if cursor is None or bucket.start > cursor:
            ranges.append((cursor, bucket.start))
        cursor = bucket.end
    if cursor is None or upper is None or cursor < upper:
        ranges.append((cursor, upper))
    return ranges


@dataclass(slots=True)
class _Partial:
    """One period's aggregate being assembled from buckets and raw values."""

    count: int = 0
    sums: list[float] | None = None
    sumsqs: list[float] | None = None
    low: float | None = None
    high: float | None = None

    def add(self, count: int, total: float, squares: float, low: float, high: float) -> None:
        self.count += count
        if self.sums is None or self.sumsqs is None:
            self.sums, self.sumsqs = [], []
        self.sums.append(total)
        self.sumsqs.append(squares)
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def value(self, method: str) -> Any:
        sums = self.sums or []
        if method == "totalCount":
            return self.count
        if method == "sum":
            return math.fsum(sums)
        if method == "avg":
            return math.fsum(sums) / self.count
        if method == "min":
            return self.low
        if method == "max":
            return self.high
        if method == "sumsq":
            return math.fsum(self.sumsqs or [])
        return _stddev(self.count, math.fsum(sums), math.fsum(self.sumsqs or []))


def _stddev(n: int, total: float, squares: float) -> float:
    """stddev from (n, Σx, Σx²), evaluated exactly on the (rounded) sums: no further loss."""
    s1 = Fraction(total)
    variance = (Fraction(squares) * n - s1 * s1) / (n * n)
    return math.sqrt(max(0.0, float(variance)))


def aggregate_periods(
    starts: Sequence[str],
    ends: Sequence[str],
    counts: Sequence[int],
    sums: Sequence[float],
    sumsqs: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    methods: Sequence[str],
) -> WrittenRows:
    """The rows of periods whose buckets are already merged: per period (in time order, each
    holding at least one value) its written bounds, count, sum (of its buckets' sums, with
    `fsum`), sum of squares, min and max. The same values `aggregate_buckets` gives, column by
    column and already in their JSON form — for aggregations over thousands of periods
    (broker/aggregates.py)."""
    _check_methods(methods)
    rows: WrittenRows = {}
    for method in methods:
        if method == "totalCount":
            column: Sequence[Any] = counts
        elif method == "sum":
            column = sums
        elif method == "avg":
            column = [s / n for s, n in zip(sums, counts, strict=True)]
        elif method == "min":
            column = lows
        elif method == "max":
            column = highs
        elif method == "sumsq":
            column = sumsqs
        elif method == "stddev":
            column = [_stddev(*c) for c in zip(counts, sums, sumsqs, strict=True)]
        else:
            raise ValueError(f"{method} cannot be computed from buckets; aggregate raw samples")
        rows[method] = list(zip(column, starts, ends, strict=True))
    return rows


def aggregate_buckets(
    buckets: Iterable[Bucket],
    edges: Iterable[Sample],
    methods: Sequence[str],
    grid: PeriodGrid,
    *,
    lower: datetime | None,
    upper: datetime | None,
    what: str = "the attribute",
) -> AggregateRows:
    """Aggregate from roll-up buckets plus raw samples; equal to `aggregate_samples` on numbers.

    A bucket is used when it lies wholly inside the window and inside one period; `edges`
    must hold every raw sample of the window that no used bucket covers (read the ranges
    `raw_ranges` returns). Samples inside a used bucket are ignored, so passing more is safe.
    Not for distinctCount (ValueError): it needs the raw values.
    """
    _check_methods(methods)
    if "distinctCount" in methods:
        raise ValueError("distinctCount cannot be computed from buckets; aggregate raw samples")
    usable = _usable(buckets, grid, lower, upper)
    partials: dict[tuple[datetime, datetime], _Partial] = {}
    for bucket, period in usable:
        if bucket.sum is None or bucket.sumsq is None or bucket.min is None or bucket.max is None:
            raise ValueError(f"bucket at {bucket.start} counts values but has no sums")
        partials.setdefault(period, _Partial()).add(
            bucket.count, bucket.sum, bucket.sumsq, bucket.min, bucket.max
        )
    starts = [b.start for b, _ in usable]
    for sample in edges:
        at = sample.at
        if (lower is not None and at < lower) or (upper is not None and at >= upper):
            continue
        if _covered(at, usable, starts):
            continue
        x = _operand(sample.value, "sum", what, relationship=False)
        partials.setdefault(grid.period(at), _Partial()).add(1, x, x * x, x, x)
    rows: AggregateRows = {method: [] for method in methods}
    for (start, end), partial in sorted(partials.items(), key=lambda item: item[0][0]):
        for method in methods:
            rows[method].append((partial.value(method), start, end))
    return rows


def _covered(
    at: datetime, usable: list[tuple[Bucket, tuple[datetime, datetime]]], starts: list[datetime]
) -> bool:
    """Whether an instant falls in one of the (sorted, non-overlapping) used buckets."""
    i = bisect.bisect_right(starts, at) - 1
    return i >= 0 and at < usable[i][0].end
