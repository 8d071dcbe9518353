"""`smartregion simulate`: plausible, repeatable sensor streams, delivered over HTTP into a real
server and over MQTT through a real Mosquitto."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import orjson
import pytest

from smartregion.ingestion.bridge import parse_broker_url
from smartregion.ingestion.simulate import SensorFleet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_serve import server

SMARTREGION = [sys.executable, "-m", "smartregion"]
WEDNESDAY = datetime(2026, 11, 25, tzinfo=UTC)


def _at(day: datetime, hour: int) -> datetime:
    return day.replace(hour=hour)


def _value(entity: dict, name: str) -> float:
    return float(entity[name]["value"])


def test_the_same_seed_gives_the_same_readings() -> None:
    at = _at(WEDNESDAY, 9)
    assert SensorFleet(12, seed=7).readings(at) == SensorFleet(12, seed=7).readings(at)
    assert SensorFleet(12, seed=7).readings(at) != SensorFleet(12, seed=8).readings(at)


def test_readings_follow_daily_rhythms() -> None:
    fleet = SensorFleet(30, ("air", "traffic"), seed=3)
    air = [s for s in fleet.sensors if s.kind == "air"]
    traffic = [s for s in fleet.sensors if s.kind == "traffic"]

    def mean(sensors: list, hour: int, name: str, day: datetime = WEDNESDAY) -> float:
        return sum(_value(fleet.reading(s, _at(day, hour)), name) for s in sensors) / len(sensors)

    # NO2 peaks with the morning rush hour (UTC 8h), not at night
    assert mean(air, 8, "no2") > 1.8 * mean(air, 3, "no2")
    # commuter traffic on a weekday; a Sunday morning is quiet
    assert mean(traffic, 8, "intensity") > 3 * mean(traffic, 3, "intensity")
    sunday = datetime(2026, 11, 29, tzinfo=UTC)
    assert mean(traffic, 8, "intensity", sunday) < 0.5 * mean(traffic, 8, "intensity")
    # and a full road is a slower road
    assert mean(traffic, 8, "averageVehicleSpeed") < mean(traffic, 3, "averageVehicleSpeed")


def test_readings_are_ngsi_ld_entities_within_physical_bounds() -> None:
    fleet = SensorFleet(39, seed=1)
    for hour in range(0, 24, 3):
        for entity in fleet.readings(_at(WEDNESDAY, hour)):
            assert entity["id"].startswith("urn:ngsi-ld:")
            assert entity["location"]["value"]["type"] == "Point"
            lon, lat = entity["location"]["value"]["coordinates"]
            assert 2.5 < lon < 6 and 50.6 < lat < 51.6  # Flanders
            for attr in entity.values():
                if isinstance(attr, dict) and "observedAt" in attr:
                    assert attr["observedAt"] == f"2026-11-25T{hour:02d}:00:00Z"
            if entity["type"] == "WaterObserved":
                assert 0.5 < _value(entity, "height") < 6
            if entity["type"] == "AirQualityObserved":
                assert (
                    _value(entity, "no2") >= 0
                    and _value(entity, "pm25") <= _value(entity, "pm10") + 5
                )


def test_simulate_over_http_into_a_real_server(tmp_path: Path) -> None:
    with server("--database", f"sqlite:///{tmp_path}/sim.db", "--anonymous-writes") as base:
        out = subprocess.run(
            [
                *SMARTREGION,
                "simulate",
                "--target",
                base,
                "--sensors",
                "12",
                "--count",
                "36",
                "--rate",
                "0",
                "--kinds",
                "water",
                "--start",
                "2026-11-25T06:00:00Z",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "sent 36 readings of 12 stations" in out.stderr
        r = httpx.get(
            f"{base}/ngsi-ld/v1/temporal/entities",
            params={
                "type": "WaterObserved",
                "timerel": "after",
                "timeAt": "2026-11-25T00:00:00Z",
                "attrs": "height",
                "count": "true",
                "limit": "100",
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["NGSILD-Results-Count"] == "12"
        # three rounds of readings, one simulated minute apart: three instances per station
        assert all(len(e["height"]) == 3 for e in r.json())


def test_simulate_over_mqtt_publishes_one_entity_per_message(mosquitto_url: str) -> None:
    host, port = parse_broker_url(mosquitto_url)
    received: list[dict] = []

    async def listen(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(host, port) as client:
            await client.subscribe("simtest/entities", qos=1)
            ready.set()
            async for message in client.messages:
                received.append(orjson.loads(bytes(message.payload)))  # type: ignore[arg-type]
                if len(received) == 20:
                    return

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(listen(ready))
        await ready.wait()
        proc = await asyncio.create_subprocess_exec(
            *SMARTREGION,
            "simulate",
            "--target",
            mosquitto_url,
            "--prefix",
            "simtest",
            "--sensors",
            "10",
            "--count",
            "20",
            "--rate",
            "0",
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    assert len(received) == 20
    assert len({e["id"] for e in received}) == 10  # two rounds of ten stations
    assert {e["type"] for e in received} <= {
        "AirQualityObserved",
        "TrafficFlowObserved",
        "WaterObserved",
    }


@pytest.mark.parametrize("args", [["--count", "5", "--kinds", "snow"], ["--sensors", "3"]])
def test_bad_options_are_refused(args: list[str]) -> None:
    out = subprocess.run(
        [*SMARTREGION, "simulate", *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
