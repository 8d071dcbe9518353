"""MQTT ingestion rate: publish → committed through `smartregion mqtt bridge`, against the raw broker.

Part 1 of `python -m benchmarks.realtime` (issue 5). Everything runs on a Mosquitto of the
benchmark's own (a free 127.0.0.1 port, in-memory, never the shared broker on 1883):

- **Payload**: `n` readings of `smartregion simulate`'s fleet (`SensorFleet`: air quality,
  traffic counts and water levels around the Flemish cities; one normalized NGSI-LD entity of
  ~0.6 kB a message, `observedAt` on every measured attribute), `sensors` stations reporting
  round after round — each message after a station's first is an update with new observations.
- **Publisher**: `mosquitto_pub -l -q 1`, one message a line from a file, as fast as it goes
  (up to Mosquitto's default 20 messages in flight).
- **Raw broker rate (the baseline)**: the same file to a plain `mosquitto_sub -q 1` on the same
  broker; from the publisher's start to the moment the subscriber has printed the n-th message.
- **Ours**: one, then two bridge processes (`--shared-group`), each run on a fresh tenant and
  topic prefix of the same (already migrated) database; from the publisher's start to the first
  count that finds every observation of the n messages committed in the tenant's history — one
  instance per observed attribute, counted in the database itself; the counts come every
  `POLL_S` as the end nears (the end time's resolution), rarely before.

Mosquitto runs with `max_queued_messages 0` (no limit): the default (1,000) would make it drop
QoS 1 messages queued for a bridge that is slower than the publisher, which is exactly the
backlog this benchmark builds up.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from benchmarks import servers
from smartregion.ingestion.simulate import SensorFleet

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
#: how often the database is asked how much has committed (the end time's resolution)
POLL_S = 0.1
#: a run fails when nothing more commits for this long
STALL_S = 60.0
ORG = "bench-mqtt"
#: the simulated start of the readings (their observedAt)
START = datetime(2026, 1, 1, tzinfo=UTC)

#: committed observations of one tenant: instances recorded with an observedAt (dm is not NULL)
COUNT_SQL = (
    "SELECT count(*) FROM instance i JOIN series s ON s.series_key = i.series_key"
    " JOIN tenant t ON t.tenant_key = s.tenant_key WHERE t.name = {p} AND i.dm IS NOT NULL"
)


def available() -> str | None:
    """Why the MQTT part cannot run here (a missing binary), or None."""
    for binary in (MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_SUB):
        if not Path(binary).exists():
            return f"{binary} is not installed"
    return None


@dataclass(frozen=True, slots=True)
class Messages:
    """The run's messages, one JSON document a line, and what they must leave in history."""

    path: Path
    count: int
    sensors: int
    #: observations (attributes with observedAt) in all messages: the instances to expect
    observations: int
    mean_bytes: float


def make_messages(path: Path, count: int, sensors: int) -> Messages:
    """Write `count` readings of `sensors` stations (round after round, a minute apart)."""
    fleet = SensorFleet(sensors, seed=5)
    observations = 0
    size = 0
    with path.open("wb") as fh:
        at = START
        written = 0
        while written < count:
            for sensor in fleet.sensors[: count - written]:
                line = orjson.dumps(fleet.reading(sensor, at))
                observations += sum(
                    1
                    for v in orjson.loads(line).values()
                    if isinstance(v, dict) and "observedAt" in v
                )
                size += len(line)
                fh.write(line + b"\n")
                written += 1
            at += timedelta(minutes=1)
    return Messages(path, count, sensors, observations, size / count)


@contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """A Mosquitto of the benchmark's own on a free port (in memory, unlimited queues)."""
    port = servers.free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\n"
    )
    log = (workdir / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        servers.wait_port(port, proc, "Mosquitto", timeout=10)
        yield port
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _publish(port: int, topic: str, messages: Messages) -> subprocess.Popen[bytes]:
    with messages.path.open("rb") as lines:
        return subprocess.Popen(
            [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-l"],
            stdin=lines,
        )


def raw_rate(port: int, topic: str, messages: Messages) -> float:
    """Messages per second of `mosquitto_pub -l` → a plain `mosquitto_sub` at QoS 1."""
    probe = f"{topic}/probe"
    sub = subprocess.Popen(
        [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-t", probe,
         "-F", "%t"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    subscribed = threading.Event()
    finished = threading.Event()
    ended: list[float] = []

    def read() -> None:
        # one line (the topic) per message; mosquitto_sub flushes each
        assert sub.stdout is not None
        got = 0
        for line in sub.stdout:
            if line.rstrip(b"\n") == probe.encode():
                subscribed.set()
                continue
            got += 1
            if got == messages.count:
                ended.append(time.perf_counter())
                finished.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # the subscription is in place once a probe message comes back through it
        deadline = time.monotonic() + 20
        while not subscribed.wait(0.2):
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto_sub never received its probe message")
            subprocess.run(
                [
                    MOSQUITTO_PUB,
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-q",
                    "1",
                    "-t",
                    probe,
                    "-m",
                    "x",
                ],
                check=True,
            )
        started = time.perf_counter()
        pub = _publish(port, topic, messages)
        if not finished.wait(STALL_S + messages.count / 1000):
            raise RuntimeError("the plain subscriber did not receive every message")
        if pub.wait(60) != 0:
            raise RuntimeError(f"mosquitto_pub exited with {pub.returncode}")
        return messages.count / (ended[0] - started)
    finally:
        _stop(sub)
        reader.join(5)
        if sub.stdout is not None:
            sub.stdout.close()


class CommitCounter:
    """Counts a tenant's committed observations, directly in the database (SQLite or PostgreSQL)."""

    def __init__(self, database_url: str) -> None:
        if database_url.startswith("sqlite:///"):
            path = database_url[len("sqlite:///") :]
            self._sqlite: sqlite3.Connection | None = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None
            )
            self._pg: psycopg.Connection[tuple[int]] | None = None
        else:
            self._sqlite = None
            self._pg = psycopg.connect(database_url, autocommit=True)

    def observations(self, tenant: str) -> int:
        """Instances with an observedAt committed in `tenant`'s history."""
        if self._sqlite is not None:
            row = self._sqlite.execute(COUNT_SQL.format(p="?"), (tenant,)).fetchone()
        else:
            assert self._pg is not None
            row = self._pg.execute(COUNT_SQL.format(p="%s"), (tenant,)).fetchone()
        return int(row[0]) if row else 0

    def dead_letters(self, tenant: str) -> int:
        """Dead letters recorded for `tenant` (a message that could not be ingested)."""
        sql = "SELECT count(*) FROM ingest_dead_letter WHERE tenant = {p}"
        if self._sqlite is not None:
            row = self._sqlite.execute(sql.format(p="?"), (tenant,)).fetchone()
        else:
            assert self._pg is not None
            row = self._pg.execute(sql.format(p="%s"), (tenant,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def bridge_argv(port: int, database_url: str, tenant: str, prefix: str, client_id: str,
                group: str | None) -> list[str]:  # fmt: skip
    """The command line of one bridge process, as an operator would start it."""
    argv = [
        str(servers.VENV_BIN / "smartregion"), "mqtt", "bridge",
        "--broker", f"mqtt://127.0.0.1:{port}", "--org", ORG, "--tenant", tenant,
        "--prefix", prefix, "--database", database_url, "--client-id", client_id,
    ]  # fmt: skip
    return argv + (["--shared-group", group] if group else [])


def _wait_connected(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Wait for the bridge's "connected to" line: its subscriptions are in place by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bridge exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if b"connected to mqtt://" in log.read_bytes():
            return
        time.sleep(0.1)
    raise RuntimeError(f"bridge not connected after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _next_pause(done: int, expected: int, elapsed: float) -> float:
    """Seconds until the next count: half the expected time left, between POLL_S and 2 s.

    Counting reads every committed instance of the tenant, so it is done rarely while the end is
    far off (sparing the cores the bridges use) and every POLL_S as it nears.
    """
    if done <= 0:
        return POLL_S
    left = (expected - done) * elapsed / done
    return min(2.0, max(POLL_S, left / 2))


def bridge_rate(
    port: int, database_url: str, messages: Messages, *, bridges: int, tenant: str, workdir: Path
) -> float:
    """Messages per second from the first publish until every message's observations committed."""
    prefix = f"bench-{tenant}"
    group = f"bench-{tenant}" if bridges > 1 else None
    procs: list[subprocess.Popen[bytes]] = []
    counter = CommitCounter(database_url)
    try:
        for k in range(bridges):
            log = workdir / f"bridge-{tenant}-{k}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        bridge_argv(port, database_url, tenant, prefix, f"{prefix}-{k}", group),
                        stdout=out, stderr=subprocess.STDOUT, cwd=servers.ROOT,
                        env={**os.environ, "SMARTREGION_LOG_LEVEL": "info"},
                    )
                )  # fmt: skip
            _wait_connected(procs[-1], log)
        started = time.perf_counter()
        pub = _publish(port, f"{prefix}/entities", messages)
        done, last_change, pause = 0, time.monotonic(), POLL_S
        while True:
            time.sleep(pause)
            now = counter.observations(tenant)
            pause = _next_pause(now, messages.observations, time.perf_counter() - started)
            if now >= messages.observations:
                ended = time.perf_counter()
                break
            if now != done:
                done, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                raise RuntimeError(
                    f"{bridges} bridge(s): stalled at {now:,} of {messages.observations:,}"
                    f" observations; dead letters: {counter.dead_letters(tenant)}"
                )
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a bridge exited early (see {workdir}/bridge-{tenant}-*.log)")
        pub.wait(60)
        dead = counter.dead_letters(tenant)
        if dead or now != messages.observations:
            raise RuntimeError(
                f"{bridges} bridge(s): {now:,} observations committed for"
                f" {messages.observations:,} expected, {dead} dead letters"
            )
        return messages.count / (ended - started)
    finally:
        for proc in procs:
            _stop(proc)
        counter.close()
