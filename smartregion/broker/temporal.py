"""The temporal evolution of entities (NGSI-LD 1.8 §5.6.11–§5.6.16, §5.7.3, §5.7.4).

An entity has ONE identity: its current state (the entity API) and its history (this service)
are two views of it, as in Stellio. Writing a temporal representation (`upsert`,
`add_attributes`) records every instance given in history AND keeps the current entity up to
date — created when new, and each attribute set to its most recent instance when that is newer
than the current one — in one transaction. Every ordinary entity write records its changed
instances too (broker/history.py), so the history of an entity is the same whichever API
wrote it. Deleting a temporal representation deletes the entity and its history.

Reads select entities with an ordinary `EntityQuery` on their current state (type, id,
idPattern, q, geo-query, scopeQ, attrs), then read the selected window of history per series
(storage/history.py pushes the window, the time property and lastN down) and hand back
*temporal documents*: internal entity documents whose `attrs` hold each attribute's instances,
for `core.temporal_rendering`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from smartregion.core.entities import Vocabulary, parse_temporal_entity, validate_entity_id
from smartregion.core.ordering import OrderKey, sort_documents
from smartregion.core.temporal import SCOPE_HISTORY, ContentRange, TemporalQuery, limit_instances
from smartregion.core.temporal_rendering import select_entity
from smartregion.core.times import utc_now
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.governance import WriteAccess
from smartregion.storage.base import Delete, EntityQuery, Put, Readable, Store, WriteOp
from smartregion.storage.history import (
    DropHistory,
    HistoryQuery,
    HistoryStore,
    InstanceRow,
    RecordInstances,
    Series,
    SeriesHistory,
    SeriesSpan,
)
from smartregion.storage.rollups import micros

from .aggregates import Aggregates, aggregate_from_rollups, from_rollups
from .disclosure import Discloser, narrowed, narrowed_query
from .entities import guarded
from .history import scope_instance

__all__ = ["TemporalPage", "TemporalService"]

Doc = dict[str, Any]
Current = dict[str, Doc | None]

#: the most entities an ordered temporal query sorts in memory (as for entity queries)
_MAX_ORDERED = 100_000
#: what a write records itself: the entity-write recorder must not add instances of its own
_RECORDS_NOTHING = RecordInstances(())


@dataclass(slots=True)
class TemporalPage:
    """Temporal documents of a query, and the number of matching entities when asked for."""

    docs: list[Doc]
    count: int | None = None
    #: set when the instance limit cut the answer short (206, §6.3.10)
    cut: ContentRange | None = None
    #: aggregatedValues: the aggregates of the entities (by id) answered from roll-ups
    #: (broker/aggregates.py); their documents list those attributes with no instances. The
    #: others' are aggregated from their documents' instances.
    aggregates: dict[str, Aggregates] = field(default_factory=dict)


def _recording(ops: list[WriteOp], record: RecordInstances) -> list[WriteOp]:
    """`ops` with the history record the stores take out of them in the same transaction
    (storage/history.py; like the subscriptions' `Notify`, not an entity write op)."""
    return [*ops, record]  # type: ignore[list-item]


def _with_scope(
    rows: tuple[InstanceRow, ...], before: Doc | None, after: Doc, now: str
) -> RecordInstances:
    """The history a temporal write records: its instances, and a change of the entity's
    scope as an ordinary write records it (broker/history.py)."""
    scope = scope_instance((before or {}).get("scope"), after.get("scope"), now)
    if scope is None:
        return RecordInstances(rows)
    return RecordInstances((*rows, InstanceRow(after["id"], SCOPE_HISTORY, scope)))


def _latest(instances: list[Doc]) -> Doc:
    """The instance that is current: the most recent observedAt (else the last one given)."""
    best = instances[-1]
    best_time = best.get("observedAt")
    for inst in instances:
        t = inst.get("observedAt")
        if t is not None and (best_time is None or t > best_time):
            best, best_time = inst, t
    return best


def _current_attrs(temporal: Doc) -> dict[str, list[Doc]]:
    """Per attribute, the current instance of each datasetId."""
    out: dict[str, list[Doc]] = {}
    for attr, instances in temporal.get("attrs", {}).items():
        by_ds: dict[Any, list[Doc]] = {}
        for inst in instances:
            by_ds.setdefault(inst.get("datasetId"), []).append(inst)
        current = [_latest(group) for group in by_ds.values()]
        # the default instance first (§4.5.5), as core.mutations keeps it
        current.sort(key=lambda i: i.get("datasetId") is not None)
        out[attr] = current
    return out


def _newer(candidate: Doc, stored: Doc) -> bool:
    new_t, old_t = candidate.get("observedAt"), stored.get("observedAt")
    return new_t is None or old_t is None or new_t >= old_t


class TemporalService:
    """Create, extend, read and delete the temporal representation of entities."""

    def __init__(
        self, writer: Store, history: HistoryStore, reader: Store, *, max_instances: int = 10_000
    ) -> None:
        #: entity writes go through `writer` (notifications, history of ordinary writes)
        self.writer = writer
        self.history = history
        self.reader = reader
        self.discloser = Discloser(reader)
        #: most instances in one answer, all attributes and entities together (§6.3.10)
        self.max_instances = max_instances

    # --- provision -----------------------------------------------------------------------

    async def upsert(
        self, tenant: str, payload: Any, vocab: Vocabulary, *, writer: WriteAccess
    ) -> bool:
        """POST /temporal/entities (§5.6.11): create or add instances; whether it was created."""
        now = utc_now()
        temporal = parse_temporal_entity(payload, vocab, now=now)
        return await self._write(tenant, temporal, now, writer=writer, must_exist=False)

    async def add_attributes(
        self, tenant: str, entity_id: str, payload: Any, vocab: Vocabulary, *, writer: WriteAccess
    ) -> None:
        """POST /temporal/entities/{id}/attrs (§5.6.12): add instances to an existing entity."""
        validate_entity_id(entity_id)
        if isinstance(payload, dict):
            body_id = payload.get("id")
            if body_id is not None and body_id != entity_id:
                raise BadRequestData(f"entity id {body_id} in the body differs from {entity_id}")
            payload = {**payload, "id": entity_id}
        now = utc_now()
        temporal = parse_temporal_entity(payload, vocab, now=now, id_required=False)
        temporal["id"] = entity_id
        if not temporal["attrs"]:
            raise BadRequestData("the fragment holds no attribute")
        await self._write(tenant, temporal, now, writer=writer, must_exist=True)

    async def _write(
        self, tenant: str, temporal: Doc, now: str, *, writer: WriteAccess, must_exist: bool
    ) -> bool:
        entity_id: str = temporal["id"]
        for instances in temporal["attrs"].values():
            for inst in instances:
                inst["createdAt"] = now
                inst["modifiedAt"] = now
        rows = tuple(
            InstanceRow(entity_id, attr, inst)
            for attr, instances in temporal["attrs"].items()
            for inst in instances
        )
        current_attrs = _current_attrs(temporal)

        def mutate(current: Current) -> tuple[list[WriteOp], bool]:
            existing = current.get(entity_id)
            if existing is None:
                if must_exist:
                    raise ResourceNotFound(f"entity {entity_id} not found")
                if "type" not in temporal:
                    raise BadRequestData("Entity type is missing")
                doc: Doc = {"id": entity_id, "type": temporal["type"]}
                if "scope" in temporal:
                    doc["scope"] = temporal["scope"]
                doc.update(createdAt=now, modifiedAt=now, attrs=current_attrs)
                return _recording([Put(doc)], _with_scope(rows, None, doc, now)), True
            doc = {**existing, "attrs": dict(existing.get("attrs") or {}), "modifiedAt": now}
            if "type" in temporal:
                types = list(existing.get("type") or [])
                doc["type"] = types + [t for t in temporal["type"] if t not in types]
            if "scope" in temporal:
                doc["scope"] = temporal["scope"]
            for attr, instances in current_attrs.items():
                stored = {i.get("datasetId"): i for i in doc["attrs"].get(attr, [])}
                for inst in instances:
                    old = stored.get(inst.get("datasetId"))
                    if old is None or _newer(inst, old):
                        stored[inst.get("datasetId")] = inst
                merged = list(stored.values())
                merged.sort(key=lambda i: i.get("datasetId") is not None)
                doc["attrs"][attr] = merged
            return _recording([Put(doc)], _with_scope(rows, existing, doc, now)), False

        run, check = guarded(writer, mutate)
        owner = writer.owner_of_new(temporal) if "type" in temporal else writer.org_id
        created: bool = await self.writer.transact(
            tenant, [entity_id], run, owner=owner, check_owners=check
        )
        return created

    async def delete(self, tenant: str, entity_id: str, *, writer: WriteAccess) -> None:
        """DELETE /temporal/entities/{id} (§5.6.16): the entity and all its history."""
        validate_entity_id(entity_id)
        # history without its entity (it was deleted by the ordinary API) is deleted too
        had_history = bool(await self.history.find_series(tenant, [entity_id]))

        def mutate(current: Current) -> tuple[list[WriteOp], bool]:
            if current.get(entity_id) is None and not had_history:
                return [], False
            # the entity and its whole history in one transaction: no deletion instances
            ops: list[WriteOp] = [Delete(entity_id)] if current.get(entity_id) else []
            return [*_recording(ops, _RECORDS_NOTHING), DropHistory(entity_id)], True  # type: ignore[list-item]

        run, check = guarded(writer, mutate)
        if not await self.writer.transact(
            tenant, [entity_id], run, owner=writer.org_id, check_owners=check
        ):
            raise ResourceNotFound(f"entity {entity_id} not found")

    async def delete_attribute(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        *,
        dataset_id: str | None,
        delete_all: bool,
        writer: WriteAccess,
    ) -> None:
        """DELETE /temporal/entities/{id}/attrs/{attr} (§5.6.13): the attribute's history (the
        default instance's, one datasetId's, or with deleteAll every one) and the attribute."""
        validate_entity_id(entity_id)

        def mutate(current: Current) -> tuple[list[WriteOp], None]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            instances = (existing.get("attrs") or {}).get(attr)
            if instances is None:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {attr}")
            kept = [] if delete_all else [i for i in instances if i.get("datasetId") != dataset_id]
            if len(kept) == len(instances):
                which = "default instance" if dataset_id is None else f"datasetId {dataset_id}"
                raise ResourceNotFound(f"attribute {attr} has no {which}")
            attrs = dict(existing["attrs"])
            if kept:
                attrs[attr] = kept
            else:
                del attrs[attr]
            doc = {**existing, "attrs": attrs, "modifiedAt": utc_now()}
            # the attribute and its history in one transaction
            drop = DropHistory(entity_id, attr, None if delete_all else (dataset_id or ""))
            return [*_recording([Put(doc)], _RECORDS_NOTHING), drop], None  # type: ignore[list-item]

        run, check = guarded(writer, mutate)
        await self.writer.transact(
            tenant, [entity_id], run, owner=writer.org_id, check_owners=check
        )

    async def _check_writable(self, tenant: str, entity_id: str, writer: WriteAccess) -> None:
        """ResourceNotFound for an unknown entity, Forbidden for one `writer` may not change."""

        def mutate(current: Current) -> tuple[list[WriteOp], None]:
            if current.get(entity_id) is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            return [], None

        run, check = guarded(writer, mutate)
        await self.writer.transact(
            tenant, [entity_id], run, owner=writer.org_id, check_owners=check
        )

    async def delete_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, *, writer: WriteAccess
    ) -> None:
        """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId} (§5.6.15)."""
        validate_entity_id(entity_id)
        await self._check_writable(tenant, entity_id, writer)
        if not await self.history.delete_instance(tenant, entity_id, attr, instance_id):
            raise ResourceNotFound(f"attribute {attr} of {entity_id} has no instance {instance_id}")

    async def modify_instance(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        instance_id: str,
        payload: Any,
        vocab: Vocabulary,
        *,
        writer: WriteAccess,
    ) -> None:
        """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId} (§5.6.14)."""
        validate_entity_id(entity_id)
        if not isinstance(payload, dict):
            raise BadRequestData("the body must be a JSON object holding the attribute")
        now = utc_now()
        fragment = parse_temporal_entity(
            {**payload, "id": entity_id}, vocab, now=now, id_required=False
        )
        instances = fragment["attrs"].get(attr)
        if instances is None or len(fragment["attrs"]) != 1 or len(instances) != 1:
            raise BadRequestData(f"the body must hold exactly one instance of attribute {attr}")
        await self._check_writable(tenant, entity_id, writer)
        found = await self.history.query_instances(
            tenant, HistoryQuery(entity_ids=(entity_id,), attrs=frozenset({attr}))
        )
        old = next(
            (i.doc for h in found for i in h.instances if i.instance_id == instance_id), None
        )
        if old is None:
            raise ResourceNotFound(f"attribute {attr} of {entity_id} has no instance {instance_id}")
        new = dict(instances[0])
        new["createdAt"] = old.get("createdAt", now)
        new["modifiedAt"] = now
        if "datasetId" in old:
            new["datasetId"] = old["datasetId"]
        if await self.history.replace_instance(tenant, entity_id, attr, instance_id, new) is None:
            raise ResourceNotFound(f"attribute {attr} of {entity_id} has no instance {instance_id}")

    # --- consumption ---------------------------------------------------------------------

    def _history_query(
        self, ids: tuple[str, ...], query: TemporalQuery, attrs: frozenset[str] | None
    ) -> HistoryQuery:
        window = query.timeproperty != "deletedAt"  # deletedAt: selected in Python
        lower, upper = query.lower, query.upper
        return HistoryQuery(
            entity_ids=ids,
            attrs=attrs,
            start=micros(lower) if window and lower is not None else None,
            end=micros(upper) if window and upper is not None else None,
            timeproperty=query.timeproperty if window else "observedAt",
            last_n=query.last_n if window else None,
        )

    async def retrieve(
        self,
        tenant: str,
        entity_id: str,
        query: TemporalQuery,
        attrs: frozenset[str] | None,
        *,
        readable: Readable | None,
        dataset_ids: frozenset[str] | None = None,
        keeps: Callable[[str], bool] | None = None,
    ) -> TemporalPage:
        """GET /temporal/entities/{id} (§5.7.3): one temporal document; 404 if unknown or not
        readable (the same filtered query as every entity read). `keeps`: the attributes the
        answer renders (its projection), which an aggregation's periods start from."""
        validate_entity_id(entity_id)
        readable = _narrowed(readable, query)
        found = await self.reader.query(
            tenant, EntityQuery(ids=(entity_id,), limit=1, readable=readable)
        )
        if not found.docs:
            raise ResourceNotFound(f"entity {entity_id} not found")
        docs, aggregates = await self._documents(
            tenant, found.docs, query, attrs, dataset_ids, keeps
        )
        docs = await self.discloser.documents(tenant, docs, readable, temporal=True)
        if not docs:
            raise ResourceNotFound(f"entity {entity_id} not found")
        cut_docs, cut = limit_instances(docs, query, self.max_instances)
        return TemporalPage(cut_docs, cut=cut, aggregates=aggregates)

    async def query(
        self,
        tenant: str,
        selection: EntityQuery,
        query: TemporalQuery,
        attrs: frozenset[str] | None,
        *,
        readable: Readable | None,
        order: list[OrderKey] | None = None,
        dataset_ids: frozenset[str] | None = None,
        keeps: Callable[[str], bool] | None = None,
    ) -> TemporalPage:
        """GET /temporal/entities (§5.7.4): the entities selected (among those the caller may
        read), in `order` when given, with their history."""
        # `attrs` selects entities having one of them, as for entity queries (§5.7.4.4)
        selection = narrowed_query(replace(selection, attrs=attrs, readable=readable))
        selection = replace(selection, readable=_narrowed(selection.readable, query))
        if order:
            # sorting shows the order of stored values: not by what the reader does not see
            selection = replace(
                selection,
                readable=narrowed(
                    selection.readable,
                    tested=frozenset(k.attr for k in order if k.attr is not None),
                    times=any(
                        k.member in ("createdAt", "modifiedAt")
                        or k.sub in ("createdAt", "modifiedAt", "observedAt")
                        for k in order
                    ),
                ),
            )
            everything = await self.reader.query(
                tenant, replace(selection, limit=_MAX_ORDERED, offset=0, count=False)
            )
            ordered = sort_documents(everything.docs, order)
            entities = ordered[selection.offset : selection.offset + selection.limit]
            count = len(ordered) if selection.count else None
        else:
            result = await self.reader.query(tenant, selection)
            entities, count = result.docs, result.count
        docs, aggregates = await self._documents(tenant, entities, query, attrs, dataset_ids, keeps)
        docs = await self.discloser.documents(tenant, docs, selection.readable, temporal=True)
        # an entity none of whose requested attributes has an instance in the window is left
        # out of the answer (suite TP 020_04)
        if attrs is not None or dataset_ids is not None or query.timerel is not None:
            docs = [d for d in docs if d["attrs"]]
        cut_docs, cut = limit_instances(docs, query, self.max_instances)
        return TemporalPage(cut_docs, count, cut, aggregates)

    async def _documents(
        self,
        tenant: str,
        entities: list[Doc],
        query: TemporalQuery,
        attrs: frozenset[str] | None,
        dataset_ids: frozenset[str] | None,
        keeps: Callable[[str], bool] | None,
    ) -> tuple[list[Doc], dict[str, Aggregates]]:
        """The temporal documents of `entities`, and the aggregates of those answered from
        roll-ups (aggregatedValues, broker/aggregates.py)."""
        if not entities:
            return [], {}
        ids = tuple(d["id"] for d in entities)
        present: dict[str, list[str]] = {}
        aggregates: dict[str, Aggregates] = {}
        if from_rollups(query):
            aggregates, present = await self._aggregate(
                tenant, ids, query, attrs, dataset_ids, keeps
            )
        by_entity: dict[str, dict[str, list[Doc]]] = {}
        raw_ids = tuple(i for i in ids if i not in aggregates)
        if raw_ids:
            wanted = replace(self._history_query(raw_ids, query, attrs), dataset_ids=dataset_ids)
            for h in await self.history.query_instances(tenant, wanted):
                _collect(by_entity, h)
        out = []
        for entity in entities:
            head = {k: v for k, v in entity.items() if k != "attrs"}
            if entity["id"] in aggregates:
                # the attributes with instances in the window, none of them read
                out.append({**head, "attrs": {a: [] for a in present.get(entity["id"], [])}})
                continue
            temporal = {**head, "attrs": by_entity.get(entity["id"], {})}
            out.append(select_entity(temporal, query))
        return out, aggregates

    async def _aggregate(
        self,
        tenant: str,
        ids: tuple[str, ...],
        query: TemporalQuery,
        attrs: frozenset[str] | None,
        dataset_ids: frozenset[str] | None,
        keeps: Callable[[str], bool] | None,
    ) -> tuple[dict[str, Aggregates], dict[str, list[str]]]:
        """The aggregates of the entities whose kept series are plain in the window (by id),
        and per entity the attributes having instances there."""
        found_series = await self.history.find_series(
            tenant,
            ids,
            sorted(attrs) if attrs is not None else None,
            sorted(dataset_ids) if dataset_ids is not None else None,
        )
        # the scope's history is not aggregated (core.temporal_rendering)
        series = [s for s in found_series if s.attr != SCOPE_HISTORY]
        lower, upper = query.lower, query.upper
        spans = await self.history.series_spans(
            [s.key for s in series],
            micros(lower) if lower is not None else None,
            micros(upper) if upper is not None else None,
        )
        by_entity: dict[str, list[tuple[Series, SeriesSpan]]] = {}
        for s, span in zip(series, spans, strict=True):
            by_entity.setdefault(s.entity_id, []).append((s, span))
        aggregates: dict[str, Aggregates] = {}
        present: dict[str, list[str]] = {}
        for entity_id in ids:
            found = by_entity.get(entity_id, [])
            kept = [(s, span) for s, span in found if keeps is None or keeps(s.attr)]
            if not all(span.plain for _, span in found):
                continue  # the raw path decides what non-numbers and untimed instances mean
            present[entity_id] = sorted({s.attr for s, span in found if span.first is not None})
            aggregates[entity_id] = await aggregate_from_rollups(
                self.history, [s for s, _ in kept], [span for _, span in kept], query
            )
        return aggregates, present


def _narrowed(readable: Readable | None, query: TemporalQuery) -> Readable | None:
    """What a temporal query may read of `readable`: not the data sets whose time grid its
    window does not fall on, nor those it would aggregate over a view of (broker/disclosure.py)."""
    if readable is None or readable.disclosure is None:
        return readable
    bounds = [b.timestamp() for b in (query.lower, query.upper) if b is not None]
    aggregate = query.format == "aggregatedValues" or bool(query.aggr_methods)
    return narrowed(readable, bounds=bounds, aggregate=aggregate)


def _collect(by_entity: dict[str, dict[str, list[Doc]]], h: SeriesHistory) -> None:
    attrs = by_entity.setdefault(h.series.entity_id, {})
    attrs.setdefault(h.series.attr, []).extend(i.doc for i in h.instances)
