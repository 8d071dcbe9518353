"""Bulk historical loads: `smartregion import timeseries FILE` (docs/ingestion.md).

Contract:

- A file is NDJSON (one object a line: `entity`, `attribute`, `observedAt`, `value`, optional
  `unit`, `datasetId`, `type`) or CSV (a header naming those columns; `unit`, `datasetId` and
  `type` optional). Attribute names and types are expanded with the core @context or the one
  given. CSV values that parse as numbers are stored as numbers.
- Rows are loaded in batches of `batch` rows. Each batch is all or nothing as far as its
  validation goes: a bad row (missing member, unparseable time, bad number, entity the writer
  may not change, missing entity without a type) fails the import with its file line number
  before anything of its batch is written. Batches before it stay committed.
- A batch is written in two transactions, in this order: (1) the entities, through the
  broker's normal write path (ownership is checked there, with the entities locked): missing
  entities are created with their type, owned as `WriteAccess.owner_of_new` says, and each
  imported attribute's current value becomes its latest imported instance when that is
  strictly newer than the current one; (2) the instances, with `HistoryStore.bulk_load` (COPY
  on PostgreSQL, executemany on SQLite). A database failure between the two leaves the entity
  state updated and the batch's history absent; re-running that batch (`skip` = the committed
  rows the failure reports) completes it, as step (1) is idempotent. Step (2) of a batch that
  committed must not run again: it would record its instances twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from smartregion.broker.service import Broker
from smartregion.core.entities import Vocabulary, is_uri
from smartregion.core.times import utc_now
from smartregion.errors import BadRequestData, SmartRegionError
from smartregion.governance import WriteAccess
from smartregion.storage.base import Put, WriteOp
from smartregion.storage.history import BulkRow, HistoryStore, RecordInstances
from smartregion.storage.rollups import format_observed, micros

__all__ = [
    "FORMATS",
    "ImportReport",
    "ImportStopped",
    "RowError",
    "SourceRow",
    "TimeseriesImporter",
    "read_rows",
]

Doc = dict[str, Any]

FORMATS = ("ndjson", "csv")
REQUIRED = ("entity", "attribute", "observedAt", "value")
_INTEGER = re.compile(r"[+-]?\d+")
_EXACT = 2**53


class RowError(BadRequestData):
    """A row of the file that cannot be imported; names its line."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(f"line {line}: {detail}")
        self.line = line


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


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row of the file, validated: where it was, the entity type given, the bulk row."""

    line: int
    type: str | None
    bulk: BulkRow


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    rows: int = 0
    skipped: int = 0
    batches: int = 0
    created: int = 0
    last_line: int = 0
    entities: set[str] = field(default_factory=set)


# --- reading -----------------------------------------------------------------------------------


class _Lines:
    """Binary lines of a stream, with how many bytes were read (for the progress bar)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.position = 0

    def binary(self) -> Iterator[bytes]:
        for line in self.stream:
            self.position += len(line)
            yield line

    def text(self) -> Iterator[str]:
        for line in self.binary():
            yield line.decode("utf-8-sig" if self.position == len(line) else "utf-8")


