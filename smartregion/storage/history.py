"""Attribute history (attribute instances) and roll-ups in storage: the interface and its values.

Contract (every backend; `tests/storage/test_history_contract.py`):

- A **series** is one (tenant, entity id, attribute IRI, datasetId) — datasetId "" for the
  default instance. It exists while it has instances; its instances are ordered by `(t, seq)`:
  `t` is the observation time (observedAt, or modifiedAt when the instance has none — the
  instant the value became current), `seq` breaks ties in recording order. Times are µs since
  the epoch (`smartregion.storage.rollups.micros`); windows are `[start, end)`.
- Instances enter history either with the entity write that produced them — a
  `RecordInstances` op returned by `Store.transact`'s `mutate`, written in the SAME transaction
  (an entity write that fails records nothing, and no instance is committed without its write;
  instances must carry valid DateTimes — the broker validates them — since one that cannot be
  written fails its whole group commit on PostgreSQL, not only its own call) —
  or on their own (`append_instances`, `bulk_load`: each call all-or-nothing).
- Roll-ups (per series, per minute/hour/day bucket: count, sum, sum of squares, min, max,
  first, last of the numeric values) are maintained in the transaction that changes the raw
  rows: inserts (also late and out-of-order ones) fold into the buckets; deletions and patches
  recompute the affected buckets from raw rows. After any sequence of writes, every roll-up row
  equals the summary of the raw rows of its bucket (`rollups.Summary`: sums up to floating-point
  rounding) — except after a purge that kept roll-ups longer than raw data, by request.
- **Observations are recorded once.** An instance with an observedAt whose series already has
  one at that observedAt with the same value and members (its number and stored document; the
  system times aside) is the same observation delivered again — a redelivered MQTT message, a
  replayed stream page, a client's retry — and is not recorded again (nor folded into the
  roll-ups); one probe of the `(series, t)` key per instance, in the recording statement's
  transaction. A different value at the same time is another instance.
- `instanceId`s are URIs the store makes (`urn:ngsi-ld:attribute:instance:<series>.<t>.<seq>`);
  an instance patched to another observation time moves, and gets a new one.
- The latest value of an attribute is not read from history: it is the entity's current document.
"""

from __future__ import annotations

import abc
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from smartregion.errors import BadRequestData
from smartregion.storage.rollups import (
    WIDTHS,
    Summary,
    decode_instance,
    encode_instance,
    micros,
    shape_key,
    shareable,
)

__all__ = [
    "TIME_PROPERTIES",
    "BulkColumns",
    "BulkPlan",
    "BulkRow",
    "CoverRow",
    "DropHistory",
    "HistoryQuery",
    "HistoryStore",
    "InstanceRow",
    "LoadInstances",
    "PreparedBulk",
    "RecordInstances",
    "Rollup",
    "Series",
    "SeriesHistory",
    "SeriesSpan",
    "Shapes",
    "StoredInstance",
    "format_instance_id",
    "now_micros",
    "page_plan",
    "parse_instance_id",
    "plan_bulk",
    "prepare_bulk",
    "shared_docs",
    "stored_instance",
    "take_history_rows",
]

#: NGSI-LD `timeproperty` values (§4.11, temporal queries) this store can select on
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt")

_EXACT = 2**53
_INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"
_INSTANCE_ID = re.compile(r"urn:ngsi-ld:attribute:instance:(\d+)\.(-?\d+)\.(\d+)")


def format_instance_id(series_key: int, t: int, seq: int) -> str:
    """The instanceId URI of the row `(series_key, t, seq)`."""
    return f"{_INSTANCE_PREFIX}{series_key}.{t}.{seq}"


def parse_instance_id(instance_id: str) -> tuple[int, int, int] | None:
    """The row key an instanceId names, or None when it is not one of ours."""
    found = _INSTANCE_ID.fullmatch(instance_id)
    if found is None:
        return None
    return int(found[1]), int(found[2]), int(found[3])


