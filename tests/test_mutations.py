"""Tests of smartregion.core.mutations: NGSI-LD write semantics on internal documents.

Scenarios mirror the ETSI conformance suite (TP numbers in the test names/ids) on expanded
internal documents.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.mutations import (
    NGSI_NULL,
    SCOPE,
    append_attributes,
    attribute_names,
    batch_merge_entity,
    batch_update_entity,
    delete_attribute,
    is_null_instance,
    merge_entity,
    partial_attribute_update,
    replace_attribute,
    replace_entity,
    update_attributes,
    upsert_entity,
)
from smartregion.errors import BadRequestData, ResourceNotFound

D = "https://uri.etsi.org/ngsi-ld/default-context/"
BUILDING, VEHICLE, CAR = D + "Building", D + "Vehicle", D + "Car"
SPEED, BRAND, PARKED, PARKED2 = D + "speed", D + "brandName", D + "isParked", D + "isParked2"
NAME, LOCATED, STREET, NEW = D + "name", D + "locatedAt", D + "street", D + "attributeToBeAdded"
AIR = D + "airQualityLevel"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
SOURCE, PROVIDED_BY, ACCURACY = D + "source", D + "providedBy", D + "accuracy"
GPS, METER = "urn:ngsi-ld:Dataset:gps", "urn:ngsi-ld:Dataset:speedometer"
DS1, DS2 = "urn:ngsi-ld:Dataset:01", "urn:ngsi-ld:Dataset:02"
T0 = "2026-01-01T00:00:00.000000Z"
NOW = "2026-01-02T00:00:00.000000Z"


def stamped(instance: dict[str, Any]) -> dict[str, Any]:
    return {**instance, "createdAt": T0, "modifiedAt": T0}


def entity(
    attrs: dict[str, list[dict[str, Any]]] | None = None,
    *,
    types: list[str] | None = None,
    scope: list[str] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "urn:ngsi-ld:Thing:1",
        "type": types or [BUILDING],
        "createdAt": T0,
        "modifiedAt": T0,
        "attrs": {n: [stamped(i) for i in insts] for n, insts in (attrs or {}).items()},
    }
    if scope is not None:
        doc["scope"] = scope
    return doc


def content(value: Any) -> Any:
    """Drop system timestamps everywhere, to compare what users see without sysAttrs."""
    if isinstance(value, dict):
        return {k: content(v) for k, v in value.items() if k not in ("createdAt", "modifiedAt")}
    if isinstance(value, list):
        return [content(v) for v in value]
    return value


def prop(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


def rel(obj: str, **members: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj, **members}


def vehicle_two_datasetids() -> dict[str, Any]:
    """ETSI vehicle-speed-two-datasetid: speed has no default instance."""
    return entity(
        {
            BRAND: [prop("Mercedes")],
            PARKED: [
                rel(
                    "urn:ngsi-ld:OffStreetParking:Downtown1",
                    observedAt="2017-07-29T12:00:04Z",
                    **{PROVIDED_BY: rel("urn:ngsi-ld:Person:Bob")},
                )
            ],
            SPEED: [
                prop(55, datasetId=METER, **{SOURCE: prop("Speedometer")}),
                prop(54.5, datasetId=GPS, **{SOURCE: prop("GPS")}),
            ],
        },
        types=[VEHICLE],
    )


def vehicle_default_and_gps() -> dict[str, Any]:
    """ETSI vehicle-two-datasetid-attributes: speed has a default and a gps instance."""
    return entity(
        {
            BRAND: [prop("Mercedes")],
            SPEED: [
                prop(55, **{SOURCE: prop("Speedometer")}),
                prop(54.5, datasetId=GPS, **{SOURCE: prop("GPS")}),
            ],
        },
        types=[VEHICLE],
    )


# ---------------------------------------------------------------- NGSI-LD Null kinds

NULL_KINDS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Property", prop("Eiffel Tower"), {"type": "Property", "value": NGSI_NULL}),
    ("Relationship", rel("urn:ngsi-ld:City:Paris"), {"type": "Relationship", "object": NGSI_NULL}),
    (
        "GeoProperty",
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}},
        {"type": "GeoProperty", "value": NGSI_NULL},
    ),
    (
        "LanguageProperty",
        {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
        {"type": "LanguageProperty", "languageMap": {"@none": NGSI_NULL}},
    ),
    (
        "JsonProperty",
        {"type": "JsonProperty", "json": {"a": 1}},
        {"type": "JsonProperty", "json": NGSI_NULL},
    ),
    (
        "VocabProperty",
        {"type": "VocabProperty", "vocab": D + "x"},
        {"type": "VocabProperty", "vocab": NGSI_NULL},
    ),
    (
        "ListProperty",
        {"type": "ListProperty", "valueList": [1, 2]},
        {"type": "ListProperty", "valueList": [NGSI_NULL]},
    ),
]
NULL_IDS = [k for k, _, _ in NULL_KINDS]


def test_is_null_instance_recognises_every_kind_and_not_real_values() -> None:
    for _, real, null in NULL_KINDS:
        assert is_null_instance(null)
        assert not is_null_instance(real)
    assert is_null_instance({"type": "ListRelationship", "objectList": [{"object": NGSI_NULL}]})


# ---------------------------------------------------------------- append (§5.6.3)


def test_append_new_attribute_010_01_01() -> None:
    doc = vehicle_two_datasetids()
    before = copy.deepcopy(doc)
    out = append_attributes(doc, {NEW: [prop(23)]}, now=NOW)
    assert doc == before, "input must not be mutated"
    assert out.updated == [NEW] and out.not_updated == [] and out.changed
    assert out.doc["attrs"][NEW] == [prop(23, createdAt=NOW, modifiedAt=NOW)]
    assert out.doc["modifiedAt"] == NOW and out.doc["createdAt"] == T0
    assert out.doc["attrs"][SPEED] is doc["attrs"][SPEED], "untouched attributes are shared"
    assert attribute_names(out.doc) == [BRAND, PARKED, SPEED, NEW]


def test_append_new_datasetid_instance_goes_last_010_01_02() -> None:
    doc = vehicle_two_datasetids()
    new = prop(56, datasetId="urn:ngsi-ld:Dataset:A4567", **{SOURCE: prop("Speedometer")})
    out = append_attributes(doc, {SPEED: [new]}, now=NOW)
    assert [i.get("datasetId") for i in out.doc["attrs"][SPEED]] == [METER, GPS, new["datasetId"]]
    assert out.doc["attrs"][SPEED][0] is doc["attrs"][SPEED][0]


def test_append_default_instance_goes_first() -> None:
    out = append_attributes(vehicle_two_datasetids(), {SPEED: [prop(1)]}, now=NOW)
    assert [i.get("datasetId") for i in out.doc["attrs"][SPEED]] == [None, METER, GPS]


def test_append_overwrites_existing_instance_wholesale_keeping_created_at() -> None:
    doc = vehicle_two_datasetids()
    out = append_attributes(doc, {SPEED: [prop(60, datasetId=GPS)]}, now=NOW)
    gps = out.doc["attrs"][SPEED][1]
    assert gps == {
        "type": "Property",
        "value": 60,
        "datasetId": GPS,
        "createdAt": T0,
        "modifiedAt": NOW,
    }
    assert out.doc["attrs"][SPEED][0] is doc["attrs"][SPEED][0]


def test_append_no_overwrite_keeps_existing_instance_010_04_01() -> None:
    doc = vehicle_two_datasetids()
    frag = {SPEED: [prop(56, datasetId=METER)], NEW: [prop(23)]}
    out = append_attributes(doc, frag, now=NOW, no_overwrite=True)
    assert out.updated == [NEW]
    assert [n for n, _ in out.not_updated] == [SPEED]
    assert all(reason for _, reason in out.not_updated)
    assert out.doc["attrs"][SPEED] == doc["attrs"][SPEED]


def test_append_no_overwrite_new_datasetid_is_added_010_04_02() -> None:
    doc = vehicle_two_datasetids()
    out = append_attributes(doc, {SPEED: [prop(56, datasetId=DS1)]}, now=NOW, no_overwrite=True)
    assert out.updated == [SPEED] and out.not_updated == []
    assert len(out.doc["attrs"][SPEED]) == 3


@pytest.mark.parametrize(
    ("no_overwrite", "expected"),
    [
        (False, ["/CompanyA/OrganizationB/UnitC"]),
        (True, ["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"]),
    ],
    ids=["010_07-overwrite-replaces", "010_07-noOverwrite-appends"],
)
def test_append_scope(no_overwrite: bool, expected: list[str]) -> None:
    doc = entity(scope=["/Madrid/Gardens/ParqueNorte"])
    out = append_attributes(
        doc, {}, now=NOW, no_overwrite=no_overwrite, scope=["/CompanyA/OrganizationB/UnitC"]
    )
    assert out.doc["scope"] == expected and out.changed and out.not_updated == []


def test_append_types_are_added() -> None:
    out = append_attributes(entity(), {}, now=NOW, types=[VEHICLE])
    assert out.doc["type"] == sorted([BUILDING, VEHICLE])


def test_append_rejects_ngsi_null() -> None:
    with pytest.raises(BadRequestData):
        append_attributes(entity(), {NAME: [{"type": "Property", "value": NGSI_NULL}]}, now=NOW)


def test_append_identical_content_reports_updated_but_changes_nothing() -> None:
    doc = vehicle_two_datasetids()
    out = append_attributes(doc, {BRAND: [prop("Mercedes")]}, now=NOW)
    assert out.updated == [BRAND]
    assert not out.changed
    assert out.doc == doc, "timestamps stay when nothing changed"


# ---------------------------------------------------------------- update (§5.6.2)


def test_update_default_instance_only_011_01_01() -> None:
    doc = vehicle_default_and_gps()
    out = update_attributes(doc, {SPEED: [prop(99, **{SOURCE: prop("Speedometer")})]}, now=NOW)
    speeds = out.doc["attrs"][SPEED]
    assert content(speeds) == [
        prop(99, **{SOURCE: prop("Speedometer")}),
        prop(54.5, datasetId=GPS, **{SOURCE: prop("GPS")}),
    ]
    assert speeds[0]["createdAt"] == T0 and speeds[0]["modifiedAt"] == NOW
    assert speeds[1] is doc["attrs"][SPEED][1]
    assert out.updated == [SPEED] and out.not_updated == []


def test_update_datasetid_instance_011_01_02() -> None:
    doc = vehicle_default_and_gps()
    out = update_attributes(doc, {SPEED: [prop(99, datasetId=GPS)]}, now=NOW)
    assert content(out.doc["attrs"][SPEED][1]) == prop(99, datasetId=GPS)
    assert out.doc["attrs"][SPEED][0] is doc["attrs"][SPEED][0]


def test_update_appends_missing_attributes_like_the_suite_011_01_03() -> None:
    frag = {PARKED2: [rel("urn:ngsi-ld:OffStreetParking:Downtown1", datasetId=DS1)]}
    out = update_attributes(vehicle_default_and_gps(), frag, now=NOW)
    assert out.updated == [PARKED2] and out.not_updated == []
    assert PARKED2 in out.doc["attrs"]


def test_update_strict_mode_reports_missing_attributes() -> None:
    doc = vehicle_default_and_gps()
    frag = {PARKED2: [rel("urn:ngsi-ld:X:1")], SPEED: [prop(1, datasetId=DS1), prop(2)]}
    out = update_attributes(doc, frag, now=NOW, append_missing=False)
    assert out.updated == [SPEED]
    assert [n for n, _ in out.not_updated] == [PARKED2, SPEED]
    assert PARKED2 not in out.doc["attrs"] and len(out.doc["attrs"][SPEED]) == 2


def test_update_changes_attribute_type_011_01_04() -> None:
    out = update_attributes(
        vehicle_default_and_gps(), {BRAND: [rel("urn:ngsi-ld:Brand:01")]}, now=NOW
    )
    assert content(out.doc["attrs"][BRAND]) == [rel("urn:ngsi-ld:Brand:01")]
    assert out.doc["attrs"][BRAND][0]["createdAt"] == T0


@pytest.mark.parametrize(
    ("initial_scope", "scope", "not_updated"),
    [
        (["/Madrid/Gardens/ParqueNorte"], ["/CompanyA/OrganizationB/UnitC"], []),
        (None, None, [SCOPE]),
    ],
    ids=["011_05_01-replaced", "011_05_02-not-added"],
)
def test_update_scope(
    initial_scope: list[str] | None, scope: list[str] | None, not_updated: list[str]
) -> None:
    doc = entity(scope=initial_scope)
    out = update_attributes(doc, {}, now=NOW, scope=["/CompanyA/OrganizationB/UnitC"])
    assert [n for n, _ in out.not_updated] == not_updated
    if initial_scope is None:
        assert "scope" not in out.doc and not out.changed and out.doc == doc
    else:
        assert out.doc["scope"] == ["/CompanyA/OrganizationB/UnitC"] and out.changed


@pytest.mark.parametrize(
    ("types", "expected", "changed"),
    [
        ([VEHICLE], [BUILDING, VEHICLE], True),
        ([VEHICLE, CAR], [BUILDING, CAR, VEHICLE], True),
        ([BUILDING], [BUILDING], False),
        ([VEHICLE, BUILDING], [BUILDING, VEHICLE], True),
    ],
    ids=["011_06_01", "011_06_02", "011_06_03", "011_06_04"],
)
def test_update_appends_types(types: list[str], expected: list[str], changed: bool) -> None:
    doc = entity()
    out = update_attributes(doc, {}, now=NOW, types=types)
    assert out.doc["type"] == sorted(expected)
    assert out.changed is changed
    assert out.doc["modifiedAt"] == (NOW if changed else T0)


def _multi(real: dict[str, Any], *, default: bool) -> dict[str, Any]:
    """ETSI building-different-(default-)attributes-instances: DS1 + (default | DS2)."""
    second = dict(real) if default else {**real, "datasetId": DS2}
    return entity({NAME: [{**real, "datasetId": DS1}, second]})


@pytest.mark.parametrize(("kind", "real", "null"), NULL_KINDS, ids=NULL_IDS)
def test_update_null_deletes_whole_single_instance_attribute_011_07(
    kind: str, real: dict[str, Any], null: dict[str, Any]
) -> None:
    doc = entity({NAME: [real], BRAND: [prop("x")]})
    out = update_attributes(doc, {NAME: [null]}, now=NOW)
    assert attribute_names(out.doc) == [BRAND]
    assert out.updated == [NAME] and out.changed and out.doc["modifiedAt"] == NOW


@pytest.mark.parametrize(("kind", "real", "null"), NULL_KINDS, ids=NULL_IDS)
def test_update_null_with_datasetid_deletes_that_instance_011_08(
    kind: str, real: dict[str, Any], null: dict[str, Any]
) -> None:
    doc = _multi(real, default=False)
    out = update_attributes(doc, {NAME: [{**null, "datasetId": DS1}]}, now=NOW)
    assert [i.get("datasetId") for i in out.doc["attrs"][NAME]] == [DS2]


@pytest.mark.parametrize(("kind", "real", "null"), NULL_KINDS, ids=NULL_IDS)
def test_update_null_without_datasetid_deletes_default_instance_011_09(
    kind: str, real: dict[str, Any], null: dict[str, Any]
) -> None:
    doc = _multi(real, default=True)
    out = update_attributes(doc, {NAME: [null]}, now=NOW)
    assert [i.get("datasetId") for i in out.doc["attrs"][NAME]] == [DS1]


def test_update_null_for_absent_instance_is_not_updated() -> None:
    doc = _multi(prop("a"), default=False)
    out = update_attributes(doc, {NAME: [{"type": "Property", "value": NGSI_NULL}]}, now=NOW)
    assert out.updated == [] and [n for n, _ in out.not_updated] == [NAME]
    assert not out.changed and out.doc == doc


# ---------------------------------------------------------------- partial update (§5.6.4)


def test_partial_update_replaces_only_given_members_012_01_01() -> None:
    doc = vehicle_two_datasetids()
    out = partial_attribute_update(
        doc, PARKED, {PROVIDED_BY: rel("urn:ngsi-ld:Person:JohnDoe")}, now=NOW
    )
    parked = out.doc["attrs"][PARKED][0]
    assert content(parked) == rel(
        "urn:ngsi-ld:OffStreetParking:Downtown1",
        observedAt="2017-07-29T12:00:04Z",
        **{PROVIDED_BY: rel("urn:ngsi-ld:Person:JohnDoe")},
    )
    assert parked["createdAt"] == T0 and parked["modifiedAt"] == NOW
    assert out.updated == [PARKED] and out.doc["modifiedAt"] == NOW


def test_partial_update_by_datasetid_012_01_02() -> None:
    doc = vehicle_two_datasetids()
    out = partial_attribute_update(doc, SPEED, {"value": 56, "datasetId": METER}, now=NOW)
    assert content(out.doc["attrs"][SPEED]) == [
        prop(56, datasetId=METER, **{SOURCE: prop("Speedometer")}),
        prop(54.5, datasetId=GPS, **{SOURCE: prop("GPS")}),
    ]
    assert out.doc["attrs"][SPEED][1] is doc["attrs"][SPEED][1]


def test_partial_update_language_property_012_04() -> None:
    doc = entity(
        {
            STREET: [
                {
                    "type": "LanguageProperty",
                    "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"},
                    SOURCE: prop("Speedometer"),
                }
            ]
        }
    )
    frag = {
        "languageMap": {"fr": "Grand Place", "es": "Gran Lugar"},
        PROVIDED_BY: rel("urn:ngsi-ld:Person:JohnDoe"),
    }
    out = partial_attribute_update(doc, STREET, frag, now=NOW)
    assert content(out.doc["attrs"][STREET][0]) == {
        "type": "LanguageProperty",
        "languageMap": {"fr": "Grand Place", "es": "Gran Lugar"},
        SOURCE: prop("Speedometer"),
        PROVIDED_BY: rel("urn:ngsi-ld:Person:JohnDoe"),
    }


def test_partial_update_member_null_removes_member() -> None:
    doc = entity({AIR: [prop(4, unitCode="C62")]})
    out = partial_attribute_update(doc, AIR, {"unitCode": NGSI_NULL}, now=NOW)
    assert content(out.doc["attrs"][AIR]) == [prop(4)]


@pytest.mark.parametrize(
    ("name", "fragment", "error"),
    [
        (SPEED, {"type": "Relationship", "object": "urn:ngsi-ld:Entity:01"}, BadRequestData),
        (SPEED, {}, BadRequestData),
        (SPEED, {"datasetId": METER}, BadRequestData),
        (SCOPE, {"value": "/x"}, BadRequestData),
        (SPEED, {"type": "Property", "value": 56}, ResourceNotFound),
        (SPEED, {"value": 56, "datasetId": "urn:ngsi-ld:Dataset:unknown"}, ResourceNotFound),
        (PARKED2, {PROVIDED_BY: rel("urn:ngsi-ld:Person:JohnDoe")}, ResourceNotFound),
    ],
    ids=[
        "012_02_03-type-mismatch",
        "012_02_04-empty",
        "only-datasetId",
        "scope",
        "012_03_02-no-default-instance",
        "012_03_03-unknown-datasetId",
        "012_03_04-unknown-attribute",
    ],
)
def test_partial_update_errors(name: str, fragment: dict[str, Any], error: type[Exception]) -> None:
    doc = vehicle_two_datasetids()
    before = copy.deepcopy(doc)
    with pytest.raises(error):
        partial_attribute_update(doc, name, fragment, now=NOW)
    assert doc == before


@pytest.mark.parametrize(("kind", "real", "null"), NULL_KINDS, ids=NULL_IDS)
def test_partial_update_null_deletes_instance_012_05_to_07(
    kind: str, real: dict[str, Any], null: dict[str, Any]
) -> None:
    single = partial_attribute_update(entity({NAME: [real]}), NAME, null, now=NOW)
    assert NAME not in single.doc["attrs"]
    by_dataset = partial_attribute_update(
        _multi(real, default=False), NAME, {**null, "datasetId": DS1}, now=NOW
    )
    assert [i.get("datasetId") for i in by_dataset.doc["attrs"][NAME]] == [DS2]
    default = partial_attribute_update(_multi(real, default=True), NAME, null, now=NOW)
    assert [i.get("datasetId") for i in default.doc["attrs"][NAME]] == [DS1]


# ---------------------------------------------------------------- replace attribute (§5.6.19)


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        (
            rel("urn:ngsi-ld:OffStreetParking:Downtown2"),
            rel("urn:ngsi-ld:OffStreetParking:Downtown2"),
        ),
        (prop(True), prop(True)),
    ],
    ids=["055_01_01", "055_01_02-new-type"],
)
def test_replace_attribute_keeps_created_at(
    instance: dict[str, Any], expected: dict[str, Any]
) -> None:
    out = replace_attribute(vehicle_two_datasetids(), PARKED, instance, now=NOW)
    parked = out.doc["attrs"][PARKED]
    assert content(parked) == [expected], "the whole instance is replaced, sub-attrs included"
    assert parked[0]["createdAt"] == T0 and parked[0]["modifiedAt"] == NOW


@pytest.mark.parametrize(
    ("instance", "index"),
    [(prop(60, **{SOURCE: prop("Speedometer")}), 0), (prop(70, datasetId=GPS), 1)],
    ids=["055_02_01-default", "055_02_02-datasetId"],
)
def test_replace_attribute_multi_instance(instance: dict[str, Any], index: int) -> None:
    doc = vehicle_default_and_gps()
    out = replace_attribute(doc, SPEED, instance, now=NOW)
    speeds = out.doc["attrs"][SPEED]
    assert content(speeds[index]) == instance and speeds[index]["createdAt"] == T0
    assert speeds[1 - index] is doc["attrs"][SPEED][1 - index]


@pytest.mark.parametrize(
    ("name", "instance", "error"),
    [
        (NEW, prop(1), ResourceNotFound),
        (SPEED, prop(1), ResourceNotFound),
        (SPEED, prop(1, datasetId=DS1), ResourceNotFound),
        (SCOPE, prop("/x"), BadRequestData),
        ("scope", prop("/x"), BadRequestData),
        (PARKED, {"type": "Relationship", "object": NGSI_NULL}, BadRequestData),
    ],
    ids=[
        "055_03_04-unknown-attr",
        "no-default",
        "unknown-datasetId",
        "055_03_05-scope",
        "scope-short",
        "null",
    ],
)
def test_replace_attribute_errors(
    name: str, instance: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        replace_attribute(vehicle_two_datasetids(), name, instance, now=NOW)


# ---------------------------------------------------------------- delete attribute (§5.6.5)


def _speed_three() -> dict[str, Any]:
    """ETSI vehicle-speed-only-multi-instances."""
    return entity(
        {SPEED: [prop(55), prop(57, datasetId=METER), prop(54.5, datasetId=GPS)]}, types=[VEHICLE]
    )


@pytest.mark.parametrize(
    ("dataset_id", "delete_all", "remaining"),
    [
        (None, False, [METER, GPS]),
        (GPS, False, [None, METER]),
        (None, True, None),
        (GPS, True, None),
    ],
    ids=["013_01_01-default", "013_01_02-datasetId", "013_01_03-deleteAll", "deleteAll-wins"],
)
def test_delete_attribute(
    dataset_id: str | None, delete_all: bool, remaining: list[str | None] | None
) -> None:
    doc = _speed_three()
    before = copy.deepcopy(doc)
    out = delete_attribute(doc, SPEED, dataset_id=dataset_id, delete_all=delete_all)
    assert doc == before
    if remaining is None:
        assert SPEED not in out["attrs"]
    else:
        assert [i.get("datasetId") for i in out["attrs"][SPEED]] == remaining
    assert out["modifiedAt"] == T0, "without now, modifiedAt is left alone"


def test_delete_last_instance_removes_attribute_and_sets_modified_at() -> None:
    out = delete_attribute(entity({NAME: [prop("x")]}), NAME, now=NOW)
    assert out["attrs"] == {} and out["modifiedAt"] == NOW and out["createdAt"] == T0


@pytest.mark.parametrize(
    ("name", "dataset_id"),
    [(D + "notFound", None), (SPEED, "urn:ngsi-ld:Property:notFound"), ("scope", None)],
    ids=["013_03_02-attribute", "013_03_03-datasetId", "no-scope"],
)
def test_delete_attribute_not_found(name: str, dataset_id: str | None) -> None:
    with pytest.raises(ResourceNotFound):
        delete_attribute(_speed_three(), name, dataset_id=dataset_id)


def test_delete_default_instance_when_there_is_none() -> None:
    with pytest.raises(ResourceNotFound):
        delete_attribute(vehicle_two_datasetids(), SPEED)


@pytest.mark.parametrize("name", ["scope", SCOPE])
def test_delete_scope_013_04(name: str) -> None:
    out = delete_attribute(entity(scope=["/Madrid"]), name, now=NOW)
    assert "scope" not in out and out["modifiedAt"] == NOW


# ---------------------------------------------------------------- merge (§5.6.17)


def merge_data() -> dict[str, Any]:
    """ETSI merge/building-merge-data."""
    return entity(
        {
            NAME: [prop("Eiffel Tower")],
            D + "subCategory": [prop("tourism")],
            AIR: [prop(4, unitCode="C62", observedAt="2020-09-09T16:40:00.000Z")],
            D + "almostFull": [prop(False)],
        }
    )


def test_merge_with_same_types_and_no_attributes_changes_nothing_056_01_01() -> None:
    doc = merge_data()
    out = merge_entity(doc, {}, now=NOW, types=[BUILDING])
    assert out.doc == doc and not out.changed and out.updated == []


def test_merge_simple_properties_056_01_02() -> None:
    frag = {
        NAME: [prop("Pisa Tower")],
        D + "subCategory": [prop("tourism")],
        AIR: [prop(6, unitCode="C62", observedAt="2020-10-10T16:40:00.000Z")],
        D + "almostFull": [prop(True)],
    }
    out = merge_entity(merge_data(), frag, now=NOW)
    assert content(out.doc["attrs"]) == frag
    assert out.doc["attrs"][D + "subCategory"][0]["modifiedAt"] == T0, "unchanged stays"
    assert out.doc["attrs"][NAME][0]["modifiedAt"] == NOW


def test_merge_adds_relationship_056_01_03() -> None:
    out = merge_entity(merge_data(), {LOCATED: [rel("urn:ngsi-ld:City:Paris")]}, now=NOW)
    assert attribute_names(out.doc)[-1] == LOCATED
    assert out.doc["attrs"][LOCATED][0]["createdAt"] == NOW


def test_merge_partial_attribute_keeps_unit_code_056_01_04() -> None:
    frag = {AIR: [prop(1, observedAt="2024-01-01T00:00:00.000Z")]}
    out = merge_entity(merge_data(), frag, now=NOW)
    air = out.doc["attrs"][AIR][0]
    assert content(air) == prop(1, unitCode="C62", observedAt="2024-01-01T00:00:00.000Z")
    assert air["createdAt"] == T0 and air["modifiedAt"] == NOW


def test_merge_keeps_observed_at_absent_from_fragment() -> None:
    out = merge_entity(merge_data(), {AIR: [prop(2)]}, now=NOW)
    assert out.doc["attrs"][AIR][0]["observedAt"] == "2020-09-09T16:40:00.000Z"


def test_merge_sub_attributes_recursively() -> None:
    doc = entity(
        {
            AIR: [
                prop(
                    4,
                    **{
                        ACCURACY: prop(0.1, unitCode="P1"),
                        SOURCE: prop("sensor"),
                        PROVIDED_BY: rel("urn:ngsi-ld:Person:Bob"),
                    },
                )
            ]
        }
    )
    frag = {
        AIR: [
            {
                "type": "Property",
                ACCURACY: prop(0.2),
                SOURCE: {"type": "Property", "value": NGSI_NULL},
                D + "method": prop("optical"),
                PROVIDED_BY: prop("not a relationship any more"),
            }
        ]
    }
    out = merge_entity(doc, frag, now=NOW)
    assert content(out.doc["attrs"][AIR][0]) == prop(
        4,
        **{
            ACCURACY: prop(0.2, unitCode="P1"),
            D + "method": prop("optical"),
            PROVIDED_BY: prop("not a relationship any more"),
        },
    )


def test_merge_type_change_replaces_instance() -> None:
    doc = entity({BRAND: [prop("Mercedes", unitCode="X")]})
    out = merge_entity(doc, {BRAND: [rel("urn:ngsi-ld:Brand:01")]}, now=NOW)
    assert content(out.doc["attrs"][BRAND]) == [rel("urn:ngsi-ld:Brand:01")]
    assert out.doc["attrs"][BRAND][0]["createdAt"] == T0


@pytest.mark.parametrize(("kind", "real", "null"), NULL_KINDS, ids=NULL_IDS)
def test_merge_null_deletes_056_03_to_05(
    kind: str, real: dict[str, Any], null: dict[str, Any]
) -> None:
    whole = merge_entity(entity({NAME: [real], BRAND: [prop(1)]}), {NAME: [null]}, now=NOW)
    assert attribute_names(whole.doc) == [BRAND] and whole.updated == [NAME]
    instance = merge_entity(
        _multi(real, default=False), {NAME: [{**null, "datasetId": DS1}]}, now=NOW
    )
    assert [i.get("datasetId") for i in instance.doc["attrs"][NAME]] == [DS2]
    default = merge_entity(_multi(real, default=True), {NAME: [null]}, now=NOW)
    assert [i.get("datasetId") for i in default.doc["attrs"][NAME]] == [DS1]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [(["/B"], ["/B"]), ([NGSI_NULL], None)],
    ids=["replaced", "null-deletes"],
)
def test_merge_scope(scope: list[str], expected: list[str] | None) -> None:
    out = merge_entity(entity(scope=["/A"]), {}, now=NOW, scope=scope)
    assert out.doc.get("scope") == expected and out.changed


def test_merge_adds_types() -> None:
    out = merge_entity(entity(), {}, now=NOW, types=[VEHICLE])
    assert out.doc["type"] == sorted([BUILDING, VEHICLE]) and out.doc["modifiedAt"] == NOW


# ---------------------------------------------------------------- replace entity (§5.6.18)


def test_replace_entity_054_01() -> None:
    doc = entity({NAME: [prop("Eiffel Tower")], AIR: [prop(4)]}, scope=["/A"])
    new_doc = {
        "id": "urn:ngsi-ld:Other:2",
        "type": [BUILDING],
        "createdAt": "1999-01-01T00:00:00Z",
        "attrs": {LOCATED: [rel("urn:ngsi-ld:City:Paris")], NAME: [prop("Pisa Tower")]},
    }
    before = copy.deepcopy(new_doc)
    out = replace_entity(doc, new_doc, now=NOW)
    assert new_doc == before
    assert out["id"] == doc["id"] and out["createdAt"] == T0 and out["modifiedAt"] == NOW
    assert content(out["attrs"]) == {
        LOCATED: [rel("urn:ngsi-ld:City:Paris")],
        NAME: [prop("Pisa Tower")],
    }
    assert "scope" not in out
    assert out["attrs"][NAME][0]["createdAt"] == T0, "same name/datasetId keeps createdAt"
    assert out["attrs"][LOCATED][0]["createdAt"] == NOW


def test_replace_entity_scopes_and_types_054_03() -> None:
    doc = entity(scope=["/Madrid/Gardens/ParqueNorte"], types=[BUILDING, CAR])
    new_doc = {"id": doc["id"], "type": [VEHICLE], "scope": ["/A", "/B"], "attrs": {}}
    out = replace_entity(doc, new_doc, now=NOW)
    assert out["scope"] == ["/A", "/B"] and out["type"] == [VEHICLE]


# ---------------------------------------------------------------- batch upsert (§5.6.8)


def test_upsert_creates_missing_entity() -> None:
    new_doc = {"id": "urn:ngsi-ld:B:1", "type": [VEHICLE, BUILDING], "attrs": {NAME: [prop("x")]}}
    out = upsert_entity(None, new_doc, now=NOW, mode="replace")
    assert out["createdAt"] == out["modifiedAt"] == NOW
    assert out["type"] == sorted([BUILDING, VEHICLE])
    assert out["attrs"][NAME] == [prop("x", createdAt=NOW, modifiedAt=NOW)]


def test_upsert_replace_replaces_everything_004_03() -> None:
    doc = entity({NAME: [prop("old")]}, scope=["/A"])
    new_doc = {
        "id": doc["id"],
        "type": [BUILDING, D + "TouristDestination"],
        "attrs": {AIR: [prop(1)]},
    }
    out = upsert_entity(doc, new_doc, now=NOW, mode="replace")
    assert content(out["attrs"]) == {AIR: [prop(1)]}
    assert out["type"] == sorted([BUILDING, D + "TouristDestination"])
    assert "scope" not in out and out["createdAt"] == T0


def test_upsert_update_appends_and_adds_types_004_04() -> None:
    doc = entity({NAME: [prop("old")], AIR: [prop(1)]})
    new_doc = {
        "id": doc["id"],
        "type": [VEHICLE],
        "attrs": {NAME: [prop("new")], LOCATED: [rel("urn:x:1")]},
    }
    out = upsert_entity(doc, new_doc, now=NOW, mode="update")
    assert content(out["attrs"]) == {NAME: [prop("new")], AIR: [prop(1)], LOCATED: [rel("urn:x:1")]}
    assert out["type"] == sorted([BUILDING, VEHICLE]) and out["createdAt"] == T0


def test_upsert_rejects_unknown_mode() -> None:
    with pytest.raises(BadRequestData):
        upsert_entity(
            None, {"id": "urn:x:1", "type": [BUILDING], "attrs": {}}, now=NOW, mode="merge"
        )


# ---------------------------------------------------------------- batch update / merge


@pytest.mark.parametrize(
    ("no_overwrite", "updated", "not_updated", "name_value"),
    [(False, [NAME, LOCATION], [], "new"), (True, [LOCATION], [NAME], "old")],
    ids=["005_01-overwrite", "005_02_03-noOverwrite"],
)
def test_batch_update(
    no_overwrite: bool, updated: list[str], not_updated: list[str], name_value: str
) -> None:
    doc = entity({NAME: [prop("old")]})
    point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [13.39, 52.55]}}
    new_doc = {
        "id": doc["id"],
        "type": [BUILDING],
        "attrs": {NAME: [prop("new")], LOCATION: [point]},
    }
    out = batch_update_entity(doc, new_doc, now=NOW, no_overwrite=no_overwrite)
    assert out.updated == updated and [n for n, _ in out.not_updated] == not_updated
    assert out.doc["attrs"][NAME][0]["value"] == name_value


def test_batch_update_adds_types_005_05() -> None:
    out = batch_update_entity(
        entity(), {"id": "x", "type": [VEHICLE], "attrs": {}}, now=NOW, no_overwrite=False
    )
    assert out.doc["type"] == sorted([BUILDING, VEHICLE])


def test_batch_merge_partial_data_057_01_04() -> None:
    new_doc = {
        "id": "urn:ngsi-ld:Thing:1",
        "type": [BUILDING],
        "attrs": {AIR: [prop(1, observedAt="2024-01-01T00:00:00.000Z")]},
    }
    out = batch_merge_entity(merge_data(), new_doc, now=NOW)
    assert content(out.doc["attrs"][AIR]) == [
        prop(1, unitCode="C62", observedAt="2024-01-01T00:00:00.000Z")
    ]
    assert out.doc["type"] == [BUILDING]


# ---------------------------------------------------------------- properties

NAMES = st.sampled_from([D + n for n in ("a", "b", "c", "d", "e", "f")])
DATASET_IDS = st.sampled_from([None, DS1, DS2, GPS])


@st.composite
def instance_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    dataset_ids = draw(st.lists(DATASET_IDS, min_size=1, max_size=3, unique=True))
    dataset_ids.sort(key=lambda d: d is not None)  # default instance first
    instances = []
    for dataset_id in dataset_ids:
        instance = prop(draw(st.integers(-5, 5)))
        if draw(st.booleans()):
            instance["observedAt"] = "2026-01-01T00:00:00Z"
        if draw(st.booleans()):
            instance[ACCURACY] = prop(draw(st.integers(0, 3)))
        if dataset_id is not None:
            instance["datasetId"] = dataset_id
        instances.append(instance)
    return instances


ATTRS = st.dictionaries(NAMES, instance_lists(), max_size=4)


@given(ATTRS, ATTRS)
@settings(max_examples=60)
def test_append_then_delete_restores_attribute_set(existing: Any, added: Any) -> None:
    doc = entity(existing)
    fresh = {n: v for n, v in added.items() if n not in existing}
    out = append_attributes(doc, fresh, now=NOW)
    assert set(attribute_names(out.doc)) == set(existing) | set(fresh)
    restored = out.doc
    for name in fresh:
        restored = delete_attribute(restored, name, delete_all=True)
    assert restored["attrs"] == doc["attrs"]


@given(ATTRS)
@settings(max_examples=60)
def test_merge_with_empty_fragment_changes_nothing(existing: Any) -> None:
    doc = entity(existing, scope=["/A"])
    out = merge_entity(doc, {}, now=NOW)
    assert out.doc == doc and not out.changed and out.updated == [] and out.not_updated == []


@given(ATTRS)
@settings(max_examples=60)
def test_merging_a_document_into_itself_is_a_no_op(existing: Any) -> None:
    doc = entity(existing)
    out = merge_entity(doc, copy.deepcopy(doc["attrs"]), now=NOW)
    assert out.doc == doc and not out.changed


@given(ATTRS, ATTRS, st.sampled_from(["append", "update", "merge", "noOverwrite"]))
@settings(max_examples=80)
def test_writes_never_mutate_inputs_and_keep_created_at(
    existing: Any, fragment: Any, op: str
) -> None:
    doc = entity(existing)
    doc_before, fragment_before = copy.deepcopy(doc), copy.deepcopy(fragment)
    if op == "append":
        out = append_attributes(doc, fragment, now=NOW)
    elif op == "noOverwrite":
        out = append_attributes(doc, fragment, now=NOW, no_overwrite=True)
    elif op == "update":
        out = update_attributes(doc, fragment, now=NOW)
    else:
        out = merge_entity(doc, fragment, now=NOW)
    assert doc == doc_before and fragment == fragment_before
    assert out.doc["createdAt"] == T0
    assert out.doc["modifiedAt"] == (NOW if out.changed else T0)
    for name, instances in out.doc["attrs"].items():
        dataset_ids = [i.get("datasetId") for i in instances]
        assert len(dataset_ids) == len(set(dataset_ids)), "one instance per datasetId"
        if None in dataset_ids:
            assert dataset_ids[0] is None, "default instance first"
        for instance in instances:
            was_there = name in existing and any(
                i.get("datasetId") == instance.get("datasetId") for i in existing[name]
            )
            assert instance["createdAt"] == (T0 if was_there else NOW)


@given(ATTRS, ATTRS)
@settings(max_examples=60)
def test_replace_entity_keeps_id_and_created_at(existing: Any, new_attrs: Any) -> None:
    doc = entity(existing)
    new_doc = {"id": "urn:ngsi-ld:Other:9", "type": [VEHICLE], "attrs": new_attrs}
    out = replace_entity(doc, new_doc, now=NOW)
    assert out["id"] == doc["id"] and out["createdAt"] == T0 and out["modifiedAt"] == NOW
    assert content(out["attrs"]) == {
        n: sorted(v, key=lambda i: i.get("datasetId") is not None) for n, v in new_attrs.items()
    }


@given(ATTRS, ATTRS)
@settings(max_examples=60)
def test_update_writes_every_fragment_instance(existing: Any, fragment: Any) -> None:
    out = update_attributes(entity(existing), fragment, now=NOW)
    for name, instances in fragment.items():
        stored = {i.get("datasetId"): content(i) for i in out.doc["attrs"][name]}
        for instance in instances:
            assert stored[instance.get("datasetId")] == instance
