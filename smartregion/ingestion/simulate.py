"""Realistic synthetic sensor streams for demos, tests and benchmarks (`smartregion simulate`).

Three kinds of Flemish sensors, each a Smart Data Models type as NGSI-LD entities:

- **air quality** (`AirQualityObserved`): NO2 with morning and evening rush-hour peaks, PM10
  and PM2.5 that follow a slower daily cycle, temperature with a mid-afternoon maximum;
- **traffic counts** (`TrafficFlowObserved`): vehicles per 5 minutes with a double commuting
  peak on weekdays and a single midday hump at weekends, and the average speed that drops when
  the road fills;
- **water levels** (`WaterObserved`): a river gauge's height, a slow tide-like swell plus rain
  events that raise the level and let it recede over hours.

Every value is a deterministic function of (sensor, simulated time, seed) plus seeded noise, so
a run can be repeated exactly. Sensors are spread around the thirteen centre cities of Flanders.
`SensorFleet.readings(at)` gives the NGSI-LD entities (normalized, `observedAt` = the simulated
time) of every sensor at one instant; the CLI publishes them over MQTT (the bridge's
`smartregion/entities` topic, QoS 1) or POSTs them to `/ngsi-ld/v1/entityOperations/upsert`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["CITIES", "KINDS", "Sensor", "SensorFleet"]

#: (name, longitude, latitude) of the centre cities of Flanders
CITIES: tuple[tuple[str, float, float], ...] = (
    ("Antwerpen", 4.4025, 51.2194),
    ("Gent", 3.7174, 51.0543),
    ("Brugge", 3.2247, 51.2093),
    ("Leuven", 4.7005, 50.8798),
    ("Mechelen", 4.4777, 51.0259),
    ("Aalst", 4.0403, 50.9378),
    ("Kortrijk", 3.2649, 50.8280),
    ("Hasselt", 5.3378, 50.9307),
    ("Sint-Niklaas", 4.1437, 51.1650),
    ("Oostende", 2.9186, 51.2154),
    ("Genk", 5.5000, 50.9650),
    ("Roeselare", 3.1250, 50.9469),
    ("Turnhout", 4.9447, 51.3226),
)

KINDS = ("air", "traffic", "water")

_TYPE = {"air": "AirQualityObserved", "traffic": "TrafficFlowObserved", "water": "WaterObserved"}


@dataclass(frozen=True, slots=True)
class Sensor:
    """One simulated station: its kind, id, place and personal character (offsets, scale)."""

    kind: str
    entity_id: str
    city: str
    lon: float
    lat: float
    #: a station's own level (a busy road, a polluted street, a river's mean height)
    scale: float
    phase: float


def _bump(hour: float, centre: float, width: float) -> float:
    """A smooth daily peak around `centre` (hours), periodic over 24 h."""
    d = (hour - centre + 12) % 24 - 12
    return math.exp(-(d * d) / (2 * width * width))


def _hour(at: datetime) -> float:
    return at.hour + at.minute / 60 + at.second / 3600


class SensorFleet:
    """A deterministic fleet of sensors of the given kinds."""

    def __init__(self, count: int, kinds: tuple[str, ...] = KINDS, *, seed: int = 1) -> None:
        if count < 1:
            raise ValueError("a fleet needs at least one sensor")
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise ValueError(f"unknown sensor kinds: {', '.join(unknown) or '(none)'}")
        self.seed = seed
        rng = random.Random(seed)
        self.sensors: list[Sensor] = []
        for n in range(count):
            kind = kinds[n % len(kinds)]
            city, lon, lat = CITIES[n % len(CITIES)]
            # within a few kilometres of the centre
            lon += rng.uniform(-0.04, 0.04)
            lat += rng.uniform(-0.025, 0.025)
            slug = city.lower().replace(" ", "-")
            self.sensors.append(
                Sensor(
                    kind=kind,
                    entity_id=f"urn:ngsi-ld:{_TYPE[kind]}:sim-{slug}-{n:05d}",
                    city=city,
                    lon=round(lon, 5),
                    lat=round(lat, 5),
                    scale=rng.uniform(0.6, 1.5),
                    phase=rng.uniform(0, 2 * math.pi),
                )
            )

    def readings(self, at: datetime) -> list[dict[str, Any]]:
        """Every sensor's entity at the (simulated) instant `at`."""
        return [self.reading(sensor, at) for sensor in self.sensors]

    def reading(self, sensor: Sensor, at: datetime) -> dict[str, Any]:
        """One sensor's NGSI-LD entity (normalized) at `at`."""
        at = at.astimezone(UTC)
        observed = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        # the noise is a function of (seed, sensor, instant): a run repeats exactly
        rng = random.Random(f"{self.seed}/{sensor.entity_id}/{int(at.timestamp())}")
        values = getattr(self, f"_{sensor.kind}")(sensor, at, rng)
        entity: dict[str, Any] = {
            "id": sensor.entity_id,
            "type": _TYPE[sensor.kind],
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [sensor.lon, sensor.lat]},
            },
            "address": {"type": "Property", "value": {"addressLocality": sensor.city}},
        }
        for name, (value, unit) in values.items():
            entity[name] = {
                "type": "Property",
                "value": value,
                "unitCode": unit,
                "observedAt": observed,
            }
        return entity

    # --- the kinds ----------------------------------------------------------------------

    @staticmethod
    def _air(sensor: Sensor, at: datetime, rng: random.Random) -> dict[str, tuple[float, str]]:
        h = _hour(at)
        weekday = at.weekday() < 5
        rush = (_bump(h, 8.0, 1.3) + 0.9 * _bump(h, 17.5, 1.6)) * (1.0 if weekday else 0.35)
        no2 = sensor.scale * (14 + 38 * rush) + rng.gauss(0, 3)
        pm10 = sensor.scale * (16 + 9 * _bump(h, 9.0, 4.0)) + rng.gauss(0, 2)
        pm25 = pm10 * 0.62 + rng.gauss(0, 1)
        season = math.cos(2 * math.pi * (at.timetuple().tm_yday - 200) / 365)
        temp = 11 + 7 * season + 4 * math.sin(2 * math.pi * (h - 9) / 24) + rng.gauss(0, 0.4)
        return {
            "no2": (round(max(0.0, no2), 1), "GQ"),  # µg/m³
            "pm10": (round(max(0.0, pm10), 1), "GQ"),
            "pm25": (round(max(0.0, pm25), 1), "GQ"),
            "temperature": (round(temp, 1), "CEL"),
        }

    @staticmethod
    def _traffic(sensor: Sensor, at: datetime, rng: random.Random) -> dict[str, tuple[float, str]]:
        h = _hour(at)
        if at.weekday() < 5:
            load = 0.08 + _bump(h, 7.8, 1.1) + 0.85 * _bump(h, 17.2, 1.4) + 0.35 * _bump(h, 12.5, 3)
        else:
            load = 0.06 + 0.6 * _bump(h, 14.0, 3.5)
        intensity = max(0, round(sensor.scale * 160 * load + rng.gauss(0, 6)))
        speed = 92 - 45 * min(1.0, load) + rng.gauss(0, 3)
        return {
            "intensity": (intensity, "E50"),  # vehicles per 5 minutes
            "averageVehicleSpeed": (round(max(5.0, speed), 1), "KMH"),
        }

    def _water(
        self, sensor: Sensor, at: datetime, rng: random.Random
    ) -> dict[str, tuple[float, str]]:
        t = at.timestamp() / 3600  # hours
        swell = 0.35 * math.sin(2 * math.pi * t / 12.42 + sensor.phase)  # tidal rivers
        # rain events: a few a month, each rising fast and receding over ~18 h
        rain = 0.0
        for start in range(int(t) - 72, int(t) + 1, 6):
            chance = random.Random(f"{self.seed}/{sensor.city}/rain/{start}").random()
            if chance < 0.05 and t >= start:
                age = t - start
                rain += 0.9 * (1 - math.exp(-age / 2)) * math.exp(-age / 18)
        height = sensor.scale * 2.2 + swell + rain + rng.gauss(0, 0.01)
        return {"height": (round(height, 3), "MTR")}