class InstanceRow(NamedTuple):
    """One attribute instance to record: the internal instance document (`docs/architecture.md`)
    with its observedAt/createdAt/modifiedAt/datasetId members, under an entity and attribute.
    (A named tuple: every attribute instance a write changes makes one.)"""

    entity_id: str
    #: the expanded attribute IRI
    attr: str
    instance: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordInstances:
    """A write op: record these instances (in the transaction's tenant) with the entity writes."""

    rows: tuple[InstanceRow, ...]


@dataclass(frozen=True, slots=True)
class LoadInstances:
    """Bulk rows checked and prepared (`HistoryStore.prepare_load`): as an argument of
    `bulk_load`, or as a write op loading them in the same transaction as the entity writes
    (`smartregion import timeseries`: a batch's current values and its history commit together).
    The op does not lock the rows' entities: give it only to a transaction on all of them."""

    prepared: PreparedBulk
    now: int

    def __len__(self) -> int:
        return len(self.prepared.times)


@dataclass(frozen=True, slots=True)
class DropHistory:
    """A write op: delete an entity's history, or one attribute's (one datasetId's: "" for the
    default instance; None: all), in the same transaction as the entity writes."""

    entity_id: str
    attr: str | None = None
    dataset_id: str | None = None


@dataclass(frozen=True, slots=True)
class BulkRow:
    """One row of a bulk historical load (`smartregion import timeseries`)."""

    entity_id: str
    attr: str
    #: an NGSI-LD DateTime or µs since the epoch
    observed_at: str | int
    value: Any
    unit: str | None = None
    dataset_id: str = ""


@dataclass(frozen=True, slots=True)
class Series:
    """A series: its key and what it is the history of."""

    key: int
    entity_id: str
    attr: str
    dataset_id: str


@dataclass(slots=True)
class StoredInstance:
    """An instance read back: its row key, instanceId and internal document."""

    series_key: int
    t: int
    seq: int
    #: the internal instance document, with instanceId, observedAt (when it had one),
    #: createdAt, modifiedAt and datasetId (when not the default)
    doc: dict[str, Any]

    @property
    def instance_id(self) -> str:
        """The instanceId URI."""
        return format_instance_id(self.series_key, self.t, self.seq)


@dataclass(slots=True)
class SeriesHistory:
    """The selected instances of one series, in time order, and whether more matched."""

    series: Series
    instances: list[StoredInstance]
    #: the per-series limit cut the selection short (NGSI-LD temporal pagination, 206)
    truncated: bool = False


@dataclass(slots=True)
class HistoryQuery:
    """What to read: the instances of the named entities' series within a time window."""

    entity_ids: tuple[str, ...]
    #: expanded attribute IRIs; None: every attribute
    attrs: frozenset[str] | None = None
    #: datasetIds ("" = the default instance); None: every one
    dataset_ids: frozenset[str] | None = None
    #: the window `[start, end)` in µs, on `timeproperty`; None: unbounded on that side
    start: int | None = None
    end: int | None = None
    timeproperty: str = "observedAt"
    #: only the last N instances of each series in the window (still returned oldest first)
    last_n: int | None = None
    #: at most this many instances per series (the earliest; with last_n, the latest)
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class SeriesSpan:
    """What a window of one series holds, read without reading its rows (`series_spans`)."""

    #: the first and last `t` in the window; None when the window holds no instance
    first: int | None
    last: int | None
    #: every instance in the window has an observedAt and a numeric value (`num`): its roll-ups
    #: and numeric points are all of its values, on its observation times
    plain: bool


#: a roll-up row as `read_cover` returns it: (level, bucket, count, sum, sum of squares, min, max)
CoverRow = tuple[int, int, int, float, float, float, float]


@dataclass(slots=True)
class Rollup:
    """One roll-up bucket of a series: `[start, start + width)` in µs and its summary."""

    series_key: int
    level: int
    bucket: int
    summary: Summary = field(repr=False)

    @property
    def start(self) -> int:
        """The bucket's first µs."""
        return self.bucket * WIDTHS[self.level]


