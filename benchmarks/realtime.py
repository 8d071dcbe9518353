"""Real-time benchmarks (issue 5): MQTT ingestion and subscription notifications, with baselines.

    .venv/bin/python -m benchmarks.realtime [--backend sqlite|postgresql|both] [--quick] [--write]

Per backend, on fresh databases and in the same run as their baselines:

1. **MQTT ingestion** (`benchmarks/ingest.py`): messages per second from the first publish to
   the moment every message has committed, through one and then two `smartregion mqtt bridge`
   processes (`--shared-group`) — against the raw broker: the same messages from
   `mosquitto_pub` to a plain `mosquitto_sub` on the same Mosquitto.
2. **Notifications** (`benchmarks/notifications.py`): latency p50/p95 from an update's commit to
   the receiver (bracketed: from the 204 of the PATCH, and from its sending) at a steady rate,
   and notifications per second while PATCHes saturate the server — against the receiver's own
   ceiling: the same notification bodies POSTed to it directly.

The figures are printed as Markdown; `--write` puts each backend's block into docs/benchmarks.md
between its `<!-- bench:realtime-<backend>:begin/end -->` markers (the default for a full run,
not for `--quick`). `--json FILE` writes the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import ingest, notifications, report, servers
from benchmarks.run import machine_info
from smartregion.storage import open_store


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to measure."""

    mode: str
    messages: int
    sensors: int
    stations: int
    rate: float
    steady_seconds: float
    concurrency: int
    flood_seconds: float
    baseline_requests: int


FULL = Plan("full", 20_000, 1_000, 1_000, 200.0, 20.0, 16, 15.0, 5_000)
QUICK = Plan("quick", 2_000, 200, 100, 100.0, 5.0, 8, 3.0, 1_000)


