"""Aggregated temporal queries over HTTP, and bytes on disk per instance (issue 4, "Performance").

    .venv/bin/python -m benchmarks.temporal [--backend sqlite|postgresql|both] [--quick]

On each backend, in a fresh database: one series of one year of one-minute values (525,600
instances) and one of ten years (5.26 M), loaded with `HistoryStore.bulk_load`; then a real
`smartregion serve` answers, one request at a time over a kept-alive connection,

    GET /ngsi-ld/v1/temporal/entities/{id}?options=aggregatedValues&aggrMethods=avg,min,max
        &aggrPeriodDuration=P1D|PT1H&timerel=between&timeAt=<year start>&endTimeAt=<year end>

p50 and p95 over `--requests` requests after a warm-up: on the one-year series, and the same
one-year window on the ten-year series (flatness: the target is ≤ 1.5× the one-year p95). The
raw-path baseline is the same query with `distinctCount` added (which roll-ups cannot answer:
every instance is read and aggregated in Python) over six days — the broker cuts raw answers at
`temporal_max_instances` (10,000) — scaled linearly to a year and labelled so.

Bytes on disk per instance: the instance table with its indexes (all partitions), and the
roll-ups beside it, divided by the instances stored (SQLite `dbstat`, PostgreSQL
`pg_total_relation_size` after VACUUM) — beside the 16 bytes of a raw (time, value) pair.
`--quick` loads 60 and 600 days instead (figures not comparable with the targets).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson
import psycopg

from benchmarks import servers
from benchmarks.history import _pg_bytes, _sqlite_bytes
from benchmarks.loadgen import percentile
from smartregion.storage import DEFAULT_TENANT, open_store
from smartregion.storage.history import BulkRow, HistoryStore
from smartregion.storage.rollups import DAY, MINUTE, format_micros, micros

#: `temperature` under the core context (no Link header: the benchmark needs no network)
ATTR = "https://uri.etsi.org/ngsi-ld/default-context/temperature"
END = micros("2025-01-01T00:00:00Z")
YEAR_ID = "urn:ngsi-ld:Sensor:year"
DECADE_ID = "urn:ngsi-ld:Sensor:decade"


@dataclass(slots=True)
class TemporalFigures:
    """What one backend measured (milliseconds, bytes)."""

    backend: str
    year_instances: int = 0
    decade_instances: int = 0
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)
    instance_bytes_per_row: float = 0.0
    rollup_bytes_per_row: float = 0.0


def _value(i: int) -> float:
    return round(12.0 + 8.0 * ((i * 7919) % 1000) / 1000.0, 2)


async def _load(url: str, days: dict[str, int]) -> None:
    store = open_store(url)
    await store.open()
    await store.migrate()
    assert isinstance(store, HistoryStore)
    try:
        for entity, n_days in days.items():
            n = n_days * DAY // MINUTE
            start = END - n * MINUTE
            for lo in range(0, n, 100_000):
                rows = [
                    BulkRow(entity, ATTR, start + i * MINUTE, _value(i))
                    for i in range(lo, min(n, lo + 100_000))
                ]
                await store.bulk_load(DEFAULT_TENANT, rows)
    finally:
        await store.close()


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _create_entities(port: int) -> None:
    """The current entities the temporal API finds (their instance lies after the window)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for entity in (YEAR_ID, DECADE_ID):
        doc = {
            "id": entity,
            "type": "Sensor",
            "temperature": {"type": "Property", "value": 20.0, "observedAt": format_micros(END)},
        }
        status, text = _request(conn, "POST", "/ngsi-ld/v1/entities", orjson.dumps(doc))
        if status not in (201, 409):
            raise RuntimeError(f"creating {entity}: {status} {text[:300]!r}")
    conn.close()


