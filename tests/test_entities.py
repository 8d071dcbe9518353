"""Parsing and validation of NGSI-LD entity payloads (smartregion.core.entities)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smartregion.core.entities import (
    NGSI_LD,
    NULL,
    Mode,
    _Parser,  # the fast path is compared with the general one
    is_datetime,
    is_uri,
    parse_attribute,
    parse_attributes,
    parse_entity,
    validate_entity_id,
)
from smartregion.errors import BadRequestData

NOW = "2026-11-27T08:00:00.000000Z"
D = "https://uri.etsi.org/ngsi-ld/default-context/"
CORE = {"location", "observationSpace", "operationSpace", "ngsildproof", "description"}


class FakeVocab:
    """`x` <-> default-context/x; a few core terms map into the ngsi-ld namespace."""

    def expand_term(self, term: str) -> str:
        if term in ("id", "type"):
            return "@" + term
        if term in CORE:
            return NGSI_LD + term
        if ":" in term:
            return term
        return D + term

    def compact_iri(self, iri: str) -> str:
        if iri.startswith(D):
            return iri[len(D) :]
        if iri.startswith(NGSI_LD) and iri[len(NGSI_LD) :] in CORE:
            return iri[len(NGSI_LD) :]
        return iri

    def expand_value(self, value: str) -> str:
        return self.expand_term(value)

    def compact_value(self, iri: str) -> str:
        return self.compact_iri(iri)


V = FakeVocab()
EID = "urn:ngsi-ld:Vehicle:A1"
POINT = {"type": "Point", "coordinates": [8.0, 49.0]}
SYS = {"createdAt": NOW, "modifiedAt": NOW}


def entity(**attrs: Any) -> dict[str, Any]:
    return {"id": EID, "type": "Vehicle", **attrs}


def parse(payload: dict[str, Any]) -> dict[str, Any]:
    return parse_entity(payload, V, now=NOW)


def attr(payload_attr: Any, name: str = "speed") -> list[dict[str, Any]]:
    doc = parse(entity(**{name: payload_attr}))
    instances: list[dict[str, Any]] = doc["attrs"][V.expand_term(name)]
    return instances


def rejected(payload: Any, fragment: str | None = None) -> BadRequestData:
    with pytest.raises(BadRequestData) as info:
        parse_entity(payload, V, now=NOW)
    if fragment is not None:
        assert fragment in info.value.detail
    return info.value


# ------------------------------------------------------------------------------------------
# the document shape


def test_minimal_entity_document() -> None:
    assert parse({"id": EID, "type": "Vehicle"}) == {
        "id": EID,
        "type": [D + "Vehicle"],
        "createdAt": NOW,
        "modifiedAt": NOW,
        "attrs": {},
    }


def test_full_document_shape() -> None:
    doc = parse(
        entity(
            scope="/Flanders/Ghent",
            temperature={
                "type": "Property",
                "value": 21.5,
                "observedAt": "2026-11-27T07:59:00.000Z",
                "unitCode": "CEL",
                "accuracy": {"type": "Property", "value": 0.1},
            },
        )
    )
    assert doc == {
        "id": EID,
        "type": [D + "Vehicle"],
        "scope": ["/Flanders/Ghent"],
        "createdAt": NOW,
        "modifiedAt": NOW,
        "attrs": {
            D + "temperature": [
                {
                    "type": "Property",
                    "value": 21.5,
                    "observedAt": "2026-11-27T07:59:00.000Z",
                    "unitCode": "CEL",
                    D + "accuracy": {"type": "Property", "value": 0.1},
                    **SYS,
                }
            ]
        },
    }


def test_context_member_is_ignored_and_input_is_not_mutated() -> None:
    payload = entity(speed=5, **{"@context": ["https://example.org/ctx.jsonld"]})
    before = copy.deepcopy(payload)
    doc = parse(payload)
    assert payload == before
    assert list(doc["attrs"]) == [D + "speed"]


def test_jsonld_keyword_aliases_id_and_type() -> None:
    doc = parse({"@id": EID, "@type": "Vehicle", "speed": 1})
    assert doc["id"] == EID and doc["type"] == [D + "Vehicle"]


def test_client_system_attributes_are_ignored() -> None:
    doc = parse(
        entity(
            createdAt="2000-01-01T00:00:00Z",
            modifiedAt="2000-01-01T00:00:00Z",
            speed={
                "type": "Property",
                "value": 1,
                "createdAt": "2000-01-01T00:00:00Z",
                "instanceId": "urn:x:1",
            },
        )
    )
    assert doc["createdAt"] == doc["modifiedAt"] == NOW
    assert doc["attrs"][D + "speed"] == [{"type": "Property", "value": 1, **SYS}]


def test_sub_attributes_carry_no_system_attributes() -> None:
    (inst,) = attr({"type": "Property", "value": 1, "source": {"type": "Property", "value": "x"}})
    assert inst[D + "source"] == {"type": "Property", "value": "x"}


def test_expires_at_is_kept_and_validated() -> None:
    doc = parse(
        entity(
            expiresAt="2100-01-01T00:00:00Z",
            speed={"value": 7, "expiresAt": "2100-01-01T00:00:00Z"},
        )
    )
    assert doc["expiresAt"] == "2100-01-01T00:00:00Z"
    assert doc["attrs"][D + "speed"][0]["expiresAt"] == "2100-01-01T00:00:00Z"
    rejected(entity(expiresAt="tomorrow"), "expiresAt")


def test_id_not_required_when_the_caller_has_it() -> None:
    doc = parse_entity({"type": "Vehicle"}, V, now=NOW, id_required=False)
    assert "id" not in doc
    rejected({"type": "Vehicle"}, "id is missing")


# ------------------------------------------------------------------------------------------
# ids and URIs


@pytest.mark.parametrize(
    "value",
    [
        "urn:ngsi-ld:Building:1",
        "http://example.org/a/b?c=d#e",
        "urn:ngsi-ld:Ciudad:París",
        "a:b",
        "urn:ngsi-ld:x:(1);a=b",
    ],
)
def test_valid_ids(value: str) -> None:
    assert validate_entity_id(value) == value
    assert is_uri(value)


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "12",
        "",
        "urn:",
        ":abc",
        "1urn:x",
        "invalidUri",
        "thisisaninvaliduri",
        "urn:a b",
        "urn:<x>",
        'urn:"x"',
        "urn:a\tb",
        NULL,
        None,
        12,
        ["urn:a:b"],
    ],
)
def test_invalid_ids(value: Any) -> None:
    with pytest.raises(BadRequestData):
        validate_entity_id(value)
    rejected({"id": value, "type": "Vehicle"})


@pytest.mark.parametrize(
    "codepoint",
    [
        0x202E,
        0x200B,
        0xFEFF,
        0x2028,
        0x00A0,
        0x003C,
        0xFE0F,
        0xE0100,
        0xFDD0,
        0xFFFE,
        0x115F,
        0x3164,
        0xFFA0,
        0x2800,
    ],
)
def test_invisible_characters_in_ids_are_rejected(codepoint: int) -> None:
    assert not is_uri("urn:ngsi-ld:Vehicle:A" + chr(codepoint) + "B")


def test_missing_id_and_non_object_payloads() -> None:
    rejected({"type": "Vehicle"})
    payloads: list[Any] = [[], "x", None, 5]
    for payload in payloads:
        rejected(payload, "JSON object")


# ------------------------------------------------------------------------------------------
# types and names


def test_types_are_expanded_sorted_and_deduplicated() -> None:
    doc = parse({"id": EID, "type": ["Car", "Vehicle", "Car", "https://example.org/T"]})
    assert doc["type"] == sorted({D + "Car", D + "Vehicle", "https://example.org/T"})


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        [],
        "type",
        "id",
        "@type",
        "9Vehicle",
        "my type",
        5,
        ["Car", 3],
        "a<b",
        "Ve=hicle",
        {"x": 1},
    ],
)
def test_invalid_types(value: Any) -> None:
    payload: dict[str, Any] = {"id": EID}
    if value is not None:
        payload["type"] = value
    rejected(payload)


def test_unicode_names_are_accepted() -> None:
    doc = parse({"id": EID, "type": "Škola", "výška_1": {"type": "Property", "value": 7}})
    assert doc["type"] == [D + "Škola"]
    assert D + "výška_1" in doc["attrs"]


def test_expanded_and_compact_iri_names_are_accepted() -> None:
    doc = parse(entity(**{"https://ngsi-ld-test-suite/context#almostFull": False}))
    assert "https://ngsi-ld-test-suite/context#almostFull" in doc["attrs"]


@pytest.mark.parametrize(
    "name",
    [
        "my attr",
        "a<b",
        'a"b',
        "a'b",
        "a=b",
        "a;b",
        "a(b)",
        "9abc",
        "a-b",
        "@foo",
        "datasetId",
        "instanceId",
        "observedAt",
        "unitCode",
        "value",
        "object",
        "languageMap",
        "lang",
        "objectType",
    ],
)
def test_invalid_attribute_names(name: str) -> None:
    rejected(entity(**{name: {"type": "Property", "value": 1}}))


def test_invalid_sub_attribute_names() -> None:
    rejected(entity(speed={"type": "Property", "value": 1, "my sub": {"value": 1}}), "my sub")


def test_short_and_expanded_spelling_of_one_attribute_is_a_duplicate() -> None:
    rejected(entity(speed=1, **{D + "speed": 2}), "twice")
    doc = parse(entity(speed=1, **{D + "speed": {"value": 2, "datasetId": "urn:ds:1"}}))
    assert len(doc["attrs"][D + "speed"]) == 2


# ------------------------------------------------------------------------------------------
# attribute kinds, normalized


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (
            {
                "type": "Property",
                "value": 4,
                "unitCode": "C62",
                "observedAt": "2020-09-09T16:40:00.000Z",
            },
            {
                "type": "Property",
                "value": 4,
                "unitCode": "C62",
                "observedAt": "2020-09-09T16:40:00.000Z",
            },
        ),
        (
            {"type": "Property", "value": {"street": "Main", "nested": [1, None]}},
            {"type": "Property", "value": {"street": "Main", "nested": [1, None]}},
        ),
        (
            {"type": "Property", "value": 1, "valueType": "double"},
            {"type": "Property", "value": 1, "valueType": D + "double"},
        ),
        (
            {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris", "objectType": "City"},
            {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris", "objectType": D + "City"},
        ),
        (
            {"type": "Relationship", "object": ["urn:a:1", "urn:a:2"]},
            {"type": "Relationship", "object": ["urn:a:1", "urn:a:2"]},
        ),
        ({"type": "GeoProperty", "value": POINT}, {"type": "GeoProperty", "value": POINT}),
        (
            {"type": "GeoProperty", "value": '{"type": "Point", "coordinates": [17.1, 48.7]}'},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [17.1, 48.7]}},
        ),
        (
            {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
            {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
        ),
        (
            {
                "type": "LanguageProperty",
                "languageMap": {"sk": "škola", "en": ["school", "academy"], "@none": "default"},
            },
            {
                "type": "LanguageProperty",
                "languageMap": {"sk": "škola", "en": ["school", "academy"], "@none": "default"},
            },
        ),
        (
            {"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "langString"},
            {"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": D + "langString"},
        ),
        (
            {"type": "JsonProperty", "json": {"id": "some-id", "type": "t", "null": None}},
            {"type": "JsonProperty", "json": {"id": "some-id", "type": "t", "null": None}},
        ),
        (
            {"type": "JsonProperty", "json": [{"id": "1"}, {"id": "2"}]},
            {"type": "JsonProperty", "json": [{"id": "1"}, {"id": "2"}]},
        ),
        (
            {"type": "VocabProperty", "vocab": "monument"},
            {"type": "VocabProperty", "vocab": D + "monument"},
        ),
        (
            {"type": "VocabProperty", "vocab": ["monument", "https://ex.org/sight"]},
            {"type": "VocabProperty", "vocab": [D + "monument", "https://ex.org/sight"]},
        ),
        (
            {"type": "ListProperty", "valueList": [1.2, "a", {"b": 1}], "unitCode": "MMT"},
            {"type": "ListProperty", "valueList": [1.2, "a", {"b": 1}], "unitCode": "MMT"},
        ),
        (
            {"type": "ListRelationship", "objectList": ["urn:Road:1", {"object": "urn:Road:2"}]},
            {"type": "ListRelationship", "objectList": ["urn:Road:1", "urn:Road:2"]},
        ),
        (
            {"type": "https://uri.etsi.org/ngsi-ld/Property", "value": 1},
            {"type": "Property", "value": 1},
        ),
    ],
)
def test_normalized_kinds(given: dict[str, Any], stored: dict[str, Any]) -> None:
    assert attr(given) == [{**stored, **SYS}]


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"type": "Property"}, "value"),
        ({"type": "Property", "value": None}, "null"),
        ({"type": "Relationship"}, "object"),
        ({"type": "LanguageProperty"}, "languageMap"),
        ({"type": "GeoProperty"}, "value"),
        ({"type": "JsonProperty"}, "json"),
        ({"type": "VocabProperty"}, "vocab"),
        ({"type": "ListProperty"}, "valueList"),
        ({"type": "ListRelationship"}, "objectList"),
        ({"type": "Attribute", "value": 1}, "unknown type"),
        ({"type": 5, "value": 1}, "unknown type"),
        # §4.5.2.2 prohibited Property members
        ({"type": "Property", "value": 1, "object": "urn:a:b"}, "object"),
        ({"type": "Property", "value": 1, "languageMap": {"en": "x"}}, "languageMap"),
        ({"type": "Property", "value": 1, "valueList": [1]}, "valueList"),
        ({"type": "Property", "value": 1, "previousValue": 0}, "previousValue"),
        ({"type": "Property", "value": 1, "entityIdSealed": "urn:a:b"}, "entityIdSealed"),
        ({"type": "Property", "value": 1, "lang": "en"}, "lang"),
        ({"type": "Property", "value": 1, "@context": {"a": "b"}}, "@context"),
        ({"type": "Property", "value": 1, "@id": "urn:a:b"}, "@id"),
        # §4.5.3.2 prohibited Relationship members
        ({"type": "Relationship", "object": "urn:a:b", "unitCode": "MTR"}, "unitCode"),
        ({"type": "Relationship", "object": "urn:a:b", "value": 42}, "value"),
        ({"type": "Relationship", "object": "urn:a:b", "languageMap": {"en": "x"}}, "languageMap"),
        (
            {"type": "Relationship", "object": "urn:a:b", "previousObject": "urn:a:c"},
            "previousObject",
        ),
        ({"type": "Relationship", "object": "not a uri"}, "URI"),
        ({"type": "Relationship", "object": 5}, "URI"),
        ({"type": "Relationship", "object": []}, "URI"),
        ({"type": "Relationship", "object": ["urn:a:b", "nope"]}, "URI"),
        # §4.5.24.2 JsonProperty
        ({"type": "JsonProperty", "json": {"a": 1}, "unitCode": "MTR"}, "unitCode"),
        ({"type": "JsonProperty", "json": {"a": 1}, "value": 1}, "value"),
        ({"type": "JsonProperty", "json": 5}, "json"),
        ({"type": "JsonProperty", "json": [1, 2]}, "json"),
        # §4.5.21 / §4.5.22 lists
        ({"type": "ListProperty", "valueList": [1.2], "value": 3}, "value"),
        ({"type": "ListProperty", "valueList": 3}, "valueList"),
        ({"type": "ListProperty", "valueList": [1, None]}, "valueList"),
        ({"type": "ListRelationship", "objectList": ["not a uri"]}, "not a uri"),
        ({"type": "ListRelationship", "objectList": "urn:a:b"}, "array"),
        ({"type": "ListRelationship", "objectList": [{"object": "urn:a:b", "x": 1}]}, "object"),
        # §4.5.18 / §4.6.5 / §5.2.32 LanguageProperty
        ({"type": "LanguageProperty", "languageMap": {"en": 5}}, "strings"),
        ({"type": "LanguageProperty", "languageMap": {"en": ["a", 5]}}, "strings"),
        ({"type": "LanguageProperty", "languageMap": {"": "x"}}, "language tag"),
        ({"type": "LanguageProperty", "languageMap": {"not a tag": "x"}}, "language tag"),
        ({"type": "LanguageProperty", "languageMap": {}}, "non-empty"),
        ({"type": "LanguageProperty", "languageMap": "hello"}, "non-empty"),
        (
            {"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "xsd:string"},
            "langString",
        ),
        ({"type": "LanguageProperty", "languageMap": {"en": "x"}, "value": "x"}, "value"),
        # VocabProperty
        ({"type": "VocabProperty", "vocab": 5}, "vocab"),
        ({"type": "VocabProperty", "vocab": []}, "vocab"),
        ({"type": "VocabProperty", "vocab": "a", "unitCode": "MTR"}, "unitCode"),
        # temporal and other metadata (§4.6.3, §4.8)
        ({"type": "Property", "value": "x", "observedAt": "not-a-date"}, "observedAt"),
        (
            {"type": "Property", "value": "x", "observedAt": "2026-08-10T12:00:00+02:00"},
            "observedAt",
        ),
        ({"type": "Property", "value": "x", "observedAt": "2026-08-10T12:00:00"}, "observedAt"),
        ({"type": "Property", "value": "x", "observedAt": "2026-13-10T12:00:00Z"}, "observedAt"),
        (
            {
                "type": "Property",
                "value": "x",
                "observedAt": {"type": "Property", "value": "2026-08-10T12:00:00Z"},
            },
            "observedAt",
        ),
        ({"type": "Property", "value": 1, "unitCode": 5}, "unitCode"),
        ({"type": "Property", "value": 1, "datasetId": "not a uri"}, "datasetId"),
        ({"type": "Property", "value": 1, "valueType": 5}, "valueType"),
    ],
)
def test_invalid_attributes(given: dict[str, Any], problem: str) -> None:
    error = rejected(entity(speed=given), problem)
    assert "speed" in error.detail


def test_valid_datetimes() -> None:
    for text in (
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.1Z",
        "2020-09-09T16:40:00.000000123Z",
    ):
        assert is_datetime(text)
    for bad in ("2026-01-01", "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z", 5, None):
        assert not is_datetime(bad)


# ------------------------------------------------------------------------------------------
# concise inference (§4.5.2.3, §4.5.3.3, ...)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (55, {"type": "Property", "value": 55}),
        ("Volvo", {"type": "Property", "value": "Volvo"}),
        (False, {"type": "Property", "value": False}),
        ([1, 2, 3], {"type": "Property", "value": [1, 2, 3]}),
        (
            {"street": "Main", "city": "Ghent"},
            {"type": "Property", "value": {"street": "Main", "city": "Ghent"}},
        ),
        (
            {"value": "Volvo", "observedAt": "2026-01-01T00:00:00Z"},
            {"type": "Property", "value": "Volvo", "observedAt": "2026-01-01T00:00:00Z"},
        ),
        (
            {"value": 1, "source": "x"},
            {"type": "Property", "value": 1, D + "source": {"type": "Property", "value": "x"}},
        ),
        (
            {"object": "urn:ngsi-ld:OffStreetParking:1"},
            {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:1"},
        ),
        ({"objectList": ["urn:a:1"]}, {"type": "ListRelationship", "objectList": ["urn:a:1"]}),
        ({"languageMap": {"en": "hi"}}, {"type": "LanguageProperty", "languageMap": {"en": "hi"}}),
        ({"vocab": "monument"}, {"type": "VocabProperty", "vocab": D + "monument"}),
        (
            {"json": {"speed": 3, "type": "raw"}},
            {"type": "JsonProperty", "json": {"speed": 3, "type": "raw"}},
        ),
        ({"valueList": [1, 2]}, {"type": "ListProperty", "valueList": [1, 2]}),
        (POINT, {"type": "GeoProperty", "value": POINT}),
        ({"value": POINT}, {"type": "GeoProperty", "value": POINT}),
        ({"value": POINT, "type": "Property"}, {"type": "Property", "value": POINT}),
    ],
)
def test_concise_inference(given: Any, stored: dict[str, Any]) -> None:
    assert attr(given) == [{**stored, **SYS}]


def test_concise_entity_from_the_suite() -> None:
    doc = parse(
        entity(
            speed=55,
            location=POINT,
            area={"value": {"type": "Point", "coordinates": [1.0, 2.0]}},
            brandName={"value": "Volvo", "observedAt": "2026-01-01T00:00:00Z"},
            isParked={"object": "urn:ngsi-ld:OffStreetParking:1"},
        )
    )
    kinds = {iri: inst[0]["type"] for iri, inst in doc["attrs"].items()}
    assert kinds == {
        D + "speed": "Property",
        NGSI_LD + "location": "GeoProperty",
        D + "area": "GeoProperty",
        D + "brandName": "Property",
        D + "isParked": "Relationship",
    }


@pytest.mark.parametrize(
    "given",
    [
        None,
        [],
        {"observedAt": "2026-01-01T00:00:00Z"},
        {"unitCode": "MTR"},
        {"object": "urn:a:b", "value": 1},
    ],
)
def test_concise_forms_that_cannot_be_attributes(given: Any) -> None:
    rejected(entity(speed=given))


# ------------------------------------------------------------------------------------------
# GeoProperties (§4.7)


@pytest.mark.parametrize("name", ["location", "observationSpace", "operationSpace"])
def test_core_geo_attributes_must_be_geoproperties(name: str) -> None:
    rejected(entity(**{name: {"type": "Property", "value": 7}}), "GeoProperty")
    rejected(entity(**{name: 7}), "GeoProperty")
    doc = parse(entity(**{name: {"type": "GeoProperty", "value": POINT}}))
    assert doc["attrs"][NGSI_LD + name][0]["value"] == POINT


@pytest.mark.parametrize(
    "value",
    [
        {
            "type": "GeometryCollection",
            "geometries": [{"type": "Point", "coordinates": [17.1, 48.7]}],
        },
        {"type": "Point", "coordinates": [1.0]},
        {"type": "Point", "coordinates": ["a", "b"]},
        {"type": "Point"},
        {"type": "Circle", "coordinates": [1, 2]},
        {"type": "LineString", "coordinates": [[1, 2]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]},
        "not a geometry",
        '{"type": "Point"}',
        "[1, 2]",
        5,
        [1, 2],
    ],
)
def test_invalid_geometries(value: Any) -> None:
    rejected(entity(location={"type": "GeoProperty", "value": value}), "location")


def test_valid_polygon_and_non_core_geoproperty() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    (inst,) = attr({"type": "GeoProperty", "value": polygon}, name="customLocation")
    assert inst["value"] == polygon


# ------------------------------------------------------------------------------------------
# multi-attributes and datasetId (§4.5.5)


def test_multi_instances() -> None:
    instances = attr(
        [
            {"type": "Property", "value": "Eiffel Tower"},
            {"type": "Property", "value": "Tour Eiffel", "datasetId": "urn:ngsi-ld:Dataset:fr"},
            {"type": "Property", "value": "Eiffelturm", "datasetId": "urn:ngsi-ld:Dataset:de"},
        ],
        name="name",
    )
    assert [i.get("datasetId") for i in instances] == [
        None,
        "urn:ngsi-ld:Dataset:fr",
        "urn:ngsi-ld:Dataset:de",
    ]
    assert all(i["createdAt"] == NOW for i in instances)


def test_none_dataset_id_is_the_default_instance() -> None:
    instances = attr(
        [
            {"type": "Property", "value": 55, "datasetId": "@none"},
            {"type": "Property", "value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        ]
    )
    assert instances[0] == {"type": "Property", "value": 55, **SYS}


@pytest.mark.parametrize(
    "instances",
    [
        [
            {"type": "Property", "value": 55},
            {"type": "Property", "value": 11, "datasetId": "@none"},
        ],
        [{"value": 55}, {"value": 11}],
        [{"value": 55, "datasetId": "urn:ds:a"}, {"value": 11, "datasetId": "urn:ds:a"}],
    ],
)
def test_duplicate_instances_are_rejected(instances: list[dict[str, Any]]) -> None:
    rejected(entity(speed=instances), "speed")


def test_mixed_kinds_across_instances_are_allowed() -> None:
    instances = attr(
        [
            {"type": "Property", "value": 1},
            {"type": "Relationship", "object": "urn:a:b", "datasetId": "urn:ds:r"},
        ]
    )
    assert [i["type"] for i in instances] == ["Property", "Relationship"]


def test_sub_attributes_cannot_be_multi_instance() -> None:
    rejected(
        entity(speed={"value": 1, "source": [{"value": 1}, {"value": 2, "datasetId": "urn:d:1"}]}),
        "several",
    )


def test_nested_sub_attributes() -> None:
    (inst,) = attr(
        {
            "value": 1,
            "a": {
                "type": "Relationship",
                "object": "urn:x:1",
                "b": {"value": 2, "unitCode": "MTR"},
            },
        }
    )
    assert inst[D + "a"] == {
        "type": "Relationship",
        "object": "urn:x:1",
        D + "b": {"type": "Property", "value": 2, "unitCode": "MTR"},
    }


# ------------------------------------------------------------------------------------------
# scope (§4.18)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("/Madrid/Gardens/ParqueNorte", ["/Madrid/Gardens/ParqueNorte"]),
        (
            ["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"],
            ["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"],
        ),
        (["/a", "/a"], ["/a"]),
        ("/Nature_1", ["/Nature_1"]),
    ],
)
def test_valid_scopes(given: Any, stored: list[str]) -> None:
    assert parse(entity(scope=given))["scope"] == stored


@pytest.mark.parametrize(
    "given", ["9bad", "/a//b", "a-b", NULL, ["/ok", "9bad"], [], "", "/", "/a/", 5, None]
)
def test_invalid_scopes(given: Any) -> None:
    rejected(entity(scope=given), "scope")


# ------------------------------------------------------------------------------------------
# ngsildproof (§4.5.2.2, annex C.11)


def test_ngsildproof() -> None:
    proof = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofValue": "z1"}
    doc = parse(
        entity(
            ngsildproof={
                "type": "Property",
                "entityIdSealed": EID,
                "entityTypeSealed": "Vehicle",
                "value": proof,
            }
        )
    )
    assert doc["attrs"][NGSI_LD + "ngsildproof"] == [
        {
            "type": "Property",
            "entityIdSealed": EID,
            "entityTypeSealed": D + "Vehicle",
            "value": proof,
            **SYS,
        }
    ]
    rejected(entity(ngsildproof={"type": "Property", "value": "not-a-proof-object"}), "proof")
    rejected(
        entity(ngsildproof={"type": "Property", "value": proof, "entityTypeSealed": 42}),
        "entityTypeSealed",
    )


# ------------------------------------------------------------------------------------------
# the NGSI-LD Null (§5.2.1, §5.5.4, §5.5.12)


@pytest.mark.parametrize(
    "given",
    [
        {"type": "Property", "value": NULL},
        NULL,
        {"type": "Relationship", "object": NULL},
        {"type": "GeoProperty", "value": NULL},
        {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
        {"type": "LanguageProperty", "languageMap": {"en": NULL}},
        {"type": "VocabProperty", "vocab": NULL},
        {"type": "JsonProperty", "json": NULL},
        {"type": "ListProperty", "valueList": [NULL]},
        {"type": "ListRelationship", "objectList": [NULL]},
        {"type": "ListRelationship", "objectList": [{"object": NULL}]},
        {"type": "Property", "value": 1, "sub": {"type": "Property", "value": NULL}},
        {"type": "Property", "value": {"country": NULL}},
        {"type": "Property", "value": {"geo": {"country": NULL}}},
        {"type": "Property", "value": 1, "datasetId": NULL},
        {"type": "Property", "value": 1, "unitCode": NULL},
        {"type": "Property", "value": 1, "observedAt": NULL},
    ],
)
def test_null_cannot_be_created(given: Any) -> None:
    rejected(entity(speed=given))
    with pytest.raises(BadRequestData):
        parse_attributes({"speed": given}, V, now=NOW, mode="create")


@pytest.mark.parametrize(
    ("name", "given", "member", "kept"),
    [
        ("name", {"type": "Property", "value": NULL}, "value", NULL),
        ("name", NULL, "value", NULL),
        ("locatedAt", {"type": "Relationship", "object": NULL}, "object", NULL),
        ("location", {"type": "GeoProperty", "value": NULL}, "value", NULL),
        ("location", NULL, "value", NULL),
        (
            "street",
            {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
            "languageMap",
            {"@none": NULL},
        ),
        ("v", {"type": "VocabProperty", "vocab": NULL}, "vocab", NULL),
        ("j", {"type": "JsonProperty", "json": NULL}, "json", NULL),
        ("l", {"type": "ListProperty", "valueList": [NULL]}, "valueList", [NULL]),
        ("r", {"type": "ListRelationship", "objectList": NULL}, "objectList", NULL),
        ("r", {"type": "ListRelationship", "objectList": [{"object": NULL}]}, "objectList", [NULL]),
    ],
)
def test_null_is_kept_in_update_and_merge(name: str, given: Any, member: str, kept: Any) -> None:
    modes: tuple[Mode, ...] = ("update", "merge")
    for mode in modes:
        parsed = parse_attributes(
            {
                name: {**given, "datasetId": "urn:ngsi-ld:Dataset:01"}
                if isinstance(given, dict)
                else given
            },
            V,
            now=NOW,
            mode=mode,
        )
        (inst,) = parsed[V.expand_term(name)]
        assert inst[member] == kept


def test_nested_null_only_in_merge() -> None:
    fragment = {
        "address": {"type": "Property", "value": {"street": "Pariser Platz", "country": NULL}}
    }
    merged = parse_attributes(fragment, V, now=NOW, mode="merge")
    assert merged[D + "address"][0]["value"] == {"street": "Pariser Platz", "country": NULL}
    with pytest.raises(BadRequestData):
        parse_attributes(fragment, V, now=NOW, mode="update")
    with pytest.raises(BadRequestData):
        parse_attribute("address", {"value": {"country": NULL}}, V, now=NOW, partial=True)


def test_metadata_null_only_in_merge() -> None:
    body = {"speed": {"value": 1, "unitCode": NULL, "observedAt": NULL}}
    merged = parse_attributes(body, V, now=NOW, mode="merge")
    assert merged[D + "speed"][0]["unitCode"] == merged[D + "speed"][0]["observedAt"] == NULL
    with pytest.raises(BadRequestData):
        parse_attributes(body, V, now=NOW, mode="update")


def test_null_sub_attribute_in_update() -> None:
    _, (inst,) = parse_attribute("speed", {"value": 1, "source": {"value": NULL}}, V, now=NOW)
    assert inst[D + "source"] == {"type": "Property", "value": NULL}


def test_null_id_and_scope() -> None:
    rejected({"id": NULL, "type": "Vehicle"})
    rejected(entity(scope=NULL))
    merged = parse_attributes({"scope": NULL}, V, now=NOW, mode="merge", allow_id_type=True)
    assert merged == {"scope": [NULL]}
    merged = parse_attributes({"scope": [NULL]}, V, now=NOW, mode="merge", allow_id_type=True)
    assert merged == {"scope": [NULL]}


# ------------------------------------------------------------------------------------------
# fragments


def test_parse_attributes_passes_id_type_scope_only_when_allowed() -> None:
    body = {
        "id": EID,
        "type": ["Vehicle", "Car"],
        "scope": "/a",
        "speed": 3,
        "@context": "https://x.org/c.jsonld",
    }
    assert parse_attributes(body, V, now=NOW, allow_id_type=True) == {
        "id": EID,
        "type": [D + "Car", D + "Vehicle"],
        "scope": ["/a"],
        D + "speed": [{"type": "Property", "value": 3, **SYS}],
    }
    assert parse_attributes(body, V, now=NOW) == {
        D + "speed": [{"type": "Property", "value": 3, **SYS}]
    }
    with pytest.raises(BadRequestData):
        parse_attributes({"id": "nope"}, V, now=NOW, allow_id_type=True)
    with pytest.raises(BadRequestData):
        parse_attributes([1], V, now=NOW)


def test_parse_attribute() -> None:
    assert parse_attribute("location", POINT, V, now=NOW) == (
        NGSI_LD + "location",
        [{"type": "GeoProperty", "value": POINT, **SYS}],
    )
    with pytest.raises(BadRequestData):
        parse_attribute("bad name", 1, V, now=NOW)


def test_partial_attribute_fragment() -> None:
    _, (inst,) = parse_attribute(
        "speed", {"observedAt": "2026-01-01T00:00:00Z"}, V, now=NOW, partial=True
    )
    assert inst == {"observedAt": "2026-01-01T00:00:00Z", **SYS}
    _, (inst,) = parse_attribute("speed", {"value": {"a": 1}}, V, now=NOW, partial=True)
    assert inst["type"] == "Property"
    with pytest.raises(BadRequestData):
        parse_attribute("speed", {"observedAt": "2026-01-01T00:00:00Z"}, V, now=NOW)


def test_with_the_real_term_map() -> None:
    jsonld = pytest.importorskip("smartregion.core.jsonld")
    vocab = jsonld.TermMap()
    doc = parse_entity(
        {"id": EID, "type": "Vehicle", "location": POINT, "speed": 5}, vocab, now=NOW
    )
    assert set(doc["attrs"]) == {NGSI_LD + "location", D + "speed"}
    with pytest.raises(BadRequestData):
        parse_entity({"id": EID, "type": "type"}, vocab, now=NOW)


def test_type_only_fragment_and_odd_attribute_types() -> None:
    fragment = parse_attributes({"type": ["Vehicle", "Car"]}, V, now=NOW, allow_id_type=True)
    assert fragment == {"type": [D + "Car", D + "Vehicle"]}
    rejected(entity(speed={"type": ["Property"], "value": 1}), "unknown type")
    rejected(entity(speed={"type": {"a": 1}, "value": 1}), "unknown type")
    (inst,) = attr({"value": {"type": ["Point"], "coordinates": [1, 2]}})
    assert inst["type"] == "Property"


def test_ascii_fast_path_of_is_uri_agrees_with_the_full_check() -> None:
    # is_uri checks ASCII values with one regex; it must accept exactly what the per-character
    # rule (no forbidden or invisible characters) accepts
    from smartregion.core.entities import _URI_FORBIDDEN, _invisible

    for code in range(128):
        value = f"urn:a{chr(code)}b"
        expected = not any(ch in _URI_FORBIDDEN or _invisible(ch) for ch in value)
        assert is_uri(value) == expected, repr(chr(code))


# ------------------------------------------------------------------------------------------
# the common-shape fast path decides exactly as the general path


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", NULL, "urn:ngsi-ld:Car:1", "not a uri", "@none"]),
)
_POINTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Point", "point", "LineString", "GeometryCollection"]),
        "coordinates": st.one_of(
            st.lists(st.floats(min_value=-200, max_value=200), min_size=2, max_size=3),
            st.lists(
                st.one_of(
                    st.floats(min_value=-200, max_value=200),
                    st.integers(min_value=-200, max_value=200),
                    st.booleans(),
                    st.just(float("inf")),
                    st.just("1"),
                ),
                min_size=2,
                max_size=3,
            ),
            st.lists(st.integers(min_value=-200, max_value=200), max_size=4),
            _SCALARS,
        ),
    },
    optional={"bbox": st.just([0, 0, 1, 1]), "geometries": st.just([])},
)
_MEMBER_VALUES = st.one_of(_SCALARS, _POINTS, st.lists(_SCALARS, max_size=2))
_EXTRAS = {
    "observedAt": st.sampled_from(
        [NOW, "2026-11-27T08:00:00Z", "2026-02-30T08:00:00Z", "2026-11-27", NULL, 5]
    ),
    "unitCode": st.sampled_from(["CEL", "", NULL, 3]),
    "datasetId": st.sampled_from(["urn:ngsi-ld:Dataset:a", "@none"]),
    "createdAt": st.just(NOW),
    "accuracy": st.just({"type": "Property", "value": 0.5}),
    "@type": st.just("Property"),
    "value": _MEMBER_VALUES,
    "object": _MEMBER_VALUES,
}


@st.composite
def _instances(draw: st.DrawFn) -> dict[str, Any]:
    # mostly the common shapes (type, value member, observedAt/unitCode), with a few mutations
    kind = draw(
        st.sampled_from(
            ["Property", "GeoProperty", "Relationship", "LanguageProperty", NGSI_LD + "Property"]
        )
    )
    raw: dict[str, Any] = {}
    if draw(st.booleans()):
        raw["type"] = kind
    member = "object" if kind == "Relationship" else "value"
    if draw(st.integers(0, 9)):
        common = _POINTS if kind == "GeoProperty" else _SCALARS
        raw[member] = draw(common if draw(st.integers(0, 3)) else _MEMBER_VALUES)
    for key in ("observedAt", "unitCode"):
        if draw(st.booleans()):
            raw[key] = draw(_EXTRAS[key])
    if not draw(st.integers(0, 2)):
        key = draw(st.sampled_from(sorted(_EXTRAS)))
        raw[key] = draw(_EXTRAS[key])
    if "type" not in raw and draw(st.integers(0, 3)):
        raw = {"type": kind, **raw}
    return raw


def P(*coordinates: Any) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(coordinates)}


def _outcome(
    name: str, raw: Any, mode: Mode, *, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> Any:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(_Parser, "common_instance", lambda *_: None)
        try:
            return parse_attribute(name, copy.deepcopy(raw), V, now=NOW, mode=mode)
        except BadRequestData as exc:
            return ("rejected", exc.detail)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["speed", "location", "ngsildproof", "observationSpace"]),
    raw=_instances(),
    mode=st.sampled_from(["create", "update", "merge"]),
)
@example(name="speed", raw={"type": "GeoProperty", "value": P(True, 1.0)}, mode="create")
@example(name="speed", raw={"type": "GeoProperty", "value": P(181, 1.0)}, mode="create")
@example(name="speed", raw={"type": "GeoProperty", "value": P(1, 91.0)}, mode="create")
@example(name="speed", raw={"type": "GeoProperty", "value": P(1, 2, 3, 4)}, mode="create")
@example(name="speed", raw={"type": "GeoProperty", "value": P(1, 2, "3")}, mode="create")
@example(name="speed", raw={"type": "Property", "value": 1, "unitCode": ""}, mode="update")
@example(name="car", raw={"type": "Relationship", "object": "no uri"}, mode="create")
@example(name="speed", raw={"type": "Property", "value": [NULL]}, mode="create")
def test_the_fast_path_parses_exactly_as_the_general_path(
    name: str, raw: dict[str, Any], mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _outcome(name, raw, mode, fast=True, monkeypatch=monkeypatch)
    general = _outcome(name, raw, mode, fast=False, monkeypatch=monkeypatch)
    assert repr(fast) == repr(general)  # repr: key order and int/float/bool kept apart


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("speed", {"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": NOW}),
        ("speed", {"type": "Property", "observedAt": NOW, "value": "fast"}),
        ("location", {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [3, 51]}}),
        ("owner", {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}),
    ],
)
def test_common_shapes_take_the_fast_path(name: str, raw: dict[str, Any]) -> None:
    parser = _Parser(V, NOW, "create")
    fast = parser.common_instance(V.expand_term(name), raw)
    assert fast is not None
    assert fast == parser.instance(name, V.expand_term(name), raw, top=True)
    assert list(fast) == list(parser.instance(name, V.expand_term(name), raw, top=True))
