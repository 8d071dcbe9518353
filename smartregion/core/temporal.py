"""The NGSI-LD temporal query (ETSI GS CIM 009 V1.8 §4.11, §6.3.x) and instance selection.

`parse_temporal_query` turns the query parameters of `GET /temporal/entities[/{id}]` into a
`TemporalQuery`; `select_instances` applies it to the instances of one attribute. Pure: the
storage layer may push the same window and `lastN` down to SQL, and must select exactly what
`select_instances` selects.

Rules, with the clause or suite test that fixes each:

* `timerel`: `before` (exclusive bound), `after` (inclusive bound), `between` (`timeAt`
  inclusive, `endTimeAt` exclusive) — §4.11. `timeAt` is required with any `timerel`;
  `endTimeAt` with `between`, and it must lie after `timeAt` (suite 020_09 → BadRequestData).
  `timeAt`/`endTimeAt` without `timerel` are an error too (nothing says what they mean).
* Query Temporal Evolution of Entities needs a temporal query (§5.7.4.4: BadRequestData);
  Retrieve (§5.7.3) does not: without `timerel` the whole history is selected.
* `timeproperty`: observedAt (default), createdAt, modifiedAt, deletedAt. Only instances that
  carry the chosen Temporal Property are selected (§4.11: not conveying it = non-matching); the
  suite relies on this for `timeproperty=deletedAt` (020_17 to 020_20).
* `lastN` (positive integer): the N most recent selected instances of each attribute
  (§5.7.4.4: "the last n timestamps (in descending ordering)"); we return them, like every
  selection, in ascending time order — the suite compares without order.
* The representation comes from `format` (takes precedence, suite 021_19_02) or `options`:
  `temporalValues`, `aggregatedValues` or the normalized default; unknown values are
  InvalidRequest (suite 021_20).
* Aggregation: `aggrMethods` (required with `aggregatedValues`), `aggrPeriodDuration`
  (absent = `P0D` = one period spanning the whole range, §4.5.19.1).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from smartregion.core.durations import Duration, format_instant, parse_duration
from smartregion.core.times import parse_datetime
from smartregion.errors import BadRequestData, InvalidRequest

__all__ = [
    "AGGREGATION_METHODS",
    "SCOPE_HISTORY",
    "TEMPORAL_FORMATS",
    "TIME_PROPERTIES",
    "ContentRange",
    "TemporalQuery",
    "instance_time",
    "limit_instances",
    "parse_temporal_query",
    "select_instances",
]

Timerel = Literal["before", "after", "between"]
TemporalFormat = Literal["normalized", "temporalValues", "aggregatedValues"]

TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
#: the pseudo-attribute under which history keeps an entity's scope (§4.18): instances of type
#: Property whose value is the list of scopes, `[]` with `deletedAt` when the scope was removed
#: (suite 020_19/020_20). Not an IRI, so no attribute can share its series.
SCOPE_HISTORY = "scope"
#: §4.5.19.1, in the order the spec lists them
AGGREGATION_METHODS = (
    "totalCount",
    "distinctCount",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "sumsq",
)
TEMPORAL_FORMATS = ("normalized", "temporalValues", "aggregatedValues")
#: `options` values a temporal retrieval/query accepts (§6.3.x; sysAttrs §4.8)
TEMPORAL_OPTIONS = frozenset({"temporalValues", "aggregatedValues", "sysAttrs", "normalized"})
_ZERO = Duration()


@dataclass(frozen=True, slots=True)
class TemporalQuery:
    """A parsed temporal query: window, time property, lastN, representation, aggregation."""

    timerel: Timerel | None = None
    time_at: datetime | None = None
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None
    format: TemporalFormat = "normalized"
    sys_attrs: bool = False
    aggr_methods: tuple[str, ...] = ()
    aggr_period: Duration = _ZERO

    @property
    def lower(self) -> datetime | None:
        """The inclusive lower bound of the window (after, between), or None."""
        return self.time_at if self.timerel in ("after", "between") else None

    @property
    def upper(self) -> datetime | None:
        """The exclusive upper bound of the window (before: timeAt, between: endTimeAt)."""
        if self.timerel == "before":
            return self.time_at
        return self.end_time_at if self.timerel == "between" else None

    def contains(self, instant: datetime) -> bool:
        """Whether an instant lies in the window (§4.11 bounds)."""
        lower, upper = self.lower, self.upper
        return (lower is None or instant >= lower) and (upper is None or instant < upper)


def _param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestData(f"parameter {name} must be a string")
    return value


def _comma_list(raw: str, name: str) -> list[str]:
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise BadRequestData(f"parameter {name} has an empty item: {raw!r}")
    return items


def _representation(params: Mapping[str, Any]) -> tuple[TemporalFormat, bool]:
    """(format, sysAttrs) from `format` and `options` (format wins, §6.3.x / suite 021_19)."""
    options: set[str] = set()
    raw_options = _param(params, "options")
    if raw_options is not None:
        options = {o.strip() for o in raw_options.split(",")}
        bad = sorted(options - TEMPORAL_OPTIONS)
        if bad:
            raise InvalidRequest(
                f"unknown options value(s) for a temporal request: {', '.join(bad) or '(empty)'}"
            )
    sys_attrs = "sysAttrs" in options
    fmt = _param(params, "format")
    if fmt is not None:
        if fmt not in TEMPORAL_FORMATS:
            raise InvalidRequest(
                f"format {fmt!r} is not one of {', '.join(TEMPORAL_FORMATS)} for a temporal request"
            )
        return fmt, sys_attrs  # type: ignore[return-value]
    if "temporalValues" in options and "aggregatedValues" in options:
        raise InvalidRequest("options cannot ask for both temporalValues and aggregatedValues")
    if "temporalValues" in options:
        return "temporalValues", sys_attrs
    if "aggregatedValues" in options:
        return "aggregatedValues", sys_attrs
    return "normalized", sys_attrs


def parse_temporal_query(
    params: Mapping[str, Any], *, require_timerel: bool = False
) -> TemporalQuery:
    """Parse the temporal parameters of a request (§4.11, §4.5.19, §6.3.x).

    `require_timerel` is True for Query Temporal Evolution of Entities (§5.7.4.4). Content
    errors are BadRequestData; unknown `format`/`options` values are InvalidRequest.
    """
    timerel = _param(params, "timerel")
    time_at_raw = _param(params, "timeAt")
    end_raw = _param(params, "endTimeAt")
    # an empty parameter (`timeAt=`) is as good as absent, and then reported as missing
    time_at_raw = time_at_raw or None
    end_raw = end_raw or None
    if timerel is None or timerel == "":
        if require_timerel:
            raise BadRequestData(
                "a temporal query (timerel with timeAt) is required to query temporal entities"
            )
        if time_at_raw is not None or end_raw is not None:
            raise BadRequestData("timeAt and endTimeAt need timerel (before, after or between)")
        timerel = None
    elif timerel not in ("before", "after", "between"):
        raise BadRequestData(f"timerel {timerel!r} is not one of before, after, between")
    time_at = end_time_at = None
    if timerel is not None:
        if time_at_raw is None:
            raise BadRequestData(f"timerel={timerel} needs timeAt")
        time_at = parse_datetime(time_at_raw, what="timeAt")
        if timerel == "between":
            if end_raw is None:
                raise BadRequestData("timerel=between needs endTimeAt")
            end_time_at = parse_datetime(end_raw, what="endTimeAt")
            if end_time_at <= time_at:
                raise BadRequestData(f"endTimeAt ({end_raw}) must be after timeAt ({time_at_raw})")
        elif end_raw is not None:
            raise BadRequestData(f"endTimeAt is only used with timerel=between, not {timerel}")

    timeproperty = _param(params, "timeproperty") or "observedAt"
    if timeproperty not in TIME_PROPERTIES:
        raise BadRequestData(
            f"timeproperty {timeproperty!r} is not one of {', '.join(TIME_PROPERTIES)}"
        )

    last_n = None
    raw_last_n = _param(params, "lastN")
    if raw_last_n is not None:
        text = raw_last_n.strip()
        if not text.isdigit() or int(text) < 1:
            raise BadRequestData(f"lastN must be a positive integer, got {raw_last_n!r}")
        last_n = int(text)

    fmt, sys_attrs = _representation(params)

    methods: tuple[str, ...] = ()
    raw_methods = _param(params, "aggrMethods")
    if raw_methods is not None:
        listed = _comma_list(raw_methods, "aggrMethods")
        unknown = [m for m in listed if m not in AGGREGATION_METHODS]
        if unknown:
            raise BadRequestData(
                f"aggrMethods value(s) {', '.join(map(repr, unknown))} not among "
                f"{', '.join(AGGREGATION_METHODS)}"
            )
        methods = tuple(dict.fromkeys(listed))  # keep the client's order, drop repeats
    period = _ZERO
    raw_period = _param(params, "aggrPeriodDuration")
    if raw_period is not None:
        period = parse_duration(raw_period)
    if fmt == "aggregatedValues" and not methods:
        raise BadRequestData("the aggregated temporal representation needs aggrMethods")

    return TemporalQuery(
        timerel=timerel,  # type: ignore[arg-type]
        time_at=time_at,
        end_time_at=end_time_at,
        timeproperty=timeproperty,
        last_n=last_n,
        format=fmt,
        sys_attrs=sys_attrs,
        aggr_methods=methods,
        aggr_period=period,
    )


@functools.lru_cache(maxsize=65536)
def _parse_instant(text: str) -> datetime | None:
    try:
        return parse_datetime(text)
    except BadRequestData:
        return None


def instance_time(instance: Mapping[str, Any], timeproperty: str) -> datetime | None:
    """The instance's Temporal Property as an aware datetime, or None when it has none."""
    raw = instance.get(timeproperty)
    return _parse_instant(raw) if isinstance(raw, str) else None


