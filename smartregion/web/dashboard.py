"""The municipality dashboard: indicators computed from the history of a place's sensors.

A place is an NGSI-LD scope `/Vlaanderen/<name>` (NGSI-LD 1.8 §4.18): the dashboard reads the
entities of that scope the reader may read and, per indicator, their attribute history through
the temporal service. Days are Belgian calendar days. Each indicator has a plain-language
reading and its daily series as CSV, fit for a council report.

Limits and thresholds (cited so that a council can check them):
- PM10: EU daily limit value 50 µg/m³, not to be exceeded on more than 35 days a year
  (Directive 2008/50/EC, Annex XI).
- traffic: the mean daily vehicle count of the last 7 days against the 7 before.
- water level: the highest level of the last 7 days against the gauge's `alertThreshold`.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from smartregion.broker.service import Broker
from smartregion.core.jsonld import core_term_map
from smartregion.core.scopes import parse_scope_q
from smartregion.core.temporal import TemporalQuery
from smartregion.errors import ResourceNotFound
from smartregion.storage.base import DEFAULT_TENANT, EntityQuery, Readable
from smartregion.web.datasets import label_of, short_name
from smartregion.web.i18n import ZONE

__all__ = ["PM10_DAILY_LIMIT", "Dashboard", "Indicator", "places"]

REGION = "Vlaanderen"
PM10_DAILY_LIMIT = 50.0
PM10_DAYS_ALLOWED = 35


@dataclass(slots=True)
class Indicator:
    """One indicator: a key, its figures for the reading, and its daily series."""

    key: str
    entity_id: str
    entity_label: str
    figures: dict[str, Any]
    #: (day, value) rows of the CSV
    daily: list[tuple[date, float]] = field(default_factory=list)
    unit: str = ""

    def csv(self) -> str:
        """The daily series as CSV (RFC 4180): date, value."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["date", f"{self.key} ({self.unit})" if self.unit else self.key])
        for day, value in self.daily:
            writer.writerow([day.isoformat(), round(value, 3)])
        return buffer.getvalue()


def _expand(term: str) -> str:
    return core_term_map().expand_term(term)


async def places(broker: Broker, readable: Readable | None) -> list[str]:
    """The places (scopes `/Vlaanderen/<name>`) of the entities the reader may read."""
    query = EntityQuery(scope_q=parse_scope_q(f"/{REGION}/#"), limit=1000)
    result = await broker.queries.run(DEFAULT_TENANT, query, readable=readable)
    found = set()
    for doc in result.docs:
        for scope in doc.get("scope", []):
            parts = scope.strip("/").split("/")
            if len(parts) == 2 and parts[0] == REGION:
                found.add(parts[1])
    return sorted(found)


def _daily(instances: list[dict[str, Any]], how: str) -> list[tuple[date, float]]:
    """Values per Belgian calendar day: mean, max or sum."""
    by_day: dict[date, list[float]] = defaultdict(list)
    for inst in instances:
        value, at = inst.get("value"), inst.get("observedAt")
        if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(at, str):
            moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(ZONE)
            by_day[moment.date()].append(float(value))
    out = []
    for day in sorted(by_day):
        values = by_day[day]
        out.append(
            (
                day,
                max(values)
                if how == "max"
                else sum(values)
                if how == "sum"
                else sum(values) / len(values),
            )
        )
    return out


class Dashboard:
    """Computes a place's indicators for one reader."""

    def __init__(
        self, broker: Broker, readable: Readable | None, *, now: datetime | None = None
    ) -> None:
        self.broker = broker
        self.readable = readable
        self.now = now or datetime.now(UTC)

    async def entities(self, place: str) -> list[dict[str, Any]]:
        """The place's entities the reader may read; ResourceNotFound for an unknown place."""
        query = EntityQuery(scope_q=parse_scope_q(f"/{REGION}/{place}"), limit=1000)
        result = await self.broker.queries.run(DEFAULT_TENANT, query, readable=self.readable)
        if not result.docs:
            raise ResourceNotFound(f"no data of a place {place!r}")
        return sorted(result.docs, key=lambda d: d["id"])

    async def _history(self, entity_id: str, attr: str, days: int) -> list[dict[str, Any]]:
        start = (self.now.astimezone(ZONE) - timedelta(days=days)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        query = TemporalQuery(timerel="after", time_at=start.astimezone(UTC))
        iri = _expand(attr)
        try:
            page = await self.broker.temporal.retrieve(
                DEFAULT_TENANT, entity_id, query, frozenset({iri}), readable=self.readable
            )
        except ResourceNotFound:
            return []
        instances: list[dict[str, Any]] = page.docs[0]["attrs"].get(iri, [])
        return instances

    async def indicators(self, place: str) -> tuple[list[dict[str, Any]], list[Indicator]]:
        """The place's entities and its indicators (those its readable data allows)."""
        docs = await self.entities(place)
        out: list[Indicator] = []
        today = self.now.astimezone(ZONE).date()
        for doc in docs:
            types = {short_name(t) for t in doc["type"]}
            label = label_of(doc)
            if "AirQualityObserved" in types:
                daily = [
                    (d, v)
                    for d, v in _daily(await self._history(doc["id"], "pm10", 30), "mean")
                    if d < today
                ]
                over = [d for d, v in daily if v > PM10_DAILY_LIMIT]
                out.append(
                    Indicator(
                        "pm10",
                        doc["id"],
                        label,
                        {
                            "days": len(daily),
                            "over": len(over),
                            "limit": PM10_DAILY_LIMIT,
                            "allowed": PM10_DAYS_ALLOWED,
                            "worst": max((v for _, v in daily), default=None),
                        },
                        daily,
                        "µg/m³",
                    )
                )
            elif "TrafficFlowObserved" in types:
                daily = [
                    (d, v)
                    for d, v in _daily(await self._history(doc["id"], "intensity", 15), "sum")
                    if d < today
                ]
                last, before = daily[-7:], daily[-14:-7]
                if last and before:
                    mean_last = sum(v for _, v in last) / len(last)
                    mean_before = sum(v for _, v in before) / len(before)
                    change = (mean_last - mean_before) / mean_before * 100 if mean_before else 0.0
                    out.append(
                        Indicator(
                            "traffic",
                            doc["id"],
                            label,
                            {
                                "last": mean_last,
                                "before": mean_before,
                                "change": change,
                            },
                            daily,
                            "vehicles/day",
                        )
                    )
            elif "WaterLevelObserved" in types:
                threshold_attr = doc["attrs"].get(_expand("alertThreshold"), [{}])[0].get("value")
                daily = _daily(await self._history(doc["id"], "waterLevel", 7), "max")
                if daily and isinstance(threshold_attr, int | float):
                    highest = max(v for _, v in daily)
                    out.append(
                        Indicator(
                            "water",
                            doc["id"],
                            label,
                            {
                                "highest": highest,
                                "threshold": float(threshold_attr),
                                "margin": float(threshold_attr) - highest,
                            },
                            daily,
                            "m",
                        )
                    )
        return docs, out
