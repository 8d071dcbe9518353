"""NGSI-LD geo-queries and GeoJSON geometry validation (NGSI-LD 1.8 §4.7, §4.10).

Geometries are GeoJSON (RFC 7946) in WGS 84 longitude/latitude. Topological relations
(`equals`, `disjoint`, `intersects`, `within`, `contains`, `overlaps`) are evaluated in the
lon/lat plane with shapely/GEOS, exactly as PostGIS does on `geometry` columns, so the SQLite and
PostgreSQL backends agree. Distances (`near`) are metres on a sphere of the IUGG mean Earth
radius: the minimum over vertex-to-edge great-circle distances in both directions (exact haversine
between points), with edges first split to <= 0.1° so that lon/lat-straight edges and
great-circle arcs coincide to ~1.2 m. Against the WGS 84 ellipsoid this is good to about 0.5 %
(0.56 % at worst, north-south at the equator): the sphere's own error. Geometries crossing the
antimeridian are not unwrapped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape
from shapely.ops import nearest_points

from smartregion.errors import BadRequestData

__all__ = [
    "DEFAULT_GEOPROPERTY",
    "EARTH_RADIUS_M",
    "GEOREL_NAMES",
    "GeoQuery",
    "bbox_prefilter",
    "geo_matches",
    "geodesic_distance",
    "geometry_bbox",
    "haversine_distance",
    "parse_geo_query",
    "validate_geometry",
]

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
#: the GeoProperty a geo-query targets when none is named (NGSI-LD 1.8 §4.10)
DEFAULT_GEOPROPERTY = NGSI_LD + "location"
#: IUGG mean Earth radius R1, metres
EARTH_RADIUS_M = 6_371_008.8

GEOREL_NAMES = frozenset(
    {"near", "within", "contains", "intersects", "equals", "disjoint", "overlaps"}
)

# The core context's GeoProperty terms are protected (NGSI-LD 1.8 §5.5.7): a user @context cannot
# redefine them, so they expand the same way whatever `expand` does.
_CORE_GEOPROPERTIES = {
    "location": NGSI_LD + "location",
    "observationSpace": NGSI_LD + "observationSpace",
    "operationSpace": NGSI_LD + "operationSpace",
}

# Nesting depth of `coordinates` per GeoJSON type: 0 = a position (RFC 7946 §3.1).
_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}
_GEOMETRY_TYPES = frozenset(_DEPTH) | {"GeometryCollection"}
_QUERY_GEOMETRY_TYPES = {name.lower(): name for name in _DEPTH}
_MAX_COLLECTION_NESTING = 16
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


# --- validation -------------------------------------------------------------------------------


def validate_geometry(obj: Any) -> None:
    """Raise BadRequestData unless `obj` is a valid GeoJSON geometry object."""
    # NGSI-LD 1.8 §4.7: a GeoProperty's value is a GeoJSON Geometry (RFC 7946 §3.1). Validity here
    # is structural (RFC 7946), not OGC simple-feature validity: the ETSI suite stores
    # self-intersecting polygons (data/entities/building-location-polygon.jsonld).
    _check_geometry(obj, "geometry", 0)


def _check_geometry(obj: Any, where: str, nesting: int) -> None:
    if not isinstance(obj, dict):
        raise BadRequestData(f"invalid GeoJSON {where}: expected an object, got {_kind(obj)}")
    gtype = obj.get("type")
    if not isinstance(gtype, str) or gtype not in _GEOMETRY_TYPES:
        raise BadRequestData(
            f"invalid GeoJSON {where}: 'type' must be one of "
            f"{', '.join(sorted(_GEOMETRY_TYPES))}, got {gtype!r}"
        )
    if gtype == "GeometryCollection":
        if nesting >= _MAX_COLLECTION_NESTING:
            raise BadRequestData(f"invalid GeoJSON {where}: GeometryCollections nested too deeply")
        members = obj.get("geometries")
        if not isinstance(members, list):
            raise BadRequestData(
                f"invalid GeoJSON {where}: a GeometryCollection needs a 'geometries' array"
            )
        for i, member in enumerate(members):
            _check_geometry(member, f"{where}.geometries[{i}]", nesting + 1)
        return
    if "coordinates" not in obj:
        raise BadRequestData(f"invalid GeoJSON {where}: a {gtype} needs 'coordinates'")
    _check_coordinates(gtype, obj["coordinates"], f"{where}.coordinates")


def _check_coordinates(gtype: str, coords: Any, where: str) -> None:
    if gtype == "Point":
        _check_position(coords, where)
    elif gtype == "MultiPoint":
        for i, pos in enumerate(_nonempty_list(coords, where, "positions")):
            _check_position(pos, f"{where}[{i}]")
    elif gtype == "LineString":
        _check_line(coords, where)
    elif gtype == "MultiLineString":
        for i, line in enumerate(_nonempty_list(coords, where, "LineStrings")):
            _check_line(line, f"{where}[{i}]")
    elif gtype == "Polygon":
        _check_polygon(coords, where)
    else:  # MultiPolygon
        for i, polygon in enumerate(_nonempty_list(coords, where, "Polygons")):
            _check_polygon(polygon, f"{where}[{i}]")


def _nonempty_list(value: Any, where: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequestData(f"invalid GeoJSON {where}: expected an array of {what}")
    if not value:
        raise BadRequestData(f"invalid GeoJSON {where}: empty array of {what}")
    return value


def _check_position(pos: Any, where: str) -> None:
    # RFC 7946 §3.1.1: [longitude, latitude] or [longitude, latitude, altitude]; §4: WGS 84.
    if not isinstance(pos, list) or len(pos) not in (2, 3):
        raise BadRequestData(
            f"invalid GeoJSON {where}: a position is an array of 2 or 3 numbers, got {_short(pos)}"
        )
    for n in pos:
        if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n):
            raise BadRequestData(
                f"invalid GeoJSON {where}: position members must be finite numbers, got {_short(pos)}"
            )
    lon, lat = pos[0], pos[1]
    if not -180 <= lon <= 180:
        raise BadRequestData(f"invalid GeoJSON {where}: longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise BadRequestData(f"invalid GeoJSON {where}: latitude {lat} is outside [-90, 90]")


def _check_line(coords: Any, where: str) -> None:
    positions = _nonempty_list(coords, where, "positions")
    for i, pos in enumerate(positions):
        _check_position(pos, f"{where}[{i}]")
    if len(positions) < 2:  # RFC 7946 §3.1.4
        raise BadRequestData(f"invalid GeoJSON {where}: a LineString needs at least 2 positions")


def _check_polygon(coords: Any, where: str) -> None:
    for r, ring in enumerate(_nonempty_list(coords, where, "linear rings")):
        here = f"{where}[{r}]"
        positions = _nonempty_list(ring, here, "positions")
        for i, pos in enumerate(positions):
            _check_position(pos, f"{here}[{i}]")
        # RFC 7946 §3.1.6: a linear ring is closed and has at least four positions.
        if len(positions) < 4:
            raise BadRequestData(
                f"invalid GeoJSON {here}: a linear ring needs at least 4 positions, "
                f"got {len(positions)}"
            )
        if [float(n) for n in positions[0]] != [float(n) for n in positions[-1]]:
            raise BadRequestData(
                f"invalid GeoJSON {here}: linear ring is not closed (first position "
                f"{positions[0]} differs from last {positions[-1]})"
            )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeoQuery:
    """A parsed NGSI-LD geo-query (NGSI-LD 1.8 §4.10)."""

    georel: str
    geometry: Any
    geojson: dict[str, Any]
    geoproperty: str
    max_distance: float | None = None
    min_distance: float | None = None


def parse_geo_query(
    georel: str | None,
    geometry: str | None,
    coordinates: str | Any | None,
    geoproperty: str | None,
    expand: Callable[[str], str] = lambda s: s,
) -> GeoQuery | None:
    """Parse a geo-query from its GET parameters or its JSON (geoQ) form; None if absent."""
    if georel is None and geometry is None and coordinates is None:
        return None
    # NGSI-LD 1.8 §4.10: georel, geometry and coordinates go together; the ETSI suite (037_03_03)
    # expects BadRequestData when only some are given.
    missing = [
        name
        for name, value in (
            ("georel", georel),
            ("geometry", geometry),
            ("coordinates", coordinates),
        )
        if value is None
    ]
    if missing:
        raise BadRequestData(
            f"invalid geo-query: {' and '.join(missing)} missing "
            "(georel, geometry and coordinates must be given together)"
        )
    assert georel is not None and geometry is not None
    rel, max_distance, min_distance = _parse_georel(georel)
    gtype = _parse_geometry_type(geometry)
    coords = _parse_coordinates(coordinates)
    coords = _tolerate_polygon_shorthand(gtype, coords)
    geojson: dict[str, Any] = {"type": gtype, "coordinates": coords}
    try:
        _check_coordinates(gtype, coords, "coordinates")
    except BadRequestData as exc:
        raise BadRequestData(f"invalid geo-query {exc.detail}") from None
    return GeoQuery(
        georel=rel,
        geometry=_to_shapely(geojson),
        geojson=geojson,
        geoproperty=_expand_geoproperty(geoproperty, expand),
        max_distance=max_distance,
        min_distance=min_distance,
    )


def _parse_georel(text: Any) -> tuple[str, float | None, float | None]:
    # NGSI-LD 1.8 §4.10 grammar: georel = nearRel / "within" / "contains" / "intersects" /
    # "equals" / "disjoint" / "overlaps"; nearRel = "near" ";" ("maxDistance" / "minDistance")
    # "==" PositiveNumber. Both distances together (a ring) are accepted as an extension.
    if not isinstance(text, str):
        raise BadRequestData(f"invalid georel: expected a string, got {_kind(text)}")
    parts = [p.strip() for p in text.strip().split(";")]
    rel = parts[0]
    if rel not in GEOREL_NAMES:
        raise BadRequestData(
            f"invalid georel {_short(text)}: expected one of {', '.join(sorted(GEOREL_NAMES))}"
        )
    modifiers = parts[1:]
    if rel != "near":
        if modifiers:
            raise BadRequestData(f"invalid georel {_short(text)}: {rel!r} takes no modifiers")
        return rel, None, None
    distances: dict[str, float] = {}
    for modifier in modifiers:
        name, sep, number = modifier.partition("==")
        name = name.strip()
        if not sep or name not in ("maxDistance", "minDistance"):
            raise BadRequestData(
                f"invalid georel {_short(text)}: expected maxDistance==<metres> or "
                "minDistance==<metres> after near"
            )
        if name in distances:
            raise BadRequestData(f"invalid georel {_short(text)}: {name} given twice")
        distances[name] = _parse_distance(number.strip(), text)
    if not distances:
        raise BadRequestData(
            f"invalid georel {_short(text)}: near needs maxDistance==<metres> or "
            "minDistance==<metres>"
        )
    return rel, distances.get("maxDistance"), distances.get("minDistance")


def _parse_distance(number: str, text: str) -> float:
    if not _NUMBER.fullmatch(number):
        raise BadRequestData(
            f"invalid georel {_short(text)}: distance {number!r} is not a non-negative number "
            "of metres"
        )
    value = float(number)
    if not math.isfinite(value):
        raise BadRequestData(f"invalid georel {_short(text)}: distance {number!r} is too large")
    return value


def _parse_geometry_type(geometry: Any) -> str:
    if not isinstance(geometry, str):
        raise BadRequestData(f"invalid geometry: expected a string, got {_kind(geometry)}")
    # Accept case variants (`point`, as in NGSIv2); the canonical GeoJSON name is what we keep.
    canonical = _QUERY_GEOMETRY_TYPES.get(geometry.strip().lower())
    if canonical is None:
        raise BadRequestData(
            f"invalid geometry {_short(geometry)}: expected one of "
            f"{', '.join(sorted(_QUERY_GEOMETRY_TYPES.values()))}"
        )
    return canonical


def _parse_coordinates(coordinates: Any) -> Any:
    # GET: a JSON array in text; POST /entityOperations/query and geoQ: already an array
    # (NGSI-LD 1.8 §5.2.13 allows either form for geoQ.coordinates).
    if isinstance(coordinates, str):
        try:
            coordinates = json.loads(coordinates)
        except (ValueError, RecursionError):
            raise BadRequestData(
                f"invalid coordinates {_short(coordinates)}: not a JSON array"
            ) from None
    if not isinstance(coordinates, list):
        raise BadRequestData(
            f"invalid coordinates: expected a JSON array, got {_kind(coordinates)}"
        )
    return coordinates


def _tolerate_polygon_shorthand(gtype: str, coords: list[Any]) -> list[Any]:
    # Interoperability: the ETSI suite (037_07_02) queries with geometry=Polygon and a bare,
    # unclosed ring `[[x,y],...]`, and expects a match. For query geometries only (never stored
    # GeoProperty values) a bare ring is wrapped and an open ring of >= 3 positions is closed.
    if gtype != "Polygon" or not coords:
        return coords
    if all(_is_position(p) for p in coords):
        coords = [coords]
    closed: list[Any] = []
    for ring in coords:
        if (
            isinstance(ring, list)
            and len(ring) >= 3
            and all(_is_position(p) for p in ring)
            and ring[0] != ring[-1]
        ):
            ring = [*ring, ring[0]]
        closed.append(ring)
    return closed


def _is_position(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (2, 3)
        and all(isinstance(n, int | float) and not isinstance(n, bool) for n in value)
    )


def _expand_geoproperty(name: str | None, expand: Callable[[str], str]) -> str:
    if name is None or not name.strip():
        return DEFAULT_GEOPROPERTY
    name = name.strip()
    core = _CORE_GEOPROPERTIES.get(name)
    if core is not None:
        return core
    if any(c in name for c in "<>\"'=;()") or any(c.isspace() for c in name):
        raise BadRequestData(f"invalid geoproperty {_short(name)}: not an attribute name")
    return expand(name)


# --- shapely ----------------------------------------------------------------------------------


def _flat(coords: Any, depth: int) -> Any:
    # Shapely predicates are planar: drop altitudes so mixed 2-D/3-D positions build cleanly.
    if depth == 0:
        return [float(coords[0]), float(coords[1])]
    return [_flat(c, depth - 1) for c in coords]


def _to_shapely(geojson: dict[str, Any]) -> Any:
    gtype = geojson["type"]
    if gtype == "GeometryCollection":
        return shapely.GeometryCollection([_to_shapely(g) for g in geojson["geometries"]])
    return shape({"type": gtype, "coordinates": _flat(geojson["coordinates"], _DEPTH[gtype])})


# --- distances --------------------------------------------------------------------------------


def haversine_distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two lon/lat points (mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def geodesic_distance(a: Any, b: Any) -> float:
    """Shortest distance in metres between two shapely lon/lat geometries (0 if they touch)."""
    if a.is_empty or b.is_empty:
        return math.inf
    if _safe_predicate(a, b, "intersects"):
        return 0.0
    if _is_points(a) and _is_points(b):
        return min(
            haversine_distance(p[0], p[1], q[0], q[1])
            for p in shapely.get_coordinates(a).tolist()
            for q in shapely.get_coordinates(b).tolist()
        )
    # Edges are straight in lon/lat (RFC 7946 §3.1.1) but great-circle arcs on the sphere;
    # splitting them to <= 0.1° keeps the two within ~1.2 m of each other.
    a, b = _densify(a), _densify(b)
    xy_a, xy_b = shapely.get_coordinates(a), shapely.get_coordinates(b)
    sa, ea = _segments(a)
    sb, eb = _segments(b)
    if len(xy_a) * len(sb) + len(xy_b) * len(sa) > _PRUNE_ABOVE_PAIRS:
        pruned = _prune(a, b)
        if pruned is None:
            return _projected_distance(a, b)
        (xy_a, sa, ea), (xy_b, sb, eb) = pruned
    # Two disjoint polylines are closest at a vertex of one and an edge of the other (a point is
    # a zero-length edge), so the minimum over vertex-to-arc distances both ways is exact.
    ua, ub = _unit_vectors(xy_a), _unit_vectors(xy_b)
    angle = min(
        _vertex_to_arc_angle(ua, _unit_vectors(sb), _unit_vectors(eb)),
        _vertex_to_arc_angle(ub, _unit_vectors(sa), _unit_vectors(ea)),
    )
    return EARTH_RADIUS_M * angle


def _densify(geom: Any) -> Any:
    try:
        return shapely.segmentize(geom, _MAX_EDGE_DEG)
    except shapely.errors.GEOSException:
        return geom  # e.g. a LineString of two equal positions: nothing to split


def _is_points(geom: Any) -> bool:
    return isinstance(geom, shapely.Point | shapely.MultiPoint)


_Coords = npt.NDArray[np.float64]
_Parts = tuple[_Coords, _Coords, _Coords]


def _prune(a: Any, b: Any) -> tuple[_Parts, _Parts] | None:
    """Vertices and edges of `a` and `b` that can be part of their closest pair, or None."""
    # In an equirectangular projection, a vertex or edge whose projected distance exceeds the
    # projected minimum by more than the projection's scale distortion (squared) cannot be part
    # of the true closest pair; GEOS finds these distances fast.
    miny = min(a.bounds[1], b.bounds[1])
    maxy = max(a.bounds[3], b.bounds[3])
    k = _projection_scale(a, b)
    cos_min = max(math.cos(math.radians(max(abs(miny), abs(maxy)))), 1e-9)
    cos_max = 1.0 if miny <= 0 <= maxy else math.cos(math.radians(min(abs(miny), abs(maxy))))
    distortion = max(k / cos_min, cos_max / k)
    pa, pb = _scale_x(a, k), _scale_x(b, k)
    limit = float(shapely.distance(pa, pb)) * distortion**2 * (1 + 1e-9) + 1e-12
    near_a = _near_parts(pa, pb, k, limit)
    near_b = _near_parts(pb, pa, k, limit)
    if len(near_a[0]) * len(near_b[1]) + len(near_b[0]) * len(near_a[1]) > _MAX_PAIRS:
        return None
    return near_a, near_b


def _near_parts(projected: Any, other: Any, k: float, limit: float) -> _Parts:
    vertices = shapely.get_coordinates(projected)
    near = shapely.distance(shapely.points(vertices), other) <= limit
    starts, ends = _segments(projected)
    edges = shapely.linestrings(np.stack([starts, ends], axis=1))
    near_edges = shapely.distance(edges, other) <= limit
    unscale = np.array([1 / k, 1.0])
    return vertices[near] * unscale, starts[near_edges] * unscale, ends[near_edges] * unscale


def _projection_scale(a: Any, b: Any) -> float:
    miny = min(a.bounds[1], b.bounds[1])
    maxy = max(a.bounds[3], b.bounds[3])
    return max(math.cos(math.radians((miny + maxy) / 2)), 1e-9)


_MAX_EDGE_DEG = 0.1
_PRUNE_ABOVE_PAIRS = 20_000
_MAX_PAIRS = 4_000_000
_CHUNK_PAIRS = 200_000


def _cross(u: _Coords, v: _Coords) -> _Coords:
    # np.cross carries a lot of per-call overhead for the small arrays that dominate here.
    out = np.empty_like(u)
    out[:, 0] = u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1]
    out[:, 1] = u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2]
    out[:, 2] = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    return out


def _segments(geom: Any) -> tuple[_Coords, _Coords]:
    """Start and end coordinates of every edge; a point is a zero-length edge."""
    starts: list[_Coords] = []
    ends: list[_Coords] = []
    for part in _simple_parts(geom):
        if isinstance(part, shapely.Point):
            xy = shapely.get_coordinates(part)
            starts.append(xy)
            ends.append(xy)
            continue
        lines = [part] if isinstance(part, shapely.LineString) else [part.exterior, *part.interiors]
        for line in lines:
            xy = shapely.get_coordinates(line)
            starts.append(xy[:-1])
            ends.append(xy[1:])
    return np.concatenate(starts), np.concatenate(ends)


def _simple_parts(geom: Any) -> Iterator[Any]:
    for part in shapely.get_parts(geom):
        if isinstance(
            part,
            shapely.GeometryCollection
            | shapely.MultiPoint
            | shapely.MultiLineString
            | shapely.MultiPolygon,
        ):
            yield from _simple_parts(part)
        elif not part.is_empty:
            yield part


def _unit_vectors(lonlat: _Coords) -> _Coords:
    lon = np.radians(lonlat[:, 0])
    lat = np.radians(lonlat[:, 1])
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=1)


def _vertex_to_arc_angle(p: _Coords, s: _Coords, e: _Coords) -> float:
    """Smallest central angle (radians) from any point `p` to any great-circle arc s->e."""
    n = _cross(s, e)
    norm = np.linalg.norm(n, axis=1)
    proper = norm > 1e-15
    n_unit = n[proper] / norm[proper, None]
    # the foot of the perpendicular from p lies inside the arc iff p is on the inner side of the
    # planes (n x s) and (e x n)
    side_s = _cross(n_unit, s[proper])
    side_e = _cross(e[proper], n_unit)
    rows = max(1, _CHUNK_PAIRS // max(1, len(s)))
    best = math.inf
    for i in range(0, len(p), rows):
        chunk = p[i : i + rows]
        # endpoints via the chord: well conditioned for tiny angles, unlike acos of a dot product
        to_s = np.linalg.norm(chunk[:, None, :] - s[None, :, :], axis=2)
        to_e = np.linalg.norm(chunk[:, None, :] - e[None, :, :], axis=2)
        chord = float(np.minimum(to_s, to_e).min())
        best = min(best, 2 * math.asin(min(1.0, chord / 2)))
        if n_unit.size:
            cross_track = np.arcsin(np.clip(np.abs(chunk @ n_unit.T), 0.0, 1.0))
            inside = (chunk @ side_s.T >= 0) & (chunk @ side_e.T >= 0)
            if inside.any():
                best = min(best, float(cross_track[inside].min()))
    return best


def _projected_distance(a: Any, b: Any) -> float:
    # Fallback for huge geometries: the closest pair in the projection, measured on the sphere
    # (an upper bound of the true distance, within ~1 % at regional scale).
    k = _projection_scale(a, b)
    qa, qb = nearest_points(_scale_x(a, k), _scale_x(b, k))
    return haversine_distance(qa.x / k, qa.y, qb.x / k, qb.y)


def _scale_x(geom: Any, k: float) -> Any:
    return shapely.transform(geom, lambda xy: xy * [k, 1.0])


def _safe_predicate(a: Any, b: Any, name: str) -> bool:
    try:
        return bool(getattr(a, name)(b))
    except shapely.errors.GEOSException:
        # Invalid (e.g. self-intersecting) input can defeat GEOS; retry on repaired geometries.
        return bool(getattr(shapely.make_valid(a), name)(shapely.make_valid(b)))


# --- evaluation -------------------------------------------------------------------------------


def geo_matches(gq: GeoQuery, doc: dict[str, Any]) -> bool:
    """Whether any instance of the entity's GeoProperty `gq.geoproperty` satisfies the query."""
    attrs = doc.get("attrs")
    if not isinstance(attrs, dict):
        return False
    instances = attrs.get(gq.geoproperty)
    if not isinstance(instances, list):
        return False
    for instance in instances:
        if not isinstance(instance, dict) or instance.get("type") != "GeoProperty":
            continue
        value = instance.get("value")
        if not isinstance(value, dict):
            continue
        try:
            validate_geometry(value)
            entity_geometry = _to_shapely(value)
        except (BadRequestData, ValueError, TypeError, shapely.errors.GEOSException):
            continue  # not a geometry we can evaluate: it cannot match
        if _relation_holds(gq, entity_geometry):
            return True
    return False


def _relation_holds(gq: GeoQuery, entity: Any) -> bool:
    # NGSI-LD 1.8 §4.10: the entity's geometry is the first operand ("the entity is within the
    # reference geometry", "the entity contains the reference geometry"). The topological
    # relations are the Simple Features ones (ISO 19125-1 §6.1.14, DE-9IM), as in PostGIS
    # ST_Equals/ST_Within/...; `overlaps` is DE-9IM overlaps (same dimension, interiors meet,
    # neither contains the other), not "intersects but not equal".
    if gq.georel == "near":
        distance = geodesic_distance(entity, gq.geometry)
        if gq.max_distance is not None and not distance <= gq.max_distance:
            return False
        return gq.min_distance is None or distance >= gq.min_distance
    if entity.is_empty:
        return False
    return _safe_predicate(entity, gq.geometry, gq.georel)


# --- bounding boxes ---------------------------------------------------------------------------


def geometry_bbox(geojson: dict[str, Any]) -> tuple[float, float, float, float]:
    """The lon/lat bounding box (minx, miny, maxx, maxy) of a validated GeoJSON geometry."""
    xs: list[float] = []
    ys: list[float] = []
    for lon, lat in _positions(geojson):
        xs.append(lon)
        ys.append(lat)
    if not xs:
        raise BadRequestData("invalid GeoJSON geometry: it has no positions")
    return min(xs), min(ys), max(xs), max(ys)


def _positions(geojson: dict[str, Any]) -> Iterator[tuple[float, float]]:
    gtype = geojson["type"]
    if gtype == "GeometryCollection":
        for member in geojson["geometries"]:
            yield from _positions(member)
        return
    stack: list[tuple[Any, int]] = [(geojson["coordinates"], _DEPTH[gtype])]
    while stack:
        coords, depth = stack.pop()
        if depth == 0:
            yield float(coords[0]), float(coords[1])
        else:
            stack.extend((c, depth - 1) for c in coords)


def bbox_prefilter(gq: GeoQuery) -> tuple[float, float, float, float] | None:
    """A lon/lat box every matching entity geometry intersects, or None if there is none."""
    if gq.georel == "disjoint":
        return None
    if gq.georel == "near":
        if gq.max_distance is None:
            return None  # minDistance alone: matches lie anywhere far enough away
        return _expand_bbox(geometry_bbox(gq.geojson), gq.max_distance)
    # equals/within/contains/overlaps/intersects all imply that the geometries intersect.
    return geometry_bbox(gq.geojson)


def _expand_bbox(
    box: tuple[float, float, float, float], metres: float
) -> tuple[float, float, float, float]:
    # 1 % + 1 m of slack over the spherical distance covers rounding in the distance method.
    margin = metres * 1.01 + 1.0
    dlat = math.degrees(margin / EARTH_RADIUS_M)
    minx, miny, maxx, maxy = box
    south, north = miny - dlat, maxy + dlat
    if south <= -90 or north >= 90:
        return -180.0, max(south, -90.0), 180.0, min(north, 90.0)
    # A degree of longitude shrinks with cos(latitude): widen by the most poleward latitude the
    # box reaches, where a given distance spans the most longitude.
    cos_lat = math.cos(math.radians(max(abs(south), abs(north))))
    dlon = dlat / cos_lat
    west, east = minx - dlon, maxx + dlon
    if west < -180 or east > 180:
        # The box would wrap the antimeridian; one rectangle cannot express that.
        return -180.0, south, 180.0, north
    return west, south, east, north
