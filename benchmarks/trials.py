"""Reliability trials (issue 5): `kill -9` the bridge or the server during an ingest, then count.

    .venv/bin/python -m benchmarks.trials --target bridge|server [--trials 10]
        [--messages 100000] [--backend sqlite|postgresql] [--seed S] [--json FILE]

Each trial runs on a throwaway store (a fresh SQLite file, or a fresh PostgreSQL database) and a
throwaway Mosquitto of its own (free 127.0.0.1 port, `persistence true`, no limit on queued
messages). It sends N distinct observations — message i is entity `TrialSensor:{i % sensors}`
with `reading` = i at `observedAt` = 2026-01-01 + i seconds, so each must become exactly one
history instance — kills the target with SIGKILL at a random point (seeded; the seed is
printed), restarts it, waits until everything acknowledged has arrived and nothing more
changes, and then reads the history straight from the database:

- **lost**: acknowledged messages whose instance is not in history (must be 0);
- **duplicates**: extra instances at one (entity, attribute, observedAt) (must be 0).

The two targets, and what "acknowledged" means for each:

- `bridge` — `smartregion mqtt bridge` (QoS 1, persistent session). A publisher sends every
  message at QoS 1 (up to 200 in flight, and at most `WINDOW` ahead of what has committed, so
  that publishing goes on during the whole ingest and while the bridge is dead); a message is
  acknowledged when Mosquitto's PUBACK reached the publisher. The bridge is killed once `k`
  instances have committed, k uniform in [5 %, 95 %] of N, and restarted with the same client id
  after a random pause of up to a second; Mosquitto redelivers what it had not acknowledged.
- `server` — `smartregion serve`. The server does not host the bridge, so "the server during an
  ingest" is HTTP ingestion, as `smartregion simulate --target http://…` does it: batch upserts
  (`POST /ngsi-ld/v1/entityOperations/upsert`, 100 entities each, 4 clients in parallel). A
  message is acknowledged when its batch got 201 or 204 (every entity written; a 207 or a 4xx
  for these valid batches is reported in the trial's note). A batch that got
  no answer (connection refused or cut by the kill, a 5xx) is sent again, as any client retries,
  until it is acknowledged — so a batch that committed just before the kill, whose answer was
  lost, comes twice, and must not be recorded twice. The server is killed once `k` messages
  are acknowledged (k as above) and restarted on the same port.
  The table's "re-sent" counts the messages sent more than once; "committed, unanswered at
  the kill" the instances committed beyond those acknowledged when the server died (the batches
  whose answer the kill swallowed).

The process exits 1 when any trial lost or duplicated anything (or did not finish).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from benchmarks import servers

MOSQUITTO = "/usr/sbin/mosquitto"
ORG = "trials"
TYPE = "https://uri.etsi.org/ngsi-ld/default-context/TrialSensor"
ATTRIBUTE = "https://uri.etsi.org/ngsi-ld/default-context/reading"
#: the observedAt of message 0; message i is i seconds later
START = datetime(2026, 1, 1, tzinfo=UTC)
#: most messages the MQTT publisher keeps unacknowledged by Mosquitto
IN_FLIGHT = 200
#: most messages the publisher runs ahead of what has committed
WINDOW = 5000
#: entities per HTTP batch upsert, and clients sending them in parallel
HTTP_BATCH = 100
HTTP_CLIENTS = 4
#: a trial gives up when nothing more is committed (or acknowledged) for this long
STALL_S = 180.0
#: after everything acknowledged is there: how long the count must stay unchanged
QUIET_S = 2.0

#: (entity id, observedAt µs, value) of every instance of the trial's tenant
ROWS_SQL = (
    "SELECT s.entity_id, i.t, i.num FROM instance i JOIN series s ON s.series_key = i.series_key"
    " JOIN tenant t ON t.tenant_key = s.tenant_key WHERE t.name = {p}"
)
COUNT_SQL = (
    "SELECT count(*) FROM instance i JOIN series s ON s.series_key = i.series_key"
    " JOIN tenant t ON t.tenant_key = s.tenant_key WHERE t.name = {p}"
)
#: aiomqtt warns on every publish beyond 10 pending: hundreds in flight are the point here
_QUIET = logging.getLogger("benchmarks.trials.publisher")
_QUIET.setLevel(logging.ERROR)

DEAD_SQL = "SELECT count(*) FROM ingest_dead_letter WHERE tenant = {p}"


@dataclass(slots=True)
class Outcome:
    """One trial's counts."""

    trial: int
    seed: int
    target: str
    backend: str
    kill_at: int
    published: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    #: server: messages sent again because their batch got no answer (bridge: not known)
    resent: int = 0
    #: server: messages committed but not answered when the server died (bridge: not known)
    unanswered: int = 0
    dead_letters: int = 0
    finished: bool = False
    note: str = ""

    @property
    def ok(self) -> bool:
        """Nothing acknowledged lost, nothing doubled, and the trial ran to its end."""
        return self.finished and self.lost == 0 and self.duplicates == 0


