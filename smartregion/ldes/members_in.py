"""Members of a replicated stream, mapped into entities and attribute history.

A member is the object of `<stream> tree:member`; what describes it is every triple reachable
from it in the page (its named graph, if the page has one of that name, is merged in) — blank
nodes and the other resources the page describes (a feature of interest's type, a result node).

How a member becomes an entity change (`Contribution`):

- **SOSA observation** (`a sosa:Observation`, or `sosa:observedProperty` with a result): the
  entity is its `sosa:hasFeatureOfInterest` — the thing observed, which is what NGSI-LD models as
  an entity (a sensor is a device entity of its own); without one, its `sosa:madeBySensor`. The
  attribute is the local name of `sosa:observedProperty`, expanded with the NGSI-LD default
  context (`airTemperature` -> `https://uri.etsi.org/ngsi-ld/default-context/airTemperature`); the
  value is `sosa:hasSimpleResult`, or the result node's `qudt:numericValue` (also `qudt:value`,
  `rdf:value`) with `qudt:unit` as unitCode (UN/CEFACT code for the common QUDT units, else a
  `qudt:unit` Relationship sub-attribute); `observedAt` is `sosa:resultTime` (else
  `sosa:phenomenonTime`, else the stream's `ldes:timestampPath` value). A GeoSPARQL WKT geometry
  of the observation or of its feature of interest becomes `location`.
- **Version** (the stream's `ldes:versionOfPath`, else `dct:isVersionOf`): an upsert of the
  versioned entity with the version's properties, each observed at the version's
  `ldes:timestampPath` time. Types are the version's `rdf:type`s.
- **Any other member**: an upsert of the member itself, the same way.

Properties of a version or resource: a node typed as an NGSI-LD attribute (`ngsi-ld:Property`,
`Relationship`, `GeoProperty`, ... — what NGSI-LD JSON-LD with the core @context expands to) maps
back to that attribute (value, object, observedAt, unitCode, datasetId, sub-attributes); a
literal to a Property (numbers, booleans as such; language-tagged strings to a
LanguageProperty; `geo:wktLiteral` and `rdf:JSON` to a GeoProperty / JsonProperty); an IRI to a
Relationship; several values to a list value; any other blank node to a JsonProperty of its
description (predicate IRI -> values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyoxigraph as ox
import shapely
import shapely.wkt
from shapely.errors import ShapelyError
from shapely.geometry import mapping

from smartregion.core.entities import Vocabulary
from smartregion.core.vocabulary import DCT, GEO, LDES, NGSI_LD, PROV, QUDT, RDF, SOSA, TREE, XSD
from smartregion.errors import SmartRegionError
from smartregion.storage.rollups import micros

__all__ = [
    "LOCATION",
    "Contribution",
    "MemberRejected",
    "PageGraph",
    "StreamInfo",
    "local_name",
    "map_member",
]

LOCATION = NGSI_LD + "location"
GEOJSON = "https://purl.org/geojson/vocab#"
_TYPE = RDF + "type"
_RDF_JSON = RDF + "JSON"
_LANG_STRING = RDF + "langString"
_WKT = GEO + "wktLiteral"
_INTEGERS = frozenset(
    XSD + t
    for t in (
        "integer",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
    )
)
_FLOATS = frozenset(XSD + t for t in ("decimal", "double", "float"))
_EXACT = 2**53
#: NGSI-LD attribute node types (what the core @context's `type` values expand to)
_ATTRIBUTE_KINDS = {
    NGSI_LD + kind: kind
    for kind in (
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "JsonProperty",
        "VocabProperty",
        "ListProperty",
        "ListRelationship",
    )
}
#: predicates of an attribute node that are its members, not sub-attributes
_ATTRIBUTE_MEMBERS = frozenset(
    NGSI_LD + n
    for n in (
        "hasValue",
        "hasObject",
        "hasLanguageMap",
        "hasJSON",
        "hasVocab",
        "hasValueList",
        "hasObjectList",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "instanceId",
        "objectType",
    )
) | {_TYPE}
#: predicates of a member that describe the member as an event, not the entity
_EVENT_PREDICATES = frozenset({_TYPE, DCT + "isVersionOf", PROV + "generatedAtTime"})
_SKIPPED_TYPES = frozenset({SOSA + "Observation", LDES + "EventStream", TREE + "Node"})
#: common QUDT units and their UN/CEFACT common codes (what NGSI-LD unitCode holds)
_UNIT_CODES = {
    "DEG_C": "CEL",
    "K": "KEL",
    "DEG_F": "FAH",
    "PERCENT": "P1",
    "M": "MTR",
    "KiloM": "KMT",
    "CentiM": "CMT",
    "MilliM": "MMT",
    "M-PER-SEC": "MTS",
    "KiloM-PER-HR": "KMH",
    "PA": "PAL",
    "HectoPA": "A97",
    "KiloPA": "KPA",
    "BAR": "BAR",
    "MilliBAR": "MBR",
    "MicroGM-PER-M3": "GQ",
    "MilliGM-PER-M3": "GP",
    "PPM": "59",
    "PPB": "61",
    "DeciB": "2N",
    "DeciB_A": "2N",
    "LUX": "LUX",
    "W": "WTT",
    "KiloW": "KWT",
    "W-PER-M2": "D54",
    "V": "VLT",
    "A": "AMP",
    "L": "LTR",
    "M3": "MTQ",
    "M3-PER-HR": "MQH",
    "DEG": "DD",
    "HR": "HUR",
    "SEC": "SEC",
    "MIN": "MIN",
    "KiloW-HR": "KWH",
    "MilliM-PER-HR": "H67",
    "GM": "GRM",
    "KiloGM": "KGM",
    "UNITLESS": "C62",
    "NUM": "C62",
}


class MemberRejected(ValueError):
    """A member this client cannot map into an entity; says why."""


@dataclass(slots=True)
class StreamInfo:
    """What the event stream says about its members (LDES §3)."""

    iri: str
    timestamp_path: str | None = None
    version_of_path: str | None = None


@dataclass(slots=True)
class Contribution:
    """One member's change of one entity: normalized NGSI-LD with expanded names."""

    member: str
    entity_id: str
    #: the entity types the member states (may be empty: the caller decides)
    types: list[str]
    #: expanded attribute IRI -> one normalized attribute (or a list of them)
    attrs: dict[str, Any]
    #: µs since the epoch: the member's time, orders the changes of one entity
    at: int | None = None
    #: the member's own time as given (observedAt of its attributes)
    observed_at: str | None = None
    notes: list[str] = field(default_factory=list)


