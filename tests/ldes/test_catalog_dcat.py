"""The DCAT-AP Vlaanderen 2.0 catalogue (`GET /catalog`), on both backends.

Validated with pySHACL against the official DCAT-AP Vlaanderen 2.0 shapes
(tests/fixtures/dcat/, source in SOURCE.md): those shapes write "no maximum" as
`sh:maxCount "n"^^xsd:integer`, which is not an integer; those triples are dropped before
validating (they constrain nothing). Only the data sets the caller may read are listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rdflib
import rdflib.compare
from ldes_world import HOUR, World
from pyoxigraph import RdfFormat, parse, serialize
from pyshacl import validate
from rdflib.namespace import SH

from smartregion.core.vocabulary import DCAT, DCT, LDES, MDCAT, RDF
from smartregion.governance import Principal
from smartregion.storage.history import now_micros

pytestmark = pytest.mark.anyio

SHAPES = Path(__file__).parent.parent / "fixtures" / "dcat" / "DCAT-AP-VL-20-SHACL.ttl"
BASE = "http://testserver"


def shapes() -> rdflib.Graph:
    graph = rdflib.Graph().parse(SHAPES, format="text/turtle")
    for s, p, o in list(graph.triples((None, SH.maxCount, None))):
        if str(o) == "n":
            graph.remove((s, p, o))
    return graph


def catalogue(body: bytes, media: str) -> rdflib.Graph:
    """The catalogue parsed (by pyoxigraph) from any of the media types it is served in."""
    fmt = RdfFormat.from_media_type(media)
    assert fmt is not None
    triples = serialize(parse(body, format=fmt), format=RdfFormat.N_TRIPLES)
    return rdflib.Graph().parse(data=triples, format="nt")


def violations(data: rdflib.Graph) -> list[tuple[str, str, str]]:
    """(focus node, path, message) of every SHACL violation."""
    conforms, report, _ = validate(data, shacl_graph=shapes(), inference="none")
    out = []
    for result in report.subjects(RDF_TYPE, SH.ValidationResult):
        focus = str(report.value(result, SH.focusNode))
        path = str(report.value(result, SH.resultPath))
        message = str(report.value(result, SH.resultMessage))
        out.append((focus, path, message))
    assert conforms == (not out)
    return out


RDF_TYPE = rdflib.URIRef(RDF + "type")


def datasets(graph: rdflib.Graph) -> set[str]:
    return {str(s) for s in graph.subjects(RDF_TYPE, rdflib.URIRef(DCAT + "Dataset"))}


async def get(w: World, who: str | None, accept: str = "text/turtle") -> Any:
    r = await w.client.get("/catalog", headers={"Accept": accept, **w.auth(who)})
    assert r.status_code == 200, r.text
    return r


async def test_the_public_catalogue_conforms_to_dcat_ap_vlaanderen(world: World) -> None:
    w = world
    await w.write("Sensor", 2, 1)
    w.at(now_micros() + 2 * HOUR)
    r = await get(w, None)
    assert r.headers["vary"] == "Accept, Authorization"
    assert r.headers["cache-control"] == "public, max-age=10"
    assert (await get(w, "a.editor")).headers["cache-control"] == "private, max-age=10"
    graph = catalogue(r.content, "text/turtle")
    assert violations(graph) == []
    own = {d for d in datasets(graph) if w.a in d}
    assert own == {
        f"{BASE}/catalog/datasets/{w.ds('open')}",
        f"{BASE}/catalog/datasets/{w.ds('short')}",
    }
    ds = rdflib.URIRef(f"{BASE}/catalog/datasets/{w.ds('open')}")
    assert str(graph.value(ds, rdflib.URIRef(DCT + "publisher"))) == f"{BASE}/organisations/{w.a}"
    assert (
        str(graph.value(ds, rdflib.URIRef(DCT + "license")))
        == "https://creativecommons.org/licenses/by/4.0/"
    )
    assert (
        str(graph.value(ds, rdflib.URIRef(DCAT + "theme")))
        == "https://vocab.belgif.be/auth/datatheme/ENVI"
    )
    assert graph.value(ds, rdflib.URIRef(DCT + "temporal")) is not None
    assert str(graph.value(ds, rdflib.URIRef(MDCAT + "statuut"))).endswith("/VLOPENDATA")
    # the stream: a distribution served by an LDES data service
    dist = graph.value(ds, rdflib.URIRef(DCAT + "distribution"))
    service = graph.value(dist, rdflib.URIRef(DCAT + "accessService"))
    assert (
        str(graph.value(service, rdflib.URIRef(DCAT + "endpointURL")))
        == f"{BASE}/ldes/{w.ds('open')}"
    )
    assert graph.value(service, rdflib.URIRef(DCT + "type")) == rdflib.URIRef(LDES + "EventStream")
    assert graph.value(dist, rdflib.URIRef(DCT + "type")) == rdflib.URIRef(LDES + "EventStream")
    # the shapes do bite: a data set without its contact point or title is reported
    broken = rdflib.Graph()
    for t in graph:
        if not (
            t[0] == ds
            and t[1] in (rdflib.URIRef(DCAT + "contactPoint"), rdflib.URIRef(DCT + "title"))
        ):
            broken.add(t)
    assert {(focus, path) for focus, path, _ in violations(broken)} == {
        (str(ds), DCAT + "contactPoint"),
        (str(ds), DCT + "title"),
    }
    # the stream named is served
    assert (await w.client.get(f"/ldes/{w.ds('open')}")).status_code == 200


async def test_only_readable_data_sets_are_listed(world: World) -> None:
    w = world
    restricted = f"{BASE}/catalog/datasets/{w.ds('restricted')}"
    anonymous = catalogue((await get(w, None)).content, "text/turtle")
    other = catalogue((await get(w, "c.editor")).content, "text/turtle")
    owner = catalogue((await get(w, "a.editor")).content, "text/turtle")
    assert restricted not in datasets(anonymous) and restricted not in datasets(other)
    assert restricted in datasets(owner)
    request = await w.gov.request_access(Principal(w.c, "editor"), w.ds("restricted"), "research")
    await w.gov.approve_access_request(Principal(w.a, "admin"), request.id)
    assert restricted in datasets(catalogue((await get(w, "c.editor")).content, "text/turtle"))
    # restricted data sets conform too, but for the keyword list's statuut, which has no value
    # for data shared under conditions (docs/ldes.md)
    # this world's data sets only: the PostgreSQL test database is shared by a worker's tests,
    # and what others left readable there is listed too (tests/storage/test_readable_for.py's
    # "parking", with its own statuut violation, when both ran on one worker)
    found = [v for v in violations(owner) if f"/{w.a}-" in v[0]]
    assert found and all(path == MDCAT + "statuut" for _, path, _ in found)
    assert {focus for focus, _, _ in found} == {
        restricted,
        f"{BASE}/ldes/{w.ds('restricted')}#service",
    }


@pytest.mark.parametrize(
    "accept", ["application/ld+json", "application/rdf+xml", "application/n-triples"]
)
async def test_other_serialisations_carry_the_same_catalogue(world: World, accept: str) -> None:
    w = world
    turtle = catalogue((await get(w, None)).content, "text/turtle")
    response = await get(w, None, accept)
    assert response.headers["content-type"].split(";")[0] == accept
    other = catalogue(response.content, accept)
    assert rdflib.compare.isomorphic(turtle, other)


def spatial(graph: rdflib.Graph, dataset: str) -> tuple[str, str] | None:
    """(dcat:bbox, dcat:centroid) of a listed data set's spatial coverage; None without one."""
    place = graph.value(
        rdflib.URIRef(f"{BASE}/catalog/datasets/{dataset}"), rdflib.URIRef(DCT + "spatial")
    )
    if place is None:
        return None
    bbox = graph.value(place, rdflib.URIRef(DCAT + "bbox"))
    centroid = graph.value(place, rdflib.URIRef(DCAT + "centroid"))
    if bbox is None:
        return None
    assert bbox.datatype == rdflib.URIRef("http://www.opengis.net/ont/geosparql#wktLiteral")
    return str(bbox), str(centroid)


