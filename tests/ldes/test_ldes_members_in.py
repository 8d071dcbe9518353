"""How members map into entity changes (`ldes/members_in.py`), member shape by member shape."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
import pytest

from smartregion.core.jsonld import core_term_map
from smartregion.ldes.members_in import (
    Contribution,
    MemberRejected,
    PageGraph,
    StreamInfo,
    local_name,
    map_member,
)

PREFIXES = """
@prefix sosa: <http://www.w3.org/ns/sosa/> .
@prefix qudt: <http://qudt.org/schema/qudt/> .
@prefix unit: <http://qudt.org/vocab/unit/> .
@prefix geo: <http://www.opengis.net/ont/geosparql#> .
@prefix time: <http://www.w3.org/2006/time#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <https://example.org/> .
@prefix ngsi-ld: <https://uri.etsi.org/ngsi-ld/> .
"""
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"
STREAM = StreamInfo("https://example.org/stream", "https://example.org/at", None)


def mapped(turtle: str, member: str = "https://example.org/m") -> Contribution:
    graph = PageGraph(ox.parse(PREFIXES + turtle, format=ox.RdfFormat.TURTLE))
    return map_member(graph, ox.NamedNode(member), STREAM, core_term_map())


def attr(c: Contribution, name: str) -> dict[str, Any]:
    value: dict[str, Any] = c.attrs[name]
    return value


def test_observation_of_a_sensor_without_feature_of_interest() -> None:
    c = mapped("""ex:m a sosa:Observation ; sosa:madeBySensor ex:sensor-1 ;
        sosa:observedProperty <https://example.org/prop#PM10> ;
        sosa:hasResult [ qudt:numericValue 17 ; qudt:unit unit:NUM-PER-L ] ;
        sosa:phenomenonTime [ time:inXSDDateTimeStamp "2026-02-01T10:00:00Z"^^xsd:dateTimeStamp ] .""")
    assert c.entity_id == "https://example.org/sensor-1"
    pm10 = attr(c, CORE + "PM10")
    assert pm10["value"] == 17 and pm10["observedAt"] == "2026-02-01T10:00:00Z"
    # not a unit with a UN/CEFACT code we know: kept as a Relationship to the QUDT unit
    assert "unitCode" not in pm10
    assert pm10["http://qudt.org/schema/qudt/unit"] == {
        "type": "Relationship",
        "object": "http://qudt.org/vocab/unit/NUM-PER-L",
    }


def test_wkt_in_epsg_4326_has_its_axes_swapped() -> None:
    c = mapped("""ex:m a sosa:Observation ; sosa:hasFeatureOfInterest ex:site ;
        sosa:observedProperty ex:level ; sosa:hasSimpleResult "high" ;
        sosa:resultTime "2026-02-01T10:00:00Z"^^xsd:dateTime ;
        geo:hasGeometry [ geo:asWKT "<http://www.opengis.net/def/crs/EPSG/0/4326> POINT(51.05 3.72)"^^geo:wktLiteral ] .""")
    assert attr(c, "https://uri.etsi.org/ngsi-ld/location")["value"] == {
        "type": "Point",
        "coordinates": [3.72, 51.05],
    }
    assert attr(c, CORE + "level")["value"] == "high"


@pytest.mark.parametrize(
    ("turtle", "reason"),
    [
        (
            "ex:m a sosa:Observation ; sosa:observedProperty ex:p ; sosa:hasSimpleResult 1 ;"
            ' sosa:resultTime "2026-02-01T10:00:00Z"^^xsd:dateTime .',
            "feature of interest or sensor",
        ),
        (
            "ex:m a sosa:Observation ; sosa:hasFeatureOfInterest ex:s ; sosa:observedProperty ex:p ;"
            " sosa:hasSimpleResult 1 .",
            "result time",
        ),
        (
            "ex:m a sosa:Observation ; sosa:hasFeatureOfInterest ex:s ; sosa:hasSimpleResult 1 ;"
            ' sosa:resultTime "2026-02-01T10:00:00Z"^^xsd:dateTime .',
            "observed property",
        ),
        (
            "ex:m a sosa:Observation ; sosa:hasFeatureOfInterest ex:s ; sosa:observedProperty ex:p ;"
            ' sosa:resultTime "2026-02-01T10:00:00Z"^^xsd:dateTime .',
            "without a result",
        ),
        ('ex:m ex:at "yesterday" ; ex:p 1 .', "not a DateTime"),
        ('ex:m ex:shape "POINT(1"^^geo:wktLiteral .', "not a WKT geometry"),
        ("ex:other ex:p 1 .", "describes nothing"),
    ],
)
def test_members_that_cannot_be_mapped_say_why(turtle: str, reason: str) -> None:
    with pytest.raises(MemberRejected, match=reason):
        mapped(turtle)


def test_a_plain_resource_with_ngsi_ld_attribute_nodes_and_plain_values() -> None:
    c = mapped("""ex:m a ex:Room ; ex:at "2026-02-01T10:00:00Z"^^xsd:dateTime ;
        ex:temperature [ a ngsi-ld:Property ; ngsi-ld:hasValue 21.5 ; ngsi-ld:unitCode "CEL" ;
                         ngsi-ld:observedAt "2026-02-01T09:59:00Z"^^ngsi-ld:DateTime ;
                         ngsi-ld:datasetId <urn:ngsi-ld:Dataset:raw> ;
                         ex:accuracy [ a ngsi-ld:Property ; ngsi-ld:hasValue 0.1 ] ] ;
        ex:inBuilding [ a ngsi-ld:Relationship ; ngsi-ld:hasObject <urn:ngsi-ld:Building:b1> ] ;
        ex:tags "a", "b" ;
        ex:open true ;
        ex:config "{\\"x\\": [1, 2]}"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> ;
        ex:extra [ ex:k "v" ] .""")
    assert c.entity_id == "https://example.org/m" and c.types == ["https://example.org/Room"]
    t = attr(c, "https://example.org/temperature")
    assert (t["value"], t["unitCode"], t["observedAt"], t["datasetId"]) == (
        21.5,
        "CEL",
        "2026-02-01T09:59:00Z",
        "urn:ngsi-ld:Dataset:raw",
    )
    assert t["https://example.org/accuracy"]["value"] == 0.1
    assert attr(c, "https://example.org/inBuilding")["object"] == "urn:ngsi-ld:Building:b1"
    assert sorted(attr(c, "https://example.org/tags")["value"]) == ["a", "b"]
    assert attr(c, "https://example.org/open")["value"] is True
    assert attr(c, "https://example.org/config") == {
        "type": "JsonProperty",
        "json": {"x": [1, 2]},
        "observedAt": "2026-02-01T10:00:00Z",
    }
    assert attr(c, "https://example.org/extra")["json"] == {"https://example.org/k": "v"}
    # the timestamp is the member's time, not an attribute
    assert "https://example.org/at" not in c.attrs
    assert c.observed_at == "2026-02-01T10:00:00Z"


def test_local_name() -> None:
    assert local_name("https://example.org/prop#PM10") == "PM10"
    assert local_name("https://example.org/prop/no2/") == "no2"
    assert local_name("urn:x:temperature") == "temperature"
