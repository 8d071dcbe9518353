"""Event-stream (LDES) benchmarks (issue 6, "Performance"; figures go to docs/benchmarks.md).

    .venv/bin/python -m benchmarks.ldes [--backend sqlite|postgresql] [--quick] [--json FILE]

1. **Page generation**: a data set of `members` observations (one a minute per sensor, recorded a
   day ago, so every page is closed); the time to compute and render one page of 100 and of 1,000 members, in Turtle
   and N-Quads, with the page cache off — median and p95 ms.
2. **Immutable pages vs a static file**: `smartregion serve` (one worker, as deployed) answers
   GET of one full, immutable page for `seconds` with `wrk`; then the same bytes are served as a
   static file (`FileResponse`) by a bare Starlette app under the same uvicorn options
   (`--serve-static`); requests per second of both and the ratio (target ≥ 50 %).
3. **Ingestion to readable page**: entities upserted through the NGSI-LD API of the running
   server; members per second from the first write until the last member is readable in the
   stream's paged view (walking it), with `ldes_settle_seconds` as set (its wait included).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks import servers
from benchmarks.loadgen import WRK
from smartregion.governance import Governance, Principal
from smartregion.ldes.fragments import PageRef
from smartregion.ldes.serialisation import render_page
from smartregion.ldes.streams import EventStreams, StreamConfig
from smartregion.storage import DEFAULT_TENANT, Put, open_store
from smartregion.storage.history import HistoryStore, InstanceRow, now_micros
from smartregion.storage.rollups import DAY, format_micros, format_observed

OWNER = "smartregion"  # the default organisation: anonymous benchmark writes are its own
NS = "https://uri.etsi.org/ngsi-ld/default-context/"
DATASET = "bench-sensors"


@dataclass(slots=True)
class LdesFigures:
    """What one run measured."""

    backend: str
    members: int
    generation_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    page_rps: float = 0.0
    static_rps: float = 0.0
    page_bytes: int = 0
    ingest_members: int = 0
    ingest_seconds: float = 0.0
    settle_seconds: float = 0.0

    @property
    def ratio(self) -> float:
        """Immutable page requests per second as a share of the static file's."""
        return self.page_rps / self.static_rps if self.static_rps else 0.0


