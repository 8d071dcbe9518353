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

import math
import random
from collections.abc import Callable, Iterable
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


def _value(entity: dict[str, Any], attr: str) -> Any:
    return entity[attr]["value"]


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres on a sphere of radius 6,371,008.8 m."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def _near(entity: dict[str, Any]) -> bool:
    lon, lat = entity["location"]["value"]["coordinates"]
    return distance_m(lon, lat, *NEAR_POINT) <= NEAR_DISTANCE_M


@dataclass(frozen=True, slots=True)
class QueryCase:
    """One GET /entities query of benchmark 3, with the Python predicate it stands for."""

    name: str
    params: dict[str, str]
    predicate: Callable[[dict[str, Any]], bool]

    def expected(self, entities: Iterable[dict[str, Any]]) -> int:
        """How many of `entities` the query must match (a correctness check of the answer)."""
        return sum(1 for e in entities if self.predicate(e))

    def path(self, *, count: bool = False) -> str:
        """The request path with its query string."""
        params = dict(self.params)
        if count:
            params["count"] = "true"
        return "/ngsi-ld/v1/entities?" + "&".join(
            f"{k}={quote(v, safe='')}" for k, v in params.items()
        )


QUERY_CASES = (
    QueryCase(
        "q=temperature>25",
        {"type": ENTITY_TYPE, "q": "temperature>25"},
        lambda e: _value(e, "temperature") > 25,
    ),
    QueryCase(
        "q=humidity==70",
        {"type": ENTITY_TYPE, "q": "humidity==70"},
        lambda e: _value(e, "humidity") == 70,
    ),
    QueryCase(
        "q=temperature==20..22",
        {"type": ENTITY_TYPE, "q": "temperature==20..22"},
        lambda e: 20 <= _value(e, "temperature") <= 22,
    ),
    QueryCase(
        f"georel=near;maxDistance=={NEAR_DISTANCE_M}",
        {
            "type": ENTITY_TYPE,
            "georel": f"near;maxDistance=={NEAR_DISTANCE_M}",
            "geometry": "Point",
            "coordinates": f"[{NEAR_POINT[0]},{NEAR_POINT[1]}]",
        },
        _near,
    ),
)
