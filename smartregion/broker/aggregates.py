"""The aggregated temporal representation from roll-ups (NGSI-LD 1.8 §4.5.19), when that is exact.

`core.temporal_rendering.aggregate_entity` aggregates the raw instances a query selects: a year
of one-minute values reads 525,600 of them. Here the same answer comes from the series' hour and
day roll-ups plus the raw values at the window's edges — a year per day reads ~365 roll-up rows,
per hour ~8,760 — whenever that is exact:

* the query: `timeproperty=observedAt` (roll-ups are kept on the observation time), no `lastN`,
  methods among `core.aggregation.BUCKET_METHODS` (distinctCount needs the values);
* each series the entity's answer aggregates is *plain* in the window: every instance there has
  an observedAt and a number (`HistoryStore.series_spans`, an index probe). A string, a
  boolean, a deletion or an instance without observedAt in the window sends the entity to the
  raw path, which decides what those mean.

Periods follow the core's rules (`PeriodGrid.for_window`): they start at `timeAt`, else at the
earliest instance of the entity's kept attributes — read as the first `t` of each series, not
from its rows. The window is covered once, coarsest level first, by the roll-up levels whose
buckets never straddle a period (a level is usable when the grid's origin and duration are
whole multiples of its width; for a zero duration every level is), and raw points for the rest
(`cover`); a grid no level fits is summarised per period (`HistoryStore.summarise`). Results
equal the raw path's: counts, min and max exactly, sums and what derives from them up to the
floating-point rounding `core.aggregation` documents (a bucket's sum is added in recording
order; the buckets of one period are added with `fsum`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from smartregion.core.aggregation import BUCKET_METHODS, PeriodGrid, aggregate_periods
from smartregion.core.durations import format_instant, format_instant_micros
from smartregion.core.temporal import TemporalQuery
from smartregion.core.temporal_rendering import EntityAggregates
from smartregion.storage.history import HistoryStore, Series, SeriesSpan
from smartregion.storage.rollups import LEVELS, WIDTHS, micros

__all__ = ["Aggregates", "aggregate_from_rollups", "cover", "from_rollups"]

#: attribute IRI -> [(attribute kind, datasetId, rows)], as `aggregate_entity` returns them
Aggregates = EntityAggregates

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_rollups(query: TemporalQuery) -> bool:
    """Whether an aggregated query may be answered from roll-ups (for plain series)."""
    return (
        query.format == "aggregatedValues"
        and query.timeproperty == "observedAt"
        and query.last_n is None
        and frozenset(query.aggr_methods) <= BUCKET_METHODS
    )


def _instant(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def cover(
    lo: int, hi: int, levels: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """Cover `[lo, hi)` with whole buckets of `levels` (level, width; coarsest first) and raw
    ranges for what no bucket fits: (bucket ranges `(level, first, last + 1)`, raw ranges)."""
    buckets: list[tuple[int, int, int]] = []
    raw: list[tuple[int, int]] = []

    def fill(a: int, b: int, rest: Sequence[tuple[int, int]]) -> None:
        if a >= b:
            return
        if not rest:
            raw.append((a, b))
            return
        (level, width), finer = rest[0], rest[1:]
        first, last = -(-a // width), b // width
        if first >= last:
            fill(a, b, finer)
            return
        fill(a, first * width, finer)
        buckets.append((level, first, last))
        fill(last * width, b, finer)

    fill(lo, hi, levels)
    return buckets, raw


def _usable_levels(grid: PeriodGrid) -> list[tuple[int, int]]:
    """The roll-up levels (coarsest first) none of whose buckets straddles a period boundary."""
    coarsest_first = list(reversed(LEVELS))
    if grid.duration.is_zero:
        return coarsest_first
    origin = micros(grid.origin)
    # whole months move the date and keep the time of day: multiples of a day (and an hour)
    return [
        (level, width)
        for level, width in coarsest_first
        if origin % width == 0 and grid.duration.micros % width == 0
    ]


class _Periods:
    """Period indexes of µs instants and the periods' bounds as shared datetimes."""

    def __init__(self, grid: PeriodGrid, lo: int, hi: int) -> None:
        self.grid = grid
        self.origin = micros(grid.origin)
        duration = grid.duration
        self.step = duration.micros if not duration.months and not duration.is_zero else 0
        self.starts: list[int] = []
        self.k0 = 0
        if duration.months:
            # calendar periods: their starts in µs over the span, found by bisection
            self.k0 = duration.index_of(grid.origin, _instant(lo))
            k1 = duration.index_of(grid.origin, _instant(hi - 1))
            self.starts = [micros(duration.shift(grid.origin, k)) for k in range(self.k0, k1 + 2)]
        self._bounds: dict[int, datetime] = {}

    def index(self) -> Callable[[int], int]:
        """A function from an instant (µs) to its period's index."""
        if self.grid.duration.is_zero:
            return lambda _t: 0
        if self.step:
            origin, step = self.origin, self.step
            return lambda t: (t - origin) // step
        starts, k0 = self.starts, self.k0
        return lambda t: k0 + bisect.bisect_right(starts, t) - 1

    def bounds(self, k: int) -> tuple[datetime, datetime]:
        """Period `k`'s start and end (the same objects for a shared bound)."""
        grid = self.grid
        if grid.duration.is_zero:
            return grid.period(grid.origin)
        found = self._bounds
        start = found.get(k)
        if start is None:
            start = found[k] = grid.duration.shift(grid.origin, k)
        end = found.get(k + 1)
        if end is None:
            end = found[k + 1] = grid.duration.shift(grid.origin, k + 1)
        return start, end

    def written_bounds(self, ks: Sequence[int]) -> tuple[list[str], list[str]]:
        """The written start and end (`format_instant`) of every period k (ascending): each
        bound written once — for fixed-length periods from its µs, without a datetime (a year
        per hour: 8,761 bounds)."""
        if not ks:
            return [], []
        if self.grid.duration.is_zero:  # one period
            start, end = self.bounds(0)
            return [format_instant(start)] * len(ks), [format_instant(end)] * len(ks)
        bound: Callable[[int], str]
        if self.step:
            origin, step = self.origin, self.step
            bound = lambda k: format_instant_micros(origin + k * step)  # noqa: E731
        else:
            bound = lambda k: format_instant(self.bounds(k)[0])  # noqa: E731
        first, last = ks[0], ks[-1]
        if last - first + 2 > 2 * len(ks):
            # sparse periods over a long window: only the bounds they have
            return [bound(k) for k in ks], [bound(k + 1) for k in ks]
        texts = [bound(k) for k in range(first, last + 2)]
        return [texts[k - first] for k in ks], [texts[k - first + 1] for k in ks]

    def window(self, k: int, lo: int, hi: int) -> tuple[int, int]:
        """Period `k` cut to `[lo, hi)`, in µs."""
        start, end = self.bounds(k)
        return max(lo, micros(start)), min(hi, micros(end))


