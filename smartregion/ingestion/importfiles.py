"""Reading the files of `smartregion import timeseries` (docs/ingestion.md): NDJSON or CSV rows,
checked a batch at a time — column-wise, with the row-by-row path as the referee that names a
bad line (the contract: `smartregion.ingestion.timeseries`)."""

from __future__ import annotations

import csv
import math
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from smartregion.core.entities import Vocabulary, is_uri
from smartregion.errors import BadRequestData
from smartregion.storage.history import BulkColumns, BulkRow
from smartregion.storage.rollups import micros

__all__ = [
    "FORMATS",
    "Batch",
    "RowError",
    "RowReader",
    "Skip",
    "SourceRow",
    "read_rows",
]

FORMATS = ("ndjson", "csv")
REQUIRED = ("entity", "attribute", "observedAt", "value")
_INTEGER = re.compile(r"[+-]?\d+")
_EXACT = 2**53


class RowError(BadRequestData):
    """A row of the file that cannot be imported; names its line."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(f"line {line}: {detail}")
        self.line = line


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row of the file, validated: where it was, the entity type given, the bulk row."""

    line: int
    type: str | None
    bulk: BulkRow


# --- lines and cells ---------------------------------------------------------------------------


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
        #: batches checked column-wise, and read again row by row (for tests and profiling)
        self.fast = 0
        self.exact = 0

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

    # --- a batch at a time, column-wise ---------------------------------------------------

    def fast_batch(
        self,
        lines: list[int],
        entities: Sequence[Any],
        attributes: Sequence[Any],
        observed: Sequence[Any],
        values: Sequence[Any],
        units: Sequence[Any],
        datasets: Sequence[Any],
        kinds: Sequence[Any] | None,
    ) -> Batch:
        """The batch of these columns, checked column-wise (each distinct name, time, unit
        once). Raises `_Unusual` at anything `row` would reject or treat with care: the exact
        path then reads the batch again row by row and names the line."""
        n = len(lines)
        for eid in set(entities) - self.ids:
            if not isinstance(eid, str) or not is_uri(eid):
                raise _Unusual
            self.ids.add(eid)
        names = set(attributes)
        iris: dict[str, str] = {}
        for name in names:
            iri = self.attrs.get(name) if isinstance(name, str) else None
            if iri is None:
                if not isinstance(name, str) or not name.strip():
                    raise _Unusual
                iri = self.attrs[name] = self.vocab.expand_term(name)
            iris[name] = iri
        attr_column = (
            [iris[attributes[0]]] * n if len(names) == 1 else [iris[a] for a in attributes]
        )
        at: dict[str, int] = {}
        for text in set(observed):
            if not isinstance(text, str):
                raise _Unusual
            try:
                at[text] = micros(text)
            except (BadRequestData, ValueError, OverflowError):
                raise _Unusual from None
        times = list(map(at.__getitem__, observed))
        value_kinds = set(map(type, values))
        if _NONE in value_kinds:
            raise _Unusual
        if float in value_kinds and not all(math.isfinite(v) for v in values if type(v) is float):
            raise _Unusual
        for unit in set(units):
            if unit is not None and (not isinstance(unit, str) or not unit):
                raise _Unusual
        given = set(datasets)
        for ds in given - self.datasets:
            if ds is None or ds == "":
                continue
            if not isinstance(ds, str) or not is_uri(ds):
                raise _Unusual
            self.datasets.add(ds)
        dataset_column = [""] * n if given <= {None, ""} else [d or "" for d in datasets]
        types: list[str | None] | None = None
        if kinds is not None and set(kinds) - {None, ""}:
            expanded: dict[Any, str | None] = {None: self.default_type, "": self.default_type}
            for kind in set(kinds) - {None, ""}:
                if not isinstance(kind, str) or not kind.strip():
                    raise _Unusual
                expanded[kind] = self.type_of(kind, 0)
            types = [expanded[k] for k in kinds]
        self.fast += 1
        return Batch(
            lines,
            BulkColumns(entities, attr_column, times, values, units, dataset_column),
            types,
            self.default_type,
        )