class _Cells:
    """Turns raw cells into a `SourceRow` (term expansion and type checks, cached)."""

    def __init__(self, vocab: Vocabulary, default_type: str | None) -> None:
        self.vocab = vocab
        self.attrs: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.ids: set[str] = set()
        self.datasets: set[str] = set()
        self.default_type = self.type_of(default_type, 0) if default_type else None

    def type_of(self, name: str, line: int) -> str:
        found = self.types.get(name)
        if found is None:
            if not name.strip():
                raise RowError(line, "empty type")
            found = self.types[name] = self.vocab.expand_term(name)
        return found

    def row(
        self,
        line: int,
        entity: Any,
        attribute: Any,
        observed: Any,
        value: Any,
        unit: Any,
        dataset: Any,
        kind: Any,
    ) -> SourceRow:
        if entity not in self.ids:
            if not isinstance(entity, str) or not is_uri(entity):
                raise RowError(line, f"entity {entity!r} is not a URI")
            self.ids.add(entity)
        attr = self.attrs.get(attribute) if isinstance(attribute, str) else None
        if attr is None:
            if not isinstance(attribute, str) or not attribute.strip():
                raise RowError(line, f"attribute {attribute!r} is not a name")
            attr = self.attrs[attribute] = self.vocab.expand_term(attribute)
        if not isinstance(observed, str):
            raise RowError(line, f"observedAt {observed!r} is not a DateTime")
        try:
            t = micros(observed)
        except (BadRequestData, ValueError, OverflowError):
            raise RowError(line, f"observedAt {observed!r} is not a DateTime") from None
        if value is None:
            raise RowError(line, "value is missing")
        if type(value) is float and not math.isfinite(value):
            raise RowError(line, f"value {value!r} is not a finite number")
        if unit is not None and (not isinstance(unit, str) or not unit):
            raise RowError(line, f"unit {unit!r} is not a unit code")
        if dataset is None or dataset == "":
            dataset = ""
        elif dataset not in self.datasets:
            if not isinstance(dataset, str) or not is_uri(dataset):
                raise RowError(line, f"datasetId {dataset!r} is not a URI")
            self.datasets.add(dataset)
        if kind is None or kind == "":
            type_iri = self.default_type
        elif isinstance(kind, str):
            type_iri = self.type_of(kind, line)
        else:
            raise RowError(line, f"type {kind!r} is not a name")
        return SourceRow(line, type_iri, BulkRow(entity, attr, t, value, unit, dataset))


def _ndjson(lines: _Lines, cells: _Cells) -> Iterator[SourceRow]:
    for number, raw in enumerate(lines.binary(), 1):
        if not raw.strip():
            continue
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RowError(number, f"not JSON ({exc})") from None
        if not isinstance(item, dict):
            raise RowError(number, "not a JSON object")
        for name in REQUIRED:
            if name not in item:
                raise RowError(number, f"{name} is missing")
        yield cells.row(
            number,
            item["entity"],
            item["attribute"],
            item["observedAt"],
            item["value"],
            item.get("unit"),
            item.get("datasetId"),
            item.get("type"),
        )


def _csv_value(text: str, line: int) -> Any:
    """A CSV cell as a value: a number when it parses as one (integers exactly), else text."""
    if not text:
        raise RowError(line, "value is missing")
    if _INTEGER.fullmatch(text):
        number = int(text)
        return number if -_EXACT <= number <= _EXACT else text
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        raise RowError(line, f"value {text!r} is not a finite number")
    return value