class HistoryStore(abc.ABC):
    """Where attribute history and its roll-ups live (see the module docstring)."""

    #: entity transactions take `RecordInstances` ops
    supports_history = True

    def shape_cache(self) -> Shapes:
        """This store's cache of committed shapes (made on first use)."""
        shapes: Shapes | None = getattr(self, "_shape_dictionary", None)
        if shapes is None:
            shapes = self._shape_dictionary = Shapes()
        return shapes

    @abc.abstractmethod
    async def append_instances(self, tenant: str, rows: Sequence[InstanceRow]) -> int:
        """Record instances in their own transaction (temporal API POST); how many."""

    async def prepare_load(self, rows: Sequence[BulkRow] | BulkColumns) -> LoadInstances:
        """Check and prepare bulk rows for `bulk_load` or a `LoadInstances` op (raises
        `BadRequestData` on a bad time or a non-finite number)."""
        now = now_micros()
        return LoadInstances(prepare_bulk(rows, now), now)

    @abc.abstractmethod
    async def bulk_load(
        self, tenant: str, rows: Sequence[BulkRow] | BulkColumns | LoadInstances
    ) -> int:
        """Load historical rows (as rows, as columns or prepared) with the database's bulk
        path, all or nothing, in a transaction of their own; how many."""

    @abc.abstractmethod
    async def find_series(
        self,
        tenant: str,
        entity_ids: Sequence[str] | None = None,
        attrs: Sequence[str] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> list[Series]:
        """The series of a tenant (narrowed by the criteria given), ordered by key."""

    @abc.abstractmethod
    async def query_instances(self, tenant: str, query: HistoryQuery) -> list[SeriesHistory]:
        """The selected instances per series, series in entity-id, attribute, datasetId order."""

    @abc.abstractmethod
    async def read_rollups(
        self, series_key: int, level: int, first: int, last: int
    ) -> list[Rollup]:
        """The roll-up rows of buckets `first ≤ bucket < last` of one level, in bucket order."""

    @abc.abstractmethod
    async def read_points(self, series_key: int, start: int, end: int) -> list[tuple[int, float]]:
        """The numeric `(t, value)` points of a series in `[start, end)`, in `(t, seq)` order."""

    @abc.abstractmethod
    async def series_spans(
        self, series_keys: Sequence[int], start: int | None, end: int | None
    ) -> list[SeriesSpan]:
        """Per series (in the order given), its first and last time in `[start, end)` (None:
        unbounded) and whether it is `plain` there — index probes only (a partial index holds
        the rows without observedAt or without a number)."""

    @abc.abstractmethod
    async def read_cover(
        self,
        series_key: int,
        buckets: Sequence[tuple[int, int, int]],
        raw: Sequence[tuple[int, int]],
    ) -> tuple[list[CoverRow], list[tuple[int, float]]]:
        """In one read: the roll-up rows of the bucket ranges `(level, first, last + 1)` (in
        level, bucket order) and the numeric `(t, value)` points of the raw `[lo, hi)` ranges
        (in `(t, seq)` order) — the pieces of an aggregation over a whole window, as tuples."""

    @abc.abstractmethod
    async def summarise(
        self, series_key: int, windows: Sequence[tuple[int, int]]
    ) -> list[Summary | None]:
        """The summary of each window's numeric values (None: none), read from the coarsest
        roll-ups that fit (`rollups.split_window`) plus the raw sub-minute edges."""

    @abc.abstractmethod
    async def delete_history(
        self,
        tenant: str,
        entity_id: str,
        attr: str | None = None,
        dataset_id: str | None = None,
    ) -> int:
        """Delete an entity's history, or one attribute's (optionally one datasetId); how many
        instances."""

    @abc.abstractmethod
    async def delete_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str
    ) -> bool:
        """Delete one instance; whether it existed (under that entity and attribute)."""

    @abc.abstractmethod
    async def replace_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, instance: dict[str, Any]
    ) -> str | None:
        """Replace one instance's document (PATCH); its (possibly new) instanceId, or None when
        it does not exist."""

    @abc.abstractmethod
    async def purge_history(
        self,
        cutoff: int,
        *,
        series_keys: Sequence[int] | None = None,
        keep_rollups: bool = True,
        batch: int = 10_000,
    ) -> int:
        """Delete instances older than `cutoff` rounded down to a UTC day (of those series; None:
        all), in batches of their own transactions; roll-ups too unless `keep_rollups`. Returns
        how many instances went."""