def select_instances(
    instances: Iterable[dict[str, Any]], query: TemporalQuery
) -> list[dict[str, Any]]:
    """The instances of one attribute the query selects, in ascending time order.

    Selected: instances carrying `query.timeproperty` whose time lies in the window; with
    `lastN`, only the N most recent of them. Ties in time are broken by `instanceId` so the
    order (and which instances `lastN` keeps) is deterministic.
    """
    timed: list[tuple[datetime, str, dict[str, Any]]] = []
    for inst in instances:
        at = instance_time(inst, query.timeproperty)
        if at is not None and query.contains(at):
            timed.append((at, str(inst.get("instanceId", "")), inst))
    timed.sort(key=lambda item: (item[0], item[1]))
    if query.last_n is not None:
        timed = timed[-query.last_n :]
    return [inst for _, _, inst in timed]


@dataclass(frozen=True, slots=True)
class ContentRange:
    """The part of a temporal answer a server cut short (NGSI-LD 1.8 §6.3.10, 206)."""

    start: datetime
    end: datetime
    #: the requested number of instances (lastN), None when unknown
    size: int | None

    def header(self) -> str:
        """The `Content-Range` header value: `date-time <start>-<end>/<size or *>`."""
        size = "*" if self.size is None else str(self.size)
        return f"date-time {format_instant(self.start)}-{format_instant(self.end)}/{size}"


