"""Internal entity documents for the storage tests."""

from __future__ import annotations

from typing import Any

NS = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
STAMP = "2026-01-01T00:00:00.000000Z"


def entity(key: int | str, type_: str = "T", /, **attrs: Any) -> dict[str, Any]:
    """An internal entity document with Property attributes (`name=value`)."""
    doc: dict[str, Any] = {
        "id": f"urn:ngsi-ld:{type_}:{key}",
        "type": [NS + type_],
        "createdAt": STAMP,
        "modifiedAt": STAMP,
        "attrs": {},
    }
    for name, value in attrs.items():
        if name == "location":
            doc["attrs"][LOCATION] = [{"type": "GeoProperty", "value": value}]
        elif isinstance(value, dict) and "type" in value:
            doc["attrs"][NS + name] = [value]
        else:
            doc["attrs"][NS + name] = [{"type": "Property", "value": value}]
    return doc