async def prepare(url: str, sensors: int, per_sensor: int) -> None:
    """The platform organisation, a data set of Sensors and its history, recorded a day ago."""
    store = open_store(url)
    await store.open()
    await store.migrate()
    try:
        gov = Governance(store)  # type: ignore[arg-type]
        op = Principal.cli()
        await gov.create_organisation(op, OWNER, "Smartregion", "region")
        await gov.create_dataset(op, DATASET, OWNER, "Sensoren", ["Sensor"], policy="open")
        docs = [
            {
                "id": f"urn:ngsi-ld:Sensor:{k}",
                "type": [NS + "Sensor"],
                "createdAt": format_micros(0),
                "modifiedAt": format_micros(0),
                "attrs": {},
            }
            for k in range(sensors)
        ]
        await store.transact(
            DEFAULT_TENANT,
            [d["id"] for d in docs],
            lambda _: ([Put(d) for d in docs], None),
            owner=OWNER,
        )
        assert isinstance(store, HistoryStore)
        start = now_micros() - DAY
        rows = []
        # the reference load: one value a minute per sensor, recorded half a second later
        for i in range(per_sensor):
            for k in range(sensors):
                at = start + i * 60_000_000 + k * (60_000_000 // sensors)
                rows.append(
                    InstanceRow(
                        docs[k]["id"],
                        NS + "temperature",
                        {
                            "type": "Property",
                            "value": 15 + (i % 100) / 10,
                            "unitCode": "CEL",
                            "observedAt": format_observed(at),
                            "modifiedAt": format_micros(at + 500),
                        },
                    )
                )
        for k in range(0, len(rows), 10_000):
            await store.append_instances(DEFAULT_TENANT, rows[k : k + 10_000])
    finally:
        await store.close()


async def generation(url: str, sizes: tuple[int, ...], samples: int) -> dict[str, dict[str, float]]:
    """Median and p95 ms to compute and render one page of each size (no page cache)."""
    store = open_store(url)
    await store.open()
    try:
        gov = Governance(store)  # type: ignore[arg-type]
        dataset = await gov.get_dataset(DATASET)
        out: dict[str, dict[str, float]] = {}
        for size in sizes:
            streams = EventStreams(store, gov, StreamConfig(page_size=size, cache_bytes=0))  # type: ignore[arg-type]
            page = await streams.page(dataset, PageRef("paged"))
            assert len(page.members) == size, (size, len(page.members))
            for media in ("text/turtle", "application/n-quads"):
                times = []
                for _ in range(samples):
                    t0 = time.perf_counter()
                    page = await streams.page(dataset, PageRef("paged"))
                    render_page(streams.description(dataset, "http://bench"), page, media)
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                out[f"{size} {media}"] = {
                    "median_ms": statistics.median(times),
                    "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
                }
        return out
    finally:
        await store.close()


def wrk_get(port: int, path: str, seconds: int) -> float:
    """Requests per second of GET `path` (Accept: text/turtle) with 16 connections."""
    argv = [
        WRK,
        "-t2",
        "-c16",
        f"-d{seconds}s",
        "-H",
        "Accept: text/turtle",
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    found = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if found is None or "Non-2xx" in out.stdout:
        raise RuntimeError(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    return float(found[1])


def fetch(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers=headers or {"Accept": "text/turtle"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, {k.lower(): v for k, v in r.getheaders()}


def next_page(body: bytes) -> str | None:
    """The path of the page a paged-view page's relation leads to (None: the last page)."""
    found = re.search(rb"tree:node <http://[^/]+(/ldes/[^>]+)>", body)
    return found[1].decode() if found else None


@contextmanager
def server(url: str, log: Path, settle: float) -> Any:
    port = servers.free_port()
    env = {
        "SMARTREGION_LDES_SETTLE_SECONDS": str(settle),
        "SMARTREGION_ACCESS_LOG": "false",
        "SMARTREGION_HISTORY_PURGE_INTERVAL": "0",
    }
    os.environ.update(env)
    with servers.Server(servers.broker_argv(url, port), port, log) as s:
        yield s


_INGESTED = re.compile(rb"sosa:madeBySensor <urn:ngsi-ld:Sensor:ingest-")


def last_page(port: int) -> str:
    """The path of the paged view's last (growing) page."""
    path: str | None = f"/ldes/{DATASET}/paged"
    while True:
        assert path is not None
        status, body, _ = fetch(port, path)
        assert status == 200, (status, body[:300])
        following = next_page(body)
        if following is None:
            return path
        path = following


def ingest(port: int, sensors: int, rounds: int) -> tuple[int, float]:
    """(members, seconds) from the first upsert until the last member is readable."""
    start = last_page(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    for r in range(rounds):
        body = orjson.dumps(
            [
                {
                    "id": f"urn:ngsi-ld:Sensor:ingest-{k}",
                    "type": "Sensor",
                    "temperature": {
                        "type": "Property",
                        "value": r + k / 1000,
                        "unitCode": "CEL",
                        "observedAt": format_observed(now_micros() // 1000 * 1000),
                    },
                }
                for k in range(sensors)
            ]
        )
        conn.request(
            "POST",
            "/ngsi-ld/v1/entityOperations/upsert",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (201, 204), resp.status
    conn.close()
    wanted = sensors * rounds
    done = 0  # members on pages already walked past (full pages never change)
    path = start
    while True:
        status, body, _ = fetch(port, path)
        assert status == 200, (status, body[:300])
        here = len(_INGESTED.findall(body))
        following = next_page(body)
        if following is not None:
            done += here
            path = following
            continue
        if done + here >= wanted:
            return wanted, time.perf_counter() - t0
        time.sleep(0.05)


def serve_static(path: Path, port: int) -> None:
    """Serve one file at every path, as `smartregion serve` serves the app (uvicorn.run)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    async def page(request: Request) -> Response:
        return FileResponse(path, media_type="text/turtle; charset=utf-8")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/healthz", healthz), Route("/{rest:path}", page)])
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False
    )


def run(backend: str, *, quick: bool) -> LdesFigures:
    sensors, per_sensor = (50, 40) if quick else (500, 200)
    seconds = 3 if quick else 15
    figures = LdesFigures(backend, sensors * per_sensor)
    with tempfile.TemporaryDirectory() as tmp, _database(backend, Path(tmp)) as url:
        asyncio.run(prepare(url, sensors, per_sensor))
        figures.generation_ms = asyncio.run(generation(url, (100, 1000), 3 if quick else 30))
        settle = 1.0
        figures.settle_seconds = settle
        with server(url, Path(tmp) / "server.log", settle) as s:
            status, root, _ = fetch(s.port, f"/ldes/{DATASET}/paged")
            assert status == 200
            path = next_page(root)
            assert path is not None
            status, body, headers = fetch(s.port, path)
            assert headers["cache-control"].endswith("immutable"), headers
            figures.page_bytes = len(body)
            figures.page_rps = wrk_get(s.port, path, seconds)
            figures.ingest_members, figures.ingest_seconds = ingest(
                s.port, 100 if quick else 1000, 5 if quick else 20
            )
        static = Path(tmp) / "page.ttl"
        static.write_bytes(body)
        port = servers.free_port()
        argv = [
            sys.executable,
            "-m",
            "benchmarks.ldes",
            "--serve-static",
            str(static),
            "--port",
            str(port),
        ]
        with servers.Server(argv, port, Path(tmp) / "static.log"):
            figures.static_rps = wrk_get(port, "/page.ttl", seconds)
    return figures


@contextmanager
def _database(backend: str, tmp: Path) -> Any:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'ldes.db'}"
    else:
        with servers.throwaway_pg_database("ldes") as dsn:
            yield dsn


def describe(f: LdesFigures) -> str:
    lines = [f"LDES benchmark ({f.backend}, {f.members:,} members)"]
    for key, v in f.generation_ms.items():
        lines.append(f"  page of {key}: median {v['median_ms']:.1f} ms, p95 {v['p95_ms']:.1f} ms")
    lines.append(
        f"  immutable page ({f.page_bytes:,} bytes): {f.page_rps:,.0f} req/s; static file"
        f" {f.static_rps:,.0f} req/s; ratio {f.ratio:.0%}"
    )
    lines.append(
        f"  ingestion to readable page: {f.ingest_members:,} members in {f.ingest_seconds:.1f} s"
        f" = {f.ingest_members / f.ingest_seconds:,.0f} members/s (settle {f.settle_seconds:g} s)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--serve-static", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=8101, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_static:
        serve_static(Path(args.serve_static), args.port)
        return
    figures = run(args.backend, quick=args.quick)
    print(describe(figures))
    if args.json:
        Path(args.json).write_text(
            json.dumps({**asdict(figures), "ratio": figures.ratio}, indent=2)
        )


if __name__ == "__main__":
    main()