def _csv(lines: _Lines, cells: _Cells) -> Iterator[SourceRow]:
    reader = csv.reader(lines.text(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise RowError(1, f"bad CSV ({exc})") from None
    header = [h.strip() for h in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise RowError(1, f"the header has no column {', '.join(missing)}")
    at = {name: i for i, name in enumerate(header)}
    e, a, o, v = (at[n] for n in REQUIRED)
    u, d, k = at.get("unit"), at.get("datasetId"), at.get("type")
    width = len(header)
    while True:
        try:
            cells_row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RowError(reader.line_num, f"bad CSV ({exc})") from None
        line = reader.line_num
        if not cells_row:
            continue
        if len(cells_row) != width:
            raise RowError(line, f"{len(cells_row)} columns where the header has {width}")
        yield cells.row(
            line,
            cells_row[e],
            cells_row[a],
            cells_row[o],
            _csv_value(cells_row[v], line),
            (cells_row[u] or None) if u is not None else None,
            cells_row[d] if d is not None else None,
            cells_row[k] if k is not None else None,
        )


def read_rows(
    stream: IO[bytes], fmt: str, vocab: Vocabulary, *, default_type: str | None = None
) -> tuple[Iterator[SourceRow], Callable[[], int]]:
    """The validated rows of a file (raising `RowError` at the first bad one, lazily), and a
    function telling how many bytes have been read."""
    if fmt not in FORMATS:
        raise BadRequestData(f"format must be one of {', '.join(FORMATS)}")
    lines = _Lines(stream)
    cells = _Cells(vocab, default_type)
    rows = _ndjson(lines, cells) if fmt == "ndjson" else _csv(lines, cells)
    return rows, lambda: lines.position


# --- writing -----------------------------------------------------------------------------------


def _latest(rows: Iterable[SourceRow]) -> dict[str, dict[tuple[str, str], SourceRow]]:
    """Per entity, per (attribute, datasetId): the row with the latest time (a later line wins
    a tie)."""
    out: dict[str, dict[tuple[str, str], SourceRow]] = {}
    for row in rows:
        b = row.bulk
        per = out.setdefault(b.entity_id, {})
        key = (b.attr, b.dataset_id)
        old = per.get(key)
        if old is None or int(b.observed_at) >= int(old.bulk.observed_at):
            per[key] = row
    return out


def _instance(row: SourceRow, now: str) -> Doc:
    """The current-state attribute instance of an imported row."""
    b = row.bulk
    inst: Doc = {"type": "Property", "value": b.value, "observedAt": format_observed(int(b.observed_at))}
    if b.unit:
        inst["unitCode"] = b.unit
    if b.dataset_id:
        inst["datasetId"] = b.dataset_id
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


class TimeseriesImporter:
    """Loads validated rows in batches: entities through the broker, instances in bulk."""

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
        rows: Iterator[SourceRow],
        *,
        skip: int = 0,
        dry_run: bool = False,
        progress: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        """Import (or with `dry_run` only check) every row after the first `skip`.

        Raises `ImportStopped` (with what was committed) at the first failing batch.
        """
        report = ImportReport()
        pending: list[SourceRow] = []
        # one batch is written while the next one is read (the database works in its own
        # thread or server meanwhile); batches still commit one after the other, in file order
        flight: tuple[asyncio.Task[int], list[SourceRow]] | None = None

        async def write(batch: list[SourceRow]) -> int:
            created = await self._entities(batch, apply=not dry_run)
            if not dry_run:
                await self.history.bulk_load(self.tenant, [r.bulk for r in batch])
            return created

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
            report.last_line = batch[-1].line
            if progress is not None:
                progress(report)

        try:
            while True:
                try:
                    row = next(rows, None)
                except SmartRegionError as exc:
                    await settle()  # the batch before the bad row commits (or fails) first
                    raise ImportStopped(
                        exc, report.skipped + report.rows, report.last_line
                    ) from exc
                if row is not None and report.skipped < skip:
                    report.skipped += 1
                    report.last_line = row.line
                    continue
                if row is not None:
                    pending.append(row)
                    if len(pending) % 2_000 == 0:
                        await asyncio.sleep(0)  # let the batch in flight go on to its next step
                    if len(pending) < self.batch:
                        continue
                if pending:
                    await settle()
                    flight = (asyncio.ensure_future(write(pending)), pending)
                    pending = []
                if row is None:
                    await settle()
                    return report
        finally:
            if flight is not None:  # stopped by an error: do not leave the write behind
                with contextlib.suppress(BaseException):
                    await flight[0]

    async def _entities(self, rows: list[SourceRow], *, apply: bool) -> int:
        """Step (1) of a batch (see the module docstring); how many entities it created."""
        latest = _latest(rows)
        types: dict[str, str] = {}
        first_line: dict[str, int] = {}
        for row in rows:
            eid = row.bulk.entity_id
            first_line.setdefault(eid, row.line)
            if row.type is not None:
                types.setdefault(eid, row.type)
        # new entities are owned as the writer's rules say for their type: one write per owner
        groups: dict[str, list[str]] = {}
        for eid in sorted(latest):
            kind = types.get(eid)
            owner = self.writer.owner_of_new({"type": [kind]}) if kind else self.writer.org_id
            groups.setdefault(owner, []).append(eid)
        created = 0
        for owner, ids in groups.items():
            created += await self._write(owner, ids, latest, types, first_line, apply)
        return created

    async def _write(
        self,
        owner: str,
        ids: list[str],
        latest: dict[str, dict[tuple[str, str], SourceRow]],
        types: dict[str, str],
        first_line: dict[str, int],
        apply: bool,
    ) -> int:
        now = utc_now()

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
                        attrs[attr] = _with_instance(attrs.get(attr, []), _instance(row, now))
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
                        if when is not None and int(row.bulk.observed_at) <= when:
                            continue
                    new_attrs[attr] = _with_instance(new_attrs.get(attr, []), _instance(row, now))
                    changed = True
                if changed:
                    ops.append(Put({**existing, "attrs": new_attrs, "modifiedAt": now}))
            if not apply:
                ops = []
            # the instances go to history in bulk (step 2): the entity write records none
            return [*ops, RecordInstances(())], created  # type: ignore[list-item]

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
