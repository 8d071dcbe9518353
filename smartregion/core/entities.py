"""The NGSI-LD entity model: turn request payloads into the internal entity document.

Parsing accepts the normalized and the concise representations (ETSI GS CIM 009 V1.8 §4.5) and
produces the internal document described in `docs/architecture.md`: every name expanded, one
list of instances per attribute, system attributes set from `now`. Every violation raises
`BadRequestData` naming the attribute and the problem. No I/O; terms are resolved through a
`Vocabulary` (the request's cached term map).

Storage choices the other layers rely on:

* the default instance has no `datasetId` (`"@none"` on input means the default, §4.5.5);
* `objectList` holds bare URIs (the normalized `{"object": uri}` wrapping is added on output);
* `vocab`, `objectType`, `valueType` and `entityTypeSealed` values are stored expanded;
* `observedAt`/`expiresAt` are kept verbatim (validated as UTC DateTimes, §4.6.3);
* sub-attributes are `expanded IRI -> one instance dict` without system attributes;
* in update/merge fragments the NGSI-LD Null (`urn:ngsi-ld:null`) is kept as-is in the member
  that carries it (`value`, `object`, `languageMap["@none"]`, `vocab`, `json`, `valueList`,
  `objectList`; a deleted scope is `[NULL]`), so the mutation code can recognise deletions.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

from smartregion.errors import BadRequestData

__all__ = [
    "ATTRIBUTE_KINDS",
    "GEO_ATTRIBUTES",
    "NGSI_LD",
    "NULL",
    "VALUE_MEMBER",
    "Mode",
    "Vocabulary",
    "is_datetime",
    "is_uri",
    "parse_attribute",
    "parse_attributes",
    "parse_entity",
    "validate_entity_id",
]

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
#: The NGSI-LD Null (§4.5.5 / §5.5.4): deletes what it is assigned to in update and merge.
NULL = "urn:ngsi-ld:null"
#: attribute type -> the member holding an instance's value (§4.5)
VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "JsonProperty": "json",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}

#: attribute type -> the member that carries its value (§4.5.2 - §4.5.24)
ATTRIBUTE_KINDS: dict[str, str] = {
    "Property": "value",
    "Relationship": "object",
    "GeoProperty": "value",
    "LanguageProperty": "languageMap",
    "JsonProperty": "json",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
#: core attributes that are GeoProperties by definition (§4.7.1)
GEO_ATTRIBUTES = frozenset(
    NGSI_LD + name for name in ("location", "observationSpace", "operationSpace")
)
NGSILDPROOF = NGSI_LD + "ngsildproof"
LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

#: members common to every attribute kind
_COMMON = frozenset(
    {
        "type",
        "datasetId",
        "observedAt",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "expiresAt",
    }
)
#: extra members each kind admits (§4.5.x.2 tables); everything else reserved is prohibited
_ALLOWED: dict[str, frozenset[str]] = {
    "Property": frozenset({"value", "unitCode", "valueType"}),
    "Relationship": frozenset({"object", "objectType"}),
    "GeoProperty": frozenset({"value", "valueType"}),
    "LanguageProperty": frozenset({"languageMap", "valueType"}),
    "JsonProperty": frozenset({"json", "valueType"}),
    "VocabProperty": frozenset({"vocab", "valueType"}),
    "ListProperty": frozenset({"valueList", "unitCode", "valueType"}),
    "ListRelationship": frozenset({"objectList", "objectType"}),
}
#: every member name the model reserves: never a sub-attribute name (§4.5.1)
_RESERVED = frozenset(
    _COMMON
    | {m for members in _ALLOWED.values() for m in members}
    | {
        "id",
        "lang",
        "scope",
        "entityIdSealed",
        "entityTypeSealed",
        "previousValue",
        "previousObject",
        "previousLanguageMap",
        "previousJson",
        "previousVocab",
        "previousValueList",
        "previousObjectList",
        "objects",
        "values",
        "languageMaps",
        "jsons",
        "vocabs",
        "valueLists",
        "objectLists",
    }
)
#: system attributes a client may send but which the broker sets itself (§4.8)
_SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId"})
_ENTITY_SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt"})
_GEOMETRY_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# RFC 3986/3987: characters never allowed unencoded in a URI/IRI
_URI_FORBIDDEN = frozenset('<>"{}|\\^`')
# the common case, checked in one regex call: printable ASCII without the forbidden characters
_ASCII_URI_CHARS = re.compile(r"[!#-;=?-\[\]_a-z~]*")
# §4.6.2: short names are a Unicode letter followed by letters, digits or "_"
_NAME = re.compile(r"[^\W\d_]\w*")
# §4.18: ScopeLevel = unicodeLetter *(unicodeLetter / digit / "_")
_SCOPE = re.compile(r"/?[^\W\d_]\w*(?:/[^\W\d_]\w*)*")
# §4.6.3: DateTime in UTC, "Z" designator, no offsets
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,9}))?Z")
# RFC 5646 shape (§4.15): primary subtag plus subtags
_LANGTAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")

Mode = Literal["create", "update", "merge"]


class Vocabulary(Protocol):
    """Term resolution for one request @context (implemented by `core.jsonld.TermMap`)."""

    def expand_term(self, term: str) -> str:
        """Expand an attribute or type name to its IRI."""
        ...

    def compact_iri(self, iri: str) -> str:
        """Compact an attribute or type IRI to its shortest name."""
        ...

    def expand_value(self, value: str) -> str:
        """Expand a @vocab-typed value (VocabProperty, objectType)."""
        ...

    def compact_value(self, iri: str) -> str:
        """Compact a @vocab-typed value."""
        ...


# --------------------------------------------------------------------------------------------
# scalar validators


def _invisible(ch: str) -> bool:
    """Whether `ch` is a control, format, separator or otherwise invisible code point."""
    cp = ord(ch)
    if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}:
        return True
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:  # variation selectors
        return True
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:  # noncharacters
        return True
    return cp in {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800}  # fillers, braille blank


def is_uri(value: str) -> bool:
    """Whether `value` is an absolute URI/IRI (`scheme:rest`, RFC 3986 §3, RFC 3987)."""
    if not isinstance(value, str):
        return False
    match = _SCHEME.match(value)
    if match is None or match.end() == len(value):
        return False
    if value.isascii():
        # hot path (every id and attribute name of a batch): one regex over the whole value
        return _ASCII_URI_CHARS.fullmatch(value) is not None
    # §4.5.1: ids must stay readable — no whitespace, controls or invisible characters
    return not any(ch in _URI_FORBIDDEN or _invisible(ch) for ch in value)


def validate_entity_id(value: Any) -> str:
    """Return `value` if it is a valid entity id (an absolute URI), else raise BadRequestData."""
    if not isinstance(value, str) or not value:
        raise BadRequestData("Entity id must be a non-empty string")
    if value == NULL:
        raise BadRequestData("Entity id cannot be the NGSI-LD Null")
    if not is_uri(value):
        raise BadRequestData(f"Entity id {value!r} is not a valid URI")
    return value


def is_datetime(value: Any) -> bool:
    """Whether `value` is an NGSI-LD DateTime: ISO 8601 in UTC with a "Z" (§4.6.3)."""
    if not isinstance(value, str):
        return False
    match = _DATETIME.fullmatch(value)
    if match is None:
        return False
    fraction = match.group(1)
    text = value[:19] + (f".{fraction[:6]:0<6}" if fraction else "") + "+00:00"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _is_datetime_text(value: str) -> bool:
    # a batch repeats one observedAt over and over: validate each distinct string once
    return is_datetime(value)


def _is_point(value: Any) -> bool:
    """Whether `value` is a GeoJSON Point that `core.geo.validate_geometry` accepts."""
    if type(value) is not dict or value.get("type") != "Point":
        return False
    coords = value.get("coordinates")
    if type(coords) is not list or len(coords) not in (2, 3):
        return False
    for n in coords:
        # RFC 7946 §3.1.1: finite numbers, never booleans (type() is exact: bool is no int here)
        t = type(n)
        if (t is not float and t is not int) or not math.isfinite(n):
            return False
    return bool(-180 <= coords[0] <= 180 and -90 <= coords[1] <= 90)


def _is_name(name: str) -> bool:
    """Whether `name` is a valid attribute/type name: a short term or an IRI (§4.6.2)."""
    if ":" in name:
        return is_uri(name) and not any(ch in "'=;()" for ch in name)
    return _NAME.fullmatch(name) is not None


def _expand_name(name: Any, vocab: Vocabulary, what: str) -> str:
    """Validate and expand an attribute or type name (memoised per vocabulary: names repeat)."""
    if isinstance(name, str):
        try:
            return _expand_valid_name(name, vocab, what)  # type: ignore[arg-type]
        except TypeError:  # an unhashable vocabulary: no memo
            pass
    return _expand_name_uncached(name, vocab, what)


@functools.lru_cache(maxsize=65536)
def _expand_valid_name(name: str, vocab: Vocabulary, what: str) -> str:
    # exceptions are not cached: an invalid name is re-checked (and rejected) every time
    return _expand_name_uncached(name, vocab, what)


def _expand_name_uncached(name: Any, vocab: Vocabulary, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise BadRequestData(f"{what} must be a non-empty string, got {name!r}")
    if not _is_name(name):
        raise BadRequestData(f"{what} {name!r} is not a valid name (§4.6.2)")
    iri = vocab.expand_term(name)
    if iri.startswith("@") or not is_uri(iri):
        raise BadRequestData(f"{what} {name!r} is reserved or does not expand to an IRI")
    return iri


def _contains_null(value: Any) -> bool:
    """Whether the NGSI-LD Null occurs anywhere in a JSON value."""
    if isinstance(value, str):
        return value == NULL
    if isinstance(value, dict):
        return any(_contains_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_null(v) for v in value)
    return False


def _is_geometry(value: Any) -> bool:
    """Whether `value` looks like a GeoJSON geometry (used to infer concise GeoProperties)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("type"), str)
        and value["type"] in _GEOMETRY_TYPES
        and ("coordinates" in value or "geometries" in value)
    )