class _Unusual(Exception):
    """A batch the column-wise check does not vouch for: read it again row by row."""


_NONE = type(None)
_MEMBERS = operator.itemgetter(*REQUIRED)


@dataclass(slots=True)
class Batch:
    """Checked rows, as the columns of the bulk path, with their file lines and entity types."""

    lines: list[int]
    #: attributes expanded, times in µs, datasetId "" for the default instance
    columns: BulkColumns
    #: per row, the entity type it gives (expanded) or the default; None: no row gives one
    types: list[str | None] | None
    default_type: str | None

    @classmethod
    def of_rows(cls, rows: Sequence[SourceRow]) -> Batch:
        """The batch of rows read one at a time."""
        bulk = [r.bulk for r in rows]
        times = [
            b.observed_at if isinstance(b.observed_at, int) else micros(b.observed_at) for b in bulk
        ]
        columns = BulkColumns(
            [b.entity_id for b in bulk],
            [b.attr for b in bulk],
            times,
            [b.value for b in bulk],
            [b.unit for b in bulk],
            [b.dataset_id for b in bulk],
        )
        return cls([r.line for r in rows], columns, [r.type for r in rows], None)

    def __len__(self) -> int:
        return len(self.lines)


def _ndjson_row(number: int, raw: bytes, cells: _Cells) -> SourceRow:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RowError(number, f"not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise RowError(number, "not a JSON object")
    for name in REQUIRED:
        if name not in item:
            raise RowError(number, f"{name} is missing")
    return cells.row(
        number,
        item["entity"],
        item["attribute"],
        item["observedAt"],
        item["value"],
        item.get("unit"),
        item.get("datasetId"),
        item.get("type"),
    )


def _ndjson_batch(lines: list[int], raws: list[bytes], cells: _Cells) -> Batch:
    try:
        items = list(map(orjson.loads, raws))
        if set(map(type, items)) != {dict}:
            raise _Unusual
        entities, attributes, observed, values = map(list, zip(*map(_MEMBERS, items), strict=True))
        return cells.fast_batch(
            lines,
            entities,
            attributes,
            observed,
            values,
            [i.get("unit") for i in items],
            [i.get("datasetId") for i in items],
            [i.get("type") for i in items],
        )
    except (_Unusual, orjson.JSONDecodeError, KeyError, TypeError):
        pass
    # the exact path: row by row, raising at the first bad one with its line
    cells.exact += 1
    return Batch.of_rows([_ndjson_row(n, raw, cells) for n, raw in zip(lines, raws, strict=True)])


def _ndjson(lines: _Lines, cells: _Cells, size: int, skip: Skip) -> Iterator[Batch]:
    numbers: list[int] = []
    raws: list[bytes] = []
    for number, raw in enumerate(lines.binary(), 1):
        if not raw.strip():
            continue
        if skip.rows < skip.wanted:
            skip.rows += 1
            skip.line = number
            continue
        numbers.append(number)
        raws.append(raw)
        if len(raws) == size:
            yield _ndjson_batch(numbers, raws, cells)
            numbers, raws = [], []
    if raws:
        yield _ndjson_batch(numbers, raws, cells)


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


class _CsvColumns:
    """Where the columns are in the header."""

    def __init__(self, header: list[str]) -> None:
        header = [h.strip() for h in header]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise RowError(1, f"the header has no column {', '.join(missing)}")
        at = {name: i for i, name in enumerate(header)}
        self.e, self.a, self.o, self.v = (at[n] for n in REQUIRED)
        self.u, self.d, self.k = at.get("unit"), at.get("datasetId"), at.get("type")
        self.width = len(header)

    def row(self, line: int, cells_row: list[str], cells: _Cells) -> SourceRow:
        if len(cells_row) != self.width:
            raise RowError(line, f"{len(cells_row)} columns where the header has {self.width}")
        u, d, k = self.u, self.d, self.k
        return cells.row(
            line,
            cells_row[self.e],
            cells_row[self.a],
            cells_row[self.o],
            _csv_value(cells_row[self.v], line),
            (cells_row[u] or None) if u is not None else None,
            cells_row[d] if d is not None else None,
            cells_row[k] if k is not None else None,
        )

    def batch(self, lines: list[int], records: list[list[str]], cells: _Cells) -> Batch:
        try:
            n = len(records)
            if set(map(len, records)) != {self.width}:
                raise _Unusual
            columns = list(zip(*records, strict=True))
            values = [_csv_value(v, 0) for v in columns[self.v]]
            u, d, k = self.u, self.d, self.k
            return cells.fast_batch(
                lines,
                columns[self.e],
                columns[self.a],
                columns[self.o],
                values,
                [c or None for c in columns[u]] if u is not None else [None] * n,
                columns[d] if d is not None else [None] * n,
                columns[k] if k is not None else None,
            )
        except (_Unusual, RowError):
            pass
        cells.exact += 1
        return Batch.of_rows([self.row(n, r, cells) for n, r in zip(lines, records, strict=True)])


def _csv(lines: _Lines, cells: _Cells, size: int, skip: Skip) -> Iterator[Batch]:
    reader = csv.reader(lines.text(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise RowError(1, f"bad CSV ({exc})") from None
    layout = _CsvColumns(header)
    numbers: list[int] = []
    records: list[list[str]] = []
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise RowError(reader.line_num, f"bad CSV ({exc})") from None
        if not record:
            continue
        if skip.rows < skip.wanted:
            skip.rows += 1
            skip.line = reader.line_num
            continue
        numbers.append(reader.line_num)
        records.append(record)
        if len(records) == size:
            yield layout.batch(numbers, records, cells)
            numbers, records = [], []
    if records:
        yield layout.batch(numbers, records, cells)


@dataclass(slots=True)
class Skip:
    """The data rows to skip (`--skip`), and how far skipping got."""

    wanted: int
    rows: int = 0
    line: int = 0


class RowReader:
    """The rows of a file, read and checked a batch at a time (`TimeseriesImporter.run`)."""

    def __init__(
        self, stream: IO[bytes], fmt: str, vocab: Vocabulary, *, default_type: str | None = None
    ) -> None:
        if fmt not in FORMATS:
            raise BadRequestData(f"format must be one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.lines = _Lines(stream)
        self.cells = _Cells(vocab, default_type)

    def position(self) -> int:
        """How many bytes have been read."""
        return self.lines.position

    def batches(self, size: int, skip: Skip) -> Iterator[Batch]:
        """Checked batches of `size` rows after the first `skip.wanted` data rows (which are
        counted, not checked); raises `RowError` at the first bad row, lazily."""
        read = _ndjson if self.fmt == "ndjson" else _csv
        return read(self.lines, self.cells, size, skip)

    def rows(self) -> Iterator[SourceRow]:
        """The checked rows one at a time (the exact path only)."""
        if self.fmt == "ndjson":
            for number, raw in enumerate(self.lines.binary(), 1):
                if raw.strip():
                    yield _ndjson_row(number, raw, self.cells)
            return
        reader = csv.reader(self.lines.text(), strict=True)
        try:
            layout = _CsvColumns(next(reader))
            while True:
                record = next(reader)
                if record:
                    yield layout.row(reader.line_num, record, self.cells)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RowError(reader.line_num, f"bad CSV ({exc})") from None


def read_rows(
    stream: IO[bytes], fmt: str, vocab: Vocabulary, *, default_type: str | None = None
) -> tuple[RowReader, Callable[[], int]]:
    """The rows of a file (checked as they are read, raising `RowError` at the first bad one)
    for `TimeseriesImporter.run`, and a function telling how many bytes have been read."""
    reader = RowReader(stream, fmt, vocab, default_type=default_type)
    return reader, reader.position
