"""Attribute-history storage benchmarks: bulk load vs the raw database, bytes per instance,
aggregation latency and the cost of history on entity writes (issue 4, "Performance").

    .venv/bin/python -m benchmarks.history [--backend sqlite|postgresql|both] [--quick]

On each backend, in a fresh database and the same run:

1. **Bulk load**: `rows` one-a-minute values of `series` sensors, in calls of `batch` rows, through
   `HistoryStore.bulk_load` (COPY on PostgreSQL, executemany on SQLite; roll-ups included) —
   against the raw ceiling: the same narrow rows `(series, t, value)` into a plain table with a
   `(series, t)` primary key, one transaction per batch (PostgreSQL: COPY and executemany;
   SQLite: executemany). Rows per second and the ratio.
2. **Bytes on disk per instance**: table + indexes of the instance rows (all partitions), the
   roll-ups beside them, and the raw table, each divided by the number of instances (SQLite:
   `dbstat`; PostgreSQL: `pg_total_relation_size`, after VACUUM).
3. **Aggregation**: one series of `year_days` days of one-minute values, summarised per hour and
   per day over the whole span (`HistoryStore.summarise`): median and p95 milliseconds.
4. **History on entity writes**: batches of entity upserts through `Store.transact`, with and
   without a `RecordInstances` op for each attribute change: the overhead ratio.

`python -m benchmarks.run --history` runs it after the broker benchmarks; on its own this module
prints the figures (and writes JSON with `--json`).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from benchmarks import servers
from smartregion.storage import Put, Store, open_store
from smartregion.storage.history import BulkRow, HistoryStore, InstanceRow, RecordInstances
from smartregion.storage.rollups import DAY, HOUR, MINUTE, format_micros, micros

T0 = micros("2025-01-01T00:00:00Z")
ATTR = "https://smartdatamodels.org/dataModel.Environment/temperature"


@dataclass(slots=True)
class HistoryFigures:
    """What one backend measured."""

    backend: str
    rows: int
    bulk_rows_per_s: float = 0.0
    raw_executemany_rows_per_s: float = 0.0
    raw_copy_rows_per_s: float = 0.0
    instance_bytes_per_row: float = 0.0
    rollup_bytes_per_row: float = 0.0
    raw_bytes_per_row: float = 0.0
    year_instances: int = 0
    hourly_ms_median: float = 0.0
    hourly_ms_p95: float = 0.0
    daily_ms_median: float = 0.0
    daily_ms_p95: float = 0.0
    upsert_attrs_per_s: float = 0.0
    upsert_with_history_attrs_per_s: float = 0.0

    @property
    def bulk_vs_raw(self) -> float:
        """The bulk path's rate over the raw ceiling it is judged against."""
        raw = self.raw_copy_rows_per_s or self.raw_executemany_rows_per_s
        return self.bulk_rows_per_s / raw if raw else 0.0

    @property
    def history_overhead(self) -> float:
        """How much slower entity upserts are with history (0.25 = 25 % slower)."""
        if not self.upsert_with_history_attrs_per_s:
            return 0.0
        return self.upsert_attrs_per_s / self.upsert_with_history_attrs_per_s - 1


