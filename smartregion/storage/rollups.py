"""Attribute-history rows and roll-ups: the pure part both backends share (no I/O).

Times are integers: microseconds since the Unix epoch, UTC. An instance row keeps the instance's
observation time `t` (observedAt, or modifiedAt when it has none), the two system times as
deltas (`dm` = modifiedAt − t, NULL when the instance has no observedAt, so modifiedAt = t;
`dc` = createdAt − modifiedAt, NULL when 0), the numeric value `num` (NULL when the value is not
a number) and `doc`: what is left of the internal instance document once those and the series'
columns are taken out (NULL when nothing is left — the usual case for a plain numeric Property).

Roll-ups summarise the numeric values of a series per bucket of one of `LEVELS` (epoch-aligned,
UTC): count, sum, sum of squares, min, max, and the first and last value with their times.
"First" and "last" follow the order of `(t, seq)`: of two instances with the same time, the one
recorded later is the later one. A summary is exact for count, min, max, first and last; sums
are floating-point, so two summaries of the same values added in another order may differ in the
last bits (compare them with a relative tolerance).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import orjson

from smartregion.core.times import parse_datetime

__all__ = [
    "DAY",
    "FINEST",
    "HOUR",
    "LEVELS",
    "MINUTE",
    "EncodedInstance",
    "Summary",
    "assemble",
    "decode_instance",
    "encode_instance",
    "format_micros",
    "merge_spans",
    "micros",
    "numeric_value",
    "shape_key",
    "shape_ref",
    "shareable",
    "summarise_points",
]

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
#: roll-up levels, finest first: (level code stored in the table, bucket width in µs). Code 0
#: (minutes) is reserved, not kept: for the reference load — one value a minute — a minute
#: level holds one roll-up row per instance, which doubled the write work and tripled the bytes
#: per instance (measured, docs/architecture.md); windows are cut to hours and the sub-hour
#: edges read raw rows instead (at most 2 × 59 one-minute values).
LEVELS: tuple[tuple[int, int], ...] = ((1, HOUR), (2, DAY))
#: the finest level's bucket width: raw rows are summarised into these buckets
FINEST = LEVELS[0][1]
WIDTHS: dict[int, int] = dict(LEVELS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: members of an instance document kept in columns (or in the series row) instead of `doc`
_IN_COLUMNS = ("observedAt", "createdAt", "modifiedAt", "datasetId", "instanceId")
#: marks a `doc` whose numeric value was a float with an integral value (21.0, not 21)
_FLOAT_MARK = "~f"
_EXACT = 2**53
#: a `doc` made only of these members is kept once, in the `shape` dictionary, and the row
#: holds a reference to it: `#` and the key's bytes (`{"unitCode":"CEL"}` costs 2 bytes, not 18)
_SHAPE_MEMBERS = frozenset({"type", "unitCode", _FLOAT_MARK})
_SHAPE_MARK = b"#"


def micros(value: str | datetime) -> int:
    """An NGSI-LD DateTime (or an aware datetime) as integer µs since the epoch."""
    if isinstance(value, str):
        return _micros_of_text(value)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=4096)
def _micros_of_text(value: str) -> int:
    # the instances of one write mostly share their times (one observedAt, one modifiedAt)
    delta = parse_datetime(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_micros(value: int) -> str:
    """µs since the epoch as an NGSI-LD DateTime (`YYYY-MM-DDTHH:MM:SS.ffffffZ`)."""
    seconds, us = divmod(value, 1_000_000)
    when = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None, microsecond=us)
    return when.isoformat(timespec="microseconds") + "Z"


def format_observed(value: int) -> str:
    """µs since the epoch as an observedAt DateTime written as short as exact
    (`…T12:03:00Z`, `…T12:03:00.250Z`): clients' observation times usually have whole seconds
    or milliseconds, and read back as they were sent (the ETSI suite compares them as text)."""
    seconds, us = divmod(value, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    if us:
        fraction = f"{us:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"


def numeric_value(instance: dict[str, Any]) -> float | None:
    """The value aggregated for an instance: a Property's finite number (not a boolean)."""
    if instance.get("type", "Property") != "Property":
        return None
    value = instance.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class EncodedInstance(NamedTuple):
    """An instance document as the columns of its row (see the module docstring).

    A named tuple, not a frozen dataclass: a batch encodes thousands of these, and a tuple is
    made in a third of the time."""

    t: int
    dm: int | None
    dc: int | None
    num: float | None
    doc: bytes | None
    dataset_id: str


