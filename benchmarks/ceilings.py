"""The storage ceiling: how fast the database itself takes the same rows, with no broker around it.

SQLite: a plain table (id, doc JSON text), WAL, synchronous=FULL, `executemany` of one batch per
transaction — the same durability the broker promises. PostgreSQL: a plain table (id, doc jsonb)
in a throwaway database, one batch per transaction, with `executemany` (psycopg 3 pipelines it)
and with COPY. Updates are upserts (`INSERT … ON CONFLICT (id) DO UPDATE`) of the next round's
documents. `single_commits` is the rate of one-row UPDATE transactions from one client, and
`concurrent_commits` from 16 clients at once (PostgreSQL only: SQLite has one writer): what a
single-entity PATCH costs the database at least, each commit being durable.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

from benchmarks.workload import ATTRS_PER_ENTITY, Batch


@dataclass(slots=True)
class StorageCeiling:
    """Rows per second of the raw database (0 where not measured)."""

    insert_rows_per_s: float
    upsert_rows_per_s: float
    copy_rows_per_s: float
    single_commits_per_s: float
    concurrent_commits_per_s: float = 0.0

    @property
    def insert_attrs_per_s(self) -> float:
        """The insert rate in attribute updates per second."""
        return self.insert_rows_per_s * ATTRS_PER_ENTITY

    @property
    def upsert_attrs_per_s(self) -> float:
        """The update rate in attribute updates per second."""
        return self.upsert_rows_per_s * ATTRS_PER_ENTITY

    @property
    def copy_attrs_per_s(self) -> float:
        """The COPY rate in attribute updates per second."""
        return self.copy_rows_per_s * ATTRS_PER_ENTITY


def fsync_ms(directory: Path, samples: int = 200) -> float:
    """Median milliseconds of a 4 KiB write + fsync in `directory`: what one durable commit costs."""
    import os
    import statistics

    times: list[float] = []
    with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-probe-") as fh:
        fd = fh.fileno()
        block = b"\0" * 4096
        for _ in range(samples):
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _rows(batches: Sequence[Batch]) -> list[list[tuple[str, str]]]:
    return [[(e["id"], orjson.dumps(e).decode()) for e in b.entities] for b in batches]


def sqlite_ceiling(
    creates: Sequence[Batch], updates: Sequence[Batch], single_commits: int
) -> StorageCeiling:
    """Raw SQLite rates for the given batches (a temporary database file)."""
    create_rows, update_rows = _rows(creates), _rows(updates)
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-raw-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE doc (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")

        def timed(sql: str, batches: list[list[tuple[str, str]]]) -> float:
            rows = 0
            t0 = time.perf_counter()
            for batch in batches:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, batch)
                conn.execute("COMMIT")
                rows += len(batch)
            return rows / (time.perf_counter() - t0)

        insert = timed("INSERT INTO doc (id, doc) VALUES (?, ?)", create_rows)
        upsert = timed(
            "INSERT INTO doc (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            update_rows,
        )
        singles = [row for batch in create_rows for row in batch][:single_commits]
        t0 = time.perf_counter()
        for entity_id, doc in singles:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE doc SET doc = ? WHERE id = ?", (doc, entity_id))
            conn.execute("COMMIT")
        single = len(singles) / (time.perf_counter() - t0)
        conn.close()
    return StorageCeiling(insert, upsert, 0.0, single)


def postgres_ceiling(
    dsn: str, creates: Sequence[Batch], updates: Sequence[Batch], single_commits: int
) -> StorageCeiling:
    """Raw PostgreSQL rates for the given batches, in the (throwaway) database `dsn`."""
    create_rows, update_rows = _rows(creates), _rows(updates)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS doc")
        conn.execute("CREATE TABLE doc (id text PRIMARY KEY, doc jsonb NOT NULL)")

        def timed(sql: str, batches: list[list[tuple[str, str]]]) -> float:
            rows = 0
            t0 = time.perf_counter()
            for batch in batches:
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(sql, batch)
                rows += len(batch)
            return rows / (time.perf_counter() - t0)

        insert = timed("INSERT INTO doc (id, doc) VALUES (%s, %s)", create_rows)
        upsert = timed(
            "INSERT INTO doc (id, doc) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            update_rows,
        )
        conn.execute("TRUNCATE doc")
        rows = 0
        t0 = time.perf_counter()
        for batch in create_rows:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy("COPY doc (id, doc) FROM STDIN") as copy,
            ):
                for row in batch:
                    copy.write_row(row)
            rows += len(batch)
        copy_rate = rows / (time.perf_counter() - t0)
        singles = [row for batch in create_rows for row in batch][:single_commits]
        t0 = time.perf_counter()
        for entity_id, doc in singles:
            conn.execute("UPDATE doc SET doc = %s WHERE id = %s", (doc, entity_id))
        single = len(singles) / (time.perf_counter() - t0)
    concurrent = _concurrent_commits(dsn, singles, clients=16)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE doc")
    return StorageCeiling(insert, upsert, copy_rate, single, concurrent)


def _concurrent_commits(dsn: str, rows: list[tuple[str, str]], *, clients: int) -> float:
    """One-row UPDATE transactions from `clients` connections at once, per second."""
    share = max(1, len(rows) // clients)
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(conn: psycopg.Connection[tuple[object, ...]], part: list[tuple[str, str]]) -> None:
        barrier.wait()
        for entity_id, doc in part:
            conn.execute("UPDATE doc SET doc = %s WHERE id = %s", (doc, entity_id))

    threads = [
        threading.Thread(target=work, args=(conns[k], rows[k * share : (k + 1) * share]))
        for k in range(clients)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    return share * clients / elapsed