def _measure(port: int, path: str, requests: int) -> tuple[float, float, int]:
    """p50 and p95 in ms of `requests` sequential GETs (after a warm-up), and the body size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    size = 0
    for _ in range(max(3, requests // 10)):
        status, body = _request(conn, "GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        size = len(body)
    latencies = []
    for _ in range(requests):
        t0 = time.perf_counter()
        status, body = _request(conn, "GET", path)
        latencies.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    conn.close()
    return percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000, size


def _path(entity: str, methods: str, period: str, start: int, end: int) -> str:
    params = {
        "options": "aggregatedValues",
        "aggrMethods": methods,
        "aggrPeriodDuration": period,
        "timerel": "between",
        "timeAt": format_micros(start),
        "endTimeAt": format_micros(end),
    }
    return f"/ngsi-ld/v1/temporal/entities/{quote(entity, safe=':')}?{urlencode(params)}"


@contextmanager
def _database(backend: str) -> Iterator[tuple[str, str | None]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'temporal.db'}", str(Path(tmp) / "temporal.db")
    else:
        with servers.throwaway_pg_database("temporal") as dsn:
            yield dsn, None


def run_backend(backend: str, *, quick: bool, requests: int) -> TemporalFigures:
    """Load, serve and measure one backend."""
    year_days, decade_days = (60, 600) if quick else (365, 3650)
    figures = TemporalFigures(backend)
    figures.year_instances = year_days * DAY // MINUTE
    figures.decade_instances = decade_days * DAY // MINUTE
    with _database(backend) as (url, sqlite_path):
        t0 = time.perf_counter()
        asyncio.run(_load(url, {YEAR_ID: year_days, DECADE_ID: decade_days}))
        print(f"  {backend}: loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        total = figures.year_instances + figures.decade_instances
        if sqlite_path is not None:
            with sqlite3.connect(sqlite_path) as conn:
                figures.instance_bytes_per_row = _sqlite_bytes(conn, ("instance",)) / total
                figures.rollup_bytes_per_row = _sqlite_bytes(conn, ("rollup",)) / total
        else:
            figures.instance_bytes_per_row = _pg_bytes(url, "instance") / total
            figures.rollup_bytes_per_row = _pg_bytes(url, "rollup") / total
            with psycopg.connect(url, autocommit=True) as conn:
                # the load's and VACUUM's dirty pages reach the disk now, not while the requests
                # are timed (a checkpoint in the middle put 50 ms into some P1D requests)
                conn.execute("CHECKPOINT")
        port = servers.free_port()
        log = Path(tempfile.gettempdir()) / f"bench-temporal-{backend}.log"
        with servers.Server(servers.broker_argv(url, port), port, log):
            _create_entities(port)
            year = END - year_days * DAY
            for period in ("P1D", "PT1H"):
                cases = {
                    f"year {period}": (YEAR_ID, "avg,min,max", year, END, requests),
                    f"decade series, year window {period}": (
                        DECADE_ID, "avg,min,max", year, END, requests
                    ),
                    f"raw path, 6 days {period}": (
                        YEAR_ID, "avg,min,max,distinctCount", END - 6 * DAY, END,
                        max(5, requests // 4),
                    ),
                }  # fmt: skip
                for label, (entity, methods, lo, hi, n) in cases.items():
                    p50, p95, size = _measure(port, _path(entity, methods, period, lo, hi), n)
                    figures.latency[label] = (p50, p95)
                    print(
                        f"  {backend} {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({size} B)",
                        flush=True,
                    )
    return figures


def report(figures: TemporalFigures, quick: bool) -> str:
    """The figures of one backend as text."""
    lines = [
        f"{figures.backend}: {figures.year_instances:,} + {figures.decade_instances:,} instances"
    ]
    scale = (60 if quick else 365) / 6
    for period in ("P1D", "PT1H"):
        _, year95 = figures.latency[f"year {period}"]
        _, decade95 = figures.latency[f"decade series, year window {period}"]
        raw50, raw95 = figures.latency[f"raw path, 6 days {period}"]
        lines.append(
            f"  {period}: year p95 {year95:.1f} ms; ten-year series p95 {decade95:.1f} ms"
            f" ({decade95 / year95:.2f}x); raw path 6 days p95 {raw95:.0f} ms"
            f" (scaled to the window: ~{raw50 * scale:.0f} ms at p50)"
        )
    lines.append(
        f"  bytes per instance: instance table + indexes {figures.instance_bytes_per_row:.1f},"
        f" roll-ups {figures.rollup_bytes_per_row:.1f} (raw (time, value): 16)"
    )
    return "\n".join(lines)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not servers.pg_admin_available():
        print("PostgreSQL is not available: skipping it")
        backends.remove("postgresql")
    results = [run_backend(b, quick=args.quick, requests=args.requests) for b in backends]
    for figures in results:
        print(report(figures, args.quick))


if __name__ == "__main__":
    main()