def limit_instances(
    docs: Sequence[Mapping[str, Any]], query: TemporalQuery, limit: int
) -> tuple[list[dict[str, Any]], ContentRange | None]:
    """Cut temporal documents to at most about `limit` instances in all (§6.3.10).

    The cut is a point in time, the same for every attribute of every entity of the answer:
    oldest first, it keeps what lies up to the `limit`-th instance's time; with `lastN` (newest
    first) what lies from it on. An attribute left with nothing stays, as an empty array, so a
    client sees where the cut fell (suite TP 020_14). The range reports the window actually
    covered: from `timeAt` (after, between) or the first instance to the cut, or, newest first,
    from `endTimeAt`/`timeAt` (between, before) or the latest instance down to the cut.
    """
    times = sorted(
        t
        for doc in docs
        for instances in doc.get("attrs", {}).values()
        for inst in instances
        if (t := instance_time(inst, query.timeproperty)) is not None
    )
    if len(times) <= limit or limit <= 0:
        return [dict(d) for d in docs], None
    newest_first = query.last_n is not None
    if newest_first:
        cut = times[-limit]
        start = (
            query.end_time_at
            if query.timerel == "between"
            else query.time_at
            if query.timerel == "before"
            else times[-1]
        )
    else:
        cut = times[limit - 1]
        start = query.time_at if query.timerel in ("after", "between") else times[0]
    assert start is not None

    def kept(inst: Mapping[str, Any]) -> bool:
        t = instance_time(inst, query.timeproperty)
        return t is not None and (t >= cut if newest_first else t <= cut)

    out = []
    for doc in docs:
        attrs = {
            iri: [i for i in instances if kept(i)]
            for iri, instances in doc.get("attrs", {}).items()
        }
        out.append({**doc, "attrs": attrs})
    return out, ContentRange(start, cut, query.last_n if newest_first else None)