def now_micros() -> int:
    """The current time in µs since the epoch."""
    return time.time_ns() // 1000


#: (series, t, number, document) of a recorded observation: a redelivery of it is skipped
Observation = tuple[int, int, float | None, bytes | None]


def stored_at(
    rows: Iterable[tuple[int, int, int, int | None, float | None, bytes | None]],
) -> tuple[dict[tuple[int, int], int], set[Observation]]:
    """From the stored rows (series, t, seq, dm, num, doc) at an entity write's (series, t):
    the next sequence number at each, and the observations (rows with an observedAt) there.
    Both backends read these rows under locks that keep others from adding any before the
    write commits (SQLite's write lock, PostgreSQL's entity lock)."""
    seqs: dict[tuple[int, int], int] = {}
    observed: set[Observation] = set()
    for series, t, seq, dm, num, doc in rows:
        if seq >= seqs.get((series, t), 0):
            seqs[(series, t)] = seq + 1
        if dm is not None:
            observed.add((series, t, num, doc))
    return seqs, observed


def take_history_rows(
    ops: list[Any],
) -> tuple[list[InstanceRow], list[DropHistory], list[LoadInstances], list[Any]]:
    """The instances of a transaction's `RecordInstances` ops, its `DropHistory` ops, its
    `LoadInstances` ops, and the other ops. A backend applies the drops first, then records the
    instances, then loads the bulk rows."""
    kinds = RecordInstances | DropHistory | LoadInstances
    if not any(isinstance(op, kinds) for op in ops):
        return [], [], [], ops
    # an empty record (a write that records nothing of its own) is taken out too
    rows = [row for op in ops if isinstance(op, RecordInstances) for row in op.rows]
    drops = [op for op in ops if isinstance(op, DropHistory)]
    loads = [op for op in ops if isinstance(op, LoadInstances)]
    return rows, drops, loads, [op for op in ops if not isinstance(op, kinds)]


def page_plan(query: HistoryQuery) -> tuple[int, int, bool]:
    """(rows to return per series, 1 to fetch one more to detect truncation, newest first)."""
    big = 2**62
    if query.last_n is not None:
        take = min(query.last_n, query.limit if query.limit is not None else big)
        return take, int(take < query.last_n), True
    if query.limit is not None:
        return query.limit, 1, False
    return big, 0, False


class Shapes:
    """The shape dictionary as one store sees it: committed shapes, cached (they never change,
    and are never deleted), plus the writer's lookups and reader's resolution."""

    def __init__(self) -> None:
        self.docs: dict[int, bytes] = {}

    def keys_by_doc(self) -> dict[bytes, int]:
        """The cached shapes' keys by their documents (a writer's look-up)."""
        return {doc: key for key, doc in self.docs.items()}

    def missing(self, docs: Iterable[bytes | None]) -> set[int]:
        """The shape keys referred to by these row docs that are not cached yet."""
        keys = {shape_key(d) for d in docs}
        keys.discard(None)
        return {k for k in keys if k is not None and k not in self.docs}

    def resolve(self, doc: bytes | None) -> bytes | None:
        """A row's own document (a shape reference replaced by the shape)."""
        key = shape_key(doc)
        return doc if key is None else self.docs[key]


