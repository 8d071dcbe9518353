"""Index rows and their diff (`storage.indexing`): only what changed is rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from smartregion.storage.indexing import GeometryRow, index_change

NS = "https://uri.etsi.org/ngsi-ld/default-context/"
LOC = "https://uri.etsi.org/ngsi-ld/location"


def _doc(
    temperature: Any, humidity: Any, point: list[float], *, stamp: str = "t1"
) -> dict[str, Any]:
    def prop(value: Any) -> dict[str, Any]:
        return {"type": "Property", "value": value, "createdAt": "t0", "modifiedAt": stamp}

    return {
        "id": "urn:ngsi-ld:T:1",
        "type": [NS + "T"],
        "attrs": {
            NS + "temperature": [prop(temperature)],
            NS + "humidity": [prop(humidity)],
            LOC: [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": point}}],
        },
    }


def test_only_changed_attributes_are_rewritten() -> None:
    old = _doc(20.5, 70, [3.7, 51.0])
    new = _doc(21.5, 70, [3.7, 51.0], stamp="t2")  # modifiedAt alone does not count
    change = index_change(old, new)
    assert change.attrs_cleared == [NS + "temperature"]
    assert [(v[0], v[4]) for v in change.values] == [(NS + "temperature", 21.5)]
    assert change.geo_cleared == [] and change.geoms == []
    assert change.replaced and change.types_added == [] and change.types_removed == []


def test_a_moved_point_rewrites_its_geometry_rows() -> None:
    change = index_change(_doc(1, 2, [3.7, 51.0]), _doc(1, 2, [3.8, 51.1]))
    assert change.attrs_cleared == [LOC] and change.geo_cleared == [LOC]
    (row,) = change.geoms
    assert row.point == (3.8, 51.1) and row.bbox == (3.8, 51.1, 3.8, 51.1)


def test_other_target_members_still_count_when_the_value_is_equal() -> None:
    old = _doc(1, 2, [3.7, 51.0])
    new = _doc(1, 2, [3.7, 51.0])
    new["attrs"][NS + "humidity"][0]["type"] = "JsonProperty"
    new["attrs"][NS + "humidity"][0]["json"] = {"a": 1}
    assert index_change(old, new).attrs_cleared == [NS + "humidity"]


def test_a_new_document_yields_every_row() -> None:
    change = index_change(None, _doc(1, "x", [3.7, 51.0]))
    assert not change.replaced and change.attrs_cleared == []
    assert sorted((v[0], v[4], v[5]) for v in change.values) == sorted(
        [(NS + "temperature", 1.0, None), (NS + "humidity", None, "x"), (LOC, None, None)]
    )
    assert [g.attr for g in change.geoms] == [LOC]


def test_geometry_rows_are_immutable() -> None:
    row = GeometryRow(LOC, 0, {"type": "Point", "coordinates": [1.0, 2.0]}, (1.0, 2.0, 1.0, 2.0))
    with pytest.raises(AttributeError):
        row.inst = 1  # type: ignore[misc]
    assert row.point == (1.0, 2.0)
