"""What the portal shows of data sets: the catalogue (facets, search), one data set's entities,
map features, chart series and downloads — read through the governance and broker services with
exactly what the reader may read."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from smartregion.broker.service import Broker
from smartregion.core.jsonld import core_term_map
from smartregion.core.rendering import RenderOptions
from smartregion.core.temporal import parse_temporal_query
from smartregion.core.temporal_rendering import aggregate_entity, render_aggregated_entity
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.governance import Governance, Principal
from smartregion.storage.base import DEFAULT_TENANT, EntityQuery, Readable
from smartregion.storage.governance import Dataset

__all__ = [
    "AGGREGATIONS",
    "PERIODS",
    "Catalogue",
    "ChartChoice",
    "DatasetView",
    "short_name",
]

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
#: the most entities a data set page lists and maps (the NGSI-LD link gives all of them)
PAGE_LIMIT = 500
#: chart periods: name -> (length, aggregation period)
PERIODS: dict[str, tuple[timedelta, str]] = {
    "24h": (timedelta(hours=24), "PT1H"),
    "7d": (timedelta(days=7), "PT1H"),
    "30d": (timedelta(days=30), "P1D"),
}
AGGREGATIONS = ("avg", "min", "max")


#: UN/CEFACT common codes (NGSI-LD `unitCode`) as the symbols readers know
UNIT_SYMBOLS = {
    "GQ": "µg/m³",
    "KMH": "km/h",
    "MTR": "m",
    "CEL": "°C",
    "P1": "%",
    "MMT": "mm",
    "HPA": "hPa",
    "KWH": "kWh",
    "KWT": "kW",
    "DB": "dB",
    "MTS": "m/s",
}


def short_name(iri: str) -> str:
    """The last segment of an IRI: the term a reader knows (`no2`, `AirQualityObserved`)."""
    return iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def text_in(texts: dict[str, str], lang: str) -> str:
    """A text in the reader's language, else in the other one."""
    return texts.get(lang) or next(iter(texts.values()), "")


@dataclass(frozen=True, slots=True)
class Facet:
    """One value of a facet: how many data sets have it, and whether it is selected."""

    value: str
    count: int
    selected: bool


class Catalogue:
    """The data sets a reader may know of, filtered by facets and a search text."""

    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    async def visible(self, principal: Principal | None) -> list[Dataset]:
        """Private data sets only for their owner; open and restricted ones for everyone."""
        if principal is not None:
            return await self.governance.visible_datasets(principal)
        return [d for d in await self.governance.list_datasets() if d.policy_kind != "private"]

    async def search(
        self,
        principal: Principal | None,
        lang: str,
        *,
        text: str = "",
        theme: str = "",
        owner: str = "",
        policy: str = "",
    ) -> tuple[list[Dataset], dict[str, list[Facet]]]:
        """The matching data sets, newest first, and the facets over all visible ones."""
        datasets = await self.visible(principal)
        words = [w for w in text.lower().split() if w]

        def matches(d: Dataset, skip: str = "") -> bool:
            if theme and skip != "theme" and d.theme != theme:
                return False
            if owner and skip != "owner" and d.owner_org != owner:
                return False
            if policy and skip != "policy" and d.policy_kind != policy:
                return False
            haystack = " ".join(
                [
                    *d.title.values(),
                    *d.description.values(),
                    d.owner_org,
                    *(short_name(t) for t in d.entity_types),
                    d.theme or "",
                ]
            ).lower()
            return all(w in haystack for w in words)

        found = sorted(
            (d for d in datasets if matches(d)), key=lambda d: d.modified_at, reverse=True
        )
        facets: dict[str, list[Facet]] = {}
        for name, chosen in (("theme", theme), ("owner", owner), ("policy", policy)):
            counts: dict[str, int] = {}
            for d in datasets:
                value = _facet_value(d, name)
                if value and matches(d, skip=name):
                    counts[value] = counts.get(value, 0) + 1
            facets[name] = [Facet(v, n, v == chosen) for v, n in sorted(counts.items())]
        return found, facets


def _facet_value(dataset: Dataset, facet: str) -> str:
    if facet == "theme":
        return dataset.theme or ""
    return dataset.owner_org if facet == "owner" else dataset.policy_kind