def bounds(wkt: str) -> tuple[float, float, float, float]:
    numbers = [
        float(v) for v in wkt.replace("POLYGON((", "").replace("))", "").replace(",", " ").split()
    ]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


async def place(
    w: World,
    entity: str,
    who: str,
    geometry: dict[str, Any],
    type_: str = "Sensor",
    scope: str | None = None,
) -> None:
    body: dict[str, Any] = {
        "id": entity,
        "type": type_,
        "location": {"type": "GeoProperty", "value": geometry},
    }
    if scope is not None:
        body["scope"] = scope
    r = await w.client.post("/ngsi-ld/v1/entityOperations/upsert", json=[body], headers=w.auth(who))
    assert r.status_code in (201, 204), r.text


async def test_spatial_coverage_is_the_bounding_box_of_what_the_reader_sees(world: World) -> None:
    w = world
    sensor = f"urn:ngsi-ld:Sensor:{w.suffix}"
    await place(
        w, f"{sensor}-gent", "a.editor", {"type": "Point", "coordinates": [3.7174, 51.0543]}
    )
    await place(
        w,
        f"{sensor}-road",
        "a.editor",
        {"type": "LineString", "coordinates": [[3.70, 51.03], [3.75, 51.071234]]},
    )
    # neither another type of the owner nor another organisation's sensor widens it
    await place(
        w,
        f"urn:ngsi-ld:Building:{w.suffix}",
        "a.editor",
        {"type": "Point", "coordinates": [4.40, 51.22]},
        "Building",
    )
    await place(w, f"{sensor}-c", "c.editor", {"type": "Point", "coordinates": [5.57, 50.63]})
    # the data set with nothing placed has no spatial coverage
    public = catalogue((await get(w, None)).content, "text/turtle")
    assert spatial(public, w.ds("short")) is None
    found = spatial(public, w.ds("open"))
    assert found is not None and found[0].startswith("POLYGON((")
    # exact on PostgreSQL; SQLite's R*Tree keeps a line's box in 32-bit floats, rounded outward
    box = bounds(found[0])
    assert all(
        abs(got - want) < 5e-6 for got, want in zip(box, (3.7, 51.03, 3.75, 51.071234), strict=True)
    )
    assert box[0] <= 3.7 and box[1] <= 51.03 and box[2] >= 3.75 and box[3] >= 51.071234
    assert found[1].startswith("POINT(3.725 51.0506")
    assert violations(public) == []
    owner = catalogue((await get(w, "a.editor")).content, "text/turtle")
    assert spatial(owner, w.ds("restricted")) == ("POINT(4.4 51.22)", "POINT(4.4 51.22)")
    # a moved sensor moves the coverage (it is the current state, not history)
    await place(w, f"{sensor}-gent", "a.editor", {"type": "Point", "coordinates": [3.80, 51.0543]})
    moved = spatial(catalogue((await get(w, None)).content, "text/turtle"), w.ds("open"))
    assert moved is not None
    assert all(
        abs(got - want) < 5e-6
        for got, want in zip(bounds(moved[0]), (3.7, 51.03, 3.8, 51.071234), strict=True)
    )