def batches(series: int, rows: int, batch: int) -> list[list[tuple[int, int, float]]]:
    """`rows` points `(series, t, value)`: every sensor one value a minute, time-major."""
    points = [
        (s, T0 + (i // series) * MINUTE, 15.0 + (i % 997) / 100) for i, s in _cycle(series, rows)
    ]
    return [points[k : k + batch] for k in range(0, len(points), batch)]


def _cycle(series: int, rows: int) -> Iterator[tuple[int, int]]:
    for i in range(rows):
        yield i, i % series + 1


# --- raw ceilings ----------------------------------------------------------------------------


def raw_sqlite(path: Path, data: list[list[tuple[int, int, float]]]) -> tuple[float, float]:
    """(rows/s, bytes per row) of executemany into a plain narrow WITHOUT ROWID table."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE raw (series INTEGER, t INTEGER, v REAL, PRIMARY KEY (series, t))"
        " WITHOUT ROWID"
    )
    n = 0
    t0 = time.perf_counter()
    for part in data:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO raw VALUES (?, ?, ?)", part)
        conn.execute("COMMIT")
        n += len(part)
    rate = n / (time.perf_counter() - t0)
    size = _sqlite_bytes(conn, ("raw",))
    conn.close()
    return rate, size / n


def raw_postgres(dsn: str, data: list[list[tuple[int, int, float]]]) -> tuple[float, float, float]:
    """(executemany rows/s, COPY rows/s, bytes per row) into a plain narrow table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        ddl = "CREATE TABLE raw (series bigint, t bigint, v float8, PRIMARY KEY (series, t))"

        def fresh() -> None:
            conn.execute("DROP TABLE IF EXISTS raw")
            conn.execute(ddl)

        fresh()
        n = 0
        t0 = time.perf_counter()
        for part in data:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany("INSERT INTO raw VALUES (%s, %s, %s)", part)
            n += len(part)
        many = n / (time.perf_counter() - t0)
        fresh()
        t0 = time.perf_counter()
        for part in data:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy("COPY raw FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["int8", "int8", "float8"])
                for row in part:
                    copy.write_row(row)
        copy_rate = n / (time.perf_counter() - t0)
        conn.execute("VACUUM ANALYZE raw")
        row = conn.execute("SELECT pg_total_relation_size('raw')").fetchone()
        size = int(row[0]) if row else 0
        conn.execute("DROP TABLE raw")
    return many, copy_rate, size / n


def _sqlite_bytes(conn: sqlite3.Connection, tables: tuple[str, ...]) -> int:
    """Bytes of the pages of these tables and their indexes (`dbstat`)."""
    marks = ", ".join("?" for _ in tables)
    row = conn.execute(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM"
        f" sqlite_schema WHERE tbl_name IN ({marks}))",
        tables,
    ).fetchone()
    return int(row[0])


def _pg_bytes(dsn: str, parent: str) -> int:
    """Bytes of a table, its partitions and all their indexes, after VACUUM."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {parent}")
        # a plain table has no partition tree; a partitioned one has no storage of its own
        row = conn.execute(
            "SELECT greatest((SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
            " FROM pg_partition_tree(%s::regclass)), pg_total_relation_size(%s::regclass))",
            (parent, parent),
        ).fetchone()
        return int(row[0]) if row else 0


# --- the store -------------------------------------------------------------------------------


async def bulk(store: Store, data: list[list[tuple[int, int, float]]]) -> float:
    """Rows per second of `bulk_load` over the batches (rows built beforehand)."""
    assert isinstance(store, HistoryStore)
    calls = [
        [BulkRow(f"urn:ngsi-ld:Sensor:{s}", ATTR, t, v, "CEL") for s, t, v in part] for part in data
    ]
    n = 0
    t0 = time.perf_counter()
    for rows in calls:
        n += await store.bulk_load("", rows)
    return n / (time.perf_counter() - t0)


async def aggregation(
    store: Store, days: int, samples: int
) -> tuple[int, list[float], list[float]]:
    """Load one series of `days` days of one-minute values; time hourly and daily summaries."""
    assert isinstance(store, HistoryStore)
    total = days * 24 * 60
    chunk = 50_000
    for k in range(0, total, chunk):
        await store.bulk_load(
            "",
            [
                BulkRow("urn:ngsi-ld:Sensor:year", ATTR, T0 + i * MINUTE, float(i % 1000))
                for i in range(k, min(total, k + chunk))
            ],
        )
    (series,) = await store.find_series("", ["urn:ngsi-ld:Sensor:year"])
    span = days * DAY
    hourly = [(T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in range(span // HOUR)]
    daily = [(T0 + d * DAY, T0 + (d + 1) * DAY) for d in range(days)]
    timings: dict[str, list[float]] = {"hourly": [], "daily": []}
    for _ in range(samples):
        for name, windows in (("hourly", hourly), ("daily", daily)):
            t0 = time.perf_counter()
            got = await store.summarise(series.key, windows)
            timings[name].append((time.perf_counter() - t0) * 1000)
            assert sum(s.count for s in got if s) == total
    return total, timings["hourly"], timings["daily"]


async def upserts(store: Store, entities: int, rounds: int, history: bool) -> float:
    """Attribute changes per second of batch upserts of `entities` entities with 3 attributes."""
    attrs = [f"https://example.org/a{k}" for k in range(3)]
    ids = [f"urn:ngsi-ld:Sensor:u{'h' if history else 'p'}{k}" for k in range(entities)]
    n = 0
    elapsed = 0.0
    for r in range(rounds + 1):
        at = format_micros(T0 + r * MINUTE)

        def mutate(current: dict[str, Any], r: int = r, at: str = at) -> tuple[list[Any], None]:
            ops: list[Any] = []
            rows: list[InstanceRow] = []
            for eid in ids:
                instances = {
                    a: {"type": "Property", "value": r + k / 10, "observedAt": at}
                    for k, a in enumerate(attrs)
                }
                doc = {
                    "id": eid,
                    "type": ["https://example.org/Sensor"],
                    "attrs": {a: [i] for a, i in instances.items()},
                }
                ops.append(Put(doc))
                rows.extend(InstanceRow(eid, a, i) for a, i in instances.items())
            if history:
                ops.append(RecordInstances(tuple(rows)))
            return ops, None

        t0 = time.perf_counter()
        await store.transact("", ids, mutate, owner="bench")
        if r:  # the first round creates the entities: not timed
            elapsed += time.perf_counter() - t0
            n += entities * len(attrs)
    return n / elapsed


@contextmanager
def _database(backend: str, tmp: Path, label: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / (label + '.db')}"
    else:
        with servers.throwaway_pg_database(label) as url:
            yield url


async def _with_store(url: str, work: Any) -> Any:
    store = open_store(url)
    await store.open()
    await store.migrate()
    try:
        return await work(store)
    finally:
        await store.close()


def run_history(backend: str, *, quick: bool = False) -> HistoryFigures:
    """Every history benchmark on one backend, in fresh databases."""
    series, rows, batch = (50, 20_000, 5_000) if quick else (500, 500_000, 10_000)
    days, samples = (7, 3) if quick else (365, 20)
    entities, rounds = (100, 3) if quick else (1000, 10)
    data = batches(series, rows, batch)
    out = HistoryFigures(backend, rows)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmpdir:
        tmp = Path(tmpdir)
        if backend == "sqlite":
            out.raw_executemany_rows_per_s, out.raw_bytes_per_row = raw_sqlite(tmp / "raw.db", data)
        else:
            with servers.throwaway_pg_database("hraw_") as dsn:
                many, copy_rate, size = raw_postgres(dsn, data)
                out.raw_executemany_rows_per_s, out.raw_copy_rows_per_s = many, copy_rate
                out.raw_bytes_per_row = size

        with _database(backend, tmp, "hbulk_") as url:
            out.bulk_rows_per_s = asyncio.run(_with_store(url, lambda s: bulk(s, data)))
            if backend == "sqlite":
                conn = sqlite3.connect(url[len("sqlite:///") :])
                out.instance_bytes_per_row = _sqlite_bytes(conn, ("instance",)) / rows
                out.rollup_bytes_per_row = _sqlite_bytes(conn, ("rollup",)) / rows
                conn.close()
            else:
                out.instance_bytes_per_row = _pg_bytes(url, "instance") / rows
                out.rollup_bytes_per_row = _pg_bytes(url, "rollup") / rows

        with _database(backend, tmp, "hagg_") as url:
            total, hourly, daily = asyncio.run(
                _with_store(url, lambda s: aggregation(s, days, samples))
            )
            out.year_instances = total
            out.hourly_ms_median, out.hourly_ms_p95 = statistics.median(hourly), _p95(hourly)
            out.daily_ms_median, out.daily_ms_p95 = statistics.median(daily), _p95(daily)

        with _database(backend, tmp, "hups_") as url:

            async def both(store: Store) -> tuple[float, float]:
                plain = await upserts(store, entities, rounds, history=False)
                with_history = await upserts(store, entities, rounds, history=True)
                return plain, with_history

            out.upsert_attrs_per_s, out.upsert_with_history_attrs_per_s = asyncio.run(
                _with_store(url, both)
            )
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def describe(f: HistoryFigures) -> str:
    """The figures as Markdown lines."""
    raw = "COPY" if f.raw_copy_rows_per_s else "executemany"
    lines = [
        f"### History storage — {f.backend}",
        "",
        f"- bulk load: {f.bulk_rows_per_s:,.0f} rows/s with roll-ups; raw narrow rows:"
        f" executemany {f.raw_executemany_rows_per_s:,.0f} rows/s"
        + (f", COPY {f.raw_copy_rows_per_s:,.0f} rows/s" if f.raw_copy_rows_per_s else "")
        + f" → {f.bulk_vs_raw:.0%} of raw {raw} ({f.rows:,} rows)",
        f"- on disk per instance: {f.instance_bytes_per_row:.1f} B (instance rows + indexes)"
        f" + {f.rollup_bytes_per_row:.1f} B (roll-ups); plain (series, t, value) table"
        f" {f.raw_bytes_per_row:.1f} B; the data itself: 16 B (time, value)",
        f"- aggregation over {f.year_instances:,} one-minute values of one series: hourly"
        f" (one window per hour) median {f.hourly_ms_median:.1f} ms, p95 {f.hourly_ms_p95:.1f} ms;"
        f" daily median {f.daily_ms_median:.1f} ms, p95 {f.daily_ms_p95:.1f} ms",
        f"- entity batch upserts (store level): {f.upsert_attrs_per_s:,.0f} attribute changes/s"
        f" without history, {f.upsert_with_history_attrs_per_s:,.0f} with → history costs"
        f" {f.history_overhead:.0%}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the history benchmarks and print the figures (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="small data: a smoke check")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        if backend == "postgresql" and not servers.pg_admin_available():
            print("PostgreSQL unreachable: skipped")
            continue
        figures = run_history(backend, quick=args.quick)
        results.append(figures)
        print(describe(figures), flush=True)
        print()
    if args.json:
        args.json.write_bytes(
            orjson.dumps([asdict(r) for r in results], option=orjson.OPT_INDENT_2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