class PageGraph:
    """The triples of one page, indexed by subject (every graph merged)."""

    def __init__(self, quads: Iterable[ox.Quad]) -> None:
        self.out: dict[ox.NamedNode | ox.BlankNode, list[tuple[str, Any]]] = {}
        for quad in quads:
            subject = quad.subject
            if isinstance(subject, ox.Triple):
                continue  # RDF-star quoted triples carry nothing we map
            self.out.setdefault(subject, []).append((quad.predicate.value, quad.object))

    def objects(self, subject: Any, predicate: str) -> list[Any]:
        """Objects of (subject, predicate), in document order."""
        return [o for p, o in self.out.get(subject, ()) if p == predicate]

    def first(self, subject: Any, predicate: str) -> Any:
        """The first object of (subject, predicate), or None."""
        for p, o in self.out.get(subject, ()):
            if p == predicate:
                return o
        return None

    def subjects_with(self, predicate: str) -> list[tuple[Any, Any]]:
        """(subject, object) of every triple with `predicate`."""
        return [(s, o) for s, pos in self.out.items() for p, o in pos if p == predicate]

    def types(self, subject: Any) -> list[str]:
        """The rdf:type IRIs of a node."""
        return [o.value for o in self.objects(subject, _TYPE) if isinstance(o, ox.NamedNode)]

    def rdf_list(self, head: Any, limit: int = 100_000) -> list[Any]:
        """The items of an RDF collection."""
        items: list[Any] = []
        node = head
        while isinstance(node, ox.BlankNode) and len(items) < limit:
            first = self.first(node, RDF + "first")
            if first is None:
                break
            items.append(first)
            node = self.first(node, RDF + "rest")
        return items


