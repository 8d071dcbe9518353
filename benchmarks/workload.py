"""The benchmark data set: weather stations across Flanders, three attributes each.

Deterministic (seeded) so every run, and the baselines within a run, send the same bytes.
Distributions are chosen so that the query benchmarks select realistic fractions:

- temperature ~ N(17, 6) °C rounded to 0.1: `temperature>25` selects about 9 %,
  `temperature==20..22` about 11 %;
- humidity ~ N(70, 12) % as an integer: `humidity==70` selects about 3 %;
- location: 60 % of the stations are clustered around five city centres (sd about 2 km), the rest
  spread uniformly over Flanders, so a 500 m `near` query on Ghent's Korenmarkt finds a few
  hundred stations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

ENTITY_TYPE = "WeatherObserved"
ID_PREFIX = "urn:ngsi-ld:WeatherObserved:flanders-ws-"
ATTRS_PER_ENTITY = 3

#: (name, lon, lat, share of all stations)
CITIES = (
    ("Gent", 3.7250, 51.0543, 0.12),
    ("Antwerpen", 4.4025, 51.2194, 0.15),
    ("Brussel", 4.3517, 50.8466, 0.15),
    ("Leuven", 4.7005, 50.8798, 0.09),
    ("Brugge", 3.2247, 51.2093, 0.09),
)
#: Flanders' bounding box (lon, lat)
BBOX = (2.54, 50.68, 5.92, 51.51)
#: Ghent, Korenmarkt: the centre of the `near` query
NEAR_POINT = (3.7215, 51.0545)
NEAR_DISTANCE_M = 500


def entity_id(index: int) -> str:
    """The id of station number `index`."""
    return f"{ID_PREFIX}{index:06d}"


def _location(rng: random.Random) -> list[float]:
    pick = rng.random()
    acc = 0.0
    for _, lon, lat, share in CITIES:
        acc += share
        if pick < acc:
            # a standard deviation of about 2 km in both directions at 51° N
            return [round(rng.gauss(lon, 0.028), 6), round(rng.gauss(lat, 0.018), 6)]
    return [round(rng.uniform(BBOX[0], BBOX[2]), 6), round(rng.uniform(BBOX[1], BBOX[3]), 6)]


def make_entity(index: int, rng: random.Random, observed_at: str) -> dict[str, Any]:
    """One normalized NGSI-LD entity (default @context) with temperature, humidity and location."""
    humidity = int(min(100, max(5, round(rng.gauss(70, 12)))))
    return {
        "id": entity_id(index),
        "type": ENTITY_TYPE,
        "temperature": {
            "type": "Property",
            "value": round(rng.gauss(17, 6), 1),
            "unitCode": "CEL",
            "observedAt": observed_at,
        },
        "humidity": {
            "type": "Property",
            "value": humidity,
            "unitCode": "P1",
            "observedAt": observed_at,
        },
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": _location(rng)},
        },
    }


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch request: its entities and the exact body bytes sent."""

    entities: list[dict[str, Any]]
    body: bytes

    @property
    def attr_count(self) -> int:
        """Attribute updates carried by this batch."""
        return len(self.entities) * ATTRS_PER_ENTITY


def make_batches(start: int, count: int, size: int, *, round_no: int = 0) -> list[Batch]:
    """`count` batches of `size` entities, ids from `start`; `round_no` varies values and times."""
    batches: list[Batch] = []
    observed_at = f"2026-11-27T{8 + round_no:02d}:00:00.000Z"
    for b in range(count):
        first = start + b * size
        rng = random.Random(first * 1009 + round_no)
        entities = [make_entity(first + i, rng, observed_at) for i in range(size)]
        # locations stay put between rounds: a station does not move when it reports again
        if round_no:
            base_rng = random.Random(first * 1009)
            for ent in entities:
                ent["location"] = make_entity(0, base_rng, observed_at)["location"]
        batches.append(Batch(entities, orjson.dumps(entities)))
    return batches


#: the body of the single-entity PATCH /entities/{id}/attrs benchmark (NGSI-LD 1.8 §6.6.3.3)
PATCH_BODY = orjson.dumps(
    {
        "temperature": {
            "type": "Property",
            "value": 19.5,
            "unitCode": "CEL",
            "observedAt": "2026-11-27T12:00:00.000Z",
        },
        "humidity": {
            "type": "Property",
            "value": 64,
            "unitCode": "P1",
            "observedAt": "2026-11-27T12:00:00.000Z",
        },
    }
)


@dataclass(frozen=True, slots=True)
class QueryCase:
    """One GET /entities query of benchmark 3."""

    name: str
    params: dict[str, str]

    def path(self, *, count: bool = False) -> str:
        """The request path with its query string."""
        params = dict(self.params)
        if count:
            params["count"] = "true"
        return "/ngsi-ld/v1/entities?" + "&".join(
            f"{k}={quote(v, safe='')}" for k, v in params.items()
        )


QUERY_CASES = (
    QueryCase("q=temperature>25 (~9 %)", {"type": ENTITY_TYPE, "q": "temperature>25"}),
    QueryCase("q=humidity==70 (equality, ~3 %)", {"type": ENTITY_TYPE, "q": "humidity==70"}),
    QueryCase(
        "q=temperature==20..22 (range, ~11 %)", {"type": ENTITY_TYPE, "q": "temperature==20..22"}
    ),
    QueryCase(
        f"near;maxDistance=={NEAR_DISTANCE_M} (Gent)",
        {
            "type": ENTITY_TYPE,
            "georel": f"near;maxDistance=={NEAR_DISTANCE_M}",
            "geometry": "Point",
            "coordinates": f"[{NEAR_POINT[0]},{NEAR_POINT[1]}]",
        },
    ),
)
