"""Temporal query parameters, instance selection and the temporal representations.

Expected shapes are those of the ETSI NGSI-LD test suite (data/temporalEntities/expectations);
each test names the suite test it mirrors.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from smartregion.core.entities import NGSI_LD, NULL
from smartregion.core.rendering import RenderOptions
from smartregion.core.temporal import TemporalQuery, parse_temporal_query, select_instances
from smartregion.core.temporal_rendering import (
    aggregate_entity,
    render_aggregated_entity,
    render_temporal_entity,
    select_entity,
)
from smartregion.errors import BadRequestData, InvalidRequest

D = "https://uri.etsi.org/ngsi-ld/default-context/"


class FakeVocab:
    """`x` <-> default-context/x; `location` maps into the ngsi-ld namespace."""

    def expand_term(self, term: str) -> str:
        if term == "location":
            return NGSI_LD + term
        return term if ":" in term or term in ("id", "type") else D + term

    def compact_iri(self, iri: str) -> str:
        if iri == NGSI_LD + "location":
            return "location"
        return iri[len(D) :] if iri.startswith(D) else iri

    def expand_value(self, value: str) -> str:
        return self.expand_term(value)

    def compact_value(self, iri: str) -> str:
        return self.compact_iri(iri)


V = FakeVocab()
EID = "urn:ngsi-ld:Vehicle:randomUUID"
_ids = itertools.count()
SYS = "2024-12-11T15:19:24.514781Z"


def inst(value: Any, at: str | None, kind: str = "Property", **extra: Any) -> dict[str, Any]:
    """An internal attribute instance as a store would hand it over."""
    member = {
        "Property": "value",
        "GeoProperty": "value",
        "Relationship": "object",
        "LanguageProperty": "languageMap",
        "JsonProperty": "json",
        "VocabProperty": "vocab",
        "ListProperty": "valueList",
        "ListRelationship": "objectList",
    }[kind]
    out: dict[str, Any] = {"type": kind, member: value}
    if at is not None:
        out["observedAt"] = at
    out.update(instanceId=f"urn:ngsi-ld:Instance:{next(_ids)}", createdAt=SYS, modifiedAt=SYS)
    out.update(extra)
    return out


def vehicle() -> dict[str, Any]:
    """The suite's 2020-08-vehicle-temporal-representation.jsonld as a temporal document."""
    return {
        "id": EID,
        "type": [D + "Vehicle"],
        "attrs": {
            D + "speed": [
                inst(120, "2020-08-01T12:03:00Z"),
                inst(80, "2020-08-01T12:05:00Z"),
                inst(100, "2020-08-01T12:07:00Z"),
            ],
            D + "fuelLevel": [
                inst(67, "2020-08-01T12:03:00Z"),
                inst(53, "2020-08-01T13:05:00Z"),
                inst(40, "2020-08-01T14:07:00Z"),
            ],
        },
    }


def strip_ids(body: Any) -> Any:
    """Drop instanceId (the suite ignores it: it is generated)."""
    if isinstance(body, dict):
        return {k: strip_ids(v) for k, v in body.items() if k != "instanceId"}
    if isinstance(body, list):
        return [strip_ids(v) for v in body]
    return body


def render(doc: dict[str, Any], params: dict[str, str], **opts: Any) -> dict[str, Any]:
    query = parse_temporal_query(params)
    selected = select_entity(doc, query)
    options = RenderOptions(**opts)
    if query.format == "aggregatedValues":
        aggregates = aggregate_entity(selected, V, query, options)
        return render_aggregated_entity(selected, aggregates, V, options)
    return strip_ids(render_temporal_entity(selected, V, query, options))


def prop(value: Any, at: str) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at}


# --------------------------------------------------------------------------------------------
# parameters


def test_defaults() -> None:
    query = parse_temporal_query({})
    assert query == TemporalQuery()
    assert query.timeproperty == "observedAt"
    assert query.format == "normalized"
    assert query.aggr_period.is_zero