# --- literals ---------------------------------------------------------------------------------


def _literal(term: ox.Literal) -> Any:
    """A literal as a JSON value: numbers and booleans as such, everything else as text."""
    datatype = term.datatype.value
    text = term.value
    try:
        if datatype in _INTEGERS:
            number = int(text)
            return number if -_EXACT <= number <= _EXACT else text
        if datatype in _FLOATS:
            value = float(text)
            return value if math.isfinite(value) else text
    except ValueError:
        return text
    if datatype == XSD + "boolean":
        return text in ("true", "1")
    return text


def _wkt_geometry(text: str) -> dict[str, Any]:
    """A GeoSPARQL WKT literal (optionally with a CRS IRI first) as a GeoJSON geometry."""
    crs = GEO  # CRS84 (lon, lat) unless said otherwise (GeoSPARQL 1.1 §8.5.1)
    body = text.strip()
    if body.startswith("<"):
        crs, _, body = body[1:].partition(">")
    try:
        geometry = shapely.wkt.loads(body)
    except (ShapelyError, ValueError) as exc:
        raise MemberRejected(f"not a WKT geometry: {text[:80]!r}") from exc
    if crs.rstrip("/").endswith(("EPSG/0/4326", "EPSG:4326")):
        # EPSG:4326 axis order is (lat, lon); GeoJSON is (lon, lat)
        geometry = shapely.transform(geometry, lambda xy: xy[:, ::-1])
    elif crs != GEO and not crs.rstrip("/").endswith("CRS84"):
        raise MemberRejected(f"WKT in an unsupported coordinate system {crs}")
    return dict(orjson.loads(orjson.dumps(mapping(geometry))))


def _dt(term: Any) -> str | None:
    if isinstance(term, ox.Literal):
        return term.value
    return None


def local_name(iri: str) -> str:
    """The last segment of an IRI (after `#`, else after the last `/` or `:`)."""
    for sep in ("#", "/", ":"):
        _head, found, tail = iri.rstrip("/#").rpartition(sep)
        if found and tail:
            return tail
    return iri


# --- attributes -------------------------------------------------------------------------------


