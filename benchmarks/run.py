"""Run the broker benchmarks and write the results into docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run [--backend sqlite|postgresql|both] [--quick]

Per run: the HTTP ceiling (a bare Starlette handler, `benchmarks/bare.py`) once, then for each
backend the storage ceiling (raw inserts of the same rows) and the broker itself, started as
`smartregion serve --anonymous-writes --database URL --port P` on a fresh database: 1. batch
upsert (creates, then updates), the load of the query data set, 3. queries, 2. single-entity
PATCH with wrk. `--quick` is a smoke check (small data, short runs) and does not touch the
document unless `--write` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import ceilings, history, loadgen, report, servers, workload
from benchmarks.report import BackendResult, QueryFigure
from benchmarks.workload import Batch


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to measure."""

    mode: str
    batch_size: int
    #: timed batches of benchmark 1 (each sent once as creates, once as updates)
    bench_batches: int
    #: entities loaded for benchmark 3 (and rotated over by benchmark 2)
    total_entities: int
    wrk_seconds: int
    wrk_warmup_seconds: int
    query_warmup: int
    query_samples: int
    #: seconds of timed requests per query at most
    query_budget_s: float
    #: one request slower than this is abandoned
    query_timeout_s: float
    single_commits: int

    @property
    def warmup_ids(self) -> tuple[int, int]:
        """The untimed warm-up batch's ids."""
        return 0, self.batch_size

    @property
    def bench_start(self) -> int:
        """The first id of benchmark 1's batches."""
        return self.batch_size


FULL = Plan("full", 1000, 20, 100_000, 15, 3, 20, 200, 20.0, 30.0, 1000)
QUICK = Plan("quick", 1000, 3, 10_000, 3, 1, 3, 20, 3.0, 5.0, 200)


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _cpu_mhz() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return f"{float(line.split(':', 1)[1]):.0f} MHz"
    except (OSError, ValueError):
        pass
    return "?"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError):
        pass
    return "?"