def encode_instance(instance: dict[str, Any], now: int) -> EncodedInstance:
    """Split an internal attribute instance into its row's columns (`now` for missing times).

    The hottest function of history recording (every attribute instance of every write): the
    number is picked out here as `numeric_value` picks it, without calling it."""
    get = instance.get
    text = get("modifiedAt")
    modified = now if text is None else micros(text)
    text = get("createdAt")
    created = modified if text is None else micros(text)
    observed = get("observedAt")
    if observed is not None:
        t = micros(observed)
        dm: int | None = modified - t
    else:
        t, dm = modified, None
    rest = dict(instance)
    for member in _IN_COLUMNS:
        rest.pop(member, None)
    num: float | None = None
    if rest.get("type", "Property") == "Property":
        rest.pop("type", None)
        value: Any = rest.get("value")
        kind = type(value)
        if kind is float:
            if math.isfinite(value):
                num = value
                del rest["value"]
                if value.is_integer():
                    rest[_FLOAT_MARK] = 1
        elif kind is int:
            num = float(value)
            del rest["value"]
            if abs(value) > _EXACT:
                rest["value"] = value  # not exact as a double: kept verbatim as well
    return EncodedInstance(
        t,
        dm,
        None if created == modified else created - modified,
        num,
        orjson.dumps(rest) if rest else None,
        get("datasetId") or "",
    )


def shareable(doc: bytes) -> bool:
    """Whether a row's `doc` is kept in the shape dictionary (see `_SHAPE_MEMBERS`)."""
    members: dict[str, Any] = orjson.loads(doc)
    return members.keys() <= _SHAPE_MEMBERS


