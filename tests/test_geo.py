"""Tests for smartregion.core.geo: GeoJSON validation, geo-query parsing and evaluation."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.geo import (
    DEFAULT_GEOPROPERTY,
    EARTH_RADIUS_M,
    GeoQuery,
    bbox_prefilter,
    geo_matches,
    geodesic_distance,
    geometry_bbox,
    haversine_distance,
    parse_geo_query,
    validate_geometry,
)
from smartregion.errors import BadRequestData, InvalidRequest

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
OPERATION_SPACE = "https://uri.etsi.org/ngsi-ld/operationSpace"
DEGREE_M = math.pi * EARTH_RADIUS_M / 180  # one degree of a great circle, ~111 195 m


def entity(*geometries: Any, attr: str = LOCATION) -> dict[str, Any]:
    """An internal entity document whose `attr` has one GeoProperty instance per geometry."""
    instances: list[dict[str, Any]] = []
    for i, geometry in enumerate(geometries):
        instance: dict[str, Any] = {"type": "GeoProperty", "value": geometry}
        if i:
            instance["datasetId"] = f"urn:ngsi-ld:Dataset:{i}"
        instances.append(instance)
    return {"id": "urn:ngsi-ld:Thing:1", "type": ["T"], "attrs": {attr: instances}}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def query(georel: str, geometry: str, coordinates: Any, geoproperty: str | None = None) -> GeoQuery:
    gq = parse_geo_query(georel, geometry, coordinates, geoproperty)
    assert gq is not None
    return gq


# --- independent reference: Vincenty's inverse formula on WGS 84 ------------------------------


def vincenty(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Ellipsoidal distance in metres (T. Vincenty, Survey Review 23(176), 1975)."""
    a, f = 6378137.0, 1 / 298.257223563
    b = (1 - f) * a
    big_l = math.radians(lon2 - lon1)
    u1 = math.atan((1 - f) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - f) * math.tan(math.radians(lat2)))
    sin_u1, cos_u1, sin_u2, cos_u2 = math.sin(u1), math.cos(u1), math.sin(u2), math.cos(u2)
    lam = big_l
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_s = math.hypot(cos_u2 * sin_lam, cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam)
        if sin_s == 0:
            return 0.0
        cos_s = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = math.atan2(sin_s, cos_s)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_s
        cos2_alpha = 1 - sin_alpha**2
        cos_2sm = cos_s - 2 * sin_u1 * sin_u2 / cos2_alpha if cos2_alpha else 0.0
        c = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha))
        previous = lam
        lam = big_l + (1 - c) * f * sin_alpha * (
            sigma + c * sin_s * (cos_2sm + c * cos_s * (-1 + 2 * cos_2sm**2))
        )
        if abs(lam - previous) < 1e-12:
            break
    u_sq = cos2_alpha * (a * a - b * b) / (b * b)
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    d_sigma = (
        big_b
        * sin_s
        * (
            cos_2sm
            + big_b
            / 4
            * (
                cos_s * (-1 + 2 * cos_2sm**2)
                - big_b / 6 * cos_2sm * (-3 + 4 * sin_s**2) * (-3 + 4 * cos_2sm**2)
            )
        )
    )
    return b * big_a * (sigma - d_sigma)


def destination(lon: float, lat: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point `metres` from (lon, lat) along `bearing` (degrees) on the sphere."""
    d = metres / EARTH_RADIUS_M
    p1, l1, th = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(th))
    l2 = l1 + math.atan2(
        math.sin(th) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return (math.degrees(l2) + 540) % 360 - 180, math.degrees(p2)


# Flinders Peak -> Buninyong, the worked example of Vincenty (1975) and Geoscience Australia.
FLINDERS = (144 + 25 / 60 + 29.52440 / 3600, -(37 + 57 / 60 + 3.72030 / 3600))
BUNINYONG = (143 + 55 / 60 + 35.38390 / 3600, -(37 + 39 / 60 + 10.15610 / 3600))
BRUSSELS = (4.3517, 50.8503)  # Grand-Place
GHENT = (3.7174, 51.0543)  # Korenmarkt


def test_reference_formula_reproduces_published_geodesic() -> None:
    assert vincenty(*FLINDERS, *BUNINYONG) == pytest.approx(54972.271, abs=0.01)


# --- distances ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        (BRUSSELS, GHENT, vincenty(*BRUSSELS, *GHENT)),  # ~50.0 km
        (FLINDERS, BUNINYONG, 54972.271),
        ((0.0, 0.0), (0.0, 1.0), 110574.4),  # one degree of latitude at the equator (WGS 84)
        ((0.0, 0.0), (1.0, 0.0), 111319.5),  # one degree of longitude at the equator (WGS 84)
        (
            (13.3986, 52.5547),
            (13.509818, 52.363457),
            vincenty(13.3986, 52.5547, 13.509818, 52.363457),
        ),
        ((-74.0060, 40.7128), (2.3522, 48.8566), vincenty(-74.0060, 40.7128, 2.3522, 48.8566)),
    ],
)
def test_haversine_is_within_the_spheres_error_of_the_ellipsoid(
    a: tuple[float, float], b: tuple[float, float], expected_m: float
) -> None:
    # A sphere departs from WGS 84 by at most ~0.56 % (north-south at the equator).
    assert haversine_distance(*a, *b) == pytest.approx(expected_m, rel=0.006)


def test_brussels_ghent_distance() -> None:
    assert haversine_distance(*BRUSSELS, *GHENT) == pytest.approx(49_890, abs=100)
    assert haversine_distance(*GHENT, *BRUSSELS) == haversine_distance(*BRUSSELS, *GHENT)
    assert haversine_distance(*BRUSSELS, *BRUSSELS) == 0.0


@settings(max_examples=200)
@given(
    st.floats(-179, 179),
    st.floats(-75, 75),
    st.floats(0, 360),
    st.floats(1, 2_000_000),
)
def test_haversine_tracks_the_ellipsoid(lon: float, lat: float, bearing: float, m: float) -> None:
    lon2, lat2 = destination(lon, lat, bearing, m)
    d = haversine_distance(lon, lat, lon2, lat2)
    assert d == pytest.approx(m, rel=1e-6)  # inverse of `destination` on the sphere
    assert d == pytest.approx(vincenty(lon, lat, lon2, lat2), rel=0.006)


def test_point_to_line_and_polygon_distances_are_geodesic() -> None:
    from shapely.geometry import shape

    line = shape({"type": "LineString", "coordinates": [[-1, 0], [1, 0]]})
    assert geodesic_distance(shape(point(0, 1)), line) == pytest.approx(DEGREE_M, rel=1e-3)
    # At 51°N a degree of longitude is only cos(51°) of a degree of latitude.
    poly = shape({"type": "Polygon", "coordinates": [square(3.0, 50.0, 4.0, 51.0)]})
    assert geodesic_distance(shape(point(4.1, 50.5)), poly) == pytest.approx(
        0.1 * DEGREE_M * math.cos(math.radians(50.5)), rel=2e-3
    )
    assert geodesic_distance(shape(point(3.5, 51.01)), poly) == pytest.approx(
        0.01 * DEGREE_M, rel=2e-3
    )
    assert geodesic_distance(shape(point(3.5, 50.5)), poly) == 0.0  # inside
    other = shape({"type": "Polygon", "coordinates": [square(4.2, 50.0, 5.0, 51.0)]})
    assert geodesic_distance(other, poly) == pytest.approx(
        0.2 * DEGREE_M * math.cos(math.radians(51.0)), rel=5e-3
    )


# --- validation -----------------------------------------------------------------------------------

VALID_GEOMETRIES: list[dict[str, Any]] = [
    point(4.35, 50.85),
    {"type": "Point", "coordinates": [4.35, 50.85, 12.5]},
    {"type": "Point", "coordinates": [180, -90]},
    {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1, 3]]},
    {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
    {"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[2, 2], [3, 3], [4, 2]]]},
    {"type": "Polygon", "coordinates": [square(0, 0, 10, 10)]},
    {"type": "Polygon", "coordinates": [square(0, 0, 10, 10), square(2, 2, 4, 4)]},  # a hole
    {"type": "MultiPolygon", "coordinates": [[square(0, 0, 1, 1)], [square(5, 5, 6, 6)]]},
    {
        "type": "GeometryCollection",
        "geometries": [point(0, 0), {"type": "LineString", "coordinates": [[0, 0], [1, 0]]}],
    },
    {"type": "GeometryCollection", "geometries": []},
    {"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, 1, 2]},  # RFC 7946 §5
    # Self-intersecting, yet stored by the ETSI suite (building-location-polygon.jsonld).
    {
        "type": "Polygon",
        "coordinates": [
            [
                [13.2865906, 52.5648645],
                [13.2879639, 52.5648645],
                [13.2797241, 52.4988679],
                [13.477478, 52.4712703],
                [13.5049438, 52.5373084],
                [13.2865906, 52.5648645],
            ]
        ],
    },
]


@pytest.mark.parametrize("geometry", VALID_GEOMETRIES, ids=lambda g: str(g["type"]))
def test_valid_geometries_are_accepted(geometry: dict[str, Any]) -> None:
    validate_geometry(geometry)


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (None, "expected an object, got null"),
        ([0, 0], "expected an object, got list"),
        ({"coordinates": [0, 0]}, "'type' must be one of"),
        ({"type": "Circle", "coordinates": [0, 0]}, "got 'Circle'"),
        ({"type": "point", "coordinates": [0, 0]}, "got 'point'"),
        ({"type": "Point"}, "a Point needs 'coordinates'"),
        ({"type": "Point", "coordinates": [0]}, "2 or 3 numbers"),
        ({"type": "Point", "coordinates": [0, 0, 0, 0]}, "2 or 3 numbers"),
        ({"type": "Point", "coordinates": "0,0"}, "2 or 3 numbers"),
        ({"type": "Point", "coordinates": ["0", 0]}, "finite numbers"),
        ({"type": "Point", "coordinates": [True, 0]}, "finite numbers"),
        ({"type": "Point", "coordinates": [math.nan, 0]}, "finite numbers"),
        ({"type": "Point", "coordinates": [math.inf, 0]}, "finite numbers"),
        ({"type": "Point", "coordinates": [180.5, 0]}, "longitude 180.5 is outside [-180, 180]"),
        ({"type": "Point", "coordinates": [0, -90.01]}, "latitude -90.01 is outside [-90, 90]"),
        # a swapped lat/lon pair is the most common mistake
        ({"type": "Point", "coordinates": [50.85, 120.0]}, "latitude 120.0"),
        ({"type": "MultiPoint", "coordinates": []}, "empty array of positions"),
        ({"type": "MultiPoint", "coordinates": [[0, 0], [0, 91]]}, "coordinates[1]: latitude"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "at least 2 positions"),
        ({"type": "LineString", "coordinates": [0, 0]}, "coordinates[0]: a position"),
        (
            {"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[0, 0]]]},
            "coordinates[1]",
        ),
        ({"type": "Polygon", "coordinates": []}, "empty array of linear rings"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4 positions"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
        (
            {"type": "Polygon", "coordinates": square(0, 0, 1, 1)},
            "coordinates[0][0]: a position",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [square(0, 0, 5, 5), [[1, 1], [2, 1], [2, 2], [1, 2]]],
            },
            "coordinates[1]: linear ring is not closed",
        ),
        ({"type": "MultiPolygon", "coordinates": [square(0, 0, 1, 1)]}, "coordinates[0][0]"),
        (
            {"type": "MultiPolygon", "coordinates": [[square(0, 0, 1, 1)], []]},
            "coordinates[1]: empty",
        ),
        ({"type": "GeometryCollection"}, "needs a 'geometries' array"),
        (
            {"type": "GeometryCollection", "geometries": [point(0, 0), {"type": "Point"}]},
            "geometries[1]",
        ),
    ],
)
def test_invalid_geometries_are_rejected_precisely(geometry: Any, message: str) -> None:
    with pytest.raises(BadRequestData) as excinfo:
        validate_geometry(geometry)
    assert message in excinfo.value.detail


def test_deeply_nested_geometry_collections_are_rejected() -> None:
    geometry: dict[str, Any] = point(0, 0)
    for _ in range(40):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    with pytest.raises(BadRequestData, match="nested too deeply"):
        validate_geometry(geometry)


# --- parsing ------------------------------------------------------------------------------------


def test_no_geo_query_parses_to_none() -> None:
    assert parse_geo_query(None, None, None, None) is None
    assert parse_geo_query(None, None, None, "location") is None


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "missing"),
    [
        ("within", None, None, "geometry and coordinates missing"),  # ETSI 037_03_03
        (None, "Point", "[0,0]", "georel missing"),
        ("near;maxDistance==10", "Point", None, "coordinates missing"),
        (None, None, "[0,0]", "georel and geometry missing"),
    ],
)
def test_partial_geo_query_is_bad_request_data(
    georel: str | None, geometry: str | None, coordinates: str | None, missing: str
) -> None:
    with pytest.raises(BadRequestData, match=missing):
        parse_geo_query(georel, geometry, coordinates, None)


@pytest.mark.parametrize(
    ("georel", "rel", "max_distance", "min_distance"),
    [
        ("near;maxDistance==2000", "near", 2000.0, None),
        ("near;minDistance==10", "near", None, 10.0),
        ("near;maxDistance==2000.5", "near", 2000.5, None),
        ("near;maxDistance==1e3", "near", 1000.0, None),
        ("near;maxDistance==0", "near", 0.0, None),
        ("near;minDistance==10;maxDistance==20", "near", 20.0, 10.0),
        (" near ; maxDistance == 5 ", "near", 5.0, None),
        ("within", "within", None, None),
        ("contains", "contains", None, None),
        ("intersects", "intersects", None, None),
        ("equals", "equals", None, None),
        ("disjoint", "disjoint", None, None),
        ("overlaps", "overlaps", None, None),
    ],
)
def test_georel_syntax(
    georel: str, rel: str, max_distance: float | None, min_distance: float | None
) -> None:
    gq = query(georel, "Point", "[8.0,40.0]")
    assert (gq.georel, gq.max_distance, gq.min_distance) == (rel, max_distance, min_distance)


@pytest.mark.parametrize(
    "georel",
    [
        "invalid",  # ETSI 019_03_04
        "",
        "near",
        "near;",
        "near;maxDistance",
        "near;maxDistance=10",
        "near;maxDistance==",
        "near;maxDistance==-5",
        "near;maxDistance==ten",
        "near;maxDistance==1_000",
        "near;maxDistance==nan",
        "near;maxDistance==inf",
        "near;maxDistance==1e999",
        "near;maxDistance==1;maxDistance==2",
        "near;distance==10",
        "within;maxDistance==10",
        "Within",
        "coveredBy",
    ],
)
def test_invalid_georel_is_bad_request_data(georel: str) -> None:
    with pytest.raises(BadRequestData, match="invalid georel"):
        parse_geo_query(georel, "Point", "[8.0,40.0]", None)


@pytest.mark.parametrize(
    ("geometry", "coordinates"),
    [
        ("Point", "[8.0, 40.0]"),
        ("MultiPoint", "[[8.0, 40.0], [8.1, 40.1]]"),
        ("LineString", "[[8.0, 40.0], [8.1, 40.1]]"),
        ("MultiLineString", "[[[8.0, 40.0], [8.1, 40.1]], [[9, 41], [9.1, 41.1]]]"),
        ("Polygon", json.dumps([square(8, 40, 9, 41)])),
        ("MultiPolygon", json.dumps([[square(8, 40, 9, 41)], [square(10, 40, 11, 41)]])),
    ],
)
def test_every_query_geometry_type_parses_from_text_and_list(
    geometry: str, coordinates: str
) -> None:
    from_text = query("intersects", geometry, coordinates)
    from_list = query("intersects", geometry, json.loads(coordinates))  # POST / geoQ form
    assert (
        from_text.geojson
        == from_list.geojson
        == {
            "type": geometry,
            "coordinates": json.loads(coordinates),
        }
    )
    assert from_text.geometry.geom_type == geometry
    assert from_text.geometry.equals(from_list.geometry)


def test_geometry_name_is_case_insensitive_but_canonicalised() -> None:
    assert query("within", "polygon", [square(0, 0, 1, 1)]).geojson["type"] == "Polygon"
    assert query("near;maxDistance==1", "POINT", "[0,0]").geojson["type"] == "Point"


@pytest.mark.parametrize(
    ("geometry", "coordinates", "message"),
    [
        ("Circle", "[0,0]", "invalid geometry"),
        ("GeometryCollection", "[]", "invalid geometry"),
        ("", "[0,0]", "invalid geometry"),
        ("Point", "[0,", "not a JSON array"),
        ("Point", "8.0,40.0", "not a JSON array"),
        ("Point", "{}", "expected a JSON array"),
        ("Point", '"[0,0]"', "expected a JSON array"),
        ("Point", "[200, 0]", "longitude 200"),
        ("Point", "[0, 100]", "latitude 100"),
        ("Point", "[[0, 0]]", "2 or 3 numbers"),
        ("Point", "[NaN, 0]", "finite numbers"),
        ("LineString", "[[0,0]]", "at least 2 positions"),
        ("Polygon", "[[[0,0],[1,1],[0,0]]]", "at least 4 positions"),
        ("Polygon", "[]", "empty array"),
        ("MultiPolygon", "[[[0,0],[1,0],[1,1],[0,0]]]", "coordinates[0][0]"),
        ("Point", "[" * 5000 + "]" * 5000, "not a JSON array"),
    ],
)
def test_invalid_query_geometry_is_bad_request_data(
    geometry: str, coordinates: str, message: str
) -> None:
    with pytest.raises(BadRequestData) as excinfo:
        parse_geo_query("intersects", geometry, coordinates, None)
    assert message in excinfo.value.detail


def test_polygon_given_as_a_bare_open_ring_is_tolerated_in_queries() -> None:
    # ETSI 037_07_02 queries `within` with this and expects the registration at [-8.521, 41.2].
    ring = [[-13.503, 47.202], [6.541, 52.961], [20.37, 44.653], [9.46, 32.57], [-15.23, 21.37]]
    gq = query("within", "Polygon", json.dumps(ring), "location")
    assert gq.geojson["coordinates"] == [[*ring, ring[0]]]
    assert geo_matches(gq, entity(point(-8.521, 41.2)))
    # ... but a stored GeoProperty value must be proper GeoJSON.
    with pytest.raises(BadRequestData):
        validate_geometry({"type": "Polygon", "coordinates": [ring]})


def test_geoproperty_defaults_to_location_and_is_expanded() -> None:
    def expand(term: str) -> str:
        return "https://example.org/" + term

    assert query("within", "Point", "[0,0]").geoproperty == DEFAULT_GEOPROPERTY == LOCATION
    assert parse_geo_query("within", "Point", "[0,0]", "", expand).geoproperty == LOCATION  # type: ignore[union-attr]
    # core context terms are protected: a user context cannot redefine them
    for term in ("location", "observationSpace", "operationSpace"):
        gq = parse_geo_query("within", "Point", "[0,0]", term, expand)
        assert gq is not None and gq.geoproperty == "https://uri.etsi.org/ngsi-ld/" + term
    gq = parse_geo_query("within", "Point", "[0,0]", "footprint", expand)
    assert gq is not None and gq.geoproperty == "https://example.org/footprint"
    with pytest.raises(BadRequestData, match="invalid geoproperty"):
        parse_geo_query("within", "Point", "[0,0]", "foot print", expand)


# --- evaluation: the ETSI conformance scenarios --------------------------------------------------

ETSI_POINTS = [
    entity(point(13.3986, 52.5547)),  # building-location-attribute.jsonld
    entity(point(13.509818, 52.363457)),  # ...-second.jsonld
    entity(point(13.215983, 52.470441)),  # ...-third.jsonld
]
ETSI_QUERY_POLYGON = (
    "[[[13.1616211,52.5438124],[13.597641,52.4840224],[13.5948944,52.3402782],"
    "[13.142395,52.386428],[13.1616211,52.5438124]]]"
)


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "count"),
    [
        ("equals", "Point", "[13.3986, 52.5547]", 1),  # 019_10_01, 019_01_05
        ("near;maxDistance==15000", "Point", "[13.388930, 52.534473]", 2),  # 019_10_02
        ("near;minDistance==15000", "Point", "[13.388930, 52.534473]", 1),  # 019_10_03
        ("within", "Polygon", ETSI_QUERY_POLYGON, 2),  # 019_10_04
        ("disjoint", "Polygon", ETSI_QUERY_POLYGON, 1),  # 019_10_05
        ("disjoint", "Point", "[13.3986, 52.5547]", 2),  # 019_10_06
        ("contains", "Point", "[13.3986, 52.5547]", 1),  # 019_10_07
        ("intersects", "Point", "[13.3986, 52.5547]", 1),  # 019_10_08
    ],
)
def test_etsi_019_10_point_entities(
    georel: str, geometry: str, coordinates: str, count: int
) -> None:
    gq = query(georel, geometry, coordinates)
    assert sum(geo_matches(gq, doc) for doc in ETSI_POINTS) == count


ETSI_POLYGONS = [
    entity(VALID_GEOMETRIES[-1]),  # building-location-polygon.jsonld (self-intersecting)
    entity(
        {
            "type": "Polygon",
            "coordinates": [
                [
                    [13.315773, 52.4757209],
                    [13.339119, 52.4443421],
                    [13.3892441, 52.4669371],
                    [13.315773, 52.4757209],
                ]
            ],
        }
    ),
]
_INTERSECTING = (
    "[[[13.3456421,52.4794848],[13.3641815,52.4428773],[13.4177399,52.4730023],"
    "[13.3459854,52.479903],[13.3456421,52.4794848]]]"
)
_FAR = (
    "[[[13.1369019,52.5198225],[13.1365585,52.5200314],[13.131752,52.4980907],"
    "[13.1832504,52.5026887],[13.1369019,52.5198225]]]"
)


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "count"),
    [
        ("equals", "Polygon", json.dumps(VALID_GEOMETRIES[-1]["coordinates"]), 1),  # 019_11_01
        ("intersects", "Polygon", _INTERSECTING, 1),  # 019_11_02
        (
            "contains",
            "Polygon",
            "[[[13.3844376,52.5356966],[13.3844376,52.5356966],[13.381691,52.5123012],"
            "[13.4235764,52.5100027],[13.4331894,52.5273425],[13.3844376,52.5356966]]]",
            1,
        ),  # 019_11_03: a repeated vertex is fine
        ("contains", "Polygon", _FAR, 0),  # 019_11_04
        ("disjoint", "Polygon", _FAR, 2),  # 019_11_05
        (
            "within",
            "Polygon",
            "[[[13.3023834,52.4903066],[13.3027267,52.4905156],[13.2745743,52.465632],"
            "[13.3343124,52.4185447],[13.4311295,52.47107],[13.3023834,52.4903066]]]",
            1,
        ),  # 019_11_06: a self-intersecting query polygon
        ("overlaps", "Polygon", _INTERSECTING, 1),  # 019_11_07
        ("contains", "Point", "[13.3442688,52.4650045]", 1),  # 019_11_08
    ],
)
def test_etsi_019_11_polygon_entities(
    georel: str, geometry: str, coordinates: str, count: int
) -> None:
    gq = query(georel, geometry, coordinates, "location")
    assert sum(geo_matches(gq, doc) for doc in ETSI_POLYGONS) == count


def test_etsi_subscription_geoq_form() -> None:
    # data/csourceSubscriptions/subscription-geoQ.jsonld: coordinates arrive as a JSON array.
    gq = query("near;maxDistance==2000", "Point", [-8.52, 41.2], "location")
    assert geo_matches(gq, entity(point(-8.521, 41.2)))
    assert not geo_matches(gq, entity(point(-8.6, 41.2)))  # ~6.7 km away


# --- evaluation: every georel against every geometry type ----------------------------------------

Q = json.dumps([square(0, 0, 10, 10)])
G: dict[str, dict[str, Any]] = {
    "point inside": point(5, 5),
    "point on edge": point(10, 5),
    "point outside": point(20, 20),
    "multipoint inside": {"type": "MultiPoint", "coordinates": [[1, 1], [2, 2]]},
    "multipoint straddling": {"type": "MultiPoint", "coordinates": [[5, 5], [20, 20]]},
    "line inside": {"type": "LineString", "coordinates": [[1, 1], [9, 9]]},
    "line crossing": {"type": "LineString", "coordinates": [[5, 5], [15, 5]]},
    "multiline inside": {
        "type": "MultiLineString",
        "coordinates": [[[1, 1], [2, 2]], [[3, 3], [4, 4]]],
    },
    "same polygon": {
        "type": "Polygon",
        "coordinates": [[[10, 10], [0, 10], [0, 0], [10, 0], [10, 10]]],
    },
    "bigger polygon": {"type": "Polygon", "coordinates": [square(-5, -5, 15, 15)]},
    "smaller polygon": {"type": "Polygon", "coordinates": [square(2, 2, 4, 4)]},
    "overlapping polygon": {"type": "Polygon", "coordinates": [square(5, 5, 15, 15)]},
    "polygon with Q in its hole": {
        "type": "Polygon",
        "coordinates": [square(-5, -5, 15, 15), square(-1, -1, 11, 11)],
    },
    "multipolygon straddling": {
        "type": "MultiPolygon",
        "coordinates": [[square(1, 1, 2, 2)], [square(20, 20, 21, 21)]],
    },
    "collection inside": {
        "type": "GeometryCollection",
        "geometries": [point(5, 5), {"type": "LineString", "coordinates": [[1, 1], [2, 2]]}],
    },
}

# (equals, within, contains, intersects, disjoint, overlaps) of each geometry against Q
EXPECTED = {
    "point inside": (False, True, False, True, False, False),
    "point on edge": (False, False, False, True, False, False),  # the boundary is not inside
    "point outside": (False, False, False, False, True, False),
    "multipoint inside": (False, True, False, True, False, False),
    "multipoint straddling": (False, False, False, True, False, False),
    "line inside": (False, True, False, True, False, False),
    "line crossing": (False, False, False, True, False, False),  # crosses, other dimension
    "multiline inside": (False, True, False, True, False, False),
    "same polygon": (True, True, True, True, False, False),  # equal sets never overlap
    "bigger polygon": (False, False, True, True, False, False),
    "smaller polygon": (False, True, False, True, False, False),
    "overlapping polygon": (False, False, False, True, False, True),
    "polygon with Q in its hole": (False, False, False, False, True, False),
    "multipolygon straddling": (False, False, False, True, False, True),
    "collection inside": (False, True, False, True, False, False),
}
RELATIONS = ("equals", "within", "contains", "intersects", "disjoint", "overlaps")


@pytest.mark.parametrize("name", sorted(G))
@pytest.mark.parametrize("index", range(len(RELATIONS)), ids=RELATIONS)
def test_topological_relations(name: str, index: int) -> None:
    gq = query(RELATIONS[index], "Polygon", Q)
    assert geo_matches(gq, entity(G[name])) is EXPECTED[name][index]


@pytest.mark.parametrize(
    ("name", "distance_m"),
    [
        ("point inside", 0.0),
        ("point outside", haversine_distance(10, 10, 20, 20)),
        ("line crossing", 0.0),
    ],
)
def test_near_is_inclusive_at_both_bounds(name: str, distance_m: float) -> None:
    doc = entity(G[name])
    assert geodesic_distance(_shape(G[name]), query("within", "Polygon", Q).geometry) == (
        pytest.approx(distance_m, rel=5e-3, abs=1e-6)
    )
    below, above = distance_m * 0.99 - 1, distance_m * 1.01 + 1
    assert geo_matches(query(f"near;maxDistance=={above}", "Polygon", Q), doc)
    assert not geo_matches(query(f"near;minDistance=={above}", "Polygon", Q), doc)
    assert geo_matches(query(f"near;minDistance=={max(below, 0)}", "Polygon", Q), doc)
    if below > 0:
        assert not geo_matches(query(f"near;maxDistance=={below}", "Polygon", Q), doc)
        ring = f"near;minDistance=={below};maxDistance=={above}"
        assert geo_matches(query(ring, "Polygon", Q), doc)


def test_distance_to_a_polygon_hole_follows_the_meridian() -> None:
    # A 1° province sitting in the hole of a ring-shaped polygon: the nearest approach is from
    # its corner (5°E, 51°N) to the hole's meridian edge at 5.1°E, which at 51°N is closer than
    # the hole's northern edge 0.1° of latitude away.
    province = query("within", "Polygon", [square(4, 50, 5, 51)])
    ring = entity(
        {"type": "Polygon", "coordinates": [square(3, 49, 6, 52), square(3.9, 49.9, 5.1, 51.1)]}
    )
    expected = EARTH_RADIUS_M * math.asin(math.sin(math.radians(0.1)) * math.cos(math.radians(51)))
    assert expected == pytest.approx(6998, abs=1)
    distance = geodesic_distance(_shape(ring["attrs"][LOCATION][0]["value"]), province.geometry)
    assert distance == pytest.approx(expected, rel=1e-4)
    assert geo_matches(query("near;maxDistance==7000", "Polygon", [square(4, 50, 5, 51)]), ring)
    assert not geo_matches(query("near;maxDistance==6990", "Polygon", [square(4, 50, 5, 51)]), ring)


def test_near_exact_bounds() -> None:
    doc = entity(point(0, 0))
    exact = haversine_distance(0, 0, 0, 1)
    assert geo_matches(query(f"near;maxDistance=={exact!r}", "Point", "[0,1]"), doc)
    assert geo_matches(query(f"near;minDistance=={exact!r}", "Point", "[0,1]"), doc)
    assert geo_matches(query("near;maxDistance==0", "Point", "[0,0]"), doc)


@pytest.mark.parametrize("name", sorted(G))
def test_near_for_every_entity_geometry_type(name: str) -> None:
    # Query point 1° south of Q's south edge, i.e. ~111 km below every geometry touching y=0..
    gq_close = query(f"near;maxDistance=={50 * DEGREE_M}", "Point", "[5,-1]")
    gq_far = query(f"near;minDistance=={50 * DEGREE_M}", "Point", "[5,-1]")
    assert geo_matches(gq_close, entity(G[name]))
    assert not geo_matches(gq_far, entity(G[name]))


def test_any_instance_of_the_geoproperty_is_enough() -> None:
    doc = entity(point(50, 50), point(5, 5))
    assert geo_matches(query("within", "Polygon", Q), doc)
    assert geo_matches(query("disjoint", "Polygon", Q), doc)
    assert not geo_matches(query("within", "Polygon", Q), entity(point(50, 50), point(60, 60)))


def test_only_the_named_geoproperty_counts() -> None:
    doc = entity(point(5, 5), attr=OPERATION_SPACE)
    assert not geo_matches(query("within", "Polygon", Q), doc)
    assert not geo_matches(query("disjoint", "Polygon", Q), doc)  # no geometry: no match at all
    assert geo_matches(query("within", "Polygon", Q, "operationSpace"), doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "urn:x", "type": ["T"]},
        {"id": "urn:x", "type": ["T"], "attrs": {}},
        {"id": "urn:x", "type": ["T"], "attrs": {LOCATION: "oops"}},
        {
            "id": "urn:x",
            "type": ["T"],
            "attrs": {LOCATION: [{"type": "Property", "value": point(5, 5)}]},
        },
        {
            "id": "urn:x",
            "type": ["T"],
            "attrs": {LOCATION: [{"type": "GeoProperty", "value": "POINT(5 5)"}]},
        },
        {
            "id": "urn:x",
            "type": ["T"],
            "attrs": {LOCATION: [{"type": "GeoProperty", "value": {"type": "Point"}}]},
        },
        {"id": "urn:x", "type": ["T"], "attrs": {LOCATION: [None]}},
    ],
)
def test_entities_without_a_usable_geometry_never_match(doc: dict[str, Any]) -> None:
    for georel in RELATIONS:
        assert not geo_matches(query(georel, "Polygon", Q), doc)
    assert not geo_matches(query("near;minDistance==0", "Point", "[0,0]"), doc)


def test_three_dimensional_positions_are_compared_in_the_plane() -> None:
    doc = entity({"type": "Point", "coordinates": [5, 5, 100]})
    assert geo_matches(query("within", "Polygon", Q), doc)
    assert geo_matches(query("equals", "Point", "[5, 5]"), doc)


# --- bounding boxes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("geometry", "bbox"),
    [
        (point(4.35, 50.85), (4.35, 50.85, 4.35, 50.85)),
        (G["multipoint straddling"], (5, 5, 20, 20)),
        (G["line crossing"], (5, 5, 15, 5)),
        (G["multiline inside"], (1, 1, 4, 4)),
        (G["polygon with Q in its hole"], (-5, -5, 15, 15)),
        (G["multipolygon straddling"], (1, 1, 21, 21)),
        (G["collection inside"], (1, 1, 5, 5)),
        ({"type": "Point", "coordinates": [1, 2, 3]}, (1, 2, 1, 2)),
    ],
)
def test_geometry_bbox(geometry: dict[str, Any], bbox: tuple[float, ...]) -> None:
    assert geometry_bbox(geometry) == bbox


def test_geometry_bbox_of_an_empty_collection_is_an_error() -> None:
    with pytest.raises(BadRequestData):
        geometry_bbox({"type": "GeometryCollection", "geometries": []})


def test_bbox_prefilter_per_georel() -> None:
    for georel in ("within", "contains", "intersects", "equals", "overlaps"):
        assert bbox_prefilter(query(georel, "Polygon", Q)) == (0, 0, 10, 10)
    assert bbox_prefilter(query("disjoint", "Polygon", Q)) is None
    assert bbox_prefilter(query("near;minDistance==10", "Point", "[0,0]")) is None
    box = bbox_prefilter(query("near;minDistance==10;maxDistance==1000", "Point", "[0,0]"))
    assert box is not None and box[0] < 0 < box[2]


def test_near_bbox_widens_longitude_with_latitude() -> None:
    box = bbox_prefilter(query("near;maxDistance==10000", "Point", "[4.35,60]"))
    assert box is not None
    minx, miny, maxx, maxy = box
    half_lat, half_lon = (maxy - miny) / 2, (maxx - minx) / 2
    assert half_lat == pytest.approx(10000 / DEGREE_M, rel=0.02)
    assert half_lon > 1.99 * half_lat  # cos(60°) = 0.5


def test_near_bbox_degrades_to_full_longitude_at_the_pole_and_antimeridian() -> None:
    polar = bbox_prefilter(query("near;maxDistance==200000", "Point", "[10,89]"))
    assert polar is not None
    assert (polar[0], polar[2], polar[3]) == (-180.0, 180.0, 90.0)
    assert polar[1] == pytest.approx(89 - 200000 * 1.01 / DEGREE_M, rel=1e-3)
    wrap = bbox_prefilter(query("near;maxDistance==50000", "Point", "[179.9,0]"))
    assert wrap is not None and (wrap[0], wrap[2]) == (-180.0, 180.0)


@settings(max_examples=300)
@given(
    st.floats(-179.9, 179.9),
    st.floats(-89, 89),
    st.floats(0, 360),
    st.floats(1, 3_000_000),
    st.floats(0, 1),
)
def test_near_bbox_contains_every_point_within_max_distance(
    lon: float, lat: float, bearing: float, max_m: float, fraction: float
) -> None:
    gq = query(f"near;maxDistance=={max_m!r}", "Point", [lon, lat])
    box = bbox_prefilter(gq)
    assert box is not None
    x, y = destination(lon, lat, bearing, max_m * fraction)
    assert geo_matches(gq, entity(point(x, y))) or fraction > 0.999
    if box[0] <= box[2]:
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]


# --- robustness --------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=400)
@given(
    st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["near;maxDistance==5", "within"])),
    st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["Point", "Polygon", "LineString"])),
    st.one_of(st.none(), st.text(max_size=60), _json_values),
    st.one_of(st.none(), st.text(max_size=12)),
)
def test_parser_raises_only_domain_errors(
    georel: str | None, geometry: str | None, coordinates: Any, geoproperty: str | None
) -> None:
    try:
        gq = parse_geo_query(georel, geometry, coordinates, geoproperty)
    except (BadRequestData, InvalidRequest):
        return
    if gq is not None:
        bbox_prefilter(gq)
        geo_matches(gq, entity(point(0, 0)))


@settings(max_examples=300)
@given(_json_values)
def test_validation_raises_only_bad_request_data(value: Any) -> None:
    candidates = (
        value,
        {"type": "Polygon", "coordinates": value},
        {"type": "Point", "coordinates": value},
    )
    for candidate in candidates:
        try:
            validate_geometry(candidate)
        except BadRequestData:
            continue
        if candidate.get("type") != "GeometryCollection":
            geometry_bbox(candidate)  # a validated geometry always has a box


@settings(max_examples=100)
@given(
    st.floats(3, 6),
    st.floats(49, 52),
    st.lists(st.tuples(st.floats(3.5, 5.5), st.floats(50, 51.5)), min_size=2, max_size=6),
)
def test_point_to_line_distance_matches_brute_force(
    lon: float, lat: float, vertices: list[tuple[float, float]]
) -> None:
    from shapely.geometry import shape

    line = {"type": "LineString", "coordinates": [list(v) for v in vertices]}
    exact = geodesic_distance(_shape(point(lon, lat)), shape(line))
    # brute force: sample each edge densely (straight in lon/lat, as GeoJSON draws it)
    samples = [
        (x0 + (x1 - x0) * t / 400, y0 + (y1 - y0) * t / 400)
        for (x0, y0), (x1, y1) in itertools.pairwise(vertices)
        for t in range(401)
    ]
    brute = min(haversine_distance(lon, lat, x, y) for x, y in samples)
    assert exact <= brute + 2.0  # arcs vs lon/lat-straight edges: ~1.2 m at most
    # samples are up to `step` apart, so the true minimum is at most half a step off the side
    step = max(haversine_distance(*v, *w) for v, w in itertools.pairwise(vertices)) / 400
    assert exact >= math.sqrt(max(brute**2 - (step / 2) ** 2, 0.0)) * 0.999 - 2.0


def _shape(geometry: dict[str, Any]) -> Any:
    from smartregion.core.geo import _to_shapely

    return _to_shapely(geometry)
