"""Ordering query results (`orderBy`, NGSI-LD 1.9 §4.23; exercised by the ETSI suite, 019_19).

`orderBy` is a comma-separated list of keys, each a member path with an optional `;asc` or
`;desc`: `id`, `type`, `createdAt`, `modifiedAt`, an attribute (`name`, its value), an
attribute's sub-attribute or system member (`name.subProperty`, `name.createdAt`). Entities that
lack a key sort after those that have it, whatever the direction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smartregion.errors import BadRequestData

_ENTITY_MEMBERS = {"id", "type", "createdAt", "modifiedAt"}
_META = {"createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId"}
_NAME = re.compile(r"^[^\s;,()<>\"'=]+$")


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One sort key: an entity member, or an attribute path, and a direction."""

    member: str | None  # id | type | createdAt | modifiedAt, or None for an attribute path
    attr: str | None = None  # expanded attribute IRI
    sub: str | None = None  # expanded sub-attribute IRI, or a meta member name
    descending: bool = False


def parse_order_by(text: str, expand: Callable[[str], str] = lambda s: s) -> list[OrderKey]:
    """Parse an `orderBy` value; BadRequestData on any malformed key."""
    keys: list[OrderKey] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise BadRequestData(f"orderBy {text!r} has an empty key")
        path, _, direction = part.partition(";")
        if direction not in ("", "asc", "desc"):
            raise BadRequestData(f"orderBy direction must be asc or desc, not {direction!r}")
        descending = direction == "desc"
        if not _NAME.match(path):
            raise BadRequestData(f"orderBy key {path!r} is not a member path")
        if path in _ENTITY_MEMBERS:
            keys.append(OrderKey(member=path, descending=descending))
            continue
        attr, _, sub = path.partition(".")
        if not attr or (_ and not sub):
            raise BadRequestData(f"orderBy key {path!r} is not a member path")
        sub_key = (sub if sub in _META else expand(sub)) if sub else None
        keys.append(OrderKey(member=None, attr=expand(attr), sub=sub_key, descending=descending))
    return keys


def _sortable(value: Any) -> tuple[int, Any] | None:
    # values of different JSON types never compare in Python: rank them (numbers, strings, other)
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if value is None:
        return None
    return (3, repr(value))


def _instance_value(instance: dict[str, Any]) -> Any:
    for member in ("value", "object", "vocab", "json", "valueList", "objectList"):
        if member in instance:
            return instance[member]
    if "languageMap" in instance:
        lang_map = instance["languageMap"]
        return (
            next(iter(sorted(lang_map.values(), key=str)), None)
            if isinstance(lang_map, dict)
            else None
        )
    return None


def key_value(doc: dict[str, Any], key: OrderKey) -> tuple[int, Any] | None:
    """The sortable value of `key` in an internal entity document (None when absent)."""
    if key.member is not None:
        value = doc.get(key.member)
        if key.member == "type" and isinstance(value, list):
            value = ",".join(value)
        return _sortable(value)
    instances = doc.get("attrs", {}).get(key.attr or "")
    if not instances:
        return None
    instance = instances[0]
    if key.sub is None:
        return _sortable(_instance_value(instance))
    sub = instance.get(key.sub)
    if isinstance(sub, dict):
        return _sortable(_instance_value(sub))
    return _sortable(sub)


def sort_documents(
    docs: Sequence[dict[str, Any]], keys: Sequence[OrderKey]
) -> list[dict[str, Any]]:
    """Stable multi-key sort; missing values last in either direction."""
    result = list(docs)
    for key in reversed(keys):
        valued = [(key_value(d, key), d) for d in result]
        present = [(v, d) for v, d in valued if v is not None]
        missing = [d for v, d in valued if v is None]
        present.sort(key=lambda pair: pair[0], reverse=key.descending)
        result = [d for _, d in present] + missing
    return result
