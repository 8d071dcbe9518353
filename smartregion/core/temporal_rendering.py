"""Render the temporal evolution of an entity (ETSI GS CIM 009 V1.8 §4.5.7 - §4.5.9, §4.5.19).

Input is a **temporal document**: an internal entity document (`docs/architecture.md`) whose
`attrs` hold, per expanded attribute IRI, the attribute's *history* — its instances, each with
`instanceId`, `createdAt`, `modifiedAt`, maybe `observedAt`/`deletedAt` (a deletion is an
instance whose value is the NGSI-LD Null with `deletedAt`, §4.5.7). The entity's scope history,
when a store keeps one, is the pseudo-attribute `"scope"` (instances of type Property whose
value is the list of scopes; suite 020_19/020_20; `core.temporal.SCOPE_HISTORY`). The scope is
not aggregated: the aggregated representation leaves it out.

Three representations, compacted with the request's `Vocabulary` like `core.rendering`:

* normalized (§4.5.7): each attribute is an **array** of instances, even of one (the ETSI suite
  compares arrays, 020_04_02). Each instance is rendered as in `core.rendering` (sub-attributes
  compacted, createdAt/modifiedAt only with sysAttrs) and always keeps `instanceId`, the
  query's `timeproperty` and `deletedAt`.
* temporalValues (§4.5.9): `{"type": kind, member: [[value, time], …]}` with member `values`
  (Property, GeoProperty), `objects` (Relationship), `languageMaps` (`{"languageMap": …}`),
  `jsons` (`{"json": …}`), `vocabs` (`{"vocab": …}`), `valueLists`, `objectLists`; the time is
  the instance's `timeproperty`, verbatim.
* aggregatedValues (§4.5.19): `{"type": kind, method: [[value, start, end], …], …}`.

Attributes with several datasetIds: temporalValues and aggregatedValues give an array of such
objects, one per datasetId, each carrying its `datasetId` (the spec only describes the default
instance). Attributes left without instances are omitted (suite 020_04_01).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from smartregion.core.aggregation import (
    AggregateRows,
    PeriodGrid,
    Sample,
    WrittenRows,
    aggregate_samples,
)
from smartregion.core.durations import format_instant
from smartregion.core.entities import NULL, VALUE_MEMBER, Vocabulary
from smartregion.core.rendering import RenderOptions, choose_language, render_attribute
from smartregion.core.temporal import (
    SCOPE_HISTORY,
    TemporalQuery,
    instance_time,
    select_instances,
)

__all__ = [
    "SIMPLIFIED_MEMBERS",
    "EntityAggregates",
    "aggregate_entity",
    "render_aggregated_entity",
    "render_temporal_entity",
    "select_entity",
]

#: attribute IRI -> [(attribute kind, datasetId, rows)]: one entity's aggregates, computed from
#: its instances (`aggregate_entity`) or read from roll-ups already written (broker/aggregates.py)
EntityAggregates = dict[str, list[tuple[str, str | None, AggregateRows | WrittenRows]]]

#: attribute kind -> the member of the simplified temporal representation (§4.5.9)
SIMPLIFIED_MEMBERS = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "JsonProperty": "jsons",
    "VocabProperty": "vocabs",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}
_DEFAULT_OPTIONS = RenderOptions()


def _name(iri: str, vocab: Vocabulary) -> str:
    return iri if iri == SCOPE_HISTORY else vocab.compact_iri(iri)


def _head(doc: Mapping[str, Any], vocab: Vocabulary, opts: RenderOptions) -> dict[str, Any]:
    """id and type (§4.5.7), honouring pick/omit of the core members."""
    out: dict[str, Any] = {}
    if opts.keeps("id"):
        out["id"] = doc["id"]
    if opts.keeps("type"):
        names = [vocab.compact_iri(t) for t in doc["type"]]
        out["type"] = names[0] if len(names) == 1 else names
    if opts.sys_attrs:
        for key in ("createdAt", "modifiedAt", "deletedAt"):
            if key in doc:
                out[key] = doc[key]
    return out


def _kept(doc: Mapping[str, Any], opts: RenderOptions) -> list[tuple[str, list[dict[str, Any]]]]:
    """The (attribute IRI, instances) pairs the projection and datasetId filter keep."""
    wanted = None
    if opts.dataset_id is not None:
        wanted = {d.strip() for d in opts.dataset_id.split(",") if d.strip()}
    kept = []
    for iri, instances in doc.get("attrs", {}).items():
        if not opts.keeps(iri):
            continue
        if wanted is not None:
            instances = [i for i in instances if i.get("datasetId", "@none") in wanted]
            if not instances:
                continue
        # an attribute the instance limit emptied stays, as an empty array (§6.3.10)
        kept.append((iri, instances))
    return kept


def select_entity(doc: Mapping[str, Any], query: TemporalQuery) -> dict[str, Any]:
    """A copy of a temporal document keeping the instances the query selects (per attribute).

    `lastN` applies per attribute and datasetId (an instance series each); attributes left
    without instances are dropped.
    """
    attrs: dict[str, list[dict[str, Any]]] = {}
    for iri, instances in doc.get("attrs", {}).items():
        by_dataset: dict[str, list[dict[str, Any]]] = {}
        for inst in instances:
            by_dataset.setdefault(inst.get("datasetId", "@none"), []).append(inst)
        selected = [i for group in by_dataset.values() for i in select_instances(group, query)]
        if selected:
            attrs[iri] = selected
    return {**doc, "attrs": attrs}


# --------------------------------------------------------------------------------------------
# normalized and simplified


def _normalized_instance(
    iri: str,
    inst: dict[str, Any],
    vocab: Vocabulary,
    opts: RenderOptions,
    timeproperty: str,
) -> dict[str, Any]:
    body: dict[str, Any] = render_attribute(iri, [inst], vocab, opts)
    # the time the query is about, and a deletion's time, belong to the instance (§4.5.7)
    for key in (timeproperty, "deletedAt"):
        if key in inst and key not in body:
            body[key] = inst[key]
    return body


def _simplified_value(inst: dict[str, Any], vocab: Vocabulary, opts: RenderOptions) -> Any:
    kind = inst.get("type", "Property")
    if kind == "LanguageProperty":
        return {"languageMap": inst.get("languageMap")}
    if kind == "JsonProperty":
        return {"json": inst.get("json")}
    if kind == "VocabProperty":
        vocabs = inst.get("vocab")
        if isinstance(vocabs, list):
            return {"vocab": [vocab.compact_value(v) for v in vocabs]}
        return {"vocab": vocab.compact_value(vocabs) if isinstance(vocabs, str) else vocabs}
    return inst.get(VALUE_MEMBER.get(kind, "value"))


def _simplified_series(
    instances: list[dict[str, Any]], vocab: Vocabulary, opts: RenderOptions, timeproperty: str
) -> dict[str, Any]:
    """One datasetId's instances as `{"type": kind, member: [[value, time], …]}` (§4.5.9)."""
    first_kind = instances[0].get("type", "Property")
    out: dict[str, Any] = {}
    for inst in instances:
        kind = inst.get("type", "Property")
        time = inst.get(timeproperty)
        if kind == "LanguageProperty" and opts.lang is not None and "languageMap" in inst:
            # §4.15: with a language filter a LanguageProperty reads as a Property
            kind = "Property"
            value: Any = choose_language(inst["languageMap"], opts.lang)[1]
        else:
            value = _simplified_value(inst, vocab, opts)
        out.setdefault(
            "type",
            "Property"
            if first_kind == "LanguageProperty" and opts.lang is not None
            else first_kind,
        )
        out.setdefault(SIMPLIFIED_MEMBERS.get(kind, "values"), []).append([value, time])
    if "datasetId" in instances[0]:
        out["datasetId"] = instances[0]["datasetId"]
    return out


