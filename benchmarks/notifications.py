"""Notification latency and throughput of a real `smartregion serve`, against the receiver's ceiling.

Part 2 of `python -m benchmarks.realtime` (issue 5). Processes: the broker (`smartregion serve
--anonymous-writes`, one worker, on a fresh database), the receiver (`benchmarks/receiver.py`, its
own process) and this client. One subscription — `WeatherObserved` entities, watched attribute
`temperature`, normalized notifications to `http://127.0.0.1:<receiver>/notify` — over
`stations` stations created first through the batch API.

Every update is `PATCH /ngsi-ld/v1/entities/{id}/attrs` of `temperature` with an `observedAt`
of its own (unique across the run), which the notification carries back: that pairs each
notification with its update.

- **Latency** at a steady `rate` of updates for `seconds` (paced from a schedule, up to 32 in
  flight). Clocks: the client takes `time.time()` just before sending the PATCH (`sent`) and just
  after its 204 arrived (`acked`); the receiver takes `time.time()` once a notification's body has
  arrived (`received`); one machine, one wall clock. The update committed after `sent` and
  before the server sent the 204, so for each update
  `received − acked ≤ commit → receipt ≤ received − sent`: both bounds are reported (p50 and
  p95). `received − acked` can be negative (the notification overtook the 204).
- **Throughput at saturation**: `concurrency` clients PATCH as fast as the server answers for
  `seconds`; notifications per second received during that window, the time until the last
  one arrived, and the rate at which the backlog drained once the PATCHes had stopped.
- **Baseline (the receiver's HTTP ceiling)**: the notification bodies received in the latency
  phase POSTed to the receiver again by a plain client — one keep-alive connection, one request
  after the other, as the broker delivers one subscription's notifications in order — requests
  per second and round-trip p50/p95.
"""

from __future__ import annotations

import asyncio
import http.client
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks import servers, workload
from benchmarks.loadgen import percentile
from benchmarks.receiver import parse_arrivals

#: the simulated time of the first update's observedAt; update i observes START + i seconds
START = datetime(2026, 6, 1, tzinfo=UTC)
#: a phase fails when no notification arrives for this long after its updates stopped
DRAIN_STALL_S = 30.0
PATCH_PATH = "/ngsi-ld/v1/entities/{}/attrs"


@dataclass(slots=True)
class LatencyFigures:
    """The steady-rate phase."""

    target_rate: float
    updates: int = 0
    achieved_rate: float = 0.0
    received: int = 0
    #: received − acked (a lower bound of commit → receipt), ms
    lower_p50_ms: float = 0.0
    lower_p95_ms: float = 0.0
    #: received − sent (an upper bound of commit → receipt), ms
    upper_p50_ms: float = 0.0
    upper_p95_ms: float = 0.0
    #: the PATCH round trip itself, ms
    patch_p50_ms: float = 0.0
    patch_p95_ms: float = 0.0
    bodies: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class SaturationFigures:
    """The as-fast-as-possible phase."""

    concurrency: int
    seconds: float = 0.0
    updates: int = 0
    patch_rate: float = 0.0
    #: notifications received while the PATCHes ran, per second of that window
    notifications_rate: float = 0.0
    received: int = 0
    #: seconds from the first PATCH until the last notification arrived
    drained_after_s: float = 0.0
    #: notifications per second after the PATCHes stopped (the backlog drained without load)
    drain_rate: float = 0.0


@dataclass(slots=True)
class BaselineFigures:
    """The receiver fed directly."""

    requests: int = 0
    rate: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0


