"""orderBy parsing and sorting on internal documents."""

from __future__ import annotations

import pytest

from smartregion.core.ordering import OrderKey, parse_order_by, sort_documents
from smartregion.errors import BadRequestData

V = "https://uri.etsi.org/ngsi-ld/default-context/"


def expand(term: str) -> str:
    return V + term


def building(n: str, name: str | None, created: str, sub: int | None = None) -> dict[str, object]:
    attrs: dict[str, object] = {}
    if name is not None:
        inst: dict[str, object] = {"type": "Property", "value": name, "createdAt": created}
        if sub is not None:
            inst[V + "subProperty"] = {"type": "Property", "value": sub}
        attrs[V + "name"] = [inst]
    return {
        "id": f"urn:ngsi-ld:Building:{n}",
        "type": [V + "Building"],
        "createdAt": created,
        "attrs": attrs,
    }


DOCS = [
    building("2", "b", "2026-01-01T00:00:00.000001Z", sub=2),
    building("1", "a", "2026-01-01T00:00:00.000002Z", sub=1),
    building("3", "c", "2026-01-01T00:00:00.000003Z", sub=3),
]


def ids(docs: list[dict[str, object]]) -> list[str]:
    return [str(d["id"])[-1] for d in docs]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("name", ["1", "2", "3"]),
        ("id", ["1", "2", "3"]),
        ("createdAt", ["2", "1", "3"]),
        ("name.createdAt", ["2", "1", "3"]),
        ("name.subProperty", ["1", "2", "3"]),
        ("name;desc", ["3", "2", "1"]),
        ("type,name", ["1", "2", "3"]),
        ("type;asc,name.subProperty;desc,name;asc", ["3", "2", "1"]),
    ],
)
def test_sort(order: str, expected: list[str]) -> None:
    assert ids(sort_documents(DOCS, parse_order_by(order, expand))) == expected


def test_missing_values_sort_last_in_both_directions() -> None:
    docs = [building("9", None, "2026-01-01T00:00:00Z"), *DOCS]
    assert ids(sort_documents(docs, parse_order_by("name", expand)))[-1] == "9"
    assert ids(sort_documents(docs, parse_order_by("name;desc", expand)))[-1] == "9"


def test_mixed_value_types_do_not_crash() -> None:
    docs = [building("1", "a", "x"), building("2", "b", "x")]
    docs[1]["attrs"][V + "name"][0]["value"] = 5  # type: ignore[index]
    assert ids(sort_documents(docs, parse_order_by("name", expand))) == ["2", "1"]


@pytest.mark.parametrize("bad", ["", "name;up", "name,,id", "a b", "name."])
def test_bad_order_by(bad: str) -> None:
    with pytest.raises(BadRequestData):
        parse_order_by(bad, expand)


def test_parse_shape() -> None:
    assert parse_order_by("name.createdAt;desc", expand) == [
        OrderKey(member=None, attr=V + "name", sub="createdAt", descending=True)
    ]