def test_a_full_query() -> None:
    query = parse_temporal_query(
        {
            "timerel": "between",
            "timeAt": "2020-08-01T12:00:00Z",
            "endTimeAt": "2020-08-01T13:00:00Z",
            "timeproperty": "modifiedAt",
            "lastN": "5",
            "options": "aggregatedValues,sysAttrs",
            "aggrMethods": "max,avg,max",
            "aggrPeriodDuration": "PT4M",
        }
    )
    assert query.lower == datetime(2020, 8, 1, 12, tzinfo=UTC)
    assert query.upper == datetime(2020, 8, 1, 13, tzinfo=UTC)
    assert (query.timeproperty, query.last_n, query.format) == ("modifiedAt", 5, "aggregatedValues")
    assert query.sys_attrs
    assert query.aggr_methods == ("max", "avg")  # client order, repeats dropped
    assert query.aggr_period.micros == 4 * 60_000_000


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # suite 020_09: after/before without timeAt, between without endTimeAt
        ({"timerel": "after"}, "needs timeAt"),
        ({"timerel": "before", "timeAt": ""}, "needs timeAt"),
        ({"timerel": "between", "timeAt": "2020-08-01T12:00:00Z"}, "needs endTimeAt"),
        ({"timerel": "during", "timeAt": "2020-08-01T12:00:00Z"}, "not one of before"),
        ({"timerel": "after", "timeAt": "yesterday"}, "timeAt 'yesterday' is not"),
        (
            {"timerel": "between", "timeAt": "2020-08-01T12:00:00Z", "endTimeAt": "noon"},
            "endTimeAt 'noon' is not",
        ),
        (
            {
                "timerel": "between",
                "timeAt": "2020-08-01T12:00:00Z",
                "endTimeAt": "2020-08-01T12:00:00Z",
            },
            "must be after timeAt",
        ),
        (
            {
                "timerel": "after",
                "timeAt": "2020-08-01T12:00:00Z",
                "endTimeAt": "2020-08-01T13:00:00Z",
            },
            "only used with timerel=between",
        ),
        ({"timeAt": "2020-08-01T12:00:00Z"}, "need timerel"),
        ({"timeproperty": "expiresAt"}, "timeproperty 'expiresAt'"),
        ({"lastN": "0"}, "positive integer"),
        ({"lastN": "-3"}, "positive integer"),
        ({"lastN": "two"}, "positive integer"),
        ({"lastN": "1.5"}, "positive integer"),
        ({"aggrMethods": "avg,median"}, "'median' not among"),
        ({"aggrMethods": "avg,,max"}, "empty item"),
        ({"aggrPeriodDuration": "1 hour"}, "not an ISO 8601 duration"),
        ({"options": "aggregatedValues"}, "needs aggrMethods"),
    ],
)
def test_bad_parameters_are_bad_request_data(params: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        parse_temporal_query(params)


def test_query_temporal_entities_needs_a_temporal_query() -> None:
    # §5.7.4.4: no temporal query -> BadRequestData; Retrieve (§5.7.3) does not need one
    with pytest.raises(BadRequestData, match="temporal query"):
        parse_temporal_query({"lastN": "2"}, require_timerel=True)
    assert parse_temporal_query({"lastN": "2"}).timerel is None


@pytest.mark.parametrize(
    ("params", "fmt"),
    [
        ({"format": "temporalValues"}, "temporalValues"),  # suite 021_19_01
        (  # suite 021_19_02: format wins over options
            {"format": "temporalValues", "options": "aggregatedValues", "aggrMethods": "sum"},
            "temporalValues",
        ),
        ({"options": "temporalValues"}, "temporalValues"),  # suite 021_19_03
        ({"options": "sysAttrs"}, "normalized"),
        ({"format": "normalized", "options": "sysAttrs"}, "normalized"),
    ],
)
def test_representation(params: dict[str, str], fmt: str) -> None:
    assert parse_temporal_query(params).format == fmt


@pytest.mark.parametrize(
    "params",
    [
        {"format": "invalidFormat"},  # suite 021_20_01
        {"options": "invalidOptions"},  # 021_20_02
        {"options": "temporalValues,invalidOptions"},  # 021_20_03
        {"format": "temporalValues", "options": "aggregatedValues,invalidOptions"},  # 021_20_04
        {"options": "temporalValues,aggregatedValues"},
        {"format": "keyValues"},
    ],
)
def test_bad_representation_is_invalid_request(params: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_temporal_query(params)


# --------------------------------------------------------------------------------------------
# selection


def speeds(query: dict[str, str]) -> list[Any]:
    selected = select_instances(vehicle()["attrs"][D + "speed"], parse_temporal_query(query))
    return [i["value"] for i in selected]


def test_window_bounds_follow_4_11() -> None:
    # before: exclusive; after: inclusive; between: [timeAt, endTimeAt)
    assert speeds({"timerel": "before", "timeAt": "2020-08-01T12:05:00Z"}) == [120]
    assert speeds({"timerel": "after", "timeAt": "2020-08-01T12:05:00Z"}) == [80, 100]
    assert speeds(
        {
            "timerel": "between",
            "timeAt": "2020-08-01T12:03:00Z",
            "endTimeAt": "2020-08-01T12:07:00Z",
        }
    ) == [120, 80]
    # an offset in timeAt is honoured
    assert speeds({"timerel": "before", "timeAt": "2020-08-01T14:05:00+02:00"}) == [120]


def test_selection_sorts_by_time_and_lastN_keeps_the_most_recent() -> None:
    shuffled = [inst(v, f"2020-08-01T12:0{v}:00Z") for v in (5, 1, 9, 3, 7)]
    assert [i["value"] for i in select_instances(shuffled, TemporalQuery())] == [1, 3, 5, 7, 9]
    assert [i["value"] for i in select_instances(shuffled, TemporalQuery(last_n=2))] == [7, 9]
    assert len(select_instances(shuffled, TemporalQuery(last_n=99))) == 5


def test_instances_without_the_time_property_do_not_match() -> None:
    history = [inst(1, None), inst(2, "2020-08-01T12:00:00Z")]
    assert [i["value"] for i in select_instances(history, TemporalQuery())] == [2]
    by_created = select_instances(history, TemporalQuery(timeproperty="createdAt"))
    assert [i["value"] for i in by_created] == [1, 2]


# --------------------------------------------------------------------------------------------
# normalized representation


def test_retrieve_whole_history() -> None:  # suite 020_01 / 020_02
    assert render(vehicle(), {}) == {
        "id": EID,
        "type": "Vehicle",
        "speed": [
            prop(120, "2020-08-01T12:03:00Z"),
            prop(80, "2020-08-01T12:05:00Z"),
            prop(100, "2020-08-01T12:07:00Z"),
        ],
        "fuelLevel": [
            prop(67, "2020-08-01T12:03:00Z"),
            prop(53, "2020-08-01T13:05:00Z"),
            prop(40, "2020-08-01T14:07:00Z"),
        ],
    }


def test_instances_keep_their_instance_id() -> None:
    body = render_temporal_entity(vehicle(), V, TemporalQuery())
    assert all(i["instanceId"].startswith("urn:ngsi-ld:Instance:") for i in body["speed"])


def test_attrs_projection() -> None:  # suite 020_03_01
    body = render(vehicle(), {}, attrs=frozenset({D + "fuelLevel"}))
    assert list(body) == ["id", "type", "fuelLevel"]


def test_after_omits_attributes_left_empty() -> None:  # suite 020_04_01
    assert render(vehicle(), {"timerel": "after", "timeAt": "2020-08-01T13:03:00Z"}) == {
        "id": EID,
        "type": "Vehicle",
        "fuelLevel": [prop(53, "2020-08-01T13:05:00Z"), prop(40, "2020-08-01T14:07:00Z")],
    }


def test_a_single_instance_is_still_an_array() -> None:  # suite 020_04_02
    body = render(vehicle(), {"timerel": "before", "timeAt": "2020-08-01T12:05:00Z"})
    assert body["speed"] == [prop(120, "2020-08-01T12:03:00Z")]
    assert body["fuelLevel"] == [prop(67, "2020-08-01T12:03:00Z")]


def test_last_n() -> None:  # suite 020_05_01
    body = render(vehicle(), {"lastN": "2"})
    assert body["speed"] == [prop(80, "2020-08-01T12:05:00Z"), prop(100, "2020-08-01T12:07:00Z")]


def test_sys_attrs() -> None:
    plain = render(vehicle(), {})["speed"][0]
    assert "createdAt" not in plain
    with_sys = render(vehicle(), {"options": "sysAttrs"})["speed"][0]
    assert with_sys["createdAt"] == SYS and with_sys["modifiedAt"] == SYS


def test_the_time_property_asked_for_is_always_shown() -> None:
    body = render(vehicle(), {"timeproperty": "modifiedAt"})
    assert body["speed"][0]["modifiedAt"] == SYS
    assert "createdAt" not in body["speed"][0]


def deleted_vehicle() -> dict[str, Any]:
    """vehicle-temporal-representation-different-attributes-types after deleting attributes."""
    deleted = "2024-12-11T11:02:49.270530Z"
    return {
        "id": EID,
        "type": [D + "Vehicle"],
        "attrs": {
            D + "fuelLevel": [
                inst(67, "2020-08-01T12:03:00Z"),
                inst(NULL, None, deletedAt=deleted),
            ],
            D + "isParkedIn": [
                inst(
                    "urn:ngsi-ld:OffStreetParking:Downtown1", "2020-08-01T12:03:00Z", "Relationship"
                ),
                inst(NULL, None, "Relationship", deletedAt=deleted),
            ],
            D + "name": [
                inst({"en": "car"}, None, "LanguageProperty"),
                inst({"@none": NULL}, None, "LanguageProperty", deletedAt=deleted),
            ],
            "scope": [inst([], None, deletedAt=deleted)],
        },
    }


def test_deleted_at_time_property() -> None:  # suite 020_17, 020_19
    body = render(deleted_vehicle(), {"timeproperty": "deletedAt"})
    deleted = "2024-12-11T11:02:49.270530Z"
    assert body == {
        "id": EID,
        "type": "Vehicle",
        "fuelLevel": [{"type": "Property", "value": NULL, "deletedAt": deleted}],
        "isParkedIn": [{"type": "Relationship", "object": NULL, "deletedAt": deleted}],
        "name": [
            {"type": "LanguageProperty", "languageMap": {"@none": NULL}, "deletedAt": deleted}
        ],
        "scope": [{"type": "Property", "value": [], "deletedAt": deleted}],
    }


def test_dataset_filter() -> None:  # suite 021_18
    doc = vehicle()
    doc["attrs"][D + "speed"].append(
        inst(55, "2020-08-01T12:09:00Z", datasetId="urn:ngsi-ld:Dataset:Speed")
    )
    body = render(doc, {}, dataset_id="urn:ngsi-ld:Dataset:Speed")
    assert body == {
        "id": EID,
        "type": "Vehicle",
        "speed": [{**prop(55, "2020-08-01T12:09:00Z"), "datasetId": "urn:ngsi-ld:Dataset:Speed"}],
    }
    assert len(render(doc, {}, dataset_id="@none")["speed"]) == 3


def test_pick_and_omit_core_members() -> None:  # suite 020_21_03 / 020_21_04
    from smartregion.core.projection import parse_omit, parse_pick

    picked = render(vehicle(), {}, projection=parse_pick("id,speed").expand(V.expand_term))
    assert list(picked) == ["id", "speed"]
    omitted = render(vehicle(), {}, projection=parse_omit("type,speed").expand(V.expand_term))
    assert list(omitted) == ["id", "fuelLevel"]


# --------------------------------------------------------------------------------------------
# simplified (temporalValues) representation


def test_temporal_values() -> None:  # suite 020_10
    assert render(vehicle(), {"options": "temporalValues"}) == {
        "id": EID,
        "type": "Vehicle",
        "speed": {
            "type": "Property",
            "values": [
                [120, "2020-08-01T12:03:00Z"],
                [80, "2020-08-01T12:05:00Z"],
                [100, "2020-08-01T12:07:00Z"],
            ],
        },
        "fuelLevel": {
            "type": "Property",
            "values": [
                [67, "2020-08-01T12:03:00Z"],
                [53, "2020-08-01T13:05:00Z"],
                [40, "2020-08-01T14:07:00Z"],
            ],
        },
    }


def test_temporal_values_of_every_kind() -> None:
    at = "2020-08-01T12:03:00Z"
    point = {"type": "Point", "coordinates": [4.4, 51.2]}
    doc = {
        "id": EID,
        "type": [D + "Vehicle"],
        "attrs": {
            D + "street": [
                inst({"fr": "Grand Place", "nl": "Grote Markt"}, at, "LanguageProperty")
            ],
            D + "speed": [inst({"value": 120}, at, "JsonProperty")],
            D + "vocabProperty": [inst([D + "monument", D + "sightseeing"], at, "VocabProperty")],
            D + "isParkedIn": [inst("urn:ngsi-ld:Parking:1", at, "Relationship")],
            D + "period": [inst(["First", "Second"], at, "ListProperty")],
            D + "members": [inst(["urn:a:1", "urn:a:2"], at, "ListRelationship")],
            "https://uri.etsi.org/ngsi-ld/location": [inst(point, at, "GeoProperty")],
        },
    }
    body = render(doc, {"format": "temporalValues"})
    # suite 020_12_02, 020_15_02, 020_16_02, 020_18_02; §4.5.9 examples 3, 6, 7
    assert body["street"] == {
        "type": "LanguageProperty",
        "languageMaps": [[{"languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}, at]],
    }
    assert body["speed"] == {"type": "JsonProperty", "jsons": [[{"json": {"value": 120}}, at]]}
    assert body["vocabProperty"] == {
        "type": "VocabProperty",
        "vocabs": [[{"vocab": ["monument", "sightseeing"]}, at]],
    }
    assert body["isParkedIn"] == {
        "type": "Relationship",
        "objects": [["urn:ngsi-ld:Parking:1", at]],
    }
    assert body["period"] == {"type": "ListProperty", "valueLists": [[["First", "Second"], at]]}
    assert body["members"] == {
        "type": "ListRelationship",
        "objectLists": [[["urn:a:1", "urn:a:2"], at]],
    }
    assert body["location"] == {"type": "GeoProperty", "values": [[point, at]]}


def test_temporal_values_of_deletions() -> None:  # suite 020_18, 020_20
    body = render(deleted_vehicle(), {"timeproperty": "deletedAt", "options": "temporalValues"})
    deleted = "2024-12-11T11:02:49.270530Z"
    assert body["fuelLevel"] == {"type": "Property", "values": [[NULL, deleted]]}
    assert body["isParkedIn"] == {"type": "Relationship", "objects": [[NULL, deleted]]}
    assert body["name"] == {
        "type": "LanguageProperty",
        "languageMaps": [[{"languageMap": {"@none": NULL}}, deleted]],
    }
    assert body["scope"] == {"type": "Property", "values": [[[], deleted]]}


def test_temporal_values_with_a_language_filter() -> None:
    doc = {
        "id": EID,
        "type": [D + "Vehicle"],
        "attrs": {
            D + "street": [
                inst(
                    {"fr": "Grand Place", "nl": "Grote Markt"},
                    "2020-08-01T12:03:00Z",
                    "LanguageProperty",
                )
            ]
        },
    }
    body = render(doc, {"options": "temporalValues"}, lang="nl")
    assert body["street"] == {
        "type": "Property",
        "values": [["Grote Markt", "2020-08-01T12:03:00Z"]],
    }


def test_temporal_values_per_dataset() -> None:
    doc = vehicle()
    doc["attrs"][D + "speed"].append(
        inst(55, "2020-08-01T12:09:00Z", datasetId="urn:ngsi-ld:Dataset:Speed")
    )
    body = render(doc, {"options": "temporalValues"})
    assert body["speed"][0]["values"][0] == [120, "2020-08-01T12:03:00Z"]
    assert body["speed"][1] == {
        "type": "Property",
        "values": [[55, "2020-08-01T12:09:00Z"]],
        "datasetId": "urn:ngsi-ld:Dataset:Speed",
    }


# --------------------------------------------------------------------------------------------
# aggregated representation


def test_aggregated_avg_per_hour() -> None:  # suite 020_11_01 / 021_17_01
    body = render(
        vehicle(),
        {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "PT1H"},
    )
    assert body == {
        "id": EID,
        "type": "Vehicle",
        "speed": {
            "type": "Property",
            "avg": [[100.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"]],
        },
        "fuelLevel": {
            "type": "Property",
            "avg": [
                [67.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"],
                [53.0, "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"],
                [40.0, "2020-08-01T14:03:00Z", "2020-08-01T15:03:00Z"],
            ],
        },
    }
    # numbers are floats, as the suite's expectation files have them (120.0, not 120)
    assert isinstance(body["speed"]["avg"][0][0], float)


def test_aggregated_min_max_per_day_after_time_at() -> None:  # suite 020_11_04 / 021_17_04
    body = render(
        vehicle(),
        {
            "options": "aggregatedValues",
            "aggrMethods": "min,max",
            "aggrPeriodDuration": "P1D",
            "timerel": "after",
            "timeAt": "2020-01-01T12:03:00Z",
        },
    )
    day = ["2020-08-01T12:03:00Z", "2020-08-02T12:03:00Z"]
    assert body["speed"] == {"type": "Property", "min": [[80.0, *day]], "max": [[120.0, *day]]}
    assert body["fuelLevel"] == {"type": "Property", "min": [[40.0, *day]], "max": [[67.0, *day]]}


def test_periods_start_at_time_at() -> None:  # §C.5.14: PT4M from 12:00
    body = render(
        vehicle(),
        {
            "options": "aggregatedValues",
            "aggrMethods": "max,avg",
            "aggrPeriodDuration": "PT4M",
            "timerel": "between",
            "timeAt": "2020-08-01T12:00:00Z",
            "endTimeAt": "2020-08-01T13:00:00Z",
        },
        attrs=frozenset({D + "speed"}),
    )
    assert body["speed"] == {
        "type": "Property",
        "max": [
            [120.0, "2020-08-01T12:00:00Z", "2020-08-01T12:04:00Z"],
            [100.0, "2020-08-01T12:04:00Z", "2020-08-01T12:08:00Z"],
        ],
        "avg": [
            [120.0, "2020-08-01T12:00:00Z", "2020-08-01T12:04:00Z"],
            [90.0, "2020-08-01T12:04:00Z", "2020-08-01T12:08:00Z"],
        ],
    }


def test_whole_range_when_no_duration() -> None:
    body = render(
        vehicle(),
        {
            "options": "aggregatedValues",
            "aggrMethods": "totalCount,distinctCount,sum,sumsq",
            "timerel": "before",
            "timeAt": "2020-08-02T00:00:00Z",
        },
    )
    span = ["2020-08-01T12:03:00Z", "2020-08-02T00:00:00Z"]
    assert body["speed"] == {
        "type": "Property",
        "totalCount": [[3, *span]],
        "distinctCount": [[3, *span]],
        "sum": [[300.0, *span]],
        "sumsq": [[30800.0, *span]],
    }


def test_aggregation_leaves_deletions_out_and_counts_relationships() -> None:
    doc = deleted_vehicle()
    query = {"options": "aggregatedValues", "aggrMethods": "totalCount,distinctCount"}
    body = render(doc, {**query, "timeproperty": "createdAt"})
    assert body["isParkedIn"]["type"] == "Relationship"
    assert body["isParkedIn"]["totalCount"][0][0] == 1
    with pytest.raises(InvalidRequest, match="avg does not apply to attribute isParkedIn"):
        render(doc, {"options": "aggregatedValues", "aggrMethods": "avg"})


def test_aggregation_of_ineligible_values_is_invalid_request() -> None:  # §5.7.4.4
    doc = {
        "id": EID,
        "type": [D + "Vehicle"],
        "attrs": {D + "brand": [inst("Volvo", "2020-08-01T12:03:00Z")]},
    }
    with pytest.raises(InvalidRequest, match="sum does not apply to attribute brand"):
        render(doc, {"options": "aggregatedValues", "aggrMethods": "sum"})
    body = render(doc, {"options": "aggregatedValues", "aggrMethods": "max"})
    assert body["brand"]["max"][0][0] == "Volvo"


def test_scope_changes_are_history_instances() -> None:  # broker/history.py, suite 020_19
    from smartregion.broker.history import instance_rows
    from smartregion.core.subscriptions import EntityChange
    from smartregion.core.temporal import SCOPE_HISTORY

    now = "2026-11-27T10:00:00.000000Z"

    def doc(scope: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": EID, "type": [D + "Vehicle"], "attrs": {}}
        if scope is not None:
            out["scope"] = scope
        return out

    def scope_rows(old: Any, new: Any) -> list[dict[str, Any]]:
        rows = instance_rows([EntityChange(old, new)], now)
        assert all(r.attr == SCOPE_HISTORY and r.entity_id == EID for r in rows)
        return [r.instance for r in rows]

    changed = {"type": "Property", "createdAt": now, "modifiedAt": now}
    assert scope_rows(None, doc(["/a"])) == [{**changed, "value": ["/a"]}]
    assert scope_rows(doc(["/a"]), doc(["/a", "/b"])) == [{**changed, "value": ["/a", "/b"]}]
    assert scope_rows(doc(["/a"]), doc(["/a"])) == []  # unchanged: nothing recorded
    assert scope_rows(None, doc()) == []  # never had one
    removed = {**changed, "value": [], "deletedAt": now}
    assert scope_rows(doc(["/a"]), doc()) == [removed]
    assert scope_rows(doc(["/a"]), None) == [removed]  # the entity deleted with its scope