def shape_ref(key: int) -> bytes:
    """The `doc` of a row whose document is shape `key`."""
    return _SHAPE_MARK + key.to_bytes((key.bit_length() + 7) // 8 or 1, "little")


def shape_key(doc: bytes | None) -> int | None:
    """The shape a row's `doc` refers to, or None when it holds its document itself."""
    if doc is None or doc[:1] != _SHAPE_MARK:
        return None
    return int.from_bytes(doc[1:], "little")


def decode_instance(
    t: int, dm: int | None, dc: int | None, num: float | None, doc: bytes | None, dataset_id: str
) -> dict[str, Any]:
    """The internal instance document of a row (without its instanceId)."""
    rest: dict[str, Any] = orjson.loads(doc) if doc else {}
    out: dict[str, Any] = {"type": rest.pop("type", "Property")}
    as_float = rest.pop(_FLOAT_MARK, None)
    if num is not None and "value" not in rest:
        out["value"] = num if as_float or not num.is_integer() else int(num)
    out.update(rest)
    modified = t if dm is None else t + dm
    if dm is not None:
        out["observedAt"] = format_observed(t)
    out["createdAt"] = format_micros(modified if dc is None else modified + dc)
    out["modifiedAt"] = format_micros(modified)
    if dataset_id:
        out["datasetId"] = dataset_id
    return out


@dataclass(slots=True)
class Summary:
    """The numeric summary of a set of values: a roll-up bucket or a whole window."""

    count: int
    total: float
    sumsq: float
    vmin: float
    vmax: float
    first_t: int
    first_v: float
    last_t: int
    last_v: float

    @classmethod
    def of(cls, t: int, v: float) -> Summary:
        """The summary of one value."""
        return cls(1, v, v * v, v, v, t, v, t, v)

    def add(self, t: int, v: float) -> None:
        """Add a value that comes after every value already in (in `(t, seq)` order)."""
        self.count += 1
        self.total += v
        self.sumsq += v * v
        if v < self.vmin:
            self.vmin = v
        if v > self.vmax:
            self.vmax = v
        self.last_t, self.last_v = t, v

    def merge(self, other: Summary) -> None:
        """Fold in the summary of values recorded after this one's (ties in time: later wins)."""
        self.count += other.count
        self.total += other.total
        self.sumsq += other.sumsq
        self.vmin = min(self.vmin, other.vmin)
        self.vmax = max(self.vmax, other.vmax)
        if other.first_t < self.first_t:
            self.first_t, self.first_v = other.first_t, other.first_v
        if other.last_t >= self.last_t:
            self.last_t, self.last_v = other.last_t, other.last_v

    def astuple(self) -> tuple[int, float, float, float, float, int, float, int, float]:
        """The columns of a roll-up row after its key."""
        return (
            self.count, self.total, self.sumsq, self.vmin, self.vmax,
            self.first_t, self.first_v, self.last_t, self.last_v,
        )  # fmt: skip


def summarise_points(points: Iterable[tuple[int, float]]) -> Summary | None:
    """The summary of `(t, value)` points given in `(t, seq)` order; None when there are none."""
    out: Summary | None = None
    for t, v in points:
        if out is None:
            out = Summary.of(t, v)
        else:
            out.add(t, v)
    return out


def bucket_partials(
    points: Iterable[tuple[int, int, float]],
) -> dict[tuple[int, int, int], Summary]:
    """Roll-up partials of `(series, t, value)` points at every level, keyed by
    `(series, level, bucket)`; points of one series at one time must come in recording order."""
    finest: dict[tuple[int, int], Summary] = {}
    for series, t, v in points:
        key = (series, t // FINEST)
        found = finest.get(key)
        if found is None:
            finest[key] = Summary.of(t, v)
        else:
            # a batch may hold a bucket's values out of order: keep first/last by time
            found.count += 1
            found.total += v
            found.sumsq += v * v
            if v < found.vmin:
                found.vmin = v
            if v > found.vmax:
                found.vmax = v
            if t < found.first_t:
                found.first_t, found.first_v = t, v
            if t >= found.last_t:
                found.last_t, found.last_v = t, v
    first_level = LEVELS[0][0]
    out: dict[tuple[int, int, int], Summary] = {
        (series, first_level, bucket): summary for (series, bucket), summary in finest.items()
    }
    for level, width in LEVELS[1:]:
        ratio = width // FINEST
        for (series, bucket), summary in finest.items():
            parent = (series, level, bucket // ratio)
            known = out.get(parent)
            if known is None:
                out[parent] = Summary(*summary.astuple())
            else:
                known.merge(summary)
    return out


def partial_rows(points: Sequence[tuple[int, int, float]]) -> list[tuple[Any, ...]]:
    """The roll-up rows `(series, level, bucket, *Summary.astuple())` of `bucket_partials`,
    sorted by key (the order concurrent writers upsert them in).

    A write usually brings one point per series (a batch of entities, a PATCH): then each
    bucket holds that point alone, and its rows are written out directly — the same numbers,
    without a `Summary` per bucket and level (0.22 ms instead of 1.1 ms for 500 points)."""
    if len({p[0] for p in points}) == len(points):
        return [
            (series, level, t // width, 1, v, v * v, v, v, t, v, t, v)
            for series, t, v in sorted(points)
            for level, width in LEVELS
        ]
    partials = bucket_partials(points)
    return [(*key, *partials[key].astuple()) for key in sorted(partials)]


def split_window(start: int, end: int) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
    """Cover `[start, end)` with the fewest whole buckets, coarsest first.

    Returns the raw edges (`(lo, hi)` ranges shorter than the finest bucket) and the bucket
    ranges (`(level, first bucket, last bucket + 1)`): a year reads at most ~365 day and 2·23
    hour roll-up rows plus two sub-hour raw edges.
    """
    for level, width in reversed(LEVELS):
        # the usual windows (aggrPeriodDuration PT1H, P1D, …) are whole buckets of one level
        if start % width == 0 and end % width == 0 and end > start:
            if width == LEVELS[-1][1] or end - start < LEVELS[-1][1]:
                return [], [(level, start // width, end // width)]
            break
    raw: list[tuple[int, int]] = []
    buckets: list[tuple[int, int, int]] = []

    def cover(lo: int, hi: int, levels: list[tuple[int, int]]) -> None:
        if lo >= hi:
            return
        if not levels:
            raw.append((lo, hi))
            return
        (level, width), finer = levels[0], levels[1:]
        first = -(-lo // width)
        last = hi // width
        if first >= last:
            cover(lo, hi, finer)
            return
        cover(lo, first * width, finer)
        buckets.append((level, first, last))
        cover(last * width, hi, finer)

    cover(start, end, list(reversed(LEVELS)))
    return raw, buckets


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted `[lo, hi)` spans with touching or overlapping ones joined (fewer index ranges)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def assemble(
    plan: tuple[list[tuple[int, int]], list[tuple[int, int, int]]],
    stored: dict[tuple[int, int], Summary],
    points: list[tuple[int, int, float]],
) -> Summary | None:
    """A window's summary from its pieces (time-ordered: disjoint ranges, merged in order)."""
    edges, buckets = plan
    if not edges and len(buckets) == 1 and buckets[0][2] - buckets[0][1] == 1:
        one = stored.get((buckets[0][0], buckets[0][1]))  # a window of exactly one bucket
        return None if one is None else Summary(*one.astuple())
    pieces: list[tuple[int, Summary]] = []
    for level, first, last in buckets:
        width = WIDTHS[level]
        for bucket in range(first, last) if last - first <= 4096 else ():
            found = stored.get((level, bucket))
            if found is not None:
                pieces.append((bucket * width, found))
        if last - first > 4096:  # a long span: walk what is stored instead of every bucket
            pieces.extend(
                (b * width, s) for (lv, b), s in stored.items() if lv == level and first <= b < last
            )
    for lo, hi in edges:
        at = bisect_left(points, (lo,))
        part = summarise_points(
            (t, v) for t, _, v in points[at : bisect_left(points, (hi,), lo=at)]
        )
        if part is not None:
            pieces.append((lo, part))
    pieces.sort(key=lambda p: p[0])
    out: Summary | None = None
    for _, part in pieces:
        if out is None:
            out = Summary(*part.astuple())
        else:
            out.merge(part)
    return out


def partial_columns(
    keys: Sequence[int], times: Sequence[int], nums: Sequence[float | None]
) -> list[list[Any]]:
    """`bucket_partials` of the points `(keys[i], times[i], nums[i])` (rows without a number are
    left out; given in recording order), column-wise with numpy for a bulk load: the twelve
    roll-up columns (series, level, bucket, count, sum, sum of squares, min, max, first_t,
    first_v, last_t, last_v), rows sorted by (series, level, bucket). Sums may differ from a
    row-at-a-time fold in the last bits (the order of the additions)."""
    if None in nums:
        chosen = [i for i, n in enumerate(nums) if n is not None]
        keys = [keys[i] for i in chosen]
        times = [times[i] for i in chosen]
        nums = [nums[i] for i in chosen]
    out: list[list[Any]] = [[] for _ in range(12)]
    if not nums:
        return out
    k = np.asarray(keys, dtype=np.int64)
    t = np.asarray(times, dtype=np.int64)
    v = np.asarray(nums, dtype=np.float64)
    recorded = np.arange(len(v))
    parts: list[list[Any]] = []
    for level, width in LEVELS:
        bucket = t // width  # floors, as Python's // does
        # by (series, bucket, t, recording order): a group's first row is its first value,
        # its last row its last (ties in time: the later recorded)
        order = np.lexsort((recorded, t, bucket, k))
        ks, bs, ts, vs = k[order], bucket[order], t[order], v[order]
        starts = np.flatnonzero(np.r_[True, (ks[1:] != ks[:-1]) | (bs[1:] != bs[:-1])])
        ends = np.r_[starts[1:], len(vs)] - 1
        parts.append([
            ks[starts], np.full(len(starts), level, dtype=np.int64), bs[starts],
            np.diff(np.r_[starts, len(vs)]), np.add.reduceat(vs, starts),
            np.add.reduceat(vs * vs, starts), np.minimum.reduceat(vs, starts),
            np.maximum.reduceat(vs, starts), ts[starts], vs[starts], ts[ends], vs[ends],
        ])  # fmt: skip
    merged = [np.concatenate([p[c] for p in parts]) for c in range(12)]
    order = np.lexsort((merged[2], merged[1], merged[0]))
    for column, values in zip(out, merged, strict=True):
        column.extend(values[order].tolist())
    return out
