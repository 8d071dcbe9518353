"""Output representations of internal entity documents (smartregion.core.rendering)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.entities import NGSI_LD, parse_entity
from smartregion.core.rendering import (
    RenderOptions,
    choose_language,
    render_attribute,
    render_entity,
    render_geojson_collection,
    render_geojson_feature,
)

NOW = "2026-11-27T08:00:00.000000Z"
D = "https://uri.etsi.org/ngsi-ld/default-context/"
CORE = {"location", "observationSpace", "operationSpace", "ngsildproof"}
EID = "urn:ngsi-ld:Vehicle:A1"
POINT = {"type": "Point", "coordinates": [1.0, 2.0]}


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
NORMALIZED = RenderOptions()
CONCISE = RenderOptions(format="concise")
SIMPLIFIED = RenderOptions(format="keyValues")


def doc_of(**attrs: Any) -> dict[str, Any]:
    return parse_entity({"id": EID, "type": "Vehicle", **attrs}, V, now=NOW)


def render(opts: RenderOptions = NORMALIZED, /, **attrs: Any) -> dict[str, Any]:
    return render_entity(doc_of(**attrs), V, opts)


# a Building like the ETSI suite's building-simple-attributes + extras
BUILDING: dict[str, Any] = {
    "id": "urn:ngsi-ld:Building:1",
    "type": "Building",
    "name": {"type": "Property", "value": "Eiffel Tower"},
    "subCategory": {"type": "Property", "value": "tourism"},
    "airQualityLevel": {
        "type": "Property",
        "value": 4,
        "unitCode": "C62",
        "observedAt": "2020-09-09T16:40:00.000Z",
        "hasWeatherObserved": {"type": "Relationship", "object": "urn:ngsi-ld:Sensor:1"},
    },
    "almostFull": {"type": "Property", "value": False},
}


# ------------------------------------------------------------------------------------------
# normalized


def test_normalized_round_trips_the_input() -> None:
    doc = parse_entity(BUILDING, V, now=NOW)
    assert render_entity(doc, V, NORMALIZED) == BUILDING


def test_every_kind_normalized() -> None:
    body = render(
        speed=[
            {"type": "Property", "value": 55},
            {"type": "Property", "value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        ],
        brandName={"type": "LanguageProperty", "languageMap": {"en": "hi"}},
        street={"type": "JsonProperty", "json": {"a": 1}},
        category={"type": "VocabProperty", "vocab": ["non-commercial", "https://x.org/v"]},
        tyreTreadDepths={"type": "ListProperty", "valueList": [1.2, 3.4]},
        isParked={
            "type": "Relationship",
            "object": "urn:ngsi-ld:OffStreetParking:1",
            "objectType": "OffStreetParking",
        },
        route={"type": "ListRelationship", "objectList": ["urn:Road:1", {"object": "urn:Road:2"}]},
        location={"type": "GeoProperty", "value": POINT},
    )
    assert body == {
        "id": EID,
        "type": "Vehicle",
        "speed": [
            {"type": "Property", "value": 55},
            {"type": "Property", "value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        ],
        "brandName": {"type": "LanguageProperty", "languageMap": {"en": "hi"}},
        "street": {"type": "JsonProperty", "json": {"a": 1}},
        "category": {"type": "VocabProperty", "vocab": ["non-commercial", "https://x.org/v"]},
        "tyreTreadDepths": {"type": "ListProperty", "valueList": [1.2, 3.4]},
        "isParked": {
            "type": "Relationship",
            "object": "urn:ngsi-ld:OffStreetParking:1",
            "objectType": "OffStreetParking",
        },
        "route": {
            "type": "ListRelationship",
            "objectList": [{"object": "urn:Road:1"}, {"object": "urn:Road:2"}],
        },
        "location": {"type": "GeoProperty", "value": POINT},
    }


def test_types_and_scopes() -> None:
    doc = parse_entity({"id": EID, "type": ["Vehicle", "Car"], "scope": "/a/b"}, V, now=NOW)
    assert render_entity(doc, V, NORMALIZED) == {
        "id": EID,
        "type": ["Car", "Vehicle"],
        "scope": "/a/b",
    }
    doc = parse_entity({"id": EID, "type": "Vehicle", "scope": ["/a", "/b"]}, V, now=NOW)
    assert render_entity(doc, V, NORMALIZED)["scope"] == ["/a", "/b"]
    assert "scope" not in render_entity(doc, V, RenderOptions(omit=frozenset({"scope"})))


def test_unknown_terms_stay_expanded() -> None:
    body = render(**{"https://example.org/attr": 1})
    assert body["https://example.org/attr"] == {"type": "Property", "value": 1}


def test_sys_attrs() -> None:
    payload = {
        "speed": {"value": 1, "source": {"value": "x"}, "expiresAt": "2100-01-01T00:00:00Z"},
        "expiresAt": "2100-01-01T00:00:00Z",
    }
    plain = render(**payload)
    assert "createdAt" not in plain and "expiresAt" not in plain
    assert plain["speed"] == {
        "type": "Property",
        "value": 1,
        "source": {"type": "Property", "value": "x"},
    }
    with_sys = render(RenderOptions(sys_attrs=True), **payload)
    assert with_sys["createdAt"] == with_sys["modifiedAt"] == NOW
    assert with_sys["expiresAt"] == "2100-01-01T00:00:00Z"
    assert with_sys["speed"]["createdAt"] == with_sys["speed"]["modifiedAt"] == NOW
    assert with_sys["speed"]["expiresAt"] == "2100-01-01T00:00:00Z"
    simplified = render(RenderOptions(format="keyValues", sys_attrs=True), **payload)
    assert simplified["createdAt"] == NOW and simplified["speed"] == 1


# ------------------------------------------------------------------------------------------
# projection (§4.21) and datasetId


def test_attrs_omit_pick() -> None:
    doc = parse_entity(BUILDING, V, now=NOW)
    picked = render_entity(doc, V, RenderOptions(attrs=frozenset({D + "name"})))
    assert picked == {"id": BUILDING["id"], "type": "Building", "name": BUILDING["name"]}
    omitted = render_entity(doc, V, RenderOptions(omit=frozenset({D + "name"}), pick_type=False))
    assert "name" not in omitted and "type" not in omitted and "almostFull" in omitted
    only_id = render_entity(doc, V, RenderOptions(attrs=frozenset(), pick_type=False))
    assert only_id == {"id": BUILDING["id"]}
    no_id = render_entity(doc, V, RenderOptions(pick_id=False))
    assert "id" not in no_id and no_id["type"] == "Building"


def test_dataset_id_filter() -> None:
    doc = doc_of(
        speed=[
            {"value": 55},
            {"value": 11, "datasetId": "urn:ds:gps"},
            {"value": 12, "datasetId": "urn:ds:radar"},
        ],
        other=1,
    )
    gps = render_entity(doc, V, RenderOptions(dataset_id="urn:ds:gps"))
    assert gps["speed"] == {"type": "Property", "value": 11, "datasetId": "urn:ds:gps"}
    assert "other" not in gps
    default = render_entity(doc, V, RenderOptions(dataset_id="@none"))
    assert default["speed"] == {"type": "Property", "value": 55}
    assert default["other"] == {"type": "Property", "value": 1}
    both = render_entity(doc, V, RenderOptions(dataset_id="urn:ds:gps,urn:ds:radar"))
    assert [i["value"] for i in both["speed"]] == [11, 12]


# ------------------------------------------------------------------------------------------
# simplified (§4.5.4)


def test_simplified_per_kind() -> None:
    body = render(
        SIMPLIFIED,
        speed=[
            {"type": "Property", "value": 55},
            {"type": "Property", "value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        ],
        brandName={"type": "LanguageProperty", "languageMap": {"en": "hi"}},
        street={"type": "JsonProperty", "json": {"a": 1}},
        category={"type": "VocabProperty", "vocab": "non-commercial"},
        tyreTreadDepths={"type": "ListProperty", "valueList": [1.2, 3.4]},
        isParked={"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:1"},
        route={
            "type": "ListRelationship",
            "objectList": ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"],
        },
        location={"type": "GeoProperty", "value": POINT, "observedAt": "2026-01-01T00:00:00Z"},
        note={"value": "x", "unitCode": "C62", "sub": 1},
    )
    assert body == {
        "id": EID,
        "type": "Vehicle",
        "speed": {"dataset": {"@none": 55, "urn:ngsi-ld:Dataset:gps": 11}},
        "brandName": {"languageMap": {"en": "hi"}},
        "street": {"json": {"a": 1}},
        "category": {"vocab": "non-commercial"},
        "tyreTreadDepths": [1.2, 3.4],
        "isParked": "urn:ngsi-ld:OffStreetParking:1",
        "route": ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"],
        "location": POINT,
        "note": "x",
    }
    assert RenderOptions(format="simplified").simplified


def test_simplified_building_matches_the_suite() -> None:
    doc = parse_entity(BUILDING, V, now=NOW)
    assert render_entity(doc, V, SIMPLIFIED) == {
        "id": BUILDING["id"],
        "type": "Building",
        "name": "Eiffel Tower",
        "subCategory": "tourism",
        "airQualityLevel": 4,
        "almostFull": False,
    }


# ------------------------------------------------------------------------------------------
# concise


def test_concise_forms() -> None:
    body = render(
        CONCISE,
        speed=55,
        detailed={
            "type": "Property",
            "value": 4,
            "unitCode": "C62",
            "source": {"type": "Property", "value": "x"},
        },
        compound={"type": "Property", "value": {"a": 1}},
        pointy={"type": "Property", "value": POINT},
        location={"type": "GeoProperty", "value": POINT},
        area={"type": "GeoProperty", "value": POINT, "observedAt": "2026-01-01T00:00:00Z"},
        isParked={"type": "Relationship", "object": "urn:a:1"},
        brandName={"type": "LanguageProperty", "languageMap": {"en": "hi"}},
        multi=[{"value": 1}, {"value": 2, "datasetId": "urn:ds:1"}],
    )
    assert body == {
        "id": EID,
        "type": "Vehicle",
        "speed": 55,
        "detailed": {"value": 4, "unitCode": "C62", "source": "x"},
        "compound": {"value": {"a": 1}},
        "pointy": {"type": "Property", "value": POINT},
        "location": POINT,
        "area": {"value": POINT, "observedAt": "2026-01-01T00:00:00Z"},
        "isParked": {"object": "urn:a:1"},
        "brandName": {"languageMap": {"en": "hi"}},
        "multi": [{"value": 1}, {"value": 2, "datasetId": "urn:ds:1"}],
    }


@pytest.mark.parametrize("value", [[], [{"value": 1}], [{"type": "X"}, 2], {}, "urn:a:b", None])
def test_concise_values_that_need_wrapping_round_trip(value: Any) -> None:
    if value is None:
        return
    doc = doc_of(thing={"type": "Property", "value": value})
    concise = render_entity(doc, V, CONCISE)
    assert parse_entity(concise, V, now=NOW) == doc


# ------------------------------------------------------------------------------------------
# lang (§4.15)

STREET = {"fr": "Grand Place", "nl": "Grote Markt"}
REGIONAL = {"de": "Marktplatz", "en-US": "Main Square"}


@pytest.mark.parametrize(
    ("language_map", "lang", "tag", "text"),
    [
        (STREET, "fr", "fr", "Grand Place"),
        (STREET, "fr-CH,fr", "fr", "Grand Place"),
        (STREET, "*", "fr", "Grand Place"),
        (STREET, "fr-CH,fr;q=0.9,en;q=0.8,*;q=0.5", "fr", "Grand Place"),
        (STREET, "fr;q=0.2,nl;q=0.9", "nl", "Grote Markt"),
        (STREET, "FR", "fr", "Grand Place"),
        (STREET, "nl-BE", "nl", "Grote Markt"),
        (REGIONAL, "en", "en-US", "Main Square"),
        (STREET, "pt", "fr", "Grand Place"),
        ({"@none": "x", "fr": "y"}, "pt", "@none", "x"),
        ({"@none": "x", "fr": "y"}, "*", "fr", "y"),
        (STREET, "pt;q=0,nl", "nl", "Grote Markt"),
        (STREET, "fr;q=bad,nl", "nl", "Grote Markt"),
    ],
)
def test_choose_language(language_map: dict[str, str], lang: str, tag: str, text: str) -> None:
    assert choose_language(language_map, lang) == (tag, text)


def test_lang_converts_language_properties() -> None:
    street = {
        "type": "LanguageProperty",
        "languageMap": STREET,
        "observedAt": "2026-01-01T00:00:00Z",
    }
    assert render(RenderOptions(lang="fr"), street=street)["street"] == {
        "type": "Property",
        "value": "Grand Place",
        "lang": "fr",
        "observedAt": "2026-01-01T00:00:00Z",
    }
    assert render(RenderOptions(lang="fr", format="keyValues"), street=street)["street"] == (
        "Grand Place"
    )
    assert render(RenderOptions(lang="nl", format="concise"), street=street)["street"] == {
        "value": "Grote Markt",
        "lang": "nl",
        "observedAt": "2026-01-01T00:00:00Z",
    }
    # other kinds are untouched
    assert render(RenderOptions(lang="fr"), speed=1)["speed"] == {"type": "Property", "value": 1}


# ------------------------------------------------------------------------------------------
# GeoJSON (§4.5.16, §4.5.17)


def test_geojson_feature_normalized() -> None:
    doc = doc_of(
        location=[
            {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [9.0, 9.0]},
                "datasetId": "urn:ngsi-ld:Dataset:gps",
            },
            {"type": "GeoProperty", "value": POINT},
        ],
        observationSpace={
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [11.1, 11.1]},
        },
        speed=5,
    )
    feature = render_geojson_feature(doc, V, NORMALIZED)
    assert feature["id"] == EID
    assert feature["type"] == "Feature"
    assert feature["geometry"] == POINT
    assert feature["properties"]["type"] == "Vehicle"
    assert "id" not in feature["properties"]
    assert feature["properties"]["speed"] == {"type": "Property", "value": 5}
    assert len(feature["properties"]["location"]) == 2
    on_space = render_geojson_feature(
        doc, V, RenderOptions(geometry_property=NGSI_LD + "observationSpace")
    )
    assert on_space["geometry"] == {"type": "Point", "coordinates": [11.1, 11.1]}
    for missing in (NGSI_LD + "operationSpace", D + "speed"):
        assert (
            render_geojson_feature(doc, V, RenderOptions(geometry_property=missing))["geometry"]
            is None
        )


def test_geojson_feature_simplified() -> None:
    doc = doc_of(
        location=[
            {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [9.0, 9.0]},
                "datasetId": "urn:ngsi-ld:Dataset:gps",
            },
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [3.0, 4.0]}},
        ],
        speed=5,
    )
    feature = render_geojson_feature(doc, V, SIMPLIFIED)
    assert feature == {
        "id": EID,
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [3.0, 4.0]},
        "properties": {
            "type": "Vehicle",
            "location": {
                "dataset": {
                    "urn:ngsi-ld:Dataset:gps": {"type": "Point", "coordinates": [9.0, 9.0]},
                    "@none": {"type": "Point", "coordinates": [3.0, 4.0]},
                }
            },
            "speed": 5,
        },
    }


def test_geojson_collection() -> None:
    docs = [doc_of(location=POINT), doc_of(speed=1)]
    collection = render_geojson_collection(docs, V, NORMALIZED)
    assert collection["type"] == "FeatureCollection"
    assert [f["geometry"] for f in collection["features"]] == [POINT, None]
    assert all("@context" not in f for f in collection["features"])
    assert render_geojson_collection([], V, NORMALIZED) == {
        "type": "FeatureCollection",
        "features": [],
    }


def test_render_attribute() -> None:
    doc = doc_of(speed=[{"value": 55}, {"value": 11, "datasetId": "urn:ds:gps"}])
    instances = doc["attrs"][D + "speed"]
    assert render_attribute(D + "speed", instances, V, SIMPLIFIED) == {
        "dataset": {"@none": 55, "urn:ds:gps": 11}
    }
    assert render_attribute(D + "speed", instances[:1], V, NORMALIZED) == {
        "type": "Property",
        "value": 55,
    }
    assert render_attribute(D + "speed", instances[1:], V, SIMPLIFIED) == {
        "dataset": {"urn:ds:gps": 11}
    }


def test_ngsildproof_round_trip() -> None:
    proof = {"type": "DataIntegrityProof", "proofValue": "z1"}
    body = render(
        ngsildproof={
            "type": "Property",
            "entityIdSealed": EID,
            "entityTypeSealed": "Vehicle",
            "value": proof,
        }
    )
    assert body["ngsildproof"] == {
        "type": "Property",
        "entityIdSealed": EID,
        "entityTypeSealed": "Vehicle",
        "value": proof,
    }


# ------------------------------------------------------------------------------------------
# round trips with generated entities

names = st.sampled_from(["speed", "name", "brand", "owner", "tags", "area", "výška"])
words = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
uris = words.map(lambda w: f"urn:ngsi-ld:Thing:{w}")
scalars = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(words, inner, max_size=3)),
    max_leaves=6,
)
times = st.datetimes(min_value=datetime(1000, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
)
points = st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(
    lambda c: {"type": "Point", "coordinates": [c[0], c[1]]}
)
lang_tags = st.sampled_from(["en", "fr", "nl", "en-US", "@none"])

kind_members = st.one_of(
    json_values.map(lambda v: {"type": "Property", "value": v}),
    uris.map(lambda u: {"type": "Relationship", "object": u}),
    points.map(lambda p: {"type": "GeoProperty", "value": p}),
    st.dictionaries(lang_tags, st.text(max_size=8), min_size=1).map(
        lambda m: {"type": "LanguageProperty", "languageMap": m}
    ),
    st.dictionaries(words, json_values, max_size=3).map(
        lambda j: {"type": "JsonProperty", "json": j}
    ),
    st.one_of(words, st.lists(words, min_size=1, max_size=3)).map(
        lambda v: {"type": "VocabProperty", "vocab": v}
    ),
    st.lists(st.integers(), max_size=4).map(lambda v: {"type": "ListProperty", "valueList": v}),
    st.lists(uris, max_size=3).map(lambda v: {"type": "ListRelationship", "objectList": v}),
)


@st.composite
def instances(draw: st.DrawFn, dataset: str | None) -> dict[str, Any]:
    inst = dict(draw(kind_members))
    if draw(st.booleans()):
        inst["observedAt"] = draw(times)
    if inst["type"] == "Property" and draw(st.booleans()):
        inst["unitCode"] = draw(words)
    if draw(st.booleans()):
        inst["accuracy"] = draw(kind_members)
    if dataset is not None:
        inst["datasetId"] = dataset
    return inst


@st.composite
def entities(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": draw(uris),
        "type": draw(st.lists(words, min_size=1, max_size=3)),
    }
    if draw(st.booleans()):
        payload["scope"] = draw(st.lists(words.map(lambda w: "/" + w), min_size=1, max_size=2))
    for name in draw(st.lists(names, unique=True, max_size=5)):
        datasets = draw(st.lists(uris, unique=True, max_size=2))
        default = draw(st.booleans()) or not datasets
        insts = [draw(instances(None))] if default else []
        insts += [draw(instances(f"urn:ngsi-ld:Dataset:{d}")) for d in datasets]
        payload[name] = insts if len(insts) > 1 or draw(st.booleans()) else insts[0]
    if draw(st.booleans()):
        payload["location"] = {"type": "GeoProperty", "value": draw(points)}
    return payload


@settings(max_examples=150, deadline=None)
@given(entities())
def test_round_trip_normalized_and_concise(payload: dict[str, Any]) -> None:
    doc = parse_entity(payload, V, now=NOW)
    for opts in (
        NORMALIZED,
        CONCISE,
        RenderOptions(sys_attrs=True),
        RenderOptions(format="concise", sys_attrs=True),
    ):
        rendered = render_entity(doc, V, opts)
        assert parse_entity(rendered, V, now=NOW) == doc


@settings(max_examples=50, deadline=None)
@given(entities())
def test_simplified_has_no_reified_attributes(payload: dict[str, Any]) -> None:
    doc = parse_entity(payload, V, now=NOW)
    body = render_entity(doc, V, SIMPLIFIED)
    assert set(body) - {"id", "type", "scope"} == {V.compact_iri(i) for i in doc["attrs"]}
    for key, value in body.items():
        if key not in ("id", "type", "scope") and isinstance(value, dict):
            assert not (
                "type" in value and value.get("type") in ("Property", "Relationship", "GeoProperty")
            )


def test_concise_with_odd_compound_values() -> None:
    doc = doc_of(thing={"type": "Property", "value": {"type": ["Point"], "coordinates": [1, 2]}})
    concise = render_entity(doc, V, CONCISE)
    assert concise["thing"] == {"value": {"type": ["Point"], "coordinates": [1, 2]}}
    assert parse_entity(concise, V, now=NOW) == doc