def message(i: int, sensors: int) -> dict[str, Any]:
    """Message i: one observation of one sensor, unique in its (entity, observedAt) and value."""
    at = (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": f"urn:ngsi-ld:TrialSensor:{i % sensors}",
        "type": "TrialSensor",
        "reading": {"type": "Property", "value": i, "observedAt": at},
    }


class History:
    """Reads the trial tenant's history straight from the database (SQLite or PostgreSQL)."""

    def __init__(self, database_url: str, tenant: str) -> None:
        self.tenant = tenant
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[tuple[Any, ...]] | None = None
        if database_url.startswith("sqlite:///"):
            path = database_url[len("sqlite:///") :]
            self._sqlite = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            self._pg = psycopg.connect(database_url, autocommit=True)

    def _all(self, sql: str) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return self._sqlite.execute(sql.format(p="?"), (self.tenant,)).fetchall()
        assert self._pg is not None
        return self._pg.execute(sql.format(p="%s"), (self.tenant,)).fetchall()

    def count(self) -> int:
        """Instances committed (duplicates included)."""
        return int(self._all(COUNT_SQL)[0][0])

    def rows(self) -> list[tuple[Any, ...]]:
        """(entity id, observedAt, value) of every instance."""
        return self._all(ROWS_SQL)

    def dead_letters(self) -> int:
        """Dead letters of the tenant (a message the bridge could not ingest)."""
        return int(self._all(DEAD_SQL)[0][0])

    def close(self) -> None:
        """Close the connection."""
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def judge(
    outcome: Outcome, rows: list[tuple[Any, ...]], acknowledged: set[int], sensors: int
) -> None:
    """Fill in stored, lost and duplicates from the history rows."""
    per_key = Counter((entity_id, t) for entity_id, t, _ in rows)
    outcome.duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    stored = {
        int(num)
        for entity_id, _, num in rows
        if num is not None and entity_id == f"urn:ngsi-ld:TrialSensor:{int(num) % sensors}"
    }
    outcome.stored = len(stored)
    outcome.lost = len(acknowledged - stored)


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port nobody listens on now."""
    return servers.free_port()


@contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """A Mosquitto of the trial's own: persistence on, no limit on queued messages."""
    port = free_port()
    config = workdir / "mosquitto.conf"
    # started as root, Mosquitto drops to its own user, which may not write its persistence
    # file here (tests/ingestion/test_mosquitto_restart.py): it keeps root's instead
    as_root = "user root\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nautosave_interval 30\n"
        # the default (1,000) drops QoS 1 messages queued for a bridge that is away or slow
        f"max_queued_messages 0\n{as_root}"
    )
    with (workdir / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        servers.wait_port(port, proc, "Mosquitto")
        yield port
    finally:
        _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


class Target:
    """The process under trial: started, killed with SIGKILL, started again."""

    def __init__(
        self, argv: list[str], log_path: Path, ready: Callable[[subprocess.Popen[bytes], int], None]
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self.ready = ready
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until it is ready."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {**os.environ, "SMARTREGION_ALLOW_REMOTE_CONTEXTS": "false"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=servers.ROOT, env=env
            )
        self.ready(self.proc, offset)

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None:
            _kill9(self.proc)

    def stop(self) -> None:
        """A clean stop (SIGTERM) at the end of the trial."""
        if self.proc is not None:
            _terminate(self.proc)


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def bridge_target(port: int, database_url: str, tenant: str, workdir: Path) -> Target:
    """`smartregion mqtt bridge` with a stable client id (its persistent session's key)."""
    log_path = workdir / "bridge.log"
    argv = [
        str(servers.VENV_BIN / "smartregion"), "mqtt", "bridge",
        "--broker", f"mqtt://127.0.0.1:{port}", "--org", ORG, "--tenant", tenant,
        "--prefix", tenant, "--database", database_url, "--client-id", f"bridge-{tenant}",
    ]  # fmt: skip

    def ready(proc: subprocess.Popen[bytes], offset: int) -> None:
        # this start's "connected to" line: its subscription is in place by then
        deadline = time.monotonic() + 60
        while b"connected to mqtt://" not in log_path.read_bytes()[offset:]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bridge did not connect:\n{_log_tail(log_path)}")
            time.sleep(0.05)

    return Target(argv, log_path, ready)


def server_target(port: int, database_url: str, workdir: Path) -> Target:
    """`smartregion serve` (anonymous writes, one worker)."""
    log_path = workdir / "server.log"
    argv = [*servers.broker_argv(database_url, port), "--no-access-log"]

    def ready(proc: subprocess.Popen[bytes], offset: int) -> None:
        try:
            servers.wait_healthy(port, proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{_log_tail(log_path)}") from None

    return Target(argv, log_path, ready)


# ---------------------------------------------------------------------------- one trial


class _Progress:
    """What the trial's parts share: acknowledgements and the committed count."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.published: set[int] = set()
        self.acknowledged: set[int] = set()
        self.resent: set[int] = set()
        self.committed = 0
        self.sending_done = False
        self.notes: list[str] = []


async def _publish_mqtt(port: int, topic: str, progress: _Progress, sensors: int) -> None:
    """Publish every message at QoS 1; acknowledged when Mosquitto's PUBACK arrives."""
    import aiomqtt

    slots = asyncio.Semaphore(IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=f"publisher-{topic}",
        max_inflight_messages=IN_FLIGHT,
        logger=_QUIET,
    ) as client:

        async def one(i: int) -> None:
            try:
                await client.publish(topic, orjson.dumps(message(i, sensors)), qos=1)
            except aiomqtt.MqttError as exc:  # not acknowledged: not counted
                progress.notes.append(f"publish {i} failed: {exc}")
            else:
                progress.acknowledged.add(i)
            finally:
                slots.release()

        for i in range(progress.total):
            while i - progress.committed > WINDOW:
                await asyncio.sleep(0.02)
            await slots.acquire()
            progress.published.add(i)
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    progress.sending_done = True


async def _post_http(port: int, tenant: str, progress: _Progress, sensors: int) -> None:
    """Batch upserts from parallel clients; a batch without a 2xx answer is sent again."""
    import httpx

    batches: deque[list[int]] = deque(
        list(range(s, min(s + HTTP_BATCH, progress.total)))
        for s in range(0, progress.total, HTTP_BATCH)
    )
    outstanding = [len(batches)]
    headers = {"Content-Type": "application/json", "NGSILD-Tenant": tenant}

    async def client_loop() -> None:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, trust_env=False
        ) as client:
            while outstanding[0] > 0:
                if not batches:
                    await asyncio.sleep(0.02)
                    continue
                batch = batches.popleft()
                body = orjson.dumps([message(i, sensors) for i in batch])
                if batch[0] in progress.published:
                    progress.resent.update(batch)
                progress.published.update(batch)
                try:
                    r = await client.post(
                        "/ngsi-ld/v1/entityOperations/upsert", content=body, headers=headers
                    )
                except httpx.HTTPError:
                    # no answer (refused, cut off by the kill): send it again, as clients do
                    batches.appendleft(batch)
                    await asyncio.sleep(0.2)
                    continue
                if r.status_code in (200, 201, 204):
                    progress.acknowledged.update(batch)
                    outstanding[0] -= 1
                elif r.status_code >= 500:
                    batches.appendleft(batch)
                    await asyncio.sleep(0.2)
                else:  # 207 or a 4xx: not what a valid batch may get
                    progress.notes.append(f"batch {batch[0]}: {r.status_code} {r.text[:200]}")
                    outstanding[0] -= 1

    await asyncio.gather(*(client_loop() for _ in range(HTTP_CLIENTS)))
    progress.sending_done = True


async def run_trial(
    target: str,
    trial: int,
    seed: int,
    messages: int,
    database_url: str,
    backend: str,
    workdir: Path,
    *,
    sensors: int = 500,
    tenant: str | None = None,
) -> Outcome:
    """One trial on a migrated store (see the module docstring), in its own tenant."""
    rng = random.Random(seed)
    kill_at = rng.randint(messages * 5 // 100, max(1, messages * 95 // 100))
    pause = rng.uniform(0.0, 1.0)
    tenant = tenant or f"trial{trial}"
    outcome = Outcome(trial, seed, target, backend, kill_at)
    progress = _Progress(messages)
    history = History(database_url, tenant)
    try:
        with mosquitto(workdir) as mqtt_port:
            if target == "bridge":
                process = bridge_target(mqtt_port, database_url, tenant, workdir)
            else:
                process = server_target(free_port(), database_url, workdir)
            await asyncio.to_thread(process.start)
            try:
                if target == "bridge":
                    sending = asyncio.create_task(
                        _publish_mqtt(mqtt_port, f"{tenant}/entities", progress, sensors)
                    )
                else:
                    port = int(process.argv[process.argv.index("--port") + 1])
                    sending = asyncio.create_task(_post_http(port, tenant, progress, sensors))
                await _watch(process, target, progress, history, kill_at, pause, outcome)
                if not sending.done():
                    sending.cancel()
                with_errors = await asyncio.gather(sending, return_exceptions=True)
                for error in with_errors:
                    if isinstance(error, BaseException) and not isinstance(
                        error, asyncio.CancelledError
                    ):
                        outcome.note += f" sending failed: {error!r}"
            finally:
                await asyncio.to_thread(process.stop)
        rows = await asyncio.to_thread(history.rows)
        outcome.dead_letters = await asyncio.to_thread(history.dead_letters)
    finally:
        history.close()
    outcome.published = len(progress.published)
    outcome.acknowledged = len(progress.acknowledged)
    outcome.resent = len(progress.resent)
    judge(outcome, rows, progress.acknowledged, sensors)
    if progress.notes:
        outcome.note += f" {len(progress.notes)} sending errors, first: {progress.notes[0]}"
    outcome.note = outcome.note.strip()
    return outcome


async def _watch(
    process: Target,
    target: str,
    progress: _Progress,
    history: History,
    kill_at: int,
    pause: float,
    outcome: Outcome,
) -> None:
    """Kill the target at its point, restart it, and return once everything has settled."""
    killed = False
    last_change, last_count, quiet_since = time.monotonic(), -1, 0.0
    while True:
        count = await asyncio.to_thread(history.count)
        progress.committed = count
        now = time.monotonic()
        reached = count if target == "bridge" else len(progress.acknowledged)
        if not killed and reached >= kill_at:
            await asyncio.to_thread(process.kill)
            killed = True
            if target == "server":
                await asyncio.sleep(0.1)  # answers read before the kill are counted by now
                at_kill = await asyncio.to_thread(history.count)
                outcome.unanswered = max(0, at_kill - len(progress.acknowledged))
            await asyncio.sleep(pause)
            await asyncio.to_thread(process.start)
            last_change = time.monotonic()
            continue
        if count != last_count:
            last_change, last_count, quiet_since = now, count, 0.0
        if killed and progress.sending_done and count >= len(progress.acknowledged):
            # everything acknowledged may be in: wait until nothing more changes
            quiet_since = quiet_since or now
            if now - quiet_since >= QUIET_S:
                outcome.finished = True
                return
        if now - last_change > STALL_S and (progress.sending_done or target == "bridge"):
            outcome.note += f" stalled at {count} instances"
            return
        await asyncio.sleep(0.05 if progress.total <= 10_000 else 0.2)


# ---------------------------------------------------------------------------- the command


@contextmanager
def fresh_store(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file in `workdir`, or a throwaway PostgreSQL one."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'trial.db'}"
        _migrate(url)
        yield url
    else:
        with servers.throwaway_pg_database("trial_") as url:
            _migrate(url)
            yield url


def _migrate(url: str) -> None:
    from smartregion.storage import open_store

    async def run() -> None:
        store = open_store(url)
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())


HEADER = (
    "| trial | seed | kill point | published | acknowledged | re-sent | committed, unanswered"
    " at the kill | stored | lost | duplicates |"
)


def table_row(o: Outcome) -> str:
    """One Markdown row of the outcome table."""
    what = "committed" if o.target == "bridge" else "acknowledged"
    point = f"after {o.kill_at:,} {what}"
    row = (
        f"| {o.trial} | {o.seed} | {point} | {o.published:,} | {o.acknowledged:,} | "
        f"{f'{o.resent:,}' if o.target == 'server' else '—'} | "
        f"{f'{o.unanswered:,}' if o.target == 'server' else '—'} | "
        f"{o.stored:,} | {o.lost:,} | {o.duplicates:,} |"
    )
    if not o.finished or o.note or o.dead_letters:
        row += f" {'unfinished; ' if not o.finished else ''}{o.note} dead letters: {o.dead_letters}"
    return row


def run_trials(
    target: str, trials: int, messages: int, backend: str, seed: int,
    *, sensors: int = 500, report: Callable[[str], None] = print,
) -> list[Outcome]:  # fmt: skip
    """Run `trials` trials one after the other, each on a fresh store and Mosquitto."""
    outcomes: list[Outcome] = []
    for trial in range(1, trials + 1):
        with tempfile.TemporaryDirectory(prefix="kill9-") as tmp:
            workdir = Path(tmp)
            with fresh_store(backend, workdir) as url:
                outcome = asyncio.run(
                    run_trial(
                        target,
                        trial,
                        seed + trial,
                        messages,
                        url,
                        backend,
                        workdir,
                        sensors=sensors,
                    )
                )
        outcomes.append(outcome)
        report(table_row(outcome))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trials", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--target", choices=("bridge", "server"), required=True)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument(
        "--seed", type=int, default=None, help="Trial k uses seed + k (default: from the clock)."
    )
    parser.add_argument(
        "--sensors", type=int, default=500, help="Distinct entities the messages cycle through."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the outcomes as JSON.")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.messages < 20:
        parser.error("at least 1 trial of at least 20 messages")
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"kill -9 trials: target {args.target}, {args.trials} × {args.messages:,} messages, "
        f"{args.backend}, seed {seed} (started {started})",
        flush=True,
    )
    print(HEADER)
    print("| --- " * 10 + "|", flush=True)
    outcomes = run_trials(
        args.target,
        args.trials,
        args.messages,
        args.backend,
        seed,
        sensors=args.sensors,
        report=lambda line: print(line, flush=True),
    )
    bad = [o for o in outcomes if not o.ok]
    print(
        f"\n{len(outcomes) - len(bad)} of {len(outcomes)} trials: 0 lost, 0 duplicates"
        + (f"; FAILED: trials {', '.join(str(o.trial) for o in bad)}" if bad else "")
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
