"""The index rows an internal entity document yields (shared by every backend).

The attribute-value table mirrors what `smartregion.core.qlang` compares (NGSI-LD 1.8 §4.9): one
row per target element of every instance of every top-level attribute, so SQL can decide plain
`attr op value` terms the way `qlang.matches` does:

- each Mapping instance yields its target value (by attribute type: `value`, `object`,
  `objectList`, flattened `languageMap` values, `vocab`, `valueList`, `json`); an array target
  yields one row per element, an empty one a single row without a value, so that every instance
  has at least one row (`elem = 0`) and existence is decidable;
- numbers go to `num` (never booleans: `qlang` keeps data types apart), strings to `txt`;
- integers beyond ±2**53 cannot be compared exactly as doubles: their rows are marked `opaque`,
  which makes the query planner fall back to Python for that attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from smartregion.core.geo import geometry_bbox, validate_geometry
from smartregion.errors import BadRequestData

__all__ = [
    "KIND_CODES",
    "KIND_NAMES",
    "MAX_EXACT_INT",
    "RELATIONSHIP_KINDS",
    "GeometryRow",
    "IndexChange",
    "ValueTuple",
    "geometry_rows",
    "index_change",
    "value_rows",
]

#: attribute types, dictionary-encoded in the `kind` column (0 = unknown)
KIND_CODES: dict[str, int] = {
    "Property": 1,
    "Relationship": 2,
    "GeoProperty": 3,
    "LanguageProperty": 4,
    "JsonProperty": 5,
    "VocabProperty": 6,
    "ListProperty": 7,
    "ListRelationship": 8,
}
KIND_NAMES: dict[int, str] = {code: name for name, code in KIND_CODES.items()}
#: kinds whose targets only take `==` / `!=` (NGSI-LD 1.8 §4.9)
RELATIONSHIP_KINDS = (2, 8)
#: doubles represent every integer up to this magnitude exactly
MAX_EXACT_INT = 2**53

_MEMBERS = {"JsonProperty": "json", "VocabProperty": "vocab", "ListProperty": "valueList"}


class GeometryRow(NamedTuple):
    """One GeoProperty instance's geometry and its lon/lat bounding box."""

    # a NamedTuple, not a frozen dataclass: as immutable, and built ~4x faster (one per
    # GeoProperty instance of every entity a batch writes)

    attr: str
    inst: int
    geojson: dict[str, Any]
    bbox: tuple[float, float, float, float]

    @property
    def point(self) -> tuple[float, float] | None:
        """(lon, lat) when the geometry is a Point."""
        if self.geojson.get("type") != "Point":
            return None
        return self.bbox[0], self.bbox[1]


def _target(instance: Mapping[str, Any]) -> tuple[bool, Any]:
    """(has a target, target value) as `qlang._targets` sees a plain path."""
    kind = instance.get("type")
    if kind == "Relationship":
        return True, instance.get("object")
    if kind == "ListRelationship":
        objects = instance.get("objectList")
        items = objects if isinstance(objects, list) else [] if objects is None else [objects]
        return True, [o.get("object") if isinstance(o, dict) else o for o in items]
    if kind == "LanguageProperty":
        lmap = instance.get("languageMap")
        if not isinstance(lmap, dict):
            return False, None
        flat: list[Any] = []
        for v in lmap.values():
            flat.extend(v if isinstance(v, list) else [v])
        return True, flat
    member = _MEMBERS.get(kind, "value") if isinstance(kind, str) else "value"
    return True, instance.get(member)


def _element(value: Any) -> tuple[float | None, str | None, int]:
    if isinstance(value, bool):
        return None, None, 0
    if isinstance(value, int):
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            return float(value), None, 0
        return None, None, 1
    if isinstance(value, float):
        return value, None, 0
    if isinstance(value, str):
        return None, value, 0
    return None, None, 0


#: (attr, inst, elem, kind, num, txt, opaque)
ValueTuple = tuple[str, int, int, int, float | None, str | None, int]


def _attr_value_rows(attr: str, instances: Any, append: Callable[[ValueTuple], None]) -> None:
    if not isinstance(instances, list):
        instances = [instances]
    for inst, instance in enumerate(instances):
        if not isinstance(instance, dict):
            continue
        kind_name = instance.get("type")
        if kind_name == "Property":
            # the hot path: a plain Property with a scalar value
            value: Any = instance.get("value")
            t = type(value)
            if t is float:
                append((attr, inst, 0, 1, value, None, 0))
                continue
            if t is str:
                append((attr, inst, 0, 1, None, value, 0))
                continue
            if t is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
                append((attr, inst, 0, 1, float(value), None, 0))
                continue
        elif kind_name == "GeoProperty" and type(instance.get("value")) is dict:
            # a geometry is no comparable scalar: one row without a value (existence only)
            append((attr, inst, 0, 3, None, None, 0))
            continue
        else:
            present, value = _target(instance)
            if not present:
                continue
        kind = KIND_CODES.get(kind_name, 0) if isinstance(kind_name, str) else 0
        rel = kind in RELATIONSHIP_KINDS
        elements = value if isinstance(value, list) else [value]
        if not elements:
            append((attr, inst, 0, kind, None, None, 0))
            continue
        for elem, element in enumerate(elements):
            num, txt, opaque = _element(element)
            if rel and num is not None:
                # a Relationship never takes ordering operators: keep it out of `num`
                num, opaque = None, 1
            append((attr, inst, elem, kind, num, txt, opaque))