def _fallback_validate_geometry(obj: Any) -> None:
    """Structural GeoJSON check used until `core.geo` is available."""

    def position(p: Any) -> bool:
        return (
            isinstance(p, list)
            and 2 <= len(p) <= 3
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
        )

    def line(c: Any, minimum: int) -> bool:
        return isinstance(c, list) and len(c) >= minimum and all(position(p) for p in c)

    def ring(c: Any) -> bool:
        return line(c, 4) and c[0] == c[-1]

    def polygon(c: Any) -> bool:
        return isinstance(c, list) and len(c) >= 1 and all(ring(r) for r in c)

    checks: dict[str, Callable[[Any], bool]] = {
        "Point": position,
        "MultiPoint": lambda c: isinstance(c, list) and all(position(p) for p in c),
        "LineString": lambda c: line(c, 2),
        "MultiLineString": lambda c: isinstance(c, list) and all(line(x, 2) for x in c),
        "Polygon": polygon,
        "MultiPolygon": lambda c: isinstance(c, list) and all(polygon(x) for x in c),
    }
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise BadRequestData("GeoJSON geometry must be an object with a type")
    check = checks.get(obj["type"])
    if check is None:
        raise BadRequestData(f"Unsupported GeoJSON geometry type {obj['type']!r}")
    if not check(obj.get("coordinates")):
        raise BadRequestData(f"Invalid coordinates for GeoJSON {obj['type']}")


