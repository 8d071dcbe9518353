"""Privacy transforms (core/privacy.py): attribute classes, k-threshold suppression, coarsening."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartregion.core.privacy import (
    Access,
    Disclosure,
    Privacy,
    SliceView,
    coarsen_geometry,
    coarsen_timestamp,
    disclose_document,
    disclose_instances,
    suppress_counts,
)
from smartregion.errors import BadRequestData

NS = "https://example.org/"


def expand(name: str) -> str:
    return NS + name


def prop(value: object, **extra: object) -> list[dict[str, object]]:
    return [{"type": "Property", "value": value, **extra}]


def test_parse_expands_names_and_round_trips() -> None:
    p = Privacy.parse(
        {
            "personal": ["owner"],
            "sensitive": ["plate"],
            "counts": ["people", "total"],
            "k": 10,
            "coarsenTime": 3600,
            "coarsenPlace": 500,
        },
        expand,
    )
    assert p.personal == {NS + "owner"} and p.counts == {NS + "people", NS + "total"}
    assert p.k == 10 and p.coarsen_time == 3600 and p.coarsen_place == 500.0
    assert Privacy.from_json(p.to_json()) == p
    assert Privacy.parse({}, expand).empty and Privacy.parse(None, expand).empty


@pytest.mark.parametrize(
    "raw",
    [
        {"personel": ["x"]},  # unknown members are refused, never ignored (fail closed)
        {"personal": "x"},
        {"personal": [""]},
        {"k": 1},
        {"k": True},
        {"coarsenTime": 0},
        {"coarsenTime": 1.5},
        {"coarsenPlace": 0},
        {"personal": ["a"], "counts": ["a"]},
        [],
    ],
)
def test_parse_refuses_what_it_does_not_understand(raw: object) -> None:
    with pytest.raises(BadRequestData):
        Privacy.parse(raw, expand)  # type: ignore[arg-type]


def test_who_sees_which_classes() -> None:
    p = Privacy.parse({"personal": ["owner"], "sensitive": ["plate"]}, expand)
    doc = {
        "id": "urn:x:1",
        "type": [NS + "Car"],
        "attrs": {
            NS + "owner": prop("Jan"),
            NS + "plate": prop("1-ABC-123"),
            NS + "speed": prop(50),
        },
    }
    assert disclose_document(doc, Access.FULL, p) == doc
    assert set(disclose_document(doc, Access.GRANTED, p)["attrs"]) == {NS + "plate", NS + "speed"}
    assert set(disclose_document(doc, Access.OPEN, p)["attrs"]) == {NS + "speed"}
    assert set(doc["attrs"]) == {NS + "owner", NS + "plate", NS + "speed"}  # input untouched


def test_times_and_places_are_coarsened_in_open_views_only() -> None:
    p = Privacy.parse({"coarsenTime": 3600, "coarsenPlace": 1000}, expand)
    point = {"type": "Point", "coordinates": [3.72451, 51.05432]}
    doc = {
        "id": "urn:x:1",
        "type": [NS + "Counter"],
        "modifiedAt": "2026-11-27T10:42:13.123456Z",
        "attrs": {
            NS + "location": [{"type": "GeoProperty", "value": point}],
            NS + "n": prop(12, observedAt="2026-11-27T10:42:13.000Z"),
        },
    }
    seen = disclose_document(doc, Access.OPEN, p)
    assert seen["modifiedAt"] == "2026-11-27T10:00:00Z"
    assert seen["attrs"][NS + "n"][0]["observedAt"] == "2026-11-27T10:00:00Z"
    snapped = seen["attrs"][NS + "location"][0]["value"]
    assert snapped["type"] == "Point" and snapped["coordinates"] != point["coordinates"]
    # within a cell's size of the truth, and the same for every point of that cell
    lon, lat = snapped["coordinates"]
    assert abs(lat - 51.05432) * 111_320 <= 500 + 1
    assert abs(lon - 3.72451) * 111_320 * math.cos(math.radians(lat)) <= 500 * 1.01 + 1
    nearby = coarsen_geometry({"type": "Point", "coordinates": [3.72452, 51.05433]}, 1000)
    assert nearby["coordinates"] == snapped["coordinates"]
    assert disclose_document(doc, Access.GRANTED, p) == doc


def test_lines_and_polygons_become_their_cell() -> None:
    line = {"type": "LineString", "coordinates": [[3.70, 51.00], [3.80, 51.10]]}
    out = coarsen_geometry(line, 5000)
    assert out["type"] == "Point"
    assert coarsen_geometry({"type": "Point", "coordinates": [3.75, 51.05]}, 5000) == out


def test_coarsen_timestamp_truncates_to_the_grid() -> None:
    assert coarsen_timestamp("2026-11-27T10:42:13Z", 900) == "2026-11-27T10:30:00Z"
    assert coarsen_timestamp("2026-11-27T23:59:59.999Z", 86_400) == "2026-11-27T00:00:00Z"
    assert coarsen_timestamp("not a time", 60) == "not a time"


def test_small_counts_are_suppressed_with_a_second_cell() -> None:
    assert suppress_counts({"a": 3, "b": 40, "c": 12}, 5) == {"a", "c"}  # the next smallest too
    assert suppress_counts({"a": 3, "b": 4, "c": 40}, 5) == {"a", "b"}  # together 7: not small
    assert suppress_counts({"a": 0, "b": 9}, 5) == frozenset()  # zero discloses no one
    assert suppress_counts({"a": 7, "b": 9}, 5) == frozenset()
    assert suppress_counts({"a": 2}, 5) == {"a"}


def test_suppressed_cells_whose_sum_is_small_take_another_cell() -> None:
    # 1 and 2 are both primary, but their sum (3, recoverable from a total) is small itself
    assert suppress_counts({"a": 1, "b": 2, "c": 40, "d": 50}, 5) == {"a", "b", "c"}


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 30), min_size=1), st.integers(2, 10)
)
def test_no_suppressed_count_can_be_recovered_from_a_total(cells: dict[str, int], k: int) -> None:
    """With the total of the cells published (or among them), every suppressed cell stays
    unknown: at least two are suppressed, and their sum is not a small count itself."""
    hidden = suppress_counts({n: float(v) for n, v in cells.items()}, k)
    for name, value in cells.items():
        if 0 < value < k:
            assert name in hidden  # primary
    if hidden and len(cells) > 1:
        assert len(hidden) >= 2
        assert sum(cells[n] for n in hidden) >= k or len(hidden) == len(cells)


def test_count_instances_below_k_are_left_out_of_open_histories() -> None:
    p = Privacy.parse({"counts": ["n"], "coarsenTime": 60}, expand)
    history = [
        {"type": "Property", "value": v, "observedAt": f"2026-11-27T10:0{i}:30Z"}
        for i, v in enumerate([2, 8, 0, 4])
    ]
    seen = disclose_instances(NS + "n", history, Access.OPEN, p)
    assert [i["value"] for i in seen] == [8, 0]
    assert [i["observedAt"] for i in seen] == ["2026-11-27T10:01:00Z", "2026-11-27T10:02:00Z"]
    assert disclose_instances(NS + "n", history, Access.GRANTED, p) == history


def test_the_most_permissive_admitting_data_set_decides() -> None:
    strict = Privacy.parse({"sensitive": ["plate"]}, expand)
    cars = frozenset({NS + "Car"})
    only_open = Disclosure(views=(SliceView("open", "gent", cars, Access.OPEN, strict),))
    assert only_open.view("gent", [NS + "Car"], None).access is Access.OPEN
    both = Disclosure(
        views=(
            SliceView("open", "gent", cars, Access.OPEN, strict),
            SliceView("granted", "gent", cars, Access.GRANTED, strict),
        )
    )
    view = both.view("gent", [NS + "Car"], None)
    assert view.access is Access.GRANTED and view.audited == ("granted",)
    assert both.view("other", [NS + "Car"], None).access is Access.FULL  # the filter decided
    assert (
        Disclosure(owners=frozenset({"gent"}), views=both.views).view("gent", [], None).access
        is Access.FULL
    )


def test_a_scoped_data_set_shows_only_the_entities_within_its_scope() -> None:
    strict = Privacy.parse({"sensitive": ["plate"]}, expand)
    cars = frozenset({NS + "Car"})
    d = Disclosure(
        views=(
            SliceView("centre", "gent", cars, Access.GRANTED, strict, "/Gent/Centrum"),
            SliceView("all", "gent", cars, Access.OPEN, strict),
        )
    )
    # within the granted data set's scope (or below it, or without the optional leading /)
    for scopes in (["/Gent/Centrum"], ["Gent/Centrum/Kouter"], ["/Elders", "/Gent/Centrum"]):
        assert d.view("gent", [NS + "Car"], scopes).access is Access.GRANTED
    # outside it only the open data set admits the entity
    for scopes in (None, [], ["/Gent"], ["/Gent/CentrumNoord"]):
        assert d.view("gent", [NS + "Car"], scopes).access is Access.OPEN
    # what a query may not test is told per (owner, types, scope) slice
    assert d.withheld(frozenset({NS + "plate"})) == [("gent", cars, None)]


def test_queries_cannot_test_what_a_view_hides() -> None:
    p = Privacy.parse(
        {"sensitive": ["plate"], "counts": ["n"], "coarsenTime": 3600, "coarsenPlace": 100}, expand
    )
    cars = frozenset({NS + "Car"})
    d = Disclosure(views=(SliceView("open", "gent", cars, Access.OPEN, p),))
    assert d.needed
    assert d.withheld(frozenset({NS + "speed"})) == []
    slice_ = [("gent", cars, None)]
    assert d.withheld(frozenset({NS + "plate"})) == slice_
    assert d.withheld(frozenset({NS + "n"})) == slice_  # suppressed values
    assert d.withheld(frozenset(), present=frozenset({NS + "n"})) == []  # projecting counts is fine
    assert d.withheld(frozenset(), present=frozenset({NS + "plate"})) == slice_
    assert d.withheld(frozenset(), times=True) == slice_
    assert d.withheld(frozenset(), bounds=[7200.0, 10800.0]) == []  # on the grid
    assert d.withheld(frozenset(), bounds=[7201.0]) == slice_
    assert d.withheld(frozenset(), geo=True) == slice_
    assert d.withheld(frozenset(), aggregate=True) == slice_
    # another data set admitting the same entities without rules keeps them selectable
    free = Disclosure(views=(*d.views, SliceView("all", "gent", cars, Access.OPEN, Privacy())))
    assert free.withheld(frozenset({NS + "plate"})) == []
    assert not Disclosure(views=(SliceView("x", "gent", cars, Access.OPEN, Privacy()),)).needed