def shared_docs(docs: Iterable[bytes | None]) -> set[bytes]:
    """The distinct row documents that go to the shape dictionary."""
    return {d for d in set(docs) if d is not None and shareable(d)}


def stored_instance(
    series: Series,
    t: int,
    seq: int,
    dm: int | None,
    dc: int | None,
    num: float | None,
    doc: bytes | None,
) -> StoredInstance:
    """An instance row read back, with its document and instanceId."""
    out = decode_instance(t, dm, dc, num, doc, series.dataset_id)
    stored = StoredInstance(series.key, t, seq, out)
    out["instanceId"] = stored.instance_id
    return stored


@dataclass(frozen=True, slots=True)
class BulkColumns:
    """The rows of a bulk historical load as columns of equal length — what a list of
    `BulkRow`s says, without an object per row (`smartregion import timeseries` builds these)."""

    entity_ids: Sequence[str]
    attrs: Sequence[str]
    #: NGSI-LD DateTimes or µs since the epoch
    times: Sequence[str | int]
    values: Sequence[Any]
    units: Sequence[str | None]
    dataset_ids: Sequence[str]

    @classmethod
    def of(cls, rows: Sequence[BulkRow]) -> BulkColumns:
        """The columns of these rows."""
        return cls(
            [r.entity_id for r in rows],
            [r.attr for r in rows],
            [r.observed_at for r in rows],
            [r.value for r in rows],
            [r.unit for r in rows],
            [r.dataset_id for r in rows],
        )

    def __len__(self) -> int:
        return len(self.entity_ids)


@dataclass(slots=True)
class PreparedBulk:
    """Bulk rows as their instance rows' columns, before series keys and shapes are known."""

    #: per row: the entity id, attribute IRI and datasetId of its series
    entity_ids: Sequence[str]
    attrs: Sequence[str]
    dataset_ids: Sequence[str]
    times: list[int]
    nums: list[float | None]
    docs: list[bytes | None]

    def series(self) -> set[tuple[str, str, str]]:
        """The distinct (entity id, attribute IRI, datasetId) of the rows."""
        if self._one_attribute():
            attr, ds = self.attrs[0], self.dataset_ids[0]
            return {(eid, attr, ds) for eid in set(self.entity_ids)}
        return set(zip(self.entity_ids, self.attrs, self.dataset_ids, strict=True))

    def _one_attribute(self) -> bool:
        return len(set(self.attrs)) == 1 and len(set(self.dataset_ids)) == 1

    def keys_of(self, keys: dict[tuple[str, str, str], int]) -> list[int]:
        """Each row's series key (`keys`: by `series()` name); by entity id alone when the rows
        share one attribute and datasetId (the usual load: no tuple a row)."""
        if self._one_attribute():
            attr, ds = self.attrs[0], self.dataset_ids[0]
            by_entity = {eid: keys[(eid, attr, ds)] for eid in set(self.entity_ids)}
            return list(map(by_entity.__getitem__, self.entity_ids))
        names = zip(self.entity_ids, self.attrs, self.dataset_ids, strict=True)
        return list(map(keys.__getitem__, names))


def _unit_doc(unit: str | None, integral_float: bool, now: int) -> bytes | None:
    """The row document of a plain number with this unit (`encode_instance`'s)."""
    value = 1.0 if integral_float else 1.5
    instance: dict[str, Any] = {"type": "Property", "value": value}
    if unit:
        instance["unitCode"] = unit
    return encode_instance(instance, now).doc


