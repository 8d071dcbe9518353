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
so a page renders to the same bytes every time. Members are written as N-Triples text (the hot
part of a page; see `member_lines`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import orjson
import shapely
from pyoxigraph import BlankNode, Literal, NamedNode, Triple
from shapely.geometry import shape

from smartregion.core.vocabulary import DCT, GEO, NGSI_LD, PROV, QUDT, RDF, SH, SOSA, XSD
from smartregion.storage.rollups import format_micros
from smartregion.storage.streams import StreamMember

__all__ = ["UNITS", "member_iri", "member_lines", "shape_triples", "version_iri"]

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
_GENERATED = NamedNode(PROV + "generatedAtTime")
_VERSION_OF = NamedNode(DCT + "isVersionOf")
_DATETIME = NamedNode(XSD + "dateTime")
_INTEGER = NamedNode(XSD + "integer")


def member_iri(stream: str, member: StreamMember) -> str:
    """The member's IRI: stable, the same on every request (`{stream}/members/{s}.{t}.{seq}`)."""
    return f"{stream}/members/{member.series.key}.{member.instance.t}.{member.instance.seq}"


def version_iri(stream: str, series_key: int) -> str:
    """The object a member is a version of: one attribute (and datasetId) of one entity."""
    return f"{stream}/series/{series_key}"


# --- members as N-Triples text --------------------------------------------------------------
# Pages are mostly members: they are written as N-Triples lines directly (a few µs a member,
# against ~40 µs for building pyoxigraph terms), which pyoxigraph parses back (in Rust) when
# another format is asked for. Every IRI is checked by pyoxigraph once (`_iri_text`), every
# literal escaped as N-Triples requires (`_string`).

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
_LANG = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
_IRIS: dict[str, str | None] = {}
_A_NT = f"<{RDF}type>"
_OBS_NT = f"<{SOSA}Observation>"
_P = {name: f"<{SOSA}{name}>" for name in (
    "madeBySensor", "hasFeatureOfInterest", "observedProperty", "resultTime",
    "hasSimpleResult", "hasResult",
)}  # fmt: skip
_GENERATED_NT = f"<{PROV}generatedAtTime>"
_VERSION_OF_NT = f"<{DCT}isVersionOf>"
_DATETIME_NT = f"^^<{XSD}dateTime>"


def _iri_text(value: str) -> str | None:
    """`<value>` when it is an IRI (checked by pyoxigraph, remembered), else None."""
    known = _IRIS.get(value, "")
    if known != "":
        return known
    try:
        NamedNode(value)
        text: str | None = f"<{value}>"
    except ValueError:
        text = None
    if len(_IRIS) > 100_000:
        _IRIS.clear()
    _IRIS[value] = text
    return text


def _string(value: str) -> str:
    return '"' + value.translate(_ESCAPES) + '"'


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        return f'"{"true" if value else "false"}"^^<{XSD}boolean>'
    if isinstance(value, int):
        return f'"{value}"^^<{XSD}integer>'
    return f'"{float(value)!r}"^^<{XSD}double>'


def _wkt(value: Any) -> str | None:
    try:
        return _CRS84 + str(shapely.to_wkt(shape(value), rounding_precision=-1))
    except Exception:  # an unreadable geometry is published as JSON instead
        return None


def member_lines(stream: str, member: StreamMember, types: Sequence[str] = ()) -> str:
    """The member as N-Triples lines (see the module docstring for what it says); `types`: the
    entity's types, stated on the feature of interest so that a replica can recreate it."""
    doc = member.instance.doc
    key = member.series.key
    s = f"<{member_iri(stream, member)}>"
    entity = _iri_text(member.series.entity_id) or f"<{stream}/entities/{key}>"
    attr = _iri_text(member.series.attr) or f"<{stream}/attributes/{key}>"
    out = [
        *(f"{entity} {_A_NT} {text} ." for t in types if (text := _iri_text(t))),
        f"{s} {_A_NT} {_OBS_NT} .",
        f"{s} {_P['madeBySensor']} {entity} .",
        f"{s} {_P['hasFeatureOfInterest']} {entity} .",
        f"{s} {_P['observedProperty']} {attr} .",
        # observedAt, else modifiedAt (storage/history.py)
        f'{s} {_P["resultTime"]} "{format_micros(member.instance.t)}"{_DATETIME_NT} .',
        f'{s} {_GENERATED_NT} "{format_micros(member.p)}"{_DATETIME_NT} .',
        f"{s} {_VERSION_OF_NT} <{version_iri(stream, key)}> .",
    ]
    if member.series.dataset_id:
        out.append(f"{s} <{NGSI_LD}datasetId> {_string(member.series.dataset_id)} .")
    if "deletedAt" in doc:
        out.append(f"{s} <{NGSI_LD}deletedAt> {_string(str(doc['deletedAt']))}{_DATETIME_NT} .")
        return "\n".join(out) + "\n"
    kind = doc.get("type", "Property")
    label = f"_:r{key}_{member.instance.t}_{member.instance.seq}".replace("-", "n")
    result = _result(doc, kind, label)
    for line in result:
        out.append(line.replace("{s}", s, 1) if line.startswith("{s}") else line)
    return "\n".join(out) + "\n"


def _result(doc: dict[str, Any], kind: str, label: str) -> list[str]:
    """The lines of a member's result (`{s}` standing for the member)."""
    simple, result = _P["hasSimpleResult"], _P["hasResult"]
    if kind == "Relationship":
        target = doc.get("object")
        text = _iri_text(str(target)) if target not in (None, _NULL) else None
        return [f"{{s}} {result} {text} ."] if text else []
    if kind == "GeoProperty":
        wkt = _wkt(doc.get("value"))
        if wkt is not None:
            return [
                f"{{s}} {result} {label} .",
                f"{label} {_A_NT} <{GEO}Geometry> .",
                f"{label} <{GEO}asWKT> {_string(wkt)}^^<{GEO}wktLiteral> .",
            ]
    if kind == "LanguageProperty":
        lines = []
        for lang, text in sorted((doc.get("languageMap") or {}).items()):
            if isinstance(text, str):
                tag = f"@{lang}" if _LANG.fullmatch(lang) else ""  # "@none": no tag
                lines.append(f"{{s}} {simple} {_string(text)}{tag} .")
        return lines
    value = doc.get("value", doc.get("json", doc.get("vocab", doc.get("valueList"))))
    if value is None or value == _NULL:
        return []
    if isinstance(value, bool):
        return [f"{{s}} {simple} {_number_text(value)} ."]
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return []
        unit = doc.get("unitCode")
        if not unit:
            return [f"{{s}} {simple} {_number_text(value)} ."]
        lines = [
            f"{{s}} {result} {label} .",
            f"{label} {_A_NT} <{QUDT}QuantityValue> .",
            f"{label} <{QUDT}numericValue> {_number_text(value)} .",
        ]
        known = UNITS.get(str(unit))
        if known is not None:
            lines.append(f"{label} <{QUDT}unit> <{_UNIT}{known}> .")
        else:
            lines += [
                f"{label} <{QUDT}unit> {label}u .",
                f"{label}u {_A_NT} <{QUDT}Unit> .",
                f"{label}u <{QUDT}uneceCommonCode> {_string(str(unit))} .",
            ]
        return lines
    if isinstance(value, str):
        return [f"{{s}} {simple} {_string(value)} ."]
    text = orjson.dumps(value).decode()
    return [f"{{s}} {simple} {_string(text)}^^<{RDF}JSON> ."]


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
