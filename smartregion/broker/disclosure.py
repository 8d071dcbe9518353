"""Applying a reader's `Disclosure` (core/privacy.py) to what the broker reads for it.

Every read path that returns entities or their history passes its documents through
`Discloser.documents` (or `instances`): when the reader's `Readable` carries no disclosure —
the owner, the operator, readers of open data sets without privacy rules — this returns at
once and costs nothing; otherwise it looks up the owners of the documents (one indexed
statement), shows each document as its most permissive admitting rule allows, and records one
audit event per read of other organisations' non-open data (docs/security.md).

Queries are narrowed first (`narrowed`): a query that tests what a reader does not see in some
data set selects nothing of that data set, so that repeated queries cannot recover a withheld
value, a suppressed count, an exact time or an exact place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from smartregion.core.privacy import (
    disclose_document,
    disclose_temporal,
)
from smartregion.core.qlang import references
from smartregion.storage.base import EntityQuery, Readable, Store

Doc = dict[str, Any]


@dataclass(slots=True)
class Shown:
    """Documents as a reader sees them, and what reading them must audit."""

    docs: list[Doc]
    #: non-open data sets of other organisations the documents were read through
    audited: frozenset[str] = frozenset()
    #: how many of the documents came through them
    audited_entities: int = 0


def narrowed(
    readable: Readable | None,
    *,
    tested: frozenset[str] = frozenset(),
    present: frozenset[str] = frozenset(),
    times: bool = False,
    bounds: Sequence[float] = (),
    geo: bool = False,
    aggregate: bool = False,
) -> Readable | None:
    """`readable` without the data sets in which the query would test what the reader does
    not see (`Disclosure.withheld`)."""
    disclosure = readable.disclosure if readable is not None else None
    if readable is None or disclosure is None:
        return readable
    drop = disclosure.withheld(
        tested, present=present, times=times, bounds=bounds, geo=geo, aggregate=aggregate
    )
    if not drop:
        return readable
    gone = set(drop)
    return replace(readable, slices=tuple(s for s in readable.slices if s not in gone))


def narrowed_query(query: EntityQuery) -> EntityQuery:
    """An entity query narrowed by what its q, geo-query and `attrs` test."""
    readable = query.readable
    if readable is None or readable.disclosure is None:
        return query
    tested: frozenset[str] = frozenset()
    times = False
    if query.q is not None:
        tested, times = references(query.q)
    geo = query.geo is not None
    if geo and query.geo is not None:
        tested = tested | {query.geo.geoproperty}
    present = query.attrs or frozenset()
    return replace(
        query, readable=narrowed(readable, tested=tested, present=present, times=times, geo=geo)
    )


class Discloser:
    """Shows documents and histories the way each reader may see them (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def shown(
        self, tenant: str, docs: list[Doc], readable: Readable | None, *, temporal: bool = False
    ) -> Shown:
        """The documents (`temporal`: temporal documents) as the reader sees them; nothing
        audited yet (see `audit`)."""
        disclosure = readable.disclosure if readable is not None else None
        if disclosure is None or not docs:
            return Shown(docs)
        owners = await self.store.owners_of(tenant, [doc["id"] for doc in docs])
        out: list[Doc] = []
        audited: set[str] = set()
        count = 0
        for doc in docs:
            owner = owners.get(doc["id"])
            if owner is None:  # deleted meanwhile: show nothing of it rather than guess
                continue
            view = disclosure.view(owner, doc.get("type") or [], doc.get("scope"))
            if view.audited:
                audited.update(view.audited)
                count += 1
            if not view.privacy.transforms(view.access):
                out.append(doc)
            elif temporal:
                out.append(disclose_temporal(doc, view.access, view.privacy))
            else:
                out.append(disclose_document(doc, view.access, view.privacy))
        return Shown(out, frozenset(audited), count)

    async def audit(self, shown: Shown, readable: Readable | None) -> None:
        """Record the read of other organisations' non-open data, if any."""
        disclosure = readable.disclosure if readable is not None else None
        if disclosure is not None and disclosure.audit is not None and shown.audited:
            await disclosure.audit(sorted(shown.audited), shown.audited_entities)

    async def documents(
        self, tenant: str, docs: list[Doc], readable: Readable | None, *, temporal: bool = False
    ) -> list[Doc]:
        """The documents as the reader sees them, the read audited."""
        shown = await self.shown(tenant, docs, readable, temporal=temporal)
        await self.audit(shown, readable)
        return shown.docs