def prepare_bulk(rows: Sequence[BulkRow] | BulkColumns, now: int) -> PreparedBulk:
    """The instance row columns of bulk rows; raises `BadRequestData` on a bad time or a
    non-finite number, before anything is written. Column-wise: one pass of C-level maps for a
    batch of plain numbers (the common load), a row at a time only for other values."""
    cols = rows if isinstance(rows, BulkColumns) else BulkColumns.of(rows)
    times: list[int]
    if set(map(type, cols.times)) == {int}:
        times = list(cols.times)  # type: ignore[arg-type]
    else:
        times = [t if isinstance(t, int) else micros(t) for t in cols.times]
    values = cols.values
    units = cols.units
    kinds = set(map(type, values))
    docs: list[bytes | None]
    nums: list[float | None]
    unit_docs: dict[tuple[str | None, bool], bytes | None] = {}

    def doc_of(unit: str | None, integral: bool) -> bytes | None:
        key = (unit, integral)
        if key not in unit_docs:
            unit_docs[key] = _unit_doc(unit, integral, now)
        return unit_docs[key]

    plain = False
    if kinds == {float} and all(map(math.isfinite, values)):
        integral = list(map(float.is_integer, values))
        nums = list(values)
        plain = True
    elif kinds == {int} and min(values) >= -_EXACT and max(values) <= _EXACT:
        integral = []
        nums = list(map(float, values))
        plain = True
    if plain:
        distinct_units = set(units)
        if len(distinct_units) == 1 and not any(integral):
            docs = [doc_of(units[0], False)] * len(values)
        elif integral:
            docs = [doc_of(u, i) for u, i in zip(units, integral, strict=True)]
        else:
            docs = [doc_of(u, False) for u in units]
    else:
        nums, docs = [], []
        for value, unit, when in zip(values, units, cols.times, strict=True):
            kind = type(value)
            if (kind is int and -_EXACT <= value <= _EXACT) or (
                kind is float and math.isfinite(value) and not value.is_integer()
            ):
                # the common case, without building an instance document
                nums.append(float(value))
                docs.append(doc_of(unit, False))
                continue
            if kind is float and not math.isfinite(value):
                raise BadRequestData(f"value {value!r} at {when!r} is not a finite number")
            instance: dict[str, Any] = {"type": "Property", "value": value}
            if unit:
                instance["unitCode"] = unit
            e = encode_instance(instance, now)
            nums.append(e.num)
            docs.append(e.doc)
    return PreparedBulk(cols.entity_ids, cols.attrs, cols.dataset_ids, times, nums, docs)


@dataclass(slots=True)
class BulkPlan:
    """The instance rows of a bulk load as columns, keyed and numbered, and their numeric
    points (in recording order) for the roll-up fold."""

    keys: list[int]
    times: list[int]
    #: sequence numbers from the batch alone; None when no two rows share a (series, time)
    seqs: list[int] | None
    dms: list[int]
    nums: list[float | None]
    docs: list[bytes | None]

    def seq_column(self) -> list[int]:
        """The sequence numbers (0 for every row without a twin in the batch)."""
        return self.seqs if self.seqs is not None else [0] * len(self.keys)

    def points(self) -> Iterable[tuple[int, int, float]]:
        """`(series, t, value)` of the numeric rows, in recording order."""
        return (
            (k, t, n)
            for k, t, n in zip(self.keys, self.times, self.nums, strict=True)
            if n is not None
        )


def plan_bulk(
    prepared: PreparedBulk,
    keys: dict[tuple[str, str, str], int],
    refs: dict[bytes, bytes],
    now: int,
) -> BulkPlan:
    """Key, number and shape-reference prepared rows (column-wise)."""
    row_keys = prepared.keys_of(keys)
    times = prepared.times
    docs = prepared.docs
    if refs:
        swap = {d: refs.get(d, d) if d is not None else None for d in set(docs)}
        docs = list(map(swap.__getitem__, docs))
    seqs: list[int] | None = None
    if len(set(zip(row_keys, times, strict=True))) != len(times):
        seen: dict[tuple[int, int], int] = {}
        seqs = []
        for pair in zip(row_keys, times, strict=True):
            seq = seen.get(pair, -1) + 1
            seen[pair] = seq
            seqs.append(seq)
    dms = [now - t for t in times]
    return BulkPlan(row_keys, times, seqs, dms, prepared.nums, docs)