@dataclass(slots=True)
class RealtimeResult:
    """Everything one backend measured."""

    backend: str
    date: str
    mode: str
    machine: str
    load_average: float
    messages: int = 0
    sensors: int = 0
    message_bytes: float = 0.0
    observations: int = 0
    raw_rate: float = 0.0
    bridge_rates: dict[int, float] = field(default_factory=dict)
    mqtt_skipped: str | None = None
    latency: notifications.LatencyFigures | None = None
    saturation: notifications.SaturationFigures | None = None
    baseline: notifications.BaselineFigures | None = None
    error: str | None = None


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def fresh_database(backend: str, workdir: Path, name: str) -> Iterator[str]:
    """A migrated, empty database: a file in `workdir`, or a throwaway PostgreSQL database."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'{name}.db'}"
        asyncio.run(_migrate(url))
        yield url
        return
    with servers.throwaway_pg_database(f"rt_{name}_") as url:
        asyncio.run(_migrate(url))
        yield url


async def _migrate(url: str) -> None:
    store = open_store(url)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


def run_mqtt(result: RealtimeResult, plan: Plan, mqtt_port: int, workdir: Path) -> None:
    """Part 1 on one backend: the raw broker, then one and two bridges on fresh tenants."""
    backend = result.backend
    messages = ingest.make_messages(workdir / "messages.ndjson", plan.messages, plan.sensors)
    result.messages, result.sensors = messages.count, messages.sensors
    result.message_bytes, result.observations = messages.mean_bytes, messages.observations
    say(f"{backend}: MQTT raw broker rate ({messages.count:,} messages)")
    result.raw_rate = ingest.raw_rate(mqtt_port, f"raw-{backend}/entities", messages)
    say(f"{backend}:   {result.raw_rate:,.0f} messages/s")
    with fresh_database(backend, workdir, f"mqtt_{backend}") as url:
        for bridges in (1, 2):
            say(f"{backend}: MQTT through {bridges} bridge process(es)")
            rate = ingest.bridge_rate(
                mqtt_port, url, messages, bridges=bridges, tenant=f"rt{bridges}{backend[:2]}",
                workdir=workdir,
            )  # fmt: skip
            result.bridge_rates[bridges] = rate
            say(f"{backend}:   {rate:,.0f} messages/s ({rate / result.raw_rate:.1%} of raw)")


def run_notifications(result: RealtimeResult, plan: Plan, workdir: Path, log_level: str) -> None:
    """Part 2 on one backend: latency at a steady rate, throughput at saturation, the baseline."""
    backend = result.backend
    with (
        fresh_database(backend, workdir, f"notify_{backend}") as url,
        notifications.receiver_server(workdir) as receiver,
    ):
        port = servers.free_port()
        os.environ["SMARTREGION_LOG_LEVEL"] = log_level
        with servers.Server(
            servers.broker_argv(url, port), port, workdir / f"broker-{backend}.log"
        ):
            notifications.prepare(port, receiver.port, plan.stations)
            say(f"{backend}: notification latency at {plan.rate:.0f} updates/s")
            latency = notifications.measure_latency(
                port, receiver.port, plan.stations, plan.rate, plan.steady_seconds
            )
            result.latency = latency
            say(
                f"{backend}:   p50 {latency.lower_p50_ms:.1f}–{latency.upper_p50_ms:.1f} ms, "
                f"p95 {latency.lower_p95_ms:.1f}–{latency.upper_p95_ms:.1f} ms"
            )
            say(f"{backend}: notifications at saturation ({plan.concurrency} PATCH clients)")
            saturation = notifications.measure_saturation(
                port, receiver.port, plan.stations, plan.concurrency, plan.flood_seconds,
                first=latency.updates + 1,
            )  # fmt: skip
            result.saturation = saturation
            say(
                f"{backend}:   {saturation.notifications_rate:,.0f} notifications/s "
                f"({saturation.patch_rate:,.0f} PATCH/s)"
            )
        say(f"{backend}: the receiver fed directly")
        result.baseline = notifications.measure_baseline(
            receiver.port, latency.bodies, plan.baseline_requests
        )
        say(f"{backend}:   {result.baseline.rate:,.0f} requests/s")
        latency.bodies.clear()  # only the baseline needed them


def measure_backend(backend: str, plan: Plan, machine: str, mqtt_port: int | None,
                    mqtt_skipped: str | None, workdir: Path, log_level: str) -> RealtimeResult:  # fmt: skip
    """Both parts on one backend; a failure is recorded in the result, not raised."""
    result = RealtimeResult(
        backend=backend,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        mode=plan.mode,
        machine=machine,
        load_average=os.getloadavg()[0],
        mqtt_skipped=mqtt_skipped,
    )
    try:
        if mqtt_port is not None:
            run_mqtt(result, plan, mqtt_port, workdir)
        run_notifications(result, plan, workdir, log_level)
    except Exception:
        result.error = traceback.format_exc()
        say(f"{backend}: FAILED\n{result.error}")
    return result


# --- the report ----------------------------------------------------------------------------


def _pct(ours: float, base: float) -> str:
    if not ours or not base:
        return "—"
    share = 100 * ours / base
    return f"{share:.0f} %" if share >= 10 else f"{share:.1f} %"


def render(r: RealtimeResult) -> str:
    """The Markdown block of one backend."""
    title = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(r.backend, r.backend)
    out = [
        f"### Real time — {title} — {r.date} ({r.mode} run)",
        "",
        f"{r.machine}; 1-minute load average when the run began: {r.load_average:.2f}.",
        "",
    ]
    if r.error:
        out += ["**Not measured completely**: the run failed with", "", "```",
                r.error.strip()[-4000:], "```", ""]  # fmt: skip
    if r.mqtt_skipped:
        out += [f"**MQTT ingestion** not measured: {r.mqtt_skipped}.", ""]
    elif r.raw_rate:
        out += [
            f"**MQTT ingestion** — {r.messages:,} messages (one NGSI-LD entity each, "
            f"{r.message_bytes:,.0f} B on average, of {r.sensors:,} simulated stations; "
            f"{r.observations:,} observations) published at QoS 1 by `mosquitto_pub -l`; "
            "messages/s from the first publish until the last one has committed.",
            "",
            "| | messages/s | ours as % of the raw broker |",
            "| --- | ---: | ---: |",
        ]
        for bridges, rate in sorted(r.bridge_rates.items()):
            label = (
                "one bridge process" if bridges == 1 else "two bridge processes (`--shared-group`)"
            )
            out.append(f"| **{label}** | **{rate:,.0f}** | {_pct(rate, r.raw_rate)} |")
        out += [
            f"| raw broker: `mosquitto_pub` → `mosquitto_sub`, QoS 1 | {r.raw_rate:,.0f} | |",
            "",
        ]
    lat, sat, base = r.latency, r.saturation, r.baseline
    if lat is not None:
        out += [
            f"**Notification latency** — one subscription, {lat.updates:,} single-attribute PATCHes "
            f"at {lat.achieved_rate:,.0f}/s (target {lat.target_rate:,.0f}/s); the update commits "
            "after the PATCH is sent and before its 204, so commit → receipt lies between the two "
            "rows below.",
            "",
            "| | p50 | p95 |",
            "| --- | ---: | ---: |",
            f"| **commit → receipt, at least** (receipt − 204 at the client) | **{lat.lower_p50_ms:.1f} ms** | **{lat.lower_p95_ms:.1f} ms** |",
            f"| **commit → receipt, at most** (receipt − PATCH sent) | {lat.upper_p50_ms:.1f} ms | {lat.upper_p95_ms:.1f} ms |",
            f"| the PATCH round trip | {lat.patch_p50_ms:.1f} ms | {lat.patch_p95_ms:.1f} ms |",
        ]
        if base is not None:
            out.append(
                f"| baseline: one POST of a notification body straight to the receiver | "
                f"{base.p50_ms:.1f} ms | {base.p95_ms:.1f} ms |"
            )
        out.append("")
    if sat is not None:
        out += [
            f"**Notifications per second** — {sat.concurrency} clients PATCHing as fast as the "
            f"server answers for {sat.seconds:.0f} s ({sat.updates:,} updates, "
            f"{sat.patch_rate:,.0f} PATCH/s); every notification arrived, the last "
            f"{sat.drained_after_s:.1f} s after the first PATCH"
            + (
                f" (the backlog left when the PATCHes stopped went at {sat.drain_rate:,.0f}/s)."
                if sat.drain_rate
                else "."
            ),
            "",
            "| | per second | ours as % of it |",
            "| --- | ---: | ---: |",
            f"| **notifications received while the PATCHes ran** | **{sat.notifications_rate:,.0f}** | |",
        ]
        if base is not None:
            out.append(
                f"| baseline: the receiver fed directly, one connection, one POST after the other "
                f"({base.requests:,} notification bodies) | {base.rate:,.0f} | "
                f"{_pct(sat.notifications_rate, base.rate)} |"
            )
        out.append("")
    return "\n".join(out)


def write_doc(results: list[RealtimeResult], path: Path = report.DOC) -> None:
    """Write each backend's block between its markers in docs/benchmarks.md."""
    text = path.read_text()
    for r in results:
        text = report.replace_block(text, f"realtime-{r.backend}", render(r))
    path.write_text(text)


