"""Demo content: a small, realistic Flemish sensor landscape for `smartregion serve --demo`."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from smartregion.broker.service import Broker
from smartregion.errors import SmartRegionError
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.storage.base import DEFAULT_TENANT

log = logging.getLogger("smartregion.demo")

#: the open data set the demo entities are published in
DEMO_DATASET = "demo"
#: the restricted demo data set (water levels): readable after an approved access request
DEMO_RESTRICTED_DATASET = "demo-water"
RESTRICTED_TYPES = ("WaterLevelObserved",)
#: the demo's people (portal sign-in): id, e-mail, name, organisation, role. Their password is
#: DEMO_PASSWORD — a demo database is for trying out, never for real data (docs/portal.md)
DEMO_PEOPLE = (
    ("anna", "anna@demo.smartregion.be", "Anna Peeters", None, "admin"),
    ("bart", "bart@demo.smartregion.be", "Bart Claes", "gent", "editor"),
)
DEMO_PASSWORD = "demo-wachtwoord"

CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"

# (municipality, NIS code, lon, lat) — town halls, approximately.
_PLACES = [
    ("Gent", "44021", 3.7250, 51.0543),
    ("Leuven", "24062", 4.7009, 50.8798),
    ("Brugge", "31005", 3.2247, 51.2093),
    ("Hasselt", "71022", 5.3378, 50.9307),
    ("Kortrijk", "34022", 3.2649, 50.8280),
    ("Mechelen", "12025", 4.4777, 51.0259),
    ("Herzele", "41027", 3.8885, 50.8923),
    ("Lommel", "72020", 5.3129, 51.2302),
]


def demo_entities() -> list[dict[str, Any]]:
    """Air-quality stations, parking sites and traffic counters across Flanders (normalized NGSI-LD)."""
    out: list[dict[str, Any]] = []
    for i, (name, nis, lon, lat) in enumerate(_PLACES):
        point = {"type": "Point", "coordinates": [lon, lat]}
        observed = "2026-11-27T08:00:00Z"
        scope = f"/Vlaanderen/{name}"
        out.append(
            {
                "id": f"urn:ngsi-ld:AirQualityObserved:{nis}-001",
                "type": "AirQualityObserved",
                "scope": scope,
                "name": {"type": "Property", "value": f"Luchtmeetstation {name}"},
                "municipality": {"type": "Property", "value": name},
                "no2": {
                    "type": "Property",
                    "value": 18.0 + 3.5 * i,
                    "unitCode": "GQ",
                    "observedAt": observed,
                },
                "pm10": {
                    "type": "Property",
                    "value": 14.0 + 2.0 * i,
                    "unitCode": "GQ",
                    "observedAt": observed,
                },
                "pm25": {
                    "type": "Property",
                    "value": 7.5 + 1.2 * i,
                    "unitCode": "GQ",
                    "observedAt": observed,
                },
                "location": {"type": "GeoProperty", "value": point},
            }
        )
        out.append(
            {
                "id": f"urn:ngsi-ld:OffStreetParking:{nis}-centrum",
                "type": "OffStreetParking",
                "scope": scope,
                "name": {"type": "Property", "value": f"Parking Centrum {name}"},
                "totalSpotNumber": {"type": "Property", "value": 200 + 50 * i},
                "availableSpotNumber": {
                    "type": "Property",
                    "value": 40 + 17 * i,
                    "observedAt": observed,
                },
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [lon + 0.004, lat - 0.002]},
                },
                "refAirQuality": {
                    "type": "Relationship",
                    "object": f"urn:ngsi-ld:AirQualityObserved:{nis}-001",
                },
            }
        )
        out.append(
            {
                "id": f"urn:ngsi-ld:TrafficFlowObserved:{nis}-ring",
                "type": "TrafficFlowObserved",
                "scope": scope,
                "name": {"type": "Property", "value": f"Verkeersteller ring {name}"},
                "intensity": {"type": "Property", "value": 320 + 41 * i, "observedAt": observed},
                "averageVehicleSpeed": {"type": "Property", "value": 38.0 + i, "unitCode": "KMH"},
                "location": {
                    "type": "GeoProperty",
                    "value": {
                        "type": "LineString",
                        "coordinates": [[lon - 0.01, lat + 0.005], [lon + 0.01, lat + 0.006]],
                    },
                },
            }
        )
        out.append(
            {
                "id": f"urn:ngsi-ld:WaterLevelObserved:{nis}-brug",
                "type": "WaterLevelObserved",
                "scope": scope,
                "name": {"type": "Property", "value": f"Peilmeter {name}"},
                "waterLevel": {
                    "type": "Property",
                    "value": 1.2 + 0.1 * i,
                    "unitCode": "MTR",
                    "observedAt": observed,
                },
                "alertThreshold": {"type": "Property", "value": 2.5, "unitCode": "MTR"},
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [lon - 0.003, lat + 0.003]},
                },
            }
        )
    return out


#: days of hourly demo history (charts and dashboards need a past)
HISTORY_DAYS = 35


def _wave(i: int, hour: int, period: float, phase: float) -> float:
    """A deterministic daily rhythm with a slower drift and a little jitter (no randomness)."""
    return (
        math.sin(2 * math.pi * (hour % 24) / 24 + phase + i)
        + 0.6 * math.sin(2 * math.pi * hour / period + 2 * i)
        + 0.25 * math.sin(hour * 12.9898 + i * 78.233)
    )


def demo_history(now: datetime) -> list[dict[str, Any]]:
    """Temporal entities (NGSI-LD 1.8 §4.5.8): hourly values of the last HISTORY_DAYS days.

    PM10 crosses the EU daily limit (50 µg/m³) on some days, traffic grows slightly in the last
    week and water levels swell after "rain", so that the dashboards have something to say.
    """
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = HISTORY_DAYS * 24
    out: list[dict[str, Any]] = []
    for i, (_name, nis, _lon, _lat) in enumerate(_PLACES):
        pm10, no2, intensity, level = [], [], [], []
        for h in range(hours):
            at = (end - timedelta(hours=hours - h)).strftime("%Y-%m-%dT%H:%M:%SZ")
            w = _wave(i, h, 24 * 9, 0.0)
            smog = 32.0 if (h // 24 + i) % 11 in (3, 4) else 0.0  # a two-day episode now and then
            pm10.append(
                {
                    "type": "Property",
                    "value": round(26 + 9 * w + smog + 2 * i, 1),
                    "observedAt": at,
                    "unitCode": "GQ",
                }
            )
            no2.append(
                {
                    "type": "Property",
                    "value": round(24 + 10 * _wave(i, h, 24 * 5, 1.3) + 3 * i, 1),
                    "observedAt": at,
                    "unitCode": "GQ",
                }
            )
            growth = 1.0 + 0.08 * max(0, h - (hours - 7 * 24)) / (7 * 24)
            rush = 1.0 + 0.8 * max(0.0, math.sin(math.pi * ((h % 24) - 6) / 12))
            intensity.append(
                {
                    "type": "Property",
                    "value": round((180 + 30 * i) * rush * growth + 15 * w),
                    "observedAt": at,
                }
            )
            level.append(
                {
                    "type": "Property",
                    "value": round(1.3 + 0.1 * i + 0.5 * max(0.0, _wave(i, h, 24 * 13, 2.0)), 2),
                    "observedAt": at,
                    "unitCode": "MTR",
                }
            )
        out.append(
            {
                "id": f"urn:ngsi-ld:AirQualityObserved:{nis}-001",
                "type": "AirQualityObserved",
                "pm10": pm10,
                "no2": no2,
            }
        )
        out.append(
            {
                "id": f"urn:ngsi-ld:TrafficFlowObserved:{nis}-ring",
                "type": "TrafficFlowObserved",
                "intensity": intensity,
            }
        )
        out.append(
            {
                "id": f"urn:ngsi-ld:WaterLevelObserved:{nis}-brug",
                "type": "WaterLevelObserved",
                "waterLevel": level,
            }
        )
    return out


async def load_demo(broker: Broker, *, owner: str) -> int:
    """Load the demo entities into an empty default tenant; returns how many were written.

    A database that already holds entities is left alone, so restarting with `--demo` never
    overwrites what users changed.
    """
    if await broker.store.entity_types(DEFAULT_TENANT):
        return 0
    vocab = await broker.contexts.term_map(CONTEXT)
    entities = demo_entities()
    writer = WriteAccess(owner)
    result = await broker.batch.upsert(
        DEFAULT_TENANT, entities, vocab, writer=writer, mode="update"
    )
    for temporal in demo_history(datetime.now(UTC)):
        await broker.temporal.upsert(DEFAULT_TENANT, temporal, vocab, writer=writer)
    return len(result.success)


async def publish_demo(governance: Governance, *, owner: str) -> None:
    """Publish the demo entities as an open data set of `owner`, so that anyone may read them.

    The organisation is registered when absent. An existing data set is left alone (its owner
    may have changed its policy since). Failing to publish leaves the demo readable only by its
    owner (fail closed), with a warning.
    """
    operator = Principal.cli()
    try:
        if await governance.store.get_dataset(DEMO_DATASET) is not None:
            return
        if await governance.store.get_organisation(owner) is None:
            await governance.create_organisation(operator, owner, owner, "region")
        types = sorted({e["type"] for e in demo_entities()} - set(RESTRICTED_TYPES))
        await governance.create_dataset(
            operator,
            DEMO_DATASET,
            owner,
            {"en": "Demo sensors across Flanders", "nl": "Demosensoren in Vlaanderen"},
            types,
            description={
                "en": "Air quality, parking occupancy and traffic counts in eight Flemish cities.",
                "nl": "Luchtkwaliteit, bezetting van parkings en verkeerstellingen in acht Vlaamse steden.",
            },
            theme="environment",
            policy="open",
        )
        await governance.create_dataset(
            operator,
            DEMO_RESTRICTED_DATASET,
            owner,
            {"en": "Water levels of the demo rivers", "nl": "Waterpeilen van de demorivieren"},
            list(RESTRICTED_TYPES),
            description={
                "en": "Hourly water levels at eight bridges, with the alert threshold.",
                "nl": "Waterpeil per uur aan acht bruggen, met de alarmdrempel.",
            },
            theme="environment",
            policy="restricted",
            license="https://creativecommons.org/licenses/by/4.0/",
        )
        await _demo_people(governance, owner)
    except SmartRegionError as exc:  # e.g. another worker published it at the same moment
        log.warning("demo data set not published: %s", exc)


async def _demo_people(governance: Governance, owner: str) -> None:
    """A municipality and the demo's people, so that the portal's sign-in can be tried."""
    operator = Principal.cli()
    if await governance.store.get_organisation("gent") is None:
        await governance.create_organisation(
            operator, "gent", "Stad Gent", "municipality", nis="44021"
        )
    for person_id, email, name, org, role in DEMO_PEOPLE:
        if await governance.store.get_person(person_id) is None:
            await governance.create_person(operator, person_id, email, name, DEMO_PASSWORD)
        await governance.set_membership(operator, person_id, org or owner, role)