def value_rows(doc: Mapping[str, Any]) -> list[ValueTuple]:
    """The attribute-value index rows of a document, one tuple per target element."""
    rows: list[ValueTuple] = []
    attrs = doc.get("attrs")
    if isinstance(attrs, dict):
        for attr, instances in attrs.items():
            _attr_value_rows(attr, instances, rows.append)
    return rows


def _point_bbox(value: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """The box of a valid GeoJSON Point without the general validator (the common case)."""
    if value.get("type") != "Point":
        return None
    coords = value.get("coordinates")
    if type(coords) is not list or len(coords) not in (2, 3):
        return None
    x, y = coords[0], coords[1]
    if type(x) not in (float, int) or type(y) not in (float, int):
        return None
    if not (-180 <= x <= 180 and -90 <= y <= 90) or (
        len(coords) == 3 and type(coords[2]) not in (float, int)
    ):
        return None
    return float(x), float(y), float(x), float(y)


def _attr_geometry_rows(attr: str, instances: Any, append: Callable[[GeometryRow], None]) -> None:
    if not isinstance(instances, list):
        return
    for inst, instance in enumerate(instances):
        if not isinstance(instance, dict) or instance.get("type") != "GeoProperty":
            continue
        value = instance.get("value")
        if not isinstance(value, dict):
            continue
        bbox = _point_bbox(value)
        if bbox is None:
            try:
                validate_geometry(value)
                bbox = geometry_bbox(value)
            except BadRequestData:
                continue  # `geo_matches` skips it too: it can never match a geo-query
        append(GeometryRow(attr, inst, value, bbox))


def geometry_rows(doc: Mapping[str, Any]) -> list[GeometryRow]:
    """The geometry index rows of a document: every valid GeoProperty instance value."""
    rows: list[GeometryRow] = []
    attrs = doc.get("attrs")
    if isinstance(attrs, dict):
        for attr, instances in attrs.items():
            _attr_geometry_rows(attr, instances, rows.append)
    return rows


@dataclass(slots=True)
class IndexChange:
    """How an entity's index rows change when its document is replaced."""

    types_removed: list[str]
    types_added: list[str]
    #: attributes whose value rows are deleted (then `values` inserted)
    attrs_cleared: list[str]
    values: list[ValueTuple]
    #: attributes whose geometry rows are deleted (then `geoms` inserted)
    geo_cleared: list[str]
    geoms: list[GeometryRow]
    #: all the entity's types (its type set, denormalised into the attribute-value rows)
    types: list[str]
    #: whether the entity had index rows before (so a changed type set must be rewritten)
    replaced: bool = False


def _types(doc: Mapping[str, Any]) -> list[str]:
    types = doc.get("type") or []
    return list(types) if isinstance(types, list) else [types]


_TARGET_MEMBERS = (
    "type",
    "value",
    "object",
    "objectList",
    "languageMap",
    "json",
    "vocab",
    "valueList",
)


def _same_targets(old: Any, new: Any) -> bool:
    """Whether two attributes yield the same index rows (metadata such as modifiedAt aside)."""
    if not isinstance(old, list) or not isinstance(new, list):
        return bool(old == new)
    if len(old) != len(new):
        return False
    if len(old) == 1:
        a, b = old[0], new[0]
        if type(a) is dict and type(b) is dict and a.get("value") != b.get("value"):
            # the common case of an update: one instance whose value changed
            return False
    for a, b in zip(old, new, strict=True):
        if a is b:
            continue
        if not isinstance(a, dict) or not isinstance(b, dict):
            if a != b:
                return False
            continue
        # the value member usually differs: compared second, it ends most calls early
        for member in _TARGET_MEMBERS:
            if a.get(member) != b.get(member):
                return False
    return True


def index_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> IndexChange:
    """The index rows to delete and insert to go from `old` (None: no rows yet) to `new`.

    Only attributes whose targets changed are rewritten: a batch upsert that changes one
    attribute of each entity touches one attribute's rows, not the whole entity's.
    """
    new_attrs = new.get("attrs")
    if not isinstance(new_attrs, dict):
        new_attrs = {}
    old_attrs: Any = {} if old is None else old.get("attrs")
    if not isinstance(old_attrs, dict):
        old_attrs = {}
    types = _types(new)
    old_types = [] if old is None else _types(old)
    change = IndexChange([], [], [], [], [], [], sorted(set(types)), old is not None)
    if types != old_types:  # usually equal: a write rarely changes an entity's types
        change.types_removed = sorted(set(old_types) - set(types))
        change.types_added = sorted(set(types) - set(old_types))
    for attr, instances in new_attrs.items():
        previous = old_attrs.get(attr)
        if previous is not None and _same_targets(previous, instances):
            continue
        if previous is not None:
            change.attrs_cleared.append(attr)
            if _has_geometry(previous):
                change.geo_cleared.append(attr)
        _attr_value_rows(attr, instances, change.values.append)
        _attr_geometry_rows(attr, instances, change.geoms.append)
    for attr, previous in old_attrs.items():
        if attr not in new_attrs:
            change.attrs_cleared.append(attr)
            if _has_geometry(previous):
                change.geo_cleared.append(attr)
    return change


def _has_geometry(instances: Any) -> bool:
    items = instances if isinstance(instances, list) else [instances]
    # a plain loop: a generator in any() costs more than the test itself
    for i in items:  # noqa: SIM110
        if isinstance(i, dict) and i.get("type") == "GeoProperty":
            return True
    return False