def _describe_machine(pg_ok: bool, backend: str) -> str:
    info = machine_info(pg_ok)
    try:
        mosquitto = subprocess.run(
            [ingest.MOSQUITTO, "-h"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        mosquitto = "Mosquitto: not found"
    db = info.get("SQLite") if backend == "sqlite" else info.get("PostgreSQL", "?").split(" (")[0]
    name = "SQLite" if backend == "sqlite" else "PostgreSQL"
    return (
        f"Machine: {info['CPU']}, {info['cores']} cores (shared by every process of the run), "
        f"Python {info['Python']}, {name} {db}, {mosquitto.strip()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.realtime", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="smoke check: small data, short runs")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the blocks into docs/benchmarks.md (default: yes for a full run, no for --quick)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this JSON file")
    parser.add_argument(
        "--log-level", default="info", help="the broker's log level (default: info, as shipped)"
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
    missing = ingest.available()
    if missing:
        say(f"MQTT ingestion skipped: {missing}")
    results: list[RealtimeResult] = []
    with tempfile.TemporaryDirectory(prefix="smartregion-realtime-") as tmp:
        workdir = Path(tmp)
        with ingest.mosquitto(workdir) if missing is None else _no_mosquitto() as mqtt_port:
            for backend in backends:
                machine = _describe_machine(pg_ok, backend)
                results.append(
                    measure_backend(
                        backend, plan, machine, mqtt_port, missing, workdir, args.log_level
                    )
                )
    for r in results:
        print(render(r))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
    if write:
        write_doc(results)
        say(f"wrote {report.DOC}")
    say(f"done in {time.monotonic() - started:.0f} s")
    return 1 if any(r.error for r in results) else 0


@contextmanager
def _no_mosquitto() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main())