def _validate_geometry(obj: Any) -> dict[str, Any]:
    """Validate a GeoJSON geometry with `core.geo` when present; return the geometry."""
    # §4.6.3: every GeoJSON geometry except GeometryCollection
    if isinstance(obj, dict) and obj.get("type") == "GeometryCollection":
        raise BadRequestData("GeometryCollection is not a supported GeoProperty value (§4.6.3)")
    try:
        from smartregion.core import geo
    except ImportError:
        _fallback_validate_geometry(obj)
        return dict(obj)
    geo.validate_geometry(obj)
    return dict(obj)


# --------------------------------------------------------------------------------------------
# attributes


class _Parser:
    """One parse run: the vocabulary, the clock and the null-handling mode."""

    def __init__(self, vocab: Vocabulary, now: str, mode: Mode, partial: bool = False) -> None:
        self.vocab = vocab
        self.now = now
        self.mode = mode
        self.partial = partial
        #: a temporal representation (§4.5.7): an attribute is a series of instances, so one
        #: datasetId may occur many times
        self.temporal = False

    # -- helpers ---------------------------------------------------------------------------

    def null_ok(self) -> bool:
        """Whether an attribute-level NGSI-LD Null is meaningful (update and merge, §5.5.4)."""
        return self.mode != "create"

    def check_nested_nulls(self, where: str, value: Any) -> None:
        """Nulls nested in compound values are only meaningful in merge (§5.5.12)."""
        if self.mode != "merge" and _contains_null(value):
            raise BadRequestData(f"{where}: the NGSI-LD Null is not allowed here")

    # -- attribute level -------------------------------------------------------------------

    def attribute(self, name: str, raw: Any, *, top: bool) -> tuple[str, list[dict[str, Any]]]:
        """Parse one attribute (all its instances)."""
        if name in _RESERVED or name.startswith("@"):
            raise BadRequestData(f"{name!r} is a reserved member and cannot name an attribute")
        iri = _expand_name(name, self.vocab, "Attribute name")
        if isinstance(raw, list) and raw and all(self.is_instance(x) for x in raw):
            items: list[Any] = raw
        else:
            items = [raw]
        if not top and len(items) != 1:
            raise BadRequestData(f"Sub-attribute {name!r} cannot have several instances")
        if top and not self.partial and not self.temporal and type(raw) is dict:
            fast = self.common_instance(iri, raw)
            if fast is not None:
                return iri, [fast]
        instances = [self.instance(name, iri, item, top=top) for item in items]
        if top and not self.temporal:
            seen: set[str | None] = set()
            for inst in instances:
                ds = inst.get("datasetId")
                if ds in seen:
                    which = "the default instance" if ds is None else f"datasetId {ds!r}"
                    raise BadRequestData(f"Attribute {name!r} repeats {which} (§4.5.5)")
                seen.add(ds)
        return iri, instances

    def common_instance(self, iri: str, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The overwhelmingly common shapes, parsed in one pass; None for anything else.

        A normalized Property with a scalar value, a GeoProperty Point or a Relationship to one
        URI, each optionally with observedAt (and a Property with unitCode), no sub-attributes,
        no NGSI-LD Null: accepted here only when `instance` would accept it, with the same
        result. Everything else — including every invalid input — takes the general path,
        which decides (and words) the outcome.
        """
        if iri == NGSILDPROOF:
            return None
        kind = raw.get("type")
        if kind in ("Property", "GeoProperty"):
            member = "value"
        elif kind == "Relationship":
            member = "object"
        else:
            return None
        if kind != "GeoProperty" and iri in GEO_ATTRIBUTES:
            return None  # §4.7.1: the general path rejects it
        out: dict[str, Any] = {"type": kind}
        for key, value in raw.items():
            if key == member:
                t = type(value)
                if kind == "GeoProperty":
                    if not _is_point(value):
                        return None
                    value = dict(value)
                elif kind == "Relationship":
                    if t is not str or value == NULL or not is_uri(value):
                        return None
                elif t is str:
                    if value == NULL:
                        return None
                elif t is not float and t is not int and t is not bool:
                    return None
            elif key == "observedAt":
                if type(value) is not str or not _is_datetime_text(value):
                    return None
            elif key == "unitCode" and kind == "Property":
                if type(value) is not str or not value or value == NULL:
                    return None
            elif key != "type":
                return None
            out[key] = value
        if member not in out:
            return None
        out["createdAt"] = self.now
        out["modifiedAt"] = self.now
        return out

    @staticmethod
    def is_instance(item: Any) -> bool:
        """Whether a list element is an attribute instance (else the list is a concise value)."""
        if not isinstance(item, dict):
            return False
        kind = item.get("type")
        return (isinstance(kind, str) and kind in ATTRIBUTE_KINDS) or any(
            m in item for m in ATTRIBUTE_KINDS.values()
        )

    def infer(self, name: str, raw: Any) -> tuple[str | None, dict[str, Any]]:
        """Find the kind of a normalized or concise attribute; return (kind, members)."""
        if not isinstance(raw, dict):
            if raw is None:
                raise BadRequestData(f"Attribute {name!r} cannot be null (§5.2.1)")
            if isinstance(raw, list) and not raw:
                raise BadRequestData(f"Attribute {name!r} has no instances")
            return "Property", {"value": raw}  # §4.5.2.3 concise bare value
        members = dict(raw)
        if "@type" in members and "type" not in members:
            members["type"] = members.pop("@type")
        kind = members.get("type")
        if kind is not None:
            if _is_geometry(members):
                return "GeoProperty", {"value": members}  # §4.5.2.3 concise geometry
            if isinstance(kind, str) and kind.startswith(NGSI_LD):
                kind = kind[len(NGSI_LD) :]
            if not isinstance(kind, str) or kind not in ATTRIBUTE_KINDS:
                raise BadRequestData(f"Attribute {name!r} has an unknown type {kind!r}")
            members["type"] = kind
            return str(kind), members
        for kind_name, member in ATTRIBUTE_KINDS.items():
            if member in members and member != "value":
                return kind_name, members
        if "value" in members:
            return ("GeoProperty" if _is_geometry(members["value"]) else "Property"), members
        if self.partial:
            return None, members
        if any(key in _RESERVED or key.startswith("@") for key in members):
            raise BadRequestData(f"Attribute {name!r} has no value member")
        return "Property", {"value": members}  # a bare JSON object is a concise value

    def instance(self, name: str, iri: str, raw: Any, *, top: bool) -> dict[str, Any]:
        """Parse one attribute instance."""
        kind, members = self.infer(name, raw)
        if kind is not None:
            allowed = _COMMON | _ALLOWED[kind]
            value_member = ATTRIBUTE_KINDS[kind]
            if value_member not in members and not self.partial:
                raise BadRequestData(f"{kind} {name!r} lacks its {value_member!r} member")
        else:
            allowed = _COMMON | {m for ms in _ALLOWED.values() for m in ms}
        if (
            iri in GEO_ATTRIBUTES
            and kind not in (None, "GeoProperty")
            and not (self.null_ok() and members.get(ATTRIBUTE_KINDS[str(kind)]) == NULL)
        ):
            raise BadRequestData(f"Attribute {name!r} must be a GeoProperty (§4.7.1)")
        if iri == NGSILDPROOF:
            allowed = allowed | {"entityIdSealed", "entityTypeSealed"}
        out: dict[str, Any] = {} if kind is None else {"type": kind}
        for key, value in members.items():
            if key == "type":
                continue
            if key == "@context":
                raise BadRequestData(f"Attribute {name!r} cannot carry its own @context (§5.5.7)")
            if key in _RESERVED or key.startswith("@"):
                if key not in allowed:
                    raise BadRequestData(
                        f"Member {key!r} is not allowed in {kind or 'an attribute'} {name!r}"
                    )
                self.member(name, kind, key, value, out)
            else:
                sub_iri, (sub,) = self.attribute(key, value, top=False)
                if sub_iri in out:
                    raise BadRequestData(f"Sub-attribute {key!r} of {name!r} is given twice")
                out[sub_iri] = sub
        proof = out.get("value")
        if iri == NGSILDPROOF and proof not in (None, NULL) and not isinstance(proof, dict):
            raise BadRequestData("ngsildproof value must be a proof object (§4.5.2.2)")
        if top:
            out["createdAt"] = self.now
            out["modifiedAt"] = self.now
        return out

    def member(
        self, name: str, kind: str | None, key: str, value: Any, out: dict[str, Any]
    ) -> None:
        """Validate one reserved member and store it in `out` (internal form)."""
        where = f"{kind or 'Attribute'} {name!r}"
        if key in _SYSTEM:
            return  # §4.8: system attributes are set by the broker
        if key in {"observedAt", "expiresAt"}:
            if not (self.mode == "merge" and value == NULL) and not is_datetime(value):
                raise BadRequestData(f"{where}: {key} must be a UTC DateTime string, got {value!r}")
            out[key] = value
        elif key == "unitCode":
            if value == NULL and self.mode != "merge":
                raise BadRequestData(f"{where}: the NGSI-LD Null is not allowed in unitCode here")
            if not isinstance(value, str) or not value:
                raise BadRequestData(f"{where}: unitCode must be a non-empty string")
            out[key] = value
        elif key == "datasetId":
            if value == "@none":
                return  # §4.5.5: the default instance
            if not isinstance(value, str) or value == NULL or not is_uri(value):
                raise BadRequestData(f"{where}: datasetId must be a URI, got {value!r}")
            out[key] = value
        elif key in {"objectType", "valueType"}:
            out[key] = self.vocab_values(where, key, value)
            if (
                kind == "LanguageProperty"
                and key == "valueType"
                and value not in ("langString", LANG_STRING)
            ):
                raise BadRequestData(f"{where}: valueType must be langString (§5.2.32)")
        elif key == "entityIdSealed":
            if not isinstance(value, str) or not value:
                raise BadRequestData(f"{where}: entityIdSealed must be a string")
            out[key] = value
        elif key == "entityTypeSealed":
            if not isinstance(value, str) or not value:
                raise BadRequestData(f"{where}: entityTypeSealed must be a string")
            out[key] = self.vocab.expand_value(value)
        else:
            out[key] = self.kind_value(where, kind, key, value)

    def vocab_values(self, where: str, key: str, value: Any) -> str | list[str]:
        """Expand a @vocab-typed string or list of strings."""
        if isinstance(value, str) and value:
            return self.vocab.expand_value(value)
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return [self.vocab.expand_value(v) for v in value]
        raise BadRequestData(f"{where}: {key} must be a string or a list of strings")

    def kind_value(self, where: str, kind: str | None, key: str, value: Any) -> Any:
        """Validate the member carrying an attribute's value; return its internal form."""
        is_null = (
            value == NULL
            or (key in {"valueList", "objectList"} and value == [NULL])
            or (key == "objectList" and value == [{"object": NULL}])
        )
        if is_null and not self.null_ok():
            raise BadRequestData(f"{where}: the NGSI-LD Null cannot be created (§5.2.1)")
        if key == "value":
            if value is None:
                raise BadRequestData(f"{where}: value cannot be null (§5.2.1)")
            if is_null:
                return NULL
            if kind == "GeoProperty":
                return self.geometry(where, value)
            self.check_nested_nulls(where, value)
            return value
        if key == "object":
            uris = value if isinstance(value, list) else [value]
            if is_null:
                return NULL
            if not uris or not all(isinstance(u, str) and u != NULL and is_uri(u) for u in uris):
                raise BadRequestData(f"{where}: object must be a URI, got {value!r}")
            return value
        if key == "objectList":
            if is_null:
                return [NULL] if isinstance(value, list) else NULL
            if not isinstance(value, list):
                raise BadRequestData(f"{where}: objectList must be an array")
            result: list[str] = []
            for entry in value:
                uri = entry.get("object") if isinstance(entry, dict) else entry
                if isinstance(entry, dict) and set(entry) != {"object"}:
                    raise BadRequestData(
                        f"{where}: objectList entries are URIs or {{'object': URI}}"
                    )
                if not isinstance(uri, str) or uri == NULL or not is_uri(uri):
                    raise BadRequestData(f"{where}: objectList entry {entry!r} is not a URI")
                result.append(uri)
            return result
        if key == "valueList":
            if is_null:
                return value
            if not isinstance(value, list) or any(v is None for v in value):
                raise BadRequestData(f"{where}: valueList must be an array of non-null values")
            self.check_nested_nulls(where, value)
            return value
        if key == "languageMap":
            return self.language_map(where, value)
        if key == "vocab":
            if is_null:
                return NULL
            return self.vocab_values(where, key, value)
        if key == "json":
            if is_null:
                return NULL
            # §4.5.24.2: a raw JSON object or an array of objects; contents are opaque
            if isinstance(value, dict) or (
                isinstance(value, list) and all(isinstance(v, dict) for v in value)
            ):
                return value
            raise BadRequestData(f"{where}: json must be a JSON object or an array of objects")
        raise BadRequestData(f"{where}: unexpected member {key!r}")  # pragma: no cover

    def geometry(self, where: str, value: Any) -> Any:
        """Validate a GeoProperty value; string-encoded geometries are decoded (§4.7.2)."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise BadRequestData(f"{where}: value is not a GeoJSON geometry") from None
        if not isinstance(value, dict):
            raise BadRequestData(f"{where}: value must be a GeoJSON geometry")
        try:
            return _validate_geometry(value)
        except BadRequestData as exc:
            raise BadRequestData(f"{where}: {exc.detail}") from None

    def language_map(self, where: str, value: Any) -> dict[str, Any]:
        """Validate a LanguageProperty languageMap (§4.5.18, §4.6.5)."""
        if not isinstance(value, dict) or not value:
            raise BadRequestData(f"{where}: languageMap must be a non-empty object")
        if value == {"@none": NULL}:
            if not self.null_ok():
                raise BadRequestData(f"{where}: the NGSI-LD Null cannot be created (§5.2.1)")
            return dict(value)
        for tag, text in value.items():
            if tag != "@none" and not _LANGTAG.fullmatch(tag):
                raise BadRequestData(f"{where}: {tag!r} is not a language tag")
            ok = isinstance(text, str) or (
                isinstance(text, list) and bool(text) and all(isinstance(t, str) for t in text)
            )
            if not ok:
                raise BadRequestData(f"{where}: language {tag!r} must map to strings")
        self.check_nested_nulls(where, value)
        return dict(value)

    # -- entity level ----------------------------------------------------------------------

    def types(self, value: Any) -> list[str]:
        """Validate and expand an entity's type member (string or non-empty list)."""
        names = value if isinstance(value, list) else [value]
        if not names:
            raise BadRequestData("Entity type cannot be an empty list")
        if any(isinstance(n, str) and n in {"id", "type", "@id", "@type"} for n in names):
            raise BadRequestData(f"Entity type {value!r} is a reserved keyword")
        return sorted({_expand_name(n, self.vocab, "Entity type") for n in names})

    def scope(self, value: Any) -> list[str]:
        """Validate a scope member: one scope or a list of them (§4.18)."""
        if value in (NULL, [NULL]):
            if self.null_ok():
                return [NULL]  # deletes the scope in update/merge
            raise BadRequestData("scope cannot be the NGSI-LD Null on creation (§4.18)")
        scopes = value if isinstance(value, list) else [value]
        if not scopes:
            raise BadRequestData("scope cannot be an empty list")
        for s in scopes:
            if not isinstance(s, str) or not _SCOPE.fullmatch(s):
                raise BadRequestData(f"scope {s!r} is not a valid scope (§4.18)")
        return list(dict.fromkeys(scopes))

    def members(self, payload: dict[str, Any], doc: dict[str, Any], attrs: dict[str, Any]) -> None:
        """Parse the attribute members of an entity or fragment into `attrs`."""
        for key, raw in payload.items():
            if key in {"@context", "id", "@id", "type", "@type", "scope"}:
                continue
            if key in _ENTITY_SYSTEM:
                continue  # §4.8: client-supplied system attributes are ignored
            if key == "expiresAt":
                if not is_datetime(raw):
                    raise BadRequestData(f"expiresAt must be a UTC DateTime string, got {raw!r}")
                doc["expiresAt"] = raw
                continue
            iri, instances = self.attribute(key, raw, top=True)
            if iri in attrs:
                # two spellings of one name (short and expanded): one attribute
                merged = attrs[iri] + instances
                if len({i.get("datasetId") for i in merged}) != len(merged):
                    raise BadRequestData(f"Attribute {key!r} is given twice")
                attrs[iri] = merged
            else:
                attrs[iri] = instances


# --------------------------------------------------------------------------------------------
# public API


def parse_entity(
    payload: Any, vocab: Vocabulary, *, now: str, id_required: bool = True
) -> dict[str, Any]:
    """Parse a whole entity (normalized or concise) into an internal document."""
    if not isinstance(payload, dict):
        raise BadRequestData("An entity must be a JSON object")
    parser = _Parser(vocab, now, "create")
    doc: dict[str, Any] = {}
    raw_id = payload.get("id", payload.get("@id"))
    if raw_id is not None:
        doc["id"] = validate_entity_id(raw_id)
    elif id_required:
        raise BadRequestData("Entity id is missing")
    raw_type = payload.get("type", payload.get("@type"))
    if raw_type is None:
        raise BadRequestData("Entity type is missing")
    doc["type"] = parser.types(raw_type)
    if "scope" in payload:
        doc["scope"] = parser.scope(payload["scope"])
    doc["createdAt"] = now
    doc["modifiedAt"] = now
    attrs: dict[str, list[dict[str, Any]]] = {}
    parser.members(payload, doc, attrs)
    doc["attrs"] = attrs
    return doc


def parse_temporal_entity(
    payload: Any, vocab: Vocabulary, *, now: str, id_required: bool = True
) -> dict[str, Any]:
    """Parse an entity's temporal representation (§4.5.7, normalized): like `parse_entity`,
    but an attribute's array holds instances in time, so datasetIds may repeat."""
    if not isinstance(payload, dict):
        raise BadRequestData("A temporal entity must be a JSON object")
    parser = _Parser(vocab, now, "create")
    parser.temporal = True
    doc: dict[str, Any] = {}
    raw_id = payload.get("id", payload.get("@id"))
    if raw_id is not None:
        doc["id"] = validate_entity_id(raw_id)
    elif id_required:
        raise BadRequestData("Entity id is missing")
    raw_type = payload.get("type", payload.get("@type"))
    if raw_type is not None:
        doc["type"] = parser.types(raw_type)
    elif id_required:
        raise BadRequestData("Entity type is missing")
    if "scope" in payload:
        doc["scope"] = parser.scope(payload["scope"])
    attrs: dict[str, list[dict[str, Any]]] = {}
    parser.members(payload, doc, attrs)
    doc["attrs"] = attrs
    return doc


def parse_attributes(
    payload: Any,
    vocab: Vocabulary,
    *,
    now: str,
    allow_id_type: bool = False,
    mode: Mode = "update",
) -> dict[str, Any]:
    """Parse an entity fragment (append/update/merge bodies): attribute IRI -> instances.

    `mode` decides the NGSI-LD Null: "create" rejects it, "update" keeps it where it deletes
    an attribute or instance, "merge" also keeps it nested in compound values (§5.5.12).
    With `allow_id_type`, "id", "type" (expanded, sorted list) and "scope" are passed through
    under those keys; otherwise they are ignored. An "expiresAt" member is passed through.
    """
    if not isinstance(payload, dict):
        raise BadRequestData("An entity fragment must be a JSON object")
    parser = _Parser(vocab, now, mode)
    out: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    if allow_id_type:
        raw_id = payload.get("id", payload.get("@id"))
        if raw_id is not None:
            out["id"] = validate_entity_id(raw_id)
        raw_type = payload.get("type", payload.get("@type"))
        if raw_type is not None:
            out["type"] = parser.types(raw_type)
        if "scope" in payload:
            out["scope"] = parser.scope(payload["scope"])
    parser.members(payload, out, attrs)
    out.update(attrs)
    return out


def parse_attribute(
    name: str,
    value: Any,
    vocab: Vocabulary,
    *,
    now: str,
    mode: Mode = "update",
    partial: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """Parse one attribute given by name; return (expanded name, instances).

    `partial` admits the fragment of a partial attribute update (§5.6.4): the value member may
    be absent, and "type" is then absent too when it cannot be inferred.
    """
    return _Parser(vocab, now, mode, partial).attribute(name, value, top=True)
