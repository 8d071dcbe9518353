"""Members of an event stream: each attribute instance as a SOSA observation and a version.

An instance `(series, t, seq)` of attribute A of entity E becomes (W3C SOSA/SSN, QUDT,
GeoSPARQL; LDES §versioning)::

    <{stream}/members/{series}.{t}.{seq}> a sosa:Observation ;
        sosa:madeBySensor <E> ; sosa:hasFeatureOfInterest <E> ;
        sosa:observedProperty <A> ;
        sosa:resultTime "observedAt (else modifiedAt)"^^xsd:dateTime ;
        sosa:hasSimpleResult 21.5            # a number without unit, text, boolean, IRI
      | sosa:hasResult [ a qudt:QuantityValue ; qudt:numericValue 21.5 ; qudt:unit unit:DEG_C ]
      | sosa:hasResult [ a geo:Geometry ; geo:asWKT "POINT (4.1 51.0)"^^geo:wktLiteral ] ;
        prov:generatedAtTime "recorded"^^xsd:dateTime ;      # ldes:timestampPath
        dct:isVersionOf <{stream}/series/{series}> .         # ldes:versionOfPath

The versioned object is the series (entity, attribute, datasetId), not the entity: each member
carries one attribute's value, and a client materialising the latest version of each object
then holds the latest value of every attribute. Blank nodes are labelled from the member key,
so a page renders to the same bytes every time.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import shapely
from pyoxigraph import BlankNode, Literal, NamedNode, Triple
from shapely.geometry import shape

from smartregion.core.vocabulary import DCT, GEO, NGSI_LD, PROV, QUDT, RDF, SH, SOSA, XSD
from smartregion.storage.rollups import format_micros
from smartregion.storage.streams import StreamMember

__all__ = ["UNITS", "member_iri", "member_triples", "shape_triples", "version_iri"]

#: UN/CEFACT common codes (NGSI-LD unitCode) of common sensor units -> QUDT unit IRIs
UNITS: dict[str, str] = {
    "CEL": "DEG_C", "KEL": "K", "FAH": "DEG_F", "P1": "PERCENT", "MTR": "M", "MMT": "MilliM",
    "CMT": "CentiM", "KMT": "KiloM", "MTS": "M-PER-SEC", "KMH": "KiloM-PER-HR",
    "PAL": "PA", "A97": "HectoPA", "KPA": "KiloPA", "BAR": "BAR", "GQ": "MicroGM-PER-M3",
    "59": "PPM", "61": "PPB", "2N": "DeciB", "WTT": "W", "KWT": "KiloW", "KWH": "KiloW-HR",
    "LUX": "LUX", "VLT": "V", "AMP": "A", "HUR": "HR", "SEC": "SEC", "MIN": "MIN",
    "DD": "DEG", "KGM": "KiloGM", "GRM": "GM", "LTR": "L", "MTQ": "M3", "MQH": "M3-PER-HR",
    "C62": "UNITLESS", "E32": "NUM-PER-HR", "HTZ": "HZ", "MMH": "MilliM-PER-HR",
    "WSQ": "W-PER-M2",
}  # fmt: skip
_UNIT = "http://qudt.org/vocab/unit/"
_CRS84 = "<http://www.opengis.net/def/crs/OGC/1.3/CRS84> "
_NULL = "urn:ngsi-ld:null"

_A = NamedNode(RDF + "type")
_OBSERVATION = NamedNode(SOSA + "Observation")
_SENSOR = NamedNode(SOSA + "madeBySensor")
_FOI = NamedNode(SOSA + "hasFeatureOfInterest")
_PROPERTY = NamedNode(SOSA + "observedProperty")
_RESULT_TIME = NamedNode(SOSA + "resultTime")
_SIMPLE = NamedNode(SOSA + "hasSimpleResult")
_RESULT = NamedNode(SOSA + "hasResult")
_GENERATED = NamedNode(PROV + "generatedAtTime")
_VERSION_OF = NamedNode(DCT + "isVersionOf")
_QV = NamedNode(QUDT + "QuantityValue")
_NUMERIC = NamedNode(QUDT + "numericValue")
_QUNIT = NamedNode(QUDT + "unit")
_QUNIT_CLASS = NamedNode(QUDT + "Unit")
_UNECE = NamedNode(QUDT + "uneceCommonCode")
_GEOMETRY = NamedNode(GEO + "Geometry")
_AS_WKT = NamedNode(GEO + "asWKT")
_WKT = NamedNode(GEO + "wktLiteral")
_DATETIME = NamedNode(XSD + "dateTime")
_DOUBLE = NamedNode(XSD + "double")
_INTEGER = NamedNode(XSD + "integer")
_BOOLEAN = NamedNode(XSD + "boolean")
_JSON = NamedNode(RDF + "JSON")
_DELETED = NamedNode(NGSI_LD + "deletedAt")
_DATASET_ID = NamedNode(NGSI_LD + "datasetId")


def member_iri(stream: str, member: StreamMember) -> str:
    """The member's IRI: stable, the same on every request (`{stream}/members/{s}.{t}.{seq}`)."""
    return f"{stream}/members/{member.series.key}.{member.instance.t}.{member.instance.seq}"


def version_iri(stream: str, series_key: int) -> str:
    """The object a member is a version of: one attribute (and datasetId) of one entity."""
    return f"{stream}/series/{series_key}"


def _datetime(micros: int) -> Literal:
    return Literal(format_micros(micros), datatype=_DATETIME)