@dataclass(slots=True)
class ChartChoice:
    """Which series the chart shows, over which period, aggregated how."""

    entity_id: str
    attr: str
    period: str
    aggregation: str

    def params(self, now: datetime) -> dict[str, str]:
        """The temporal query's parameters (NGSI-LD 1.8 §6.19.3.1, aggregatedValues)."""
        length, step = PERIODS[self.period]
        start = (now - length).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return {
            "attrs": self.attr,
            "options": "aggregatedValues",
            "aggrMethods": self.aggregation,
            "aggrPeriodDuration": step,
            "timerel": "after",
            "timeAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def temporal_url(self, now: datetime) -> str:
        """The chart's query in the NGSI-LD temporal API (for API clients, with a key)."""
        return f"/ngsi-ld/v1/temporal/entities/{quote(self.entity_id, safe=':')}?{urlencode(self.params(now))}"

    def series_url(self, dataset_id: str, now: datetime) -> str:
        """The same query answered for the page's reader (their session's rights)."""
        return f"/datasets/{quote(dataset_id)}/series?{urlencode({'id': self.entity_id, **self.params(now)})}"


class DatasetView:
    """One data set as a reader sees it."""

    def __init__(self, broker: Broker, governance: Governance, dataset: Dataset) -> None:
        self.broker = broker
        self.governance = governance
        self.dataset = dataset

    async def readable(self, principal: Principal | None) -> Readable | None:
        """The data set's entities the reader may read, as a read filter; None: none of them.

        The platform's one read rule (`Governance.readable_for`), as the NGSI-LD API and the
        event streams apply it: the owner's side (its members and the organisations it mandates
        for all its data), else a data set the reader may read."""
        decided = await self.governance.readable_for(principal)
        if (
            decided is not None
            and self.dataset.owner_org not in decided.owners
            and self.dataset.selection not in decided.slices
        ):
            return None
        return Readable(
            slices=(self.dataset.selection,),
            disclosure=decided.disclosure if decided is not None else None,
        )

    async def entities(
        self, principal: Principal | None, limit: int = PAGE_LIMIT
    ) -> list[dict[str, Any]]:
        """The data set's entities the reader may read (internal documents), by id."""
        readable = await self.readable(principal)
        if readable is None:
            return []
        query = EntityQuery(
            types=[frozenset({t}) for t in self.dataset.entity_types],
            limit=limit,
        )
        result = await self.broker.queries.run(DEFAULT_TENANT, query, readable=readable)
        return sorted(result.docs, key=lambda d: d["id"])

    async def series(
        self, principal: Principal | None, entity_id: str, params: dict[str, str]
    ) -> dict[str, Any]:
        """One entity's aggregated values, as the temporal API renders them (§4.5.19): the same
        service and renderer, over what the reader may read of this data set."""
        readable = await self.readable(principal)
        if readable is None:
            raise ResourceNotFound(f"entity {entity_id} not found")
        query = parse_temporal_query(params)
        if query.format != "aggregatedValues":
            raise BadRequestData("the chart reads aggregatedValues")
        vocab = core_term_map()
        attr = vocab.expand_term(params.get("attrs", ""))
        opts = RenderOptions(attrs=frozenset({attr}))
        page = await self.broker.temporal.retrieve(
            DEFAULT_TENANT, entity_id, query, opts.attrs, readable=readable, keeps=opts.keeps
        )
        doc = page.docs[0]
        aggregates = page.aggregates.get(doc["id"])
        if aggregates is None:  # not answered from roll-ups: from the instances read
            aggregates = aggregate_entity(doc, vocab, query, opts)
        return render_aggregated_entity(doc, aggregates, vocab, opts)

    def ngsild_url(self) -> str:
        """The NGSI-LD query for the data set's entities."""
        types = ",".join(short_name(t) for t in self.dataset.entity_types)
        return "/ngsi-ld/v1/entities?" + urlencode({"type": types, "limit": "100"})


def current_values(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """An entity's attributes as rows: name, value, unit, observed (first instance each)."""
    rows = []
    for iri, instances in sorted(doc.get("attrs", {}).items(), key=lambda kv: short_name(kv[0])):
        if not instances:
            continue
        inst = instances[0]
        kind = inst.get("type", "Property")
        if kind == "GeoProperty":
            value: Any = inst.get("value", {}).get("type", "")
        elif kind == "Relationship":
            value = inst.get("object", "")
        else:
            value = inst.get("value", inst.get("languageMap", ""))
        rows.append(
            {
                "name": short_name(iri),
                "kind": kind,
                "value": value,
                "unit": UNIT_SYMBOLS.get(inst.get("unitCode", ""), inst.get("unitCode", "")),
                "observed": inst.get("observedAt", ""),
                "numeric": isinstance(value, int | float) and not isinstance(value, bool),
            }
        )
    return rows


def numeric_attributes(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(entity id, attribute name) of every numeric Property: what the chart can show;
    measurements (with observedAt) first, so that the chart opens on a time series."""
    measured: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for doc in docs:
        for row in current_values(doc):
            if row["numeric"] and row["kind"] == "Property":
                (measured if row["observed"] else other).append((doc["id"], row["name"]))
    return measured + other


def label_of(doc: dict[str, Any]) -> str:
    """An entity's name if it has one, else its id."""
    for iri, instances in doc.get("attrs", {}).items():
        if short_name(iri) == "name" and instances and isinstance(instances[0].get("value"), str):
            return str(instances[0]["value"])
    return str(doc["id"])


def features(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946) of the entities with a location."""
    out = []
    for doc in docs:
        located = doc.get("attrs", {}).get(LOCATION)
        if not located or not isinstance(located[0].get("value"), dict):
            continue
        properties: dict[str, Any] = {
            "id": doc["id"],
            "type": [short_name(t) for t in doc["type"]],
            "name": label_of(doc),
        }
        for row in current_values(doc):
            if row["kind"] in ("Property", "Relationship") and row["name"] != "name":
                properties[row["name"]] = row["value"]
        out.append(
            {
                "type": "Feature",
                "id": doc["id"],
                "geometry": located[0]["value"],
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": out}


def csv_text(docs: list[dict[str, Any]]) -> str:
    """One row per entity attribute: id, type, attribute, value, unit, observedAt (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["id", "type", "attribute", "value", "unitCode", "observedAt"])
    for doc in docs:
        types = ",".join(short_name(t) for t in doc["type"])
        for row in current_values(doc):
            if row["kind"] == "GeoProperty":
                continue
            writer.writerow(
                [doc["id"], types, row["name"], row["value"], row["unit"], row["observed"]]
            )
    return buffer.getvalue()