async def test_spatial_coverage_tells_no_more_than_the_privacy_view(world: World) -> None:
    w = world
    sensor = f"urn:ngsi-ld:Sensor:{w.suffix}"
    await place(w, f"{sensor}-1", "a.editor", {"type": "Point", "coordinates": [3.7174, 51.0543]})
    admin = Principal(w.a, "admin")
    # an open view that coarsens places to 1 km: the box widens to the grid, both ways
    await w.gov.set_dataset_privacy(admin, w.ds("open"), {"coarsenPlace": 1000})
    anonymous = spatial(catalogue((await get(w, None)).content, "text/turtle"), w.ds("open"))
    assert anonymous is not None
    west, south, east, north = bounds(anonymous[0])
    assert west < 3.7174 < east and south < 51.0543 < north
    assert 0.008 < north - south < 0.0092  # one 1 km cell high (1000 m / 111.32 km per degree)
    assert anonymous == spatial(
        catalogue((await get(w, "c.editor")).content, "text/turtle"), w.ds("open")
    )
    # the owner's side sees the exact place
    exact = spatial(catalogue((await get(w, "a.editor")).content, "text/turtle"), w.ds("open"))
    assert exact == ("POINT(3.7174 51.0543)", "POINT(3.7174 51.0543)")
    # a place classified personal gives open readers no coverage at all
    await w.gov.set_dataset_privacy(admin, w.ds("open"), {"personal": ["location"]})
    assert spatial(catalogue((await get(w, None)).content, "text/turtle"), w.ds("open")) is None
    assert (
        spatial(catalogue((await get(w, "a.editor")).content, "text/turtle"), w.ds("open")) == exact
    )


async def test_a_scoped_data_sets_coverage_is_that_of_its_scope(world: World) -> None:
    w = world
    await w.gov.create_dataset(
        Principal(w.a, "admin"), f"{w.a}-gent", w.a, "Gent", ["Tree"], policy="open", scope="/Gent"
    )
    tree = f"urn:ngsi-ld:Tree:{w.suffix}"
    await place(
        w, f"{tree}-1", "a.editor", {"type": "Point", "coordinates": [3.71, 51.05]}, "Tree", "/Gent"
    )
    await place(
        w,
        f"{tree}-2",
        "a.editor",
        {"type": "Point", "coordinates": [3.73, 51.06]},
        "Tree",
        "/Gent/Muide",
    )
    await place(
        w,
        f"{tree}-3",
        "a.editor",
        {"type": "Point", "coordinates": [4.40, 51.22]},
        "Tree",
        "/Antwerpen",
    )
    found = spatial(catalogue((await get(w, None)).content, "text/turtle"), f"{w.a}-gent")
    assert found == (
        "POLYGON((3.71 51.05, 3.73 51.05, 3.73 51.06, 3.71 51.06, 3.71 51.05))",
        "POINT(3.72 51.055)",
    )