def _wrk_version() -> str:
    try:
        out = subprocess.run([loadgen.WRK, "-v"], capture_output=True, text=True, timeout=10)
        first = (out.stdout or out.stderr).splitlines()[0]
        return first.split(" [", 1)[0].split(" Copyright", 1)[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "not found"


def machine_info(pg_ok: bool) -> dict[str, str]:
    """What the figures were measured on."""
    import starlette
    import uvicorn

    info = {
        "CPU": f"{_cpu_model()} ({_cpu_mhz()})",
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "uvicorn / starlette": f"{uvicorn.__version__} / {starlette.__version__} (uvloop + httptools, 1 worker)",
        "SQLite": sqlite3.sqlite_version,
        "load generators": f"{_wrk_version()}; Python http.client (one keep-alive connection)",
    }
    if pg_ok:
        settings = servers.pg_settings()
        info["PostgreSQL"] = (
            f"{servers.pg_version()} on 127.0.0.1 ("
            + ", ".join(f"{k}={v}" for k, v in settings.items())
            + ")"
        )
    info["note"] = (
        f"the server (1 worker), the database and the load generator share these "
        f"{os.cpu_count()} cores"
    )
    return info


# --- the data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Data:
    """Every batch body of the run, generated once (the baselines send the same bytes)."""

    warmup: list[Batch]
    creates: list[Batch]
    updates: list[Batch]
    load: list[Batch]

    def final_entities(self) -> Iterator[dict[str, Any]]:
        """The entities as stored once every batch was sent (updates replaced the creates)."""
        for batches in (self.warmup, self.updates, self.load):
            for batch in batches:
                yield from batch.entities


def make_data(plan: Plan) -> Data:
    """Generate the run's batches."""
    size = plan.batch_size
    warmup = workload.make_batches(0, 1, size)
    creates = workload.make_batches(plan.bench_start, plan.bench_batches, size)
    updates = workload.make_batches(plan.bench_start, plan.bench_batches, size, round_no=1)
    first_load = plan.bench_start + plan.bench_batches * size
    load = workload.make_batches(
        first_load, max(0, (plan.total_entities - first_load) // size), size
    )
    return Data(warmup, creates, updates, load)


# --- the HTTP ceiling ----------------------------------------------------------------------


@dataclass(slots=True)
class BareFigures:
    """The bare handler's batch figures, measured once per run (its PATCH rate is measured
    around each backend's own, `measure_bare_patch`)."""

    create_attrs_per_s: float
    update_attrs_per_s: float
    batch_p50_ms: float


def measure_bare(plan: Plan, data: Data, workdir: Path, log_level: str) -> BareFigures:
    """Benchmarks 1 and 2 against the bare Starlette handler."""
    port = servers.free_port()
    argv = [*servers.bare_argv(port), "--log-level", log_level]
    with servers.Server(argv, port, workdir / "bare.log"):
        loadgen.post_batches(port, data.warmup)
        creates = loadgen.post_batches(port, data.creates)
        updates = loadgen.post_batches(port, data.updates)
    return BareFigures(
        creates.attrs_per_s,
        updates.attrs_per_s,
        loadgen.percentile(creates.latencies + updates.latencies, 50) * 1000,
    )


# --- one backend ---------------------------------------------------------------------------


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL for the broker (a temp file, or a throwaway PostgreSQL database)."""
    if backend == "sqlite":
        path = workdir / "broker.db"
        yield f"sqlite:///{path}"
        return
    with servers.throwaway_pg_database() as url:
        yield url


def storage_ceiling(backend: str, plan: Plan, data: Data) -> ceilings.StorageCeiling:
    """The raw database rates for this backend."""
    if backend == "sqlite":
        return ceilings.sqlite_ceiling(data.creates, data.updates, plan.single_commits)
    with servers.throwaway_pg_database("raw_") as dsn:
        return ceilings.postgres_ceiling(dsn, data.creates, data.updates, plan.single_commits)


def measure_backend(
    backend: str,
    plan: Plan,
    data: Data,
    bare: BareFigures,
    machine: dict[str, str],
    workdir: Path,
    log_level: str,
) -> BackendResult:
    """Every benchmark on one backend; a failure is recorded in the result, not raised."""
    pg = machine.get("PostgreSQL", "").split(" on ")[0]
    db_label = f"SQLite {sqlite3.sqlite_version}" if backend == "sqlite" else f"PostgreSQL {pg}"
    result = BackendResult(
        backend=backend,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        mode=plan.mode,
        machine={**machine, "database": db_label},
        bare_create_attrs_per_s=bare.create_attrs_per_s,
        bare_update_attrs_per_s=bare.update_attrs_per_s,
        bare_batch_p50_ms=bare.batch_p50_ms,
        wrk_seconds=plan.wrk_seconds,
        query_samples_max=plan.query_samples,
        batch_requests=len(data.creates),
    )
    result.notes.append(
        f"1-minute load average when this backend's run began: {os.getloadavg()[0]:.2f} "
        "(anything above ~0.1 means other processes shared the cores)"
    )
    result.notes.append(
        f"fsync of 4 KiB in the temp directory when this backend's run began: median "
        f"{ceilings.fsync_ms(workdir):.2f} ms (every durable commit pays at least this)"
    )
    try:
        say(f"{backend}: storage ceiling")
        raw = storage_ceiling(backend, plan, data)
        result.raw = {
            **asdict(raw),
            "insert_attrs_per_s": raw.insert_attrs_per_s,
            "upsert_attrs_per_s": raw.upsert_attrs_per_s,
            "copy_attrs_per_s": raw.copy_attrs_per_s,
        }
        with database(backend, workdir) as url:
            port = servers.free_port()
            env_log = {"SMARTREGION_LOG_LEVEL": log_level}
            os.environ.update(env_log)
            with servers.Server(
                servers.broker_argv(url, port), port, workdir / f"broker-{backend}.log"
            ) as server:
                _run_broker_benchmarks(result, server, plan, data, url, workdir, log_level)
        say(f"{backend}: 1b. batch upsert without history (the issue 4 baseline)")
        (workdir / "nohist").mkdir(exist_ok=True)
        with database(backend, workdir / "nohist") as url:
            port = servers.free_port()
            os.environ["SMARTREGION_RECORD_HISTORY"] = "false"
            try:
                with servers.Server(
                    servers.broker_argv(url, port), port, workdir / f"broker-{backend}-nohist.log"
                ) as server:
                    loadgen.post_batches(server.port, data.warmup)
                    creates = loadgen.post_batches(server.port, data.creates)
                    updates = loadgen.post_batches(server.port, data.updates)
            finally:
                del os.environ["SMARTREGION_RECORD_HISTORY"]
            result.nohist_create_attrs_per_s = creates.attrs_per_s
            result.nohist_update_attrs_per_s = updates.attrs_per_s
            say(
                f"{backend}:   without history: creates {creates.attrs_per_s:,.0f} attr/s, "
                f"updates {updates.attrs_per_s:,.0f} attr/s"
            )
    except Exception:
        result.error = traceback.format_exc()
        log = workdir / f"broker-{backend}.log"
        if log.exists():
            # the server's own traceback says why a request failed
            result.error += (
                f"\n--- tail of the server log ---\n{log.read_text(errors='replace')[-4000:]}"
            )
        say(f"{backend}: FAILED\n{result.error}")
    return result


def measure_bare_patch(plan: Plan, workdir: Path, log_level: str, ids: int) -> loadgen.WrkRun:
    """Benchmark 2 against the bare handler alone, as a bracket around a broker's own run."""
    port = servers.free_port()
    argv = [*servers.bare_argv(port), "--log-level", log_level]
    with servers.Server(argv, port, workdir / "bare-patch.log"):
        return _patch_run(port, plan, ids)


def _patch_run(port: int, plan: Plan, ids: int) -> loadgen.WrkRun:
    """Benchmark 2's wrk run against the server on `port`, after its warm-up."""
    loadgen.run_wrk_patch(
        port, workload.PATCH_BODY, workload.ID_PREFIX, ids, seconds=plan.wrk_warmup_seconds
    )
    return loadgen.run_wrk_patch(
        port, workload.PATCH_BODY, workload.ID_PREFIX, ids, seconds=plan.wrk_seconds
    )


def _run_broker_benchmarks(
    result: BackendResult,
    server: servers.Server,
    plan: Plan,
    data: Data,
    url: str,
    workdir: Path,
    log_level: str,
) -> None:
    backend = result.backend
    port = server.port
    say(f"{backend}: 1. batch upsert")
    loadgen.post_batches(port, data.warmup)
    creates = loadgen.post_batches(port, data.creates)
    result.create_attrs_per_s = creates.attrs_per_s
    result.create_p50_ms = loadgen.percentile(creates.latencies, 50) * 1000
    result.batch_entities = creates.entities
    updates = loadgen.post_batches(port, data.updates)
    result.update_attrs_per_s = updates.attrs_per_s
    result.update_p50_ms = loadgen.percentile(updates.latencies, 50) * 1000
    say(
        f"{backend}:   creates {creates.attrs_per_s:,.0f} attr/s, updates {updates.attrs_per_s:,.0f} attr/s"
    )

    say(f"{backend}: loading {len(data.load) * plan.batch_size:,} entities")
    load = loadgen.post_batches(port, data.load)
    result.load_entities = load.entities
    result.load_entities_per_s = load.entities_per_s
    result.load_seconds = load.elapsed
    result.total_entities = plan.batch_size * (
        len(data.warmup) + len(data.creates) + len(data.load)
    )
    say(f"{backend}:   {load.entities_per_s:,.0f} entities/s")

    say(f"{backend}: 3. queries")
    _run_queries(result, server, plan, data)
    if backend == "postgresql" and servers.pg_setting(url, "autovacuum") == "off":
        # without autovacuum nothing ever gathers statistics: show what ANALYZE would change
        servers.pg_analyze(url)
        say(f"{backend}: 3. queries again after ANALYZE (autovacuum is off on this server)")
        _run_queries(result, server, plan, data, suffix=" (after ANALYZE)")
        result.notes.append(
            "autovacuum is off on this PostgreSQL server, so no statistics existed after the "
            "load; the rows marked *(after ANALYZE)* were measured after the run itself ran "
            "`ANALYZE` on the broker's database."
        )

    say(f"{backend}: 2. PATCH with wrk")
    status, body = loadgen.request_status(
        port, "PATCH", f"/ngsi-ld/v1/entities/{workload.entity_id(0)}/attrs", workload.PATCH_BODY
    )
    if status != 204:
        raise loadgen.RequestFailed(f"PATCH answered {status}: {body[:500]!r}")
    ids = result.total_entities
    # the ratio's baseline is measured just before and just after ours, on the same ids: this
    # machine's rates drift by tens of per cent within minutes (docs/benchmarks.md, Baselines)
    before = measure_bare_patch(plan, workdir, log_level, ids)
    patch = _patch_run(port, plan, ids)
    after = measure_bare_patch(plan, workdir, log_level, ids)
    result.bare_patch_brackets = [before.rps, after.rps]
    result.bare_patch_rps = (before.rps + after.rps) / 2
    result.bare_patch_p50_ms = (before.p50_ms + after.p50_ms) / 2
    result.bare_patch_p95_ms = (before.p95_ms + after.p95_ms) / 2
    result.patch_rps = patch.rps
    result.patch_p50_ms = patch.p50_ms
    result.patch_p95_ms = patch.p95_ms
    result.patch_p99_ms = patch.p99_ms
    result.patch_errors = patch.errors
    say(
        f"{backend}:   {patch.rps:,.0f} req/s, p50 {patch.p50_ms:.1f} ms, p95 {patch.p95_ms:.1f} ms"
    )


def _run_queries(
    result: BackendResult, server: servers.Server, plan: Plan, data: Data, suffix: str = ""
) -> None:
    backend = result.backend
    port = server.port
    for case in workload.QUERY_CASES:
        runs: list[loadgen.QueryRun] = []
        for count in (False, True):
            run = loadgen.time_gets(
                port,
                case.path(count=count),
                warmup=plan.query_warmup,
                samples=plan.query_samples,
                budget_s=plan.query_budget_s,
                timeout_s=plan.query_timeout_s,
            )
            runs.append(run)
            if run.timed_out:
                # the abandoned request would go on eating a core: start afresh on the same data
                result.notes.append(
                    f"`{case.name}`{', count=true' if count else ''}: a request took longer than "
                    f"{plan.query_timeout_s:.0f} s and was abandoned (the server was restarted); "
                    "its figures are lower bounds."
                )
                say(f"{backend}:   {case.name} count={count}: timed out, restarting the server")
                server.restart()
        plain, counted = runs
        figure = QueryFigure(
            name=case.name,
            path=case.path(),
            matches=counted.count_header,
            returned=plain.returned,
            p50_ms=loadgen.percentile(plain.latencies, 50) * 1000,
            p95_ms=loadgen.percentile(plain.latencies, 95) * 1000,
            count_p50_ms=loadgen.percentile(counted.latencies, 50) * 1000,
            count_p95_ms=loadgen.percentile(counted.latencies, 95) * 1000,
            expected=case.expected(data.final_entities()),
            samples=len(plain.latencies),
            count_samples=len(counted.latencies),
            timed_out=plain.timed_out,
            count_timed_out=counted.timed_out,
        )
        figure.name += suffix
        result.queries.append(figure)
        say(
            f"{backend}:   {case.name}: {figure.matches} matches ({figure.expected} expected), p95 {figure.p95_ms:.1f} / {figure.count_p95_ms:.1f} ms"
        )


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--quick", action="store_true", help="smoke check: small data, short runs (< 2 min)"
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the results into docs/benchmarks.md (default: yes for a full run, no for --quick)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this JSON file")
    parser.add_argument(
        "--history",
        action="store_true",
        help="also run the attribute-history storage benchmarks (benchmarks/history.py)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        help="log level of the broker and the bare app (default: info, as shipped)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    write = (not args.quick) if args.write is None else args.write

    started = time.monotonic()
    pg_ok = servers.pg_admin_available()
    if "postgresql" in backends and not pg_ok:
        say(f"PostgreSQL not reachable at {servers.PG_ADMIN_DSN}: skipping it")
        backends.remove("postgresql")
    machine = machine_info(pg_ok)
    say(f"{plan.mode} run on {machine['CPU']}, {machine['cores']} cores; generating data")
    data = make_data(plan)

    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="smartregion-bench-") as tmp:
        workdir = Path(tmp)
        say("HTTP ceiling: bare handler")
        bare = measure_bare(plan, data, workdir, args.log_level)
        say(
            f"  bare: creates {bare.create_attrs_per_s:,.0f} attr/s, updates {bare.update_attrs_per_s:,.0f} "
            "attr/s"
        )
        for backend in backends:
            results.append(
                measure_backend(backend, plan, data, bare, machine, workdir, args.log_level)
            )

    for r in results:
        print(report.render_backend(r))
    if args.history:
        for backend in backends:
            say(f"history storage: {backend}")
            print(history.describe(history.run_history(backend, quick=args.quick)))
    if args.json:
        args.json.write_text(json.dumps(report.as_json(results), indent=2, default=_nan_safe))
    if write:
        report.write_doc(machine, results)
        say(f"wrote {report.DOC}")
    say(f"done in {time.monotonic() - started:.0f} s")
    return 1 if any(r.error for r in results) else 0


def _nan_safe(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
