"""`WriteAccess` (governance/ownership.py): mandates for data sets with a scope."""

from __future__ import annotations

from typing import Any

from smartregion.governance import WriteAccess

NS = "https://uri.etsi.org/ngsi-ld/default-context/"


def doc(scope: list[str] | None = None, type_: str = "Room") -> dict[str, Any]:
    out: dict[str, Any] = {"id": "urn:ngsi-ld:Room:1", "type": [NS + type_], "attrs": {}}
    if scope is not None:
        out["scope"] = scope
    return out


def test_a_mandate_for_a_scoped_data_set_covers_the_entities_within_its_scope() -> None:
    writer = WriteAccess("supplier", datasets=(("city", frozenset({NS + "Room"}), "/Centre"),))
    for inside in (["/Centre"], ["Centre/North"], ["/Harbour", "/Centre/South"]):
        assert writer.may_write("city", doc(inside))
        assert writer.owner_of_new(doc(inside)) == "city"
    for outside in (None, ["/Harbour"], ["/CentreNorth"], ["/Old/Centre"]):
        assert not writer.may_write("city", doc(outside))
        assert writer.owner_of_new(doc(outside)) == "supplier"
    # the data set's type still decides, and other owners are never covered
    assert not writer.may_write("city", doc(["/Centre"], "Lamp"))
    assert not writer.may_write("stranger", doc(["/Centre"]))
    # an unscoped data set covers every entity of its types
    whole = WriteAccess("supplier", datasets=(("city", frozenset({NS + "Room"}), None),))
    assert whole.may_write("city", doc(None)) and whole.owner_of_new(doc(["/Harbour"])) == "city"