class _Mapper:
    def __init__(self, graph: PageGraph, vocab: Vocabulary, stream: StreamInfo) -> None:
        self.g = graph
        self.vocab = vocab
        self.stream = stream

    def describe(self, node: Any, depth: int = 0) -> Any:
        """A node as plain JSON (predicate IRI -> value or values), for a JsonProperty."""
        if isinstance(node, ox.Literal):
            return _literal(node)
        if isinstance(node, ox.NamedNode) or depth > 4:
            return node.value if isinstance(node, ox.NamedNode) else None
        out: dict[str, Any] = {}
        for p, o in self.g.out.get(node, ()):
            value = self.describe(o, depth + 1)
            if p in out:
                out[p] = [*out[p], value] if isinstance(out[p], list) else [out[p], value]
            else:
                out[p] = value
        return out

    def geojson(self, node: Any) -> dict[str, Any] | None:
        """A GeoJSON geometry from a GeoSPARQL node, a WKT or rdf:JSON literal, or a geojson:
        vocabulary node."""
        if isinstance(node, ox.Literal):
            if node.datatype.value == _WKT:
                return _wkt_geometry(node.value)
            if node.datatype.value == _RDF_JSON:
                value = orjson.loads(node.value)
                return value if isinstance(value, dict) else None
            return None
        wkt = self.g.first(node, GEO + "asWKT")
        if wkt is None:
            geometry = self.g.first(node, GEO + "hasGeometry") or self.g.first(
                node, GEO + "hasDefaultGeometry"
            )
            if geometry is not None:
                wkt = self.g.first(geometry, GEO + "asWKT")
        if isinstance(wkt, ox.Literal):
            return _wkt_geometry(wkt.value)
        kinds = [t for t in self.g.types(node) if t.startswith(GEOJSON)]
        if kinds:
            coordinates = self._coordinates(self.g.first(node, GEOJSON + "coordinates"))
            return {"type": local_name(kinds[0]), "coordinates": coordinates}
        return None

    def _coordinates(self, node: Any) -> Any:
        if isinstance(node, ox.Literal):
            return _literal(node)
        if node is None:
            return []
        if isinstance(node, ox.NamedNode) and node.value == RDF + "nil":
            return []
        return [self._coordinates(item) for item in self.g.rdf_list(node)]

    def ngsi_attribute(self, node: Any, kind: str, observed: str | None) -> dict[str, Any]:
        """An NGSI-LD attribute node (core @context expansion) back into an attribute."""
        g = self.g
        attr: dict[str, Any] = {"type": kind}
        if kind == "Relationship":
            objects = [
                o.value
                for o in g.objects(node, NGSI_LD + "hasObject")
                if isinstance(o, ox.NamedNode)
            ]
            if not objects:
                raise MemberRejected("a Relationship without hasObject")
            attr["object"] = objects[0] if len(objects) == 1 else objects
        elif kind == "LanguageProperty":
            attr["languageMap"] = {
                (o.language or "@none"): o.value
                for o in g.objects(node, NGSI_LD + "hasLanguageMap")
                if isinstance(o, ox.Literal)
            }
        elif kind == "JsonProperty":
            raw = g.first(node, NGSI_LD + "hasJSON")
            attr["json"] = (
                orjson.loads(raw.value) if isinstance(raw, ox.Literal) else self.describe(raw)
            )
        elif kind == "VocabProperty":
            vocab = g.first(node, NGSI_LD + "hasVocab")
            attr["vocab"] = vocab.value if vocab is not None else None
        elif kind == "ListProperty":
            head = g.first(node, NGSI_LD + "hasValueList")
            attr["valueList"] = [self.describe(i) for i in g.rdf_list(head)]
        elif kind == "ListRelationship":
            head = g.first(node, NGSI_LD + "hasObjectList")
            items = []
            for item in g.rdf_list(head):
                target = (
                    g.first(item, NGSI_LD + "hasObject") if isinstance(item, ox.BlankNode) else item
                )
                if isinstance(target, ox.NamedNode):
                    items.append(target.value)
            attr["objectList"] = items
        else:
            value = g.first(node, NGSI_LD + "hasValue")
            if value is None:
                raise MemberRejected(f"a {kind} without hasValue")
            if kind == "GeoProperty":
                geometry = self.geojson(value)
                if geometry is None:
                    raise MemberRejected("a GeoProperty whose value is not a geometry")
                attr["value"] = geometry
            elif isinstance(value, ox.Literal):
                attr["value"] = (
                    orjson.loads(value.value)
                    if value.datatype.value == _RDF_JSON
                    else _literal(value)
                )
            else:
                attr["value"] = self.describe(value)
        when = _dt(g.first(node, NGSI_LD + "observedAt")) or observed
        if when:
            attr["observedAt"] = when
        unit = g.first(node, NGSI_LD + "unitCode")
        if isinstance(unit, ox.Literal):
            attr["unitCode"] = unit.value
        dataset = g.first(node, NGSI_LD + "datasetId")
        if isinstance(dataset, ox.NamedNode):
            attr["datasetId"] = dataset.value
        for p, o in g.out.get(node, ()):
            if p in _ATTRIBUTE_MEMBERS or p in attr:
                continue
            sub = self.attribute(p, [o], None)
            if sub is not None:
                attr[p] = sub
        return attr

    def attribute(
        self, predicate: str, objects: list[Any], observed: str | None
    ) -> dict[str, Any] | None:
        """The attribute the values of one predicate become (see the module docstring)."""
        if len(objects) == 1 and not isinstance(objects[0], ox.Literal):
            node = objects[0]
            kinds = [_ATTRIBUTE_KINDS[t] for t in self.g.types(node) if t in _ATTRIBUTE_KINDS]
            if kinds:
                return self.ngsi_attribute(node, kinds[0], observed)
            if isinstance(node, ox.BlankNode):
                geometry = self.geojson(node)
                if geometry is not None:
                    return self._stamp({"type": "GeoProperty", "value": geometry}, observed)
                number = self._result_value(node)
                if number is not None:
                    return self._stamp(number, observed)
                return self._stamp({"type": "JsonProperty", "json": self.describe(node)}, observed)
        literals = [o for o in objects if isinstance(o, ox.Literal)]
        iris = [o.value for o in objects if isinstance(o, ox.NamedNode)]
        if literals and len(literals) == len(objects):
            if any(o.datatype.value == _WKT for o in literals):
                return self._stamp(
                    {"type": "GeoProperty", "value": _wkt_geometry(literals[0].value)}, observed
                )
            if all(o.language for o in literals):
                languages = {o.language: o.value for o in literals}
                return self._stamp({"type": "LanguageProperty", "languageMap": languages}, observed)
            if len(literals) == 1 and literals[0].datatype.value == _RDF_JSON:
                return self._stamp(
                    {"type": "JsonProperty", "json": orjson.loads(literals[0].value)}, observed
                )
            values = [_literal(o) for o in literals]
            return self._stamp(
                {"type": "Property", "value": values[0] if len(values) == 1 else values}, observed
            )
        if iris and len(iris) == len(objects):
            return self._stamp(
                {"type": "Relationship", "object": iris[0] if len(iris) == 1 else iris}, observed
            )
        described = [self.describe(o) for o in objects]
        return self._stamp({"type": "JsonProperty", "json": described}, observed)

    @staticmethod
    def _stamp(attr: dict[str, Any], observed: str | None) -> dict[str, Any]:
        if observed:
            attr["observedAt"] = observed
        return attr

    def _result_value(self, node: Any) -> dict[str, Any] | None:
        """A QUDT quantity value node (numericValue + unit) as a Property, or None."""
        g = self.g
        value = None
        for predicate in (QUDT + "numericValue", QUDT + "value", RDF + "value"):
            value = g.first(node, predicate)
            if value is not None:
                break
        if not isinstance(value, ox.Literal):
            return None
        attr: dict[str, Any] = {"type": "Property", "value": _literal(value)}
        unit = g.first(node, QUDT + "unit") or g.first(node, QUDT + "hasUnit")
        if isinstance(unit, ox.NamedNode):
            code = _UNIT_CODES.get(local_name(unit.value))
            if code is not None:
                attr["unitCode"] = code
            else:
                attr[QUDT + "unit"] = {"type": "Relationship", "object": unit.value}
        elif isinstance(unit, ox.Literal):
            attr["unitCode"] = unit.value
        return attr

    # --- members ------------------------------------------------------------------------------

    def timestamp(self, member: Any) -> str | None:
        path = self.stream.timestamp_path
        return _dt(self.g.first(member, path)) if path else None

    def observation(self, member: ox.NamedNode) -> Contribution:
        g = self.g
        foi = g.first(member, SOSA + "hasFeatureOfInterest")
        target = foi if isinstance(foi, ox.NamedNode) else g.first(member, SOSA + "madeBySensor")
        if not isinstance(target, ox.NamedNode):
            raise MemberRejected("an observation without a feature of interest or sensor IRI")
        prop = g.first(member, SOSA + "observedProperty")
        if not isinstance(prop, ox.NamedNode):
            raise MemberRejected("an observation without an observed property IRI")
        observed = (
            _dt(g.first(member, SOSA + "resultTime"))
            or self._phenomenon_time(member)
            or self.timestamp(member)
        )
        if observed is None:
            raise MemberRejected("an observation without a result time")
        simple = g.first(member, SOSA + "hasSimpleResult")
        attr: dict[str, Any] | None
        if isinstance(simple, ox.Literal):
            attr = {"type": "Property", "value": _literal(simple)}
        else:
            result = g.first(member, SOSA + "hasResult")
            if result is None:
                raise MemberRejected("an observation without a result")
            if isinstance(result, ox.Literal):
                attr = {"type": "Property", "value": _literal(result)}
            elif (shape := self.geojson(result)) is not None:
                # a geometry result (a GeoSPARQL node with its WKT): the observed property is a
                # GeoProperty, as the platform's own streams publish one (ldes/members.py)
                attr = {"type": "GeoProperty", "value": shape}
            else:
                attr = self._result_value(result) or {
                    "type": "Property",
                    "value": self.describe(result),
                }
        attr["observedAt"] = observed
        attrs: dict[str, Any] = {self.vocab.expand_term(local_name(prop.value)): attr}
        geometry = self.geojson(member) or (self.geojson(foi) if foi is not None else None)
        if geometry is not None:
            attrs[LOCATION] = {"type": "GeoProperty", "value": geometry, "observedAt": observed}
        types = [t for t in g.types(target) if t not in _SKIPPED_TYPES]
        return self._contribution(member.value, target.value, types, attrs, observed)

    def _phenomenon_time(self, member: Any) -> str | None:
        value = self.g.first(member, SOSA + "phenomenonTime")
        if isinstance(value, ox.Literal):
            return value.value
        if value is not None:
            for predicate in ("inXSDDateTimeStamp", "inXSDDateTime"):
                found = _dt(self.g.first(value, "http://www.w3.org/2006/time#" + predicate))
                if found:
                    return found
        return None

    def resource(self, member: ox.NamedNode, entity_id: str) -> Contribution:
        """A version (of `entity_id`) or a plain resource: its properties at its time."""
        observed = self.timestamp(member)
        skip = set(_EVENT_PREDICATES)
        for path in (self.stream.timestamp_path, self.stream.version_of_path):
            if path:
                skip.add(path)
        grouped: dict[str, list[Any]] = {}
        for p, o in self.g.out.get(member, ()):
            if p in skip or p.startswith((TREE, LDES)):
                continue
            grouped.setdefault(p, []).append(o)
        attrs: dict[str, Any] = {}
        for p, objects in grouped.items():
            name = (
                LOCATION
                if p in (GEO + "hasGeometry", GEO + "asWKT", GEO + "hasDefaultGeometry")
                else p
            )
            attr = self.attribute(p, objects, observed)
            if attr is not None:
                attrs[name] = attr
        types = [t for t in self.g.types(member) if t not in _SKIPPED_TYPES]
        return self._contribution(member.value, entity_id, types, attrs, observed)

    @staticmethod
    def _contribution(
        member: str, entity_id: str, types: list[str], attrs: dict[str, Any], observed: str | None
    ) -> Contribution:
        at: int | None = None
        if observed is not None:
            try:
                at = micros(observed)
            except (ValueError, SmartRegionError) as exc:
                raise MemberRejected(f"not a DateTime: {observed!r}") from exc
        return Contribution(member, entity_id, types, attrs, at, observed)


def map_member(
    graph: PageGraph, member: ox.NamedNode, stream: StreamInfo, vocab: Vocabulary
) -> Contribution:
    """The entity change a member makes (module docstring); MemberRejected if none."""
    mapper = _Mapper(graph, vocab, stream)
    types = graph.types(member)
    if SOSA + "Observation" in types or (
        graph.first(member, SOSA + "observedProperty") is not None
        and (
            graph.first(member, SOSA + "hasSimpleResult") is not None
            or graph.first(member, SOSA + "hasResult") is not None
        )
    ):
        return mapper.observation(member)
    for path in (stream.version_of_path, DCT + "isVersionOf"):
        if path:
            target = graph.first(member, path)
            if isinstance(target, ox.NamedNode):
                return mapper.resource(member, target.value)
    if not graph.out.get(member):
        raise MemberRejected("the page describes nothing of this member")
    return mapper.resource(member, member.value)
