"""`smartregion simulate`: publish synthetic sensor streams over MQTT or HTTP (docs/ingestion.md)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import orjson
import typer

from smartregion.ingestion.bridge import parse_broker_url
from smartregion.ingestion.simulate import KINDS, SensorFleet

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


def _readings(fleet: SensorFleet, start: datetime, step: float) -> Any:
    """Every sensor's reading, round after round of simulated time."""
    at = start
    while True:
        yield from fleet.readings(at)
        at += timedelta(seconds=step)


class _Pacer:
    """Keeps `rate` items per second of wall time (0: as fast as possible)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.monotonic()

    async def wait(self, sent: int) -> None:
        if self.rate > 0:
            ahead = sent / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def publish_mqtt(
    url: str, readings: Any, count: int, rate: float, topic: str, report: Callable[[int], None]
) -> int:
    """Publish `count` readings as one NGSI-LD entity per message (QoS 1) on `topic`."""
    import aiomqtt

    from smartregion.broker.mqtt import connected

    host, port = parse_broker_url(url)
    pacer = _Pacer(rate)
    sent = 0
    async with connected(aiomqtt.Client(host, port)) as client:
        while sent < count:
            await client.publish(topic, orjson.dumps(next(readings)), qos=1)
            sent += 1
            report(sent)
            await pacer.wait(sent)
    return sent


async def post_http(
    url: str,
    readings: Any,
    count: int,
    rate: float,
    batch: int,
    headers: dict[str, str],
    report: Callable[[int], None],
) -> int:
    """POST `count` readings in batch upserts of `batch` entities."""
    pacer = _Pacer(rate)
    sent = 0
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=60) as client:
        while sent < count:
            body = [next(readings) for _ in range(min(batch, count - sent))]
            r = await client.post(
                UPSERT,
                content=orjson.dumps(body),
                headers={**headers, "Content-Type": "application/json"},
            )
            if r.status_code >= 400 and r.status_code != 207:
                raise RuntimeError(f"the broker answered {r.status_code}: {r.text[:300]}")
            sent += len(body)
            report(sent)
            await pacer.wait(sent)
    return sent


def simulate(
    target: Annotated[
        str,
        typer.Option("--target", help="mqtt://HOST:PORT (the bridge's topic) or http://HOST:PORT."),
    ] = "mqtt://127.0.0.1:1883",
    sensors: Annotated[int, typer.Option(help="Number of simulated stations.")] = 100,
    kinds: Annotated[str, typer.Option(help="Comma-separated: air, traffic, water.")] = ",".join(
        KINDS
    ),
    rate: Annotated[
        float, typer.Option(help="Readings per second of wall time (0: as fast as possible).")
    ] = 10.0,
    count: Annotated[int | None, typer.Option(help="Stop after this many readings.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    step: Annotated[
        float, typer.Option(help="Simulated seconds between a station's readings.")
    ] = 60.0,
    start: Annotated[
        str | None, typer.Option(help="Simulated start time (ISO 8601, UTC); default now.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same readings.")] = 1,
    prefix: Annotated[
        str, typer.Option(help="MQTT topic prefix (the bridge's --prefix).")
    ] = "smartregion",
    batch: Annotated[int, typer.Option(help="Entities per HTTP batch upsert.")] = 100,
    tenant: Annotated[str | None, typer.Option(help="NGSILD-Tenant (HTTP).")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key for HTTP (default: $SMARTREGION_API_KEY).")
    ] = None,
) -> None:
    """Publish realistic synthetic sensor streams (air quality, traffic counts, water levels)."""
    try:
        fleet = SensorFleet(
            sensors, tuple(k.strip() for k in kinds.split(",") if k.strip()), seed=seed
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if count is None and duration is None:
        raise typer.BadParameter("give --count or --duration")
    begin = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else datetime.now(UTC)
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=UTC)
    total = count if count is not None else int((duration or 0) * rate) if rate > 0 else 10**12
    readings = _readings(fleet, begin.replace(microsecond=0), step)
    scheme = urlsplit(target).scheme
    started = time.monotonic()
    deadline = started + duration if duration is not None else None

    def report(sent: int) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _Done(sent)

    try:
        if scheme == "mqtt":
            sent = asyncio.run(
                publish_mqtt(target, readings, total, rate, f"{prefix}/entities", report)
            )
        elif scheme in ("http", "https"):
            headers = {}
            key = api_key or os.environ.get("SMARTREGION_API_KEY")
            if key:
                headers["Authorization"] = f"Bearer {key}"
            if tenant:
                headers["NGSILD-Tenant"] = tenant
            sent = asyncio.run(post_http(target, readings, total, rate, batch, headers, report))
        else:
            raise typer.BadParameter(f"--target must be mqtt://… or http(s)://…, got {target!r}")
    except _Done as done:
        sent = done.sent
    except (OSError, RuntimeError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    elapsed = time.monotonic() - started
    typer.echo(
        f"sent {sent:,} readings of {len(fleet.sensors)} stations in {elapsed:.1f} s "
        f"({sent / elapsed if elapsed else 0:,.0f}/s) to {target}",
        err=True,
    )


class _Done(Exception):
    def __init__(self, sent: int) -> None:
        super().__init__(sent)
        self.sent = sent