def _iri(value: str) -> NamedNode | None:
    try:
        return NamedNode(value)
    except ValueError:
        return None


def _number(value: Any) -> Literal:
    if isinstance(value, bool):
        return Literal("true" if value else "false", datatype=_BOOLEAN)
    if isinstance(value, int):
        return Literal(str(value), datatype=_INTEGER)
    return Literal(repr(float(value)), datatype=_DOUBLE)


def _wkt(value: Any) -> str | None:
    try:
        return _CRS84 + str(shapely.to_wkt(shape(value), rounding_precision=-1))
    except Exception:  # an unreadable geometry is published as JSON instead
        return None


def member_triples(stream: str, member: StreamMember) -> list[Triple]:
    """The triples of one member (see the module docstring)."""
    doc = member.instance.doc
    s = NamedNode(member_iri(stream, member))
    entity = _iri(member.series.entity_id) or NamedNode(f"{stream}/entities/{member.series.key}")
    attr = NamedNode(member.series.attr)
    result_time = member.instance.t  # observedAt, else modifiedAt (storage/history.py)
    out = [
        Triple(s, _A, _OBSERVATION),
        Triple(s, _SENSOR, entity),
        Triple(s, _FOI, entity),
        Triple(s, _PROPERTY, attr),
        Triple(s, _RESULT_TIME, _datetime(result_time)),
        Triple(s, _GENERATED, _datetime(member.p)),
        Triple(s, _VERSION_OF, NamedNode(version_iri(stream, member.series.key))),
    ]
    if member.series.dataset_id:
        out.append(Triple(s, _DATASET_ID, Literal(member.series.dataset_id)))
    if "deletedAt" in doc:
        out.append(Triple(s, _DELETED, Literal(str(doc["deletedAt"]), datatype=_DATETIME)))
        return out
    kind = doc.get("type", "Property")
    label = f"r{member.series.key}_{member.instance.t}_{member.instance.seq}".replace("-", "n")
    if kind == "Relationship":
        target = _iri(str(doc.get("object", "")))
        if target is not None and doc.get("object") != _NULL:
            out.append(Triple(s, _RESULT, target))
        return out
    if kind == "GeoProperty":
        wkt = _wkt(doc.get("value"))
        if wkt is not None:
            node = BlankNode(label)
            out += [
                Triple(s, _RESULT, node),
                Triple(node, _A, _GEOMETRY),
                Triple(node, _AS_WKT, Literal(wkt, datatype=_WKT)),
            ]
            return out
    if kind == "LanguageProperty":
        for lang, text in sorted((doc.get("languageMap") or {}).items()):
            if isinstance(text, str):
                try:
                    out.append(Triple(s, _SIMPLE, Literal(text, language=lang)))
                except ValueError:  # "@none" and other non-BCP-47 keys
                    out.append(Triple(s, _SIMPLE, Literal(text)))
        return out
    value = doc.get("value", doc.get("json", doc.get("vocab", doc.get("valueList"))))
    if value is None or value == _NULL:
        return out
    unit = doc.get("unitCode")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return out
        if unit:
            node = BlankNode(label)
            out += [
                Triple(s, _RESULT, node),
                Triple(node, _A, _QV),
                Triple(node, _NUMERIC, _number(value)),
            ]
            known = UNITS.get(str(unit))
            if known is not None:
                out.append(Triple(node, _QUNIT, NamedNode(_UNIT + known)))
            else:
                unit_node = BlankNode(label + "u")
                out += [
                    Triple(node, _QUNIT, unit_node),
                    Triple(unit_node, _A, _QUNIT_CLASS),
                    Triple(unit_node, _UNECE, Literal(str(unit))),
                ]
            return out
        out.append(Triple(s, _SIMPLE, _number(value)))
    elif isinstance(value, bool):
        out.append(Triple(s, _SIMPLE, _number(value)))
    elif isinstance(value, str):
        out.append(Triple(s, _SIMPLE, Literal(value)))
    else:
        out.append(Triple(s, _SIMPLE, Literal(orjson.dumps(value).decode(), datatype=_JSON)))
    return out


def shape_triples(shape_iri: str) -> list[Triple]:
    """The SHACL shape every member conforms to (`tree:shape`), small enough for every page."""
    node = NamedNode(shape_iri)
    sh = SH
    out = [
        Triple(node, _A, NamedNode(sh + "NodeShape")),
        Triple(node, NamedNode(sh + "targetClass"), _OBSERVATION),
    ]
    required: list[tuple[NamedNode, str, NamedNode | None]] = [
        (_SENSOR, "IRI", None),
        (_FOI, "IRI", None),
        (_PROPERTY, "IRI", None),
        (_RESULT_TIME, "Literal", _DATETIME),
        (_GENERATED, "Literal", _DATETIME),
        (_VERSION_OF, "IRI", None),
    ]
    for index, (path, kind, datatype) in enumerate(required):
        prop = BlankNode(f"shape{index}")
        out += [
            Triple(node, NamedNode(sh + "property"), prop),
            Triple(prop, NamedNode(sh + "path"), path),
            Triple(prop, NamedNode(sh + "minCount"), Literal("1", datatype=_INTEGER)),
            Triple(prop, NamedNode(sh + "maxCount"), Literal("1", datatype=_INTEGER)),
            Triple(prop, NamedNode(sh + "nodeKind"), NamedNode(sh + kind)),
        ]
        if datatype is not None:
            out.append(Triple(prop, NamedNode(sh + "datatype"), datatype))
    return out