def _columns(
    keyed: list[tuple[int, int, float, float, float, float]],
) -> tuple[list[int], list[int], list[float], list[float], list[float], list[float]]:
    """Per period holding values (in order): its index, count, sum, sum of squares, min and
    max, from `(period, count, sum, sum of squares, min, max)` pieces — columns, not objects
    per period (a year per hour is 8,760 of them)."""
    keyed.sort(key=lambda piece: piece[0])
    ks: list[int] = []
    counts: list[int] = []
    sums: list[float] = []
    squares: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    i, size = 0, len(keyed)
    while i < size:
        k, n, s, q, low, high = keyed[i]
        j = i + 1
        if j < size and keyed[j][0] == k:
            # several pieces in one period: their sums added with fsum (core.aggregation)
            while j < size and keyed[j][0] == k:
                j += 1
            group = keyed[i:j]
            n = sum(p[1] for p in group)
            s = math.fsum(p[2] for p in group)
            q = math.fsum(p[3] for p in group)
            low = min(p[4] for p in group)
            high = max(p[5] for p in group)
        ks.append(k)
        counts.append(n)
        sums.append(s)
        squares.append(q)
        lows.append(low)
        highs.append(high)
        i = j
    return ks, counts, sums, squares, lows, highs


async def _series_pieces(
    history: HistoryStore, key: int, periods: _Periods, lo: int, hi: int
) -> list[tuple[int, int, float, float, float, float]]:
    """The pieces (period, count, sum, sum of squares, min, max) of one series in `[lo, hi)`."""
    index = periods.index()
    levels = _usable_levels(periods.grid)
    if not levels:
        # no level fits the grid: each period (cut to the span) summarised on its own
        ks = range(index(lo), index(hi - 1) + 1)
        windows = [periods.window(k, lo, hi) for k in ks]
        summaries = await history.summarise(key, windows)
        return [
            (k, u.count, u.total, u.sumsq, u.vmin, u.vmax)
            for k, u in zip(ks, summaries, strict=True)
            if u is not None
        ]
    buckets, raw = cover(lo, hi, levels)
    rows, points = await history.read_cover(key, buckets, raw)
    if periods.step:
        # fixed-length periods: the index inline (no call per roll-up row)
        origin, step = periods.origin, periods.step
        keyed = [
            ((bucket * WIDTHS[level] - origin) // step, n, s, q, low, high)
            for level, bucket, n, s, q, low, high in rows
        ]
        keyed.extend(((t - origin) // step, 1, v, v * v, v, v) for t, v in points)
        return keyed
    keyed = [
        (index(bucket * WIDTHS[level]), n, s, q, low, high)
        for level, bucket, n, s, q, low, high in rows
    ]
    keyed.extend((index(t), 1, v, v * v, v, v) for t, v in points)
    return keyed


async def aggregate_from_rollups(
    history: HistoryStore,
    series: Sequence[Series],
    spans: Sequence[SeriesSpan],
    query: TemporalQuery,
) -> Aggregates:
    """One entity's aggregates from the roll-ups of its (plain) series, with their spans in the
    query's window; the series are the kept attributes' (their order is free)."""
    present = [(s, span) for s, span in zip(series, spans, strict=True) if span.first is not None]
    out: Aggregates = {}
    if not present:
        return out
    first = min(span.first for _, span in present if span.first is not None)
    last = max(span.last for _, span in present if span.last is not None)
    grid = PeriodGrid.for_window(
        query.aggr_period,
        time_at=query.time_at,
        lower=query.lower,
        upper=query.upper,
        first=_instant(first),
        last=_instant(last),
    )
    periods = _Periods(grid, first, last + 1)
    present.sort(key=lambda item: (item[0].attr, item[0].dataset_id))
    for s, span in present:
        assert span.first is not None and span.last is not None
        pieces = await _series_pieces(history, s.key, periods, span.first, span.last + 1)
        ks, counts, sums, squares, lows, highs = _columns(pieces)
        starts, ends = periods.written_bounds(ks)
        rows = aggregate_periods(
            starts, ends, counts, sums, squares, lows, highs, query.aggr_methods
        )
        out.setdefault(s.attr, []).append(("Property", s.dataset_id or None, rows))
    return out
