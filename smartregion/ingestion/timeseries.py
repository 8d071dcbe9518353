"""Bulk historical loads: `smartregion import timeseries FILE` (docs/ingestion.md).

Contract:

- A file is NDJSON (one object a line: `entity`, `attribute`, `observedAt`, `value`, optional
  `unit`, `datasetId`, `type`) or CSV (a header naming those columns; `unit`, `datasetId` and
  `type` optional). Attribute names and types are expanded with the core @context or the one
  given. CSV values that parse as numbers are stored as numbers.
- Rows are read, checked and loaded in batches of `batch` data rows (`ingestion/importfiles.py`).
  A batch is checked column-wise (one `orjson.loads` a line; each distinct entity id, attribute,
  time, unit, datasetId and type checked once). Anything that check does not vouch for sends the
  batch through the exact path instead — the same rows read again one at a time, as they always
  were — which either finds the first bad row and names its file line, or yields the batch; so
  both paths accept the same files and store the same rows (tests/ingestion). Skipped rows
  (`skip`) are counted, not read.
- Each batch is all or nothing as far as its validation goes: a bad row (missing member,
  unparseable time, bad number, entity the writer may not change, missing entity without a
  type) fails the import with its file line number before anything of its batch is written.
  Batches before it stay committed.
- A batch is written through the broker's normal write path (ownership is checked there, with
  the entities locked): missing entities are created with their type, owned as
  `WriteAccess.owner_of_new` says, and each imported attribute's current value becomes its
  latest imported instance when that is strictly newer than the current one. Its instances go in
  the same transaction (a `LoadInstances` op: COPY on PostgreSQL, executemany on SQLite), so a
  batch commits whole or not at all. When its new entities fall to several owners (one write
  per owner), the instances follow in a transaction of their own after those writes: a failure
  in between leaves the current values updated and the batch's history absent; re-running that
  batch (`skip` = the committed rows the failure reports) completes it, as the entity writes are
  idempotent. Instances of a batch that committed must not be loaded again: they would be
  recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from smartregion.broker.service import Broker
from smartregion.core.times import utc_now
from smartregion.errors import BadRequestData, SmartRegionError
from smartregion.governance import WriteAccess
from smartregion.ingestion.importfiles import (
    FORMATS,
    Batch,
    RowError,
    RowReader,
    Skip,
    SourceRow,
    read_rows,
)
from smartregion.storage.base import Put, WriteOp
from smartregion.storage.history import HistoryStore, LoadInstances, RecordInstances
from smartregion.storage.rollups import format_observed, micros

__all__ = [
    "FORMATS",
    "Batch",
    "ImportReport",
    "ImportStopped",
    "RowError",
    "RowReader",
    "SourceRow",
    "TimeseriesImporter",
    "read_rows",
]

Doc = dict[str, Any]


class ImportStopped(SmartRegionError):
    """The import stopped at a batch: what was committed before it, and why."""

    error_type = "BadRequestData"

    def __init__(self, cause: SmartRegionError | Exception, rows: int, last_line: int) -> None:
        detail = cause.detail if isinstance(cause, SmartRegionError) else repr(cause)
        super().__init__(detail)
        self.cause = cause
        #: data rows committed (counting skipped ones): resume with `--skip rows`
        self.rows = rows
        #: the file line of the last committed row (0: none)
        self.last_line = last_line


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    rows: int = 0
    skipped: int = 0
    batches: int = 0
    created: int = 0
    last_line: int = 0
    entities: set[str] = field(default_factory=set)


# --- writing -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entities:
    """What step (1) of a batch needs: per entity, its first line, its type, and per
    (attribute, datasetId) the row of its latest instance."""

    first_line: dict[str, int]
    types: dict[str, str]
    latest: dict[str, dict[tuple[str, str], int]]


def _summary(batch: Batch) -> _Entities:
    """Per entity, per (attribute, datasetId): the row with the latest time (a later line wins
    a tie); the first line and type (the first given, else the default) of each entity."""
    cols = batch.columns
    n = len(batch)
    entities = cols.entity_ids
    times = cols.times
    # a stable sort by time: the last row of a key in this order is its latest, the later line
    # on a tie (files mostly come in time order, which the sort passes through in one run)
    order = sorted(range(n), key=times.__getitem__)
    names = list(zip(entities, cols.attrs, cols.dataset_ids, strict=True))
    last = dict(zip(map(names.__getitem__, order), order, strict=True))
    latest: dict[str, dict[tuple[str, str], int]] = {}
    for (eid, attr, ds), row in last.items():
        latest.setdefault(eid, {})[(attr, ds)] = row
    first = dict(zip(reversed(entities), range(n - 1, -1, -1), strict=True))
    first_line = {eid: batch.lines[row] for eid, row in first.items()}
    types: dict[str, str] = {}
    if batch.types is None:
        if batch.default_type is not None:
            types = dict.fromkeys(first, batch.default_type)
    else:
        given = [(e, k) for e, k in zip(entities, batch.types, strict=True) if k is not None]
        types = dict(reversed(given))
    return _Entities(first_line, types, latest)


def _instance(batch: Batch, row: int, now: str) -> Doc:
    """The current-state attribute instance of an imported row."""
    cols = batch.columns
    inst: Doc = {
        "type": "Property",
        "value": cols.values[row],
        "observedAt": format_observed(int(cols.times[row])),
    }
    unit = cols.units[row]
    if unit:
        inst["unitCode"] = unit
    if cols.dataset_ids[row]:
        inst["datasetId"] = cols.dataset_ids[row]
    inst["createdAt"] = now
    inst["modifiedAt"] = now
    return inst


def _time_of(inst: Doc) -> int | None:
    """When a stored current instance was observed (else when it was last modified)."""
    for member in ("observedAt", "modifiedAt"):
        text = inst.get(member)
        if isinstance(text, str):
            try:
                return micros(text)
            except (BadRequestData, ValueError):
                continue
    return None


def _with_instance(instances: list[Doc], inst: Doc) -> list[Doc]:
    out = [i for i in instances if i.get("datasetId") != inst.get("datasetId")]
    out.append(inst)
    # the default instance first (§4.5.5), as core.mutations keeps it
    out.sort(key=lambda i: i.get("datasetId") is not None)
    return out


def _batches(rows: Iterator[SourceRow], size: int, skip: Skip) -> Iterator[Batch]:
    """Rows read one at a time, skipped and grouped into batches."""
    pending: list[SourceRow] = []
    for row in rows:
        if skip.rows < skip.wanted:
            skip.rows += 1
            skip.line = row.line
            continue
        pending.append(row)
        if len(pending) == size:
            yield Batch.of_rows(pending)
            pending = []
    if pending:
        yield Batch.of_rows(pending)


class TimeseriesImporter:
    """Loads checked rows in batches: entities through the broker, instances in bulk."""

    def __init__(
        self,
        broker: Broker,
        writer: WriteAccess,
        *,
        tenant: str = "",
        batch: int = 10_000,
    ) -> None:
        if batch < 1:
            raise BadRequestData("the batch size must be at least 1")
        if not isinstance(broker.store, HistoryStore):
            raise BadRequestData(f"{type(broker.store).__name__} keeps no attribute history")
        self.broker = broker
        self.history: HistoryStore = broker.store
        self.writer = writer
        self.tenant = tenant
        self.batch = batch

    async def run(
        self,
        rows: RowReader | Iterator[SourceRow],
        *,
        skip: int = 0,
        dry_run: bool = False,
        progress: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        """Import (or with `dry_run` only check) every row after the first `skip`.

        Raises `ImportStopped` (with what was committed) at the first failing batch.
        """
        report = ImportReport()
        skipping = Skip(skip)
        if isinstance(rows, RowReader):
            batches = rows.batches(self.batch, skipping)
        else:
            batches = _batches(rows, self.batch, skipping)
        # one batch is written while the next one is read (the database works in its own
        # thread or server meanwhile); batches still commit one after the other, in file order
        flight: tuple[asyncio.Task[int], Batch] | None = None

        async def write(batch: Batch) -> int:
            load = None if dry_run else await self.history.prepare_load(batch.columns)
            return await self._entities(batch, load)

        def skipped() -> None:
            report.skipped = skipping.rows
            if not report.rows:
                report.last_line = skipping.line

        async def settle() -> None:
            nonlocal flight
            if flight is None:
                return
            task, batch = flight
            flight = None
            try:
                report.created += await task
            except Exception as exc:
                raise ImportStopped(exc, report.skipped + report.rows, report.last_line) from exc
            report.rows += len(batch)
            report.batches += 1
            report.last_line = batch.lines[-1]
            if progress is not None:
                progress(report)

        try:
            while True:
                try:
                    # read and checked in a worker thread: the loop meanwhile drives the write
                    # in flight (its round trips to PostgreSQL, SQLite's writer thread)
                    batch = await asyncio.to_thread(next, batches, None)
                except SmartRegionError as exc:
                    skipped()
                    await settle()  # the batch before the bad row commits (or fails) first
                    raise ImportStopped(
                        exc, report.skipped + report.rows, report.last_line
                    ) from exc
                skipped()
                await settle()
                if batch is None:
                    return report
                flight = (asyncio.ensure_future(write(batch)), batch)
        finally:
            if flight is not None:  # stopped by an error: do not leave the write behind
                with contextlib.suppress(BaseException):
                    await flight[0]

    async def _entities(self, batch: Batch, load: LoadInstances | None) -> int:
        """Write a batch (see the module docstring; `load` None: a dry run); how many entities
        it created."""
        summary = _summary(batch)
        # new entities are owned as the writer's rules say for their type: one write per owner
        groups: dict[str, list[str]] = {}
        for eid in sorted(summary.latest):
            kind = summary.types.get(eid)
            owner = self.writer.owner_of_new({"type": [kind]}) if kind else self.writer.org_id
            groups.setdefault(owner, []).append(eid)
        created = 0
        # one owner (the common case): the instances load in the same transaction
        together = load if len(groups) == 1 else None
        for owner, ids in groups.items():
            created += await self._write(owner, ids, batch, summary, load, together)
        if load is not None and together is None:
            await self.history.bulk_load(self.tenant, load)
        return created

    async def _write(
        self,
        owner: str,
        ids: list[str],
        batch: Batch,
        summary: _Entities,
        load: LoadInstances | None,
        together: LoadInstances | None,
    ) -> int:
        now = utc_now()
        latest, types, first_line = summary.latest, summary.types, summary.first_line
        times = batch.columns.times

        def mutate(current: dict[str, Doc | None]) -> tuple[list[WriteOp], int]:
            ops: list[WriteOp] = []
            created = 0
            for eid in ids:
                existing = current.get(eid)
                if existing is None:
                    kind = types.get(eid)
                    if kind is None:
                        raise RowError(
                            first_line[eid],
                            f"entity {eid} does not exist; give its type (--type or a type"
                            " column) to create it",
                        )
                    attrs: dict[str, list[Doc]] = {}
                    for (attr, _), row in latest[eid].items():
                        attrs[attr] = _with_instance(
                            attrs.get(attr, []), _instance(batch, row, now)
                        )
                    doc: Doc = {"id": eid, "type": [kind], "createdAt": now, "modifiedAt": now}
                    doc["attrs"] = attrs
                    ops.append(Put(doc))
                    created += 1
                    continue
                new_attrs = dict(existing.get("attrs") or {})
                changed = False
                for (attr, ds), row in latest[eid].items():
                    stored = next(
                        (i for i in new_attrs.get(attr, []) if i.get("datasetId", "") == ds), None
                    )
                    if stored is not None:
                        when = _time_of(stored)
                        if when is not None and int(times[row]) <= when:
                            continue
                    new_attrs[attr] = _with_instance(
                        new_attrs.get(attr, []), _instance(batch, row, now)
                    )
                    changed = True
                if changed:
                    ops.append(Put({**existing, "attrs": new_attrs, "modifiedAt": now}))
            if load is None:  # a dry run
                ops = []
            # the instances go to history in bulk, not one by one from the entity writes
            extra: list[Any] = [RecordInstances(())]
            if together is not None:
                extra.append(together)
            return [*ops, *extra], created

        owners: dict[str, str] = {}

        def checked(current: dict[str, Doc | None]) -> tuple[list[WriteOp], int]:
            # the ownership rule of every broker write (`broker.entities.guarded`), naming the line
            denied = self.writer.denied(owners, current)
            if denied:
                eid = min(denied, key=lambda e: first_line[e])
                raise RowError(
                    first_line[eid],
                    f"entity {eid} is owned by an organisation that has not mandated"
                    f" {self.writer.org_id!r}",
                )
            return mutate(current)

        created: int = await self.broker.entities.store.transact(
            self.tenant, ids, checked, owner=owner, check_owners=owners.update
        )
        return created