def _observed(i: int) -> str:
    return (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(observed_at: str) -> datetime:
    return datetime.fromisoformat(observed_at.replace("Z", "+00:00"))


def _patch_body(i: int) -> bytes:
    value = round(12.0 + (i * 37 % 160) / 10, 1)
    return orjson.dumps(
        {"temperature": {"type": "Property", "value": value, "unitCode": "CEL",
                         "observedAt": _observed(i)}}
    )  # fmt: skip


def prepare(port: int, receiver_port: int, stations: int) -> None:
    """Create the stations and the subscription."""
    (batch,) = workload.make_batches(0, 1, stations)
    status, body = _request(port, "POST", "/ngsi-ld/v1/entityOperations/upsert", batch.body)
    if status not in (200, 201, 204):
        raise RuntimeError(f"creating the stations: {status} {body[:300]!r}")
    subscription = {
        "type": "Subscription",
        "entities": [{"type": workload.ENTITY_TYPE}],
        "watchedAttributes": ["temperature"],
        "notification": {
            "attributes": ["temperature"],
            "format": "normalized",
            "endpoint": {"uri": f"http://127.0.0.1:{receiver_port}/notify",
                         "accept": "application/json"},
        },
    }  # fmt: skip
    status, body = _request(port, "POST", "/ngsi-ld/v1/subscriptions", orjson.dumps(subscription))
    if status != 201:
        raise RuntimeError(f"creating the subscription: {status} {body[:300]!r}")


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _answer(port: int, path: str) -> bytes:
    """The body of a GET that must answer 200."""
    status, body = _request(port, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    return body


class Updates:
    """Numbered temperature updates over the stations; keeps each one's send and 204 times."""

    def __init__(self, port: int, stations: int, first: int) -> None:
        self.port = port
        self.stations = stations
        self.next = first
        self.times: dict[datetime, tuple[float, float]] = {}
        self.failures: list[str] = []

    async def one(self, client: httpx.AsyncClient) -> None:
        """Send the next update and record (sent, acked) under its observedAt."""
        i = self.next
        self.next += 1
        path = PATCH_PATH.format(workload.entity_id(i % self.stations))
        body = _patch_body(i)
        sent = time.time()
        response = await client.patch(path, content=body)
        acked = time.time()
        if response.status_code != 204:
            self.failures.append(f"{response.status_code} {response.text[:200]}")
            return
        self.times[_key(_observed(i))] = (sent, acked)


def _client(port: int, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=60,
        trust_env=False,
    )


async def _steady(updates: Updates, rate: float, seconds: float) -> float:
    """Updates paced at `rate` per second for `seconds` (up to 32 in flight); the achieved rate."""
    total = int(rate * seconds)
    gate = asyncio.Semaphore(32)
    async with _client(updates.port, 32) as client:

        async def paced(k: int, started: float) -> None:
            delay = started + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                await updates.one(client)

        started = time.perf_counter()
        await asyncio.gather(*(paced(k, started) for k in range(total)))
        return total / (time.perf_counter() - started)


async def _flood(updates: Updates, concurrency: int, seconds: float) -> tuple[int, float]:
    """`concurrency` clients updating back to back for `seconds`: (updates, elapsed)."""
    done = 0
    async with _client(updates.port, concurrency) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await updates.one(client)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done, time.perf_counter() - started


def _received(receiver_port: int) -> int:
    body = _answer(receiver_port, "/arrivals?count=1")
    return int(orjson.loads(body)["count"])


def _drain(receiver_port: int, expected: int) -> None:
    """Wait until `expected` notifications arrived (fail when none arrives for a while)."""
    seen, last_change = -1, time.monotonic()
    while True:
        got = _received(receiver_port)
        if got >= expected:
            return
        if got != seen:
            seen, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > DRAIN_STALL_S:
            raise RuntimeError(f"only {got:,} of {expected:,} notifications arrived")
        time.sleep(0.1)


def _arrivals(receiver_port: int) -> list[tuple[float, dict[str, Any]]]:
    return parse_arrivals(_answer(receiver_port, "/arrivals"))


def _observed_keys(notification: dict[str, Any]) -> list[datetime]:
    return [_key(e["temperature"]["observedAt"]) for e in notification.get("data", [])]


def measure_latency(port: int, receiver_port: int, stations: int, rate: float,
                    seconds: float) -> LatencyFigures:  # fmt: skip
    """The steady-rate phase: commit → receipt bounds at `rate` updates per second."""
    figures = LatencyFigures(rate)
    _request(receiver_port, "POST", "/reset", b"")
    updates = Updates(port, stations, first=0)
    figures.achieved_rate = asyncio.run(_steady(updates, rate, seconds))
    if updates.failures:
        raise RuntimeError(f"{len(updates.failures)} PATCHes failed: {updates.failures[:3]}")
    figures.updates = len(updates.times)
    _drain(receiver_port, figures.updates)
    lower, upper, trip = [], [], []
    for received, notification in _arrivals(receiver_port):
        for key in _observed_keys(notification):
            sent, acked = updates.times[key]
            lower.append(received - acked)
            upper.append(received - sent)
            trip.append(acked - sent)
            figures.received += 1
        figures.bodies.append(orjson.dumps(notification))
    if figures.received != figures.updates:
        raise RuntimeError(f"{figures.received} notifications for {figures.updates} updates")
    figures.lower_p50_ms = percentile(lower, 50) * 1000
    figures.lower_p95_ms = percentile(lower, 95) * 1000
    figures.upper_p50_ms = percentile(upper, 50) * 1000
    figures.upper_p95_ms = percentile(upper, 95) * 1000
    figures.patch_p50_ms = percentile(trip, 50) * 1000
    figures.patch_p95_ms = percentile(trip, 95) * 1000
    return figures


def measure_saturation(port: int, receiver_port: int, stations: int, concurrency: int,
                       seconds: float, first: int) -> SaturationFigures:  # fmt: skip
    """The flood phase: notifications per second while the server takes all the PATCHes it can."""
    figures = SaturationFigures(concurrency)
    _request(receiver_port, "POST", "/reset", b"")
    updates = Updates(port, stations, first=first)
    began = time.time()
    figures.updates, figures.seconds = asyncio.run(_flood(updates, concurrency, seconds))
    ended = time.time()
    if updates.failures:
        raise RuntimeError(f"{len(updates.failures)} PATCHes failed: {updates.failures[:3]}")
    figures.patch_rate = figures.updates / figures.seconds
    _drain(receiver_port, figures.updates)
    times = sorted(t for t, _ in _arrivals(receiver_port))
    figures.received = len(times)
    if figures.received != figures.updates:
        raise RuntimeError(f"{figures.received} notifications for {figures.updates} updates")
    during = sum(1 for t in times if t <= ended)
    figures.notifications_rate = during / (ended - began)
    figures.drained_after_s = times[-1] - began
    if times[-1] > ended:
        figures.drain_rate = (len(times) - during) / (times[-1] - ended)
    return figures


def measure_baseline(receiver_port: int, bodies: list[bytes], requests: int) -> BaselineFigures:
    """The receiver's ceiling: the same notification bodies POSTed by a plain sequential client."""
    figures = BaselineFigures(requests)
    _request(receiver_port, "POST", "/reset", b"")
    conn = http.client.HTTPConnection("127.0.0.1", receiver_port, timeout=60)
    headers = {"Content-Type": "application/json"}
    trips = []
    try:
        for k in range(max(20, requests // 10)):  # warm-up
            conn.request("POST", "/notify", body=bodies[k % len(bodies)], headers=headers)
            conn.getresponse().read()
        _request(receiver_port, "POST", "/reset", b"")
        started = time.perf_counter()
        for k in range(requests):
            t0 = time.perf_counter()
            conn.request("POST", "/notify", body=bodies[k % len(bodies)], headers=headers)
            response = conn.getresponse()
            response.read()
            trips.append(time.perf_counter() - t0)
            if response.status != 204:
                raise RuntimeError(f"the receiver answered {response.status}")
        figures.rate = requests / (time.perf_counter() - started)
    finally:
        conn.close()
    if _received(receiver_port) != requests:
        raise RuntimeError("the receiver lost baseline requests")
    figures.p50_ms = percentile(trips, 50) * 1000
    figures.p95_ms = percentile(trips, 95) * 1000
    return figures


def receiver_server(workdir: Path) -> servers.Server:
    """The receiver process (access log off: it is the measuring instrument, not under test)."""
    port = servers.free_port()
    argv = [sys.executable, "-m", "benchmarks.receiver", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    return servers.Server(argv, port, workdir / "receiver.log")
