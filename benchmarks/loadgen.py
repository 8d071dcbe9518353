"""Load generators: a sequential keep-alive HTTP client (benchmarks 1 and 3) and `wrk` (benchmark 2)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.workload import Batch

WRK = shutil.which("wrk") or "/usr/bin/wrk"
PATCH_LUA = Path(__file__).resolve().parent / "wrk" / "patch.lua"
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (nearest rank) of the samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class RequestFailed(RuntimeError):
    """The server answered with an unexpected status."""


@dataclass(slots=True)
class BatchRun:
    """Sequential batch requests: wall time and per-request latencies (seconds)."""

    requests: int = 0
    attrs: int = 0
    entities: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def attrs_per_s(self) -> float:
        """Attribute updates per second of wall time."""
        return self.attrs / self.elapsed if self.elapsed else 0.0

    @property
    def entities_per_s(self) -> float:
        """Entities per second of wall time."""
        return self.entities / self.elapsed if self.elapsed else 0.0


def _connection(port: int, timeout: float = 300.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def post_batches(
    port: int, batches: Sequence[Batch], *, ok: Sequence[int] = (200, 201, 204)
) -> BatchRun:
    """POST each batch body to /entityOperations/upsert one after another on one connection."""
    run = BatchRun()
    conn = _connection(port)
    headers = {"Content-Type": "application/json"}
    try:
        start = time.perf_counter()
        for batch in batches:
            t0 = time.perf_counter()
            conn.request("POST", UPSERT_PATH, body=batch.body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            run.latencies.append(time.perf_counter() - t0)
            if resp.status not in ok:
                raise RequestFailed(f"upsert answered {resp.status}: {data[:500]!r}")
            run.requests += 1
            run.attrs += batch.attr_count
            run.entities += len(batch.entities)
        run.elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return run


@dataclass(slots=True)
class QueryRun:
    """Sequential GETs of one path: latencies (seconds) and what the last answer said."""

    path: str
    latencies: list[float]
    returned: int
    count_header: int | None
    #: a request took longer than the timeout (the server should be restarted)
    timed_out: bool = False


def time_gets(
    port: int, path: str, *, warmup: int, samples: int, budget_s: float, timeout_s: float
) -> QueryRun:
    """GET `path` up to `warmup` times untimed, then up to `samples` times timed, on one connection.

    A slow query stops early: warm-up after a quarter of `budget_s`, timing after `budget_s`
    (with at least 3 timed samples), and at once when one request exceeds `timeout_s` (then
    `timed_out` is set and that request counts as one sample of `timeout_s`), so one
    pathological query cannot stall the run.
    """
    conn = _connection(port, timeout_s)
    latencies: list[float] = []
    returned = 0
    count: int | None = None

    def get() -> tuple[float, http.client.HTTPResponse, bytes]:
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise RequestFailed(f"GET {path} answered {resp.status}: {data[:500]!r}")
        return elapsed, resp, data

    try:
        start = time.perf_counter()
        for _ in range(warmup):
            get()
            if time.perf_counter() - start > budget_s / 4:
                break
        start = time.perf_counter()
        while len(latencies) < samples:
            elapsed, resp, data = get()
            latencies.append(elapsed)
            if len(latencies) >= 3 and time.perf_counter() - start > budget_s:
                break
        body: Any = json.loads(data)
        returned = len(body) if isinstance(body, list) else 0
        raw = resp.getheader("NGSILD-Results-Count")
        count = int(raw) if raw is not None else None
    except TimeoutError:
        return QueryRun(path, [*latencies, timeout_s], returned, count, timed_out=True)
    finally:
        conn.close()
    return QueryRun(path, latencies, returned, count)


def request_status(
    port: int, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """One request; its status and body."""
    conn = _connection(port)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass(slots=True)
class WrkRun:
    """What `wrk` measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk_patch(
    port: int,
    body: bytes,
    id_prefix: str,
    id_count: int,
    *,
    seconds: int,
    connections: int = 16,
    threads: int = 2,
) -> WrkRun:
    """PATCH /entities/{id}/attrs with `connections` concurrent clients for `seconds`."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json") as fh:
        fh.write(body)
        fh.flush()
        argv = [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(PATCH_LUA),
            f"http://127.0.0.1:{port}",
            "--",
            fh.name,
            id_prefix,
            str(id_count),
        ]
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    data = json.loads(lines[-1])
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return WrkRun(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )
