"""Retention of attribute history: per data set, and a default (docs/operations.md, Retention).

Which limit a series has: the series of an entity that belongs to a data set with a retention
of its own (the entity's owner is the data set's owner and it has one of its entity types) keep
that data set's limit; when several such data sets hold the entity, the longest limit wins
(0 — forever — is the longest). Every other series — also those of deleted entities, whose
owner is no longer known — keeps the default (`history_retention_days`).

Roll-ups: a limit is a pair (raw days, roll-up days). Roll-ups are summaries of the raw data,
so by default they go with it (roll-up days 0 = "as long as the raw data"); a data set may allow
them to stay longer (roll-up days ≥ raw days), so aggregations over old periods keep working
after the raw instances are gone. They never go before their raw data.

A purge deletes the instances older than the cutoff rounded down to a UTC day
(`HistoryStore.purge_history`), in transactions of at most `batch` instances, so ingestion
goes on between them; on PostgreSQL, when every series has the default limit, whole monthly
partitions older than the cutoff are dropped instead of deleted row by row. `PurgeJob` runs the
purge in `smartregion serve` every `history_purge_interval` seconds, in one process at a time
(`storage.locks.exclusive`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smartregion.storage.base import EntityQuery, Readable, Store
from smartregion.storage.governance import Dataset, GovernanceStore
from smartregion.storage.history import HistoryStore, now_micros
from smartregion.storage.jobs import PeriodicJob
from smartregion.storage.locks import exclusive
from smartregion.storage.rollups import DAY, format_micros

__all__ = ["Limit", "PurgeGroup", "PurgeJob", "PurgeReport", "RetentionService", "effective"]

log = logging.getLogger("smartregion.retention")

#: entity ids per membership query
_CHUNK = 5_000
#: the job lock's name (storage.locks)
LOCK_NAME = "history-purge"


@dataclass(frozen=True, slots=True, order=True)
class Limit:
    """Days raw instances and roll-ups are kept (0: forever)."""

    raw_days: int
    rollup_days: int

    @property
    def forever(self) -> bool:
        """Nothing is ever purged."""
        return self.raw_days == 0


def effective(raw_days: int, rollup_days: int) -> Limit:
    """The limit a (raw, roll-up) setting means: roll-ups 0 or shorter follow the raw data."""
    if raw_days <= 0:
        return Limit(0, 0)
    return Limit(raw_days, max(rollup_days, raw_days))


def _longest(limits: Sequence[Limit]) -> Limit:
    def days(n: int) -> float:
        return math.inf if n == 0 else n

    raw = max(limits, key=lambda x: days(x.raw_days)).raw_days
    rollup = max(limits, key=lambda x: days(x.rollup_days)).rollup_days
    return effective(raw, rollup)


@dataclass(slots=True)
class PurgeGroup:
    """Series sharing one limit (`series` None: every series of the database)."""

    limit: Limit
    series: list[int] | None
    #: the data sets whose limit this is ("" for the default)
    source: str = ""


@dataclass(slots=True)
class PurgeReport:
    """What a purge did (or, dry, would do)."""

    instances: int = 0
    groups: list[PurgeGroup] = field(default_factory=list)
    #: the purge did not run: another process holds the job lock
    skipped: bool = False

    def describe(self, now: int) -> list[str]:
        """One line per group."""
        lines = []
        for g in self.groups:
            what = "every series" if g.series is None else f"{len(g.series):,} series"
            cut = format_micros((now - g.limit.raw_days * DAY) // DAY * DAY)
            line = f"{g.source or 'default'}: {what}, raw instances before {cut}"
            if g.limit.rollup_days > g.limit.raw_days:
                keep = format_micros((now - g.limit.rollup_days * DAY) // DAY * DAY)
                line += f", roll-ups before {keep}"
            else:
                line += " with their roll-ups"
            lines.append(line)
        return lines


class RetentionService:
    """Plans and runs history purges over one store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        default_days: int = 0,
        default_rollup_days: int = 0,
        batch: int = 10_000,
    ) -> None:
        if not isinstance(store, HistoryStore):
            raise TypeError(f"{type(store).__name__} keeps no attribute history")
        self.store = store
        self.history: HistoryStore = store
        self.default = effective(default_days, default_rollup_days)
        self.batch = batch

    async def _datasets(self) -> list[tuple[Dataset, Limit]]:
        """The data sets with a retention of their own, and their limits."""
        if not isinstance(self.store, GovernanceStore):
            return []
        out = []
        for ds in await self.store.list_datasets():
            if ds.retention_days is None and ds.rollup_retention_days is None:
                continue
            raw = self.default.raw_days if ds.retention_days is None else ds.retention_days
            rollup = ds.rollup_retention_days
            if rollup is None:
                # the default's roll-up extension, when the data set keeps the default raw limit
                rollup = self.default.rollup_days if ds.retention_days is None else 0
            out.append((ds, effective(raw, rollup)))
        return out

    async def plan(self, tenants: Sequence[str] | None = None) -> list[PurgeGroup]:
        """The series to purge, grouped by limit (groups kept forever left out)."""
        datasets = await self._datasets()
        if not datasets:
            if self.default.forever:
                return []
            if tenants is None:
                return [PurgeGroup(self.default, None)]
        names = list(tenants) if tenants is not None else await self.store.tenants()
        if "" not in names and tenants is None:
            names.append("")
        groups: dict[Limit, tuple[list[int], set[str]]] = {}
        for tenant in names:
            series = await self.history.find_series(tenant)
            if not series:
                continue
            ids = sorted({s.entity_id for s in series})
            limits: dict[str, list[tuple[str, Limit]]] = {}
            for ds, limit in datasets:
                members = await self._members(tenant, ids, ds)
                for eid in members:
                    limits.setdefault(eid, []).append((ds.id, limit))
            for s in series:
                found = limits.get(s.entity_id)
                if found:
                    limit = _longest([lim for _, lim in found])
                    sources = {name for name, _ in found}
                else:
                    limit, sources = self.default, {""}
                keys, names_of = groups.setdefault(limit, ([], set()))
                keys.append(s.key)
                names_of.update(sources)
        return [
            PurgeGroup(limit, keys, ", ".join(sorted(n for n in sources if n)) or "")
            for limit, (keys, sources) in sorted(groups.items())
            if not limit.forever
        ]

    async def _members(self, tenant: str, ids: list[str], ds: Dataset) -> set[str]:
        """Those of `ids` that belong to the data set (its owner's, with one of its types)."""
        readable = Readable(slices=(ds.selection,))
        found: set[str] = set()
        for k in range(0, len(ids), _CHUNK):
            chunk = tuple(ids[k : k + _CHUNK])
            page = await self.store.query(
                tenant, EntityQuery(ids=chunk, limit=len(chunk), readable=readable)
            )
            found.update(doc["id"] for doc in page.docs)
        return found

    async def purge(
        self,
        *,
        tenants: Sequence[str] | None = None,
        dry_run: bool = False,
        now: int | None = None,
    ) -> PurgeReport:
        """Purge what is past its limit (with `dry_run`, only plan it)."""
        now = now_micros() if now is None else now
        report = PurgeReport(groups=await self.plan(tenants))
        if dry_run:
            return report
        for group in report.groups:
            limit = group.limit
            longer = limit.rollup_days > limit.raw_days
            report.instances += await self.history.purge_history(
                now - limit.raw_days * DAY,
                series_keys=group.series,
                keep_rollups=longer,
                batch=self.batch,
            )
            if longer:
                # the raw rows before this cutoff are gone already: only roll-ups go here
                await self.history.purge_history(
                    now - limit.rollup_days * DAY,
                    series_keys=group.series,
                    keep_rollups=False,
                    batch=self.batch,
                )
        return report

    async def purge_exclusive(self, **options: Any) -> PurgeReport:
        """`purge`, unless another process is purging the same database (then skipped)."""
        async with exclusive(self.store, LOCK_NAME) as got:
            if not got:
                return PurgeReport(skipped=True)
            return await self.purge(**options)


class PurgeJob(PeriodicJob):
    """Runs the purge every `interval` seconds in the background (first run at start); a purge
    in progress stops between its transactions when the job stops."""

    def __init__(self, retention: RetentionService, interval: float) -> None:
        self.retention = retention
        super().__init__(self._purge, interval, "history-purge")

    async def _purge(self) -> None:
        report = await self.retention.purge_exclusive()
        if report.instances:
            log.info("history purge: %d instances removed", report.instances)