def _by_dataset(instances: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for inst in instances:
        groups.setdefault(inst.get("datasetId", "@none"), []).append(inst)
    # the default instance first, then the datasets in the order they appear
    return sorted(groups.values(), key=lambda g: "datasetId" in g[0])


def render_temporal_entity(
    doc: Mapping[str, Any],
    vocab: Vocabulary,
    query: TemporalQuery,
    opts: RenderOptions | None = None,
) -> dict[str, Any]:
    """Render a temporal document (instances already selected) as normalized or temporalValues.

    `opts` carries the projection (attrs, pick/omit, datasetId) and `lang`; its `sys_attrs`
    is overridden by the query's.
    """
    opts = replace(opts or _DEFAULT_OPTIONS, format="normalized", sys_attrs=query.sys_attrs)
    out = _head(doc, vocab, opts)
    for iri, instances in _kept(doc, opts):
        name = _name(iri, vocab)
        if query.format == "temporalValues":
            series = [
                _simplified_series(group, vocab, opts, query.timeproperty)
                for group in _by_dataset(instances)
            ]
            if not series:
                # emptied by the instance limit (§6.3.10): the shape, with no values
                series = [{"type": "Property", "values": []}]
            out[name] = series[0] if len(series) == 1 else series
        else:
            out[name] = [
                _normalized_instance(iri, inst, vocab, opts, query.timeproperty)
                for inst in instances
            ]
    return out


# --------------------------------------------------------------------------------------------
# aggregated


def _is_deletion(inst: Mapping[str, Any]) -> bool:
    kind = inst.get("type", "Property")
    return "deletedAt" in inst or inst.get(VALUE_MEMBER.get(kind, "value")) == NULL


def _aggregand(inst: Mapping[str, Any]) -> Any:
    """The value an aggregation method sees: the kind's value member (§4.5.19.1)."""
    kind = inst.get("type", "Property")
    return inst.get(VALUE_MEMBER.get(kind, "value"))


def aggregate_entity(
    doc: Mapping[str, Any],
    vocab: Vocabulary,
    query: TemporalQuery,
    opts: RenderOptions | None = None,
) -> EntityAggregates:
    """Aggregate a temporal document's selected instances from raw values (§4.5.19).

    Returns `attribute IRI -> [(kind, datasetId, rows)]`. Deletions are not values and are
    left out. Periods start at `timeAt`, else at the earliest selected instance of the
    entity's kept attributes (suite 020_11), so every attribute of an entity shares one grid.
    """
    opts = opts or _DEFAULT_OPTIONS
    kept = [(iri, instances) for iri, instances in _kept(doc, opts) if iri != SCOPE_HISTORY]
    times = [
        t
        for _, instances in kept
        for inst in instances
        if (t := instance_time(inst, query.timeproperty)) is not None
    ]
    result: EntityAggregates = {}
    if not times:
        return result
    grid = PeriodGrid.for_window(
        query.aggr_period,
        time_at=query.time_at,
        lower=query.lower,
        upper=query.upper,
        first=min(times),
        last=max(times),
    )
    for iri, instances in kept:
        entries: list[tuple[str, str | None, AggregateRows | WrittenRows]] = []
        for group in _by_dataset(instances):
            samples = []
            for inst in group:
                at = instance_time(inst, query.timeproperty)
                if at is not None and not _is_deletion(inst):
                    samples.append(Sample(at, _aggregand(inst)))
            if not samples:
                continue
            kind = group[0].get("type", "Property")
            rows = aggregate_samples(
                samples,
                query.aggr_methods,
                grid,
                what=f"attribute {_name(iri, vocab)}",
                relationship=kind in ("Relationship", "ListRelationship"),
            )
            entries.append((kind, group[0].get("datasetId"), rows))
        if entries:
            result[iri] = entries
    return result


def _rows_json(
    rows: list[tuple[Any, datetime, datetime]] | list[tuple[Any, str, str]], texts: dict[int, str]
) -> list[list[Any]] | list[tuple[Any, str, str]]:
    """The JSON form of one method's rows: bounds written (roll-up rows come written)."""
    if rows and isinstance(rows[0][1], str):
        return rows  # written already (`WrittenRows`): orjson writes each tuple as an array
    timed = cast(list[tuple[Any, datetime, datetime]], rows)
    # every bound is written once: periods share the bound objects, and so do the methods —
    # keyed by identity (an aware datetime's hash asks its tzinfo for the offset every time);
    # the rows keep every bound alive while `texts` is in use, so no id is reused meanwhile
    get = texts.get

    def text(moment: datetime) -> str:
        written = texts[id(moment)] = format_instant(moment)
        return written

    return [[v, get(id(s)) or text(s), get(id(e)) or text(e)] for v, s, e in timed]


def render_aggregated_entity(
    doc: Mapping[str, Any],
    aggregates: EntityAggregates,
    vocab: Vocabulary,
    opts: RenderOptions | None = None,
) -> dict[str, Any]:
    """Render aggregates (from `aggregate_entity` or a store's buckets) per §4.5.19.

    Each attribute becomes `{"type": kind, "<method>": [[value, start, end], …], …}`, the
    period bounds written as short as exact (`2020-08-01T12:03:00Z`).
    """
    opts = opts or _DEFAULT_OPTIONS
    out = _head(doc, vocab, replace(opts, sys_attrs=False))
    texts: dict[int, str] = {}
    for iri, entries in aggregates.items():
        if not opts.keeps(iri):
            continue
        bodies = []
        for kind, dataset_id, rows in entries:
            body: dict[str, Any] = {"type": kind}
            if dataset_id is not None:
                body["datasetId"] = dataset_id
            for method, method_rows in rows.items():
                body[method] = _rows_json(method_rows, texts)
            bodies.append(body)
        if bodies:
            out[_name(iri, vocab)] = bodies[0] if len(bodies) == 1 else bodies
    return out
