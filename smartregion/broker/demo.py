"""Demo content: a small, realistic Flemish sensor landscape for `smartregion serve --demo`."""

from __future__ import annotations

import logging
from typing import Any

from smartregion.broker.service import Broker
from smartregion.errors import SmartRegionError
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.storage.base import DEFAULT_TENANT

log = logging.getLogger("smartregion.demo")

#: the open data set the demo entities are published in
DEMO_DATASET = "demo"

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
        out.append(
            {
                "id": f"urn:ngsi-ld:AirQualityObserved:{nis}-001",
                "type": "AirQualityObserved",
                "name": {"type": "Property", "value": f"Luchtmeetstation {name}"},
                "municipality": {"type": "Property", "value": name},
                "no2": {"type": "Property", "value": 18.0 + 3.5 * i, "unitCode": "GQ", "observedAt": observed},
                "pm10": {"type": "Property", "value": 14.0 + 2.0 * i, "unitCode": "GQ", "observedAt": observed},
                "pm25": {"type": "Property", "value": 7.5 + 1.2 * i, "unitCode": "GQ", "observedAt": observed},
                "location": {"type": "GeoProperty", "value": point},
            }
        )
        out.append(
            {
                "id": f"urn:ngsi-ld:OffStreetParking:{nis}-centrum",
                "type": "OffStreetParking",
                "name": {"type": "Property", "value": f"Parking Centrum {name}"},
                "totalSpotNumber": {"type": "Property", "value": 200 + 50 * i},
                "availableSpotNumber": {"type": "Property", "value": 40 + 17 * i, "observedAt": observed},
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
    result = await broker.batch.upsert(
        DEFAULT_TENANT, entities, vocab, writer=WriteAccess(owner), mode="update"
    )
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
        types = sorted({e["type"] for e in demo_entities()})
        await governance.create_dataset(
            operator,
            DEMO_DATASET,
            owner,
            {"en": "Demo sensors across Flanders", "nl": "Demosensoren in Vlaanderen"},
            types,
            policy="open",
        )
    except SmartRegionError as exc:  # e.g. another worker published it at the same moment
        log.warning("demo data set not published: %s", exc)
