"""Event-stream pages to the letter of LDES/TREE, over HTTP, on SQLite and PostgreSQL.

Each page is parsed back with pyoxigraph in every media type offered and checked triple by
triple: one `tree:view` (the stream to this very URL), `tree:member` on the stream IRI, every
relation with exactly one node, path and value, the shape on the page; walking the relations
from a view's root reaches every member written exactly once; and the HTTP side — caching,
ETag/304, Vary, immutability of full pages, 406 and 429.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ldes_world import HOUR, PAGE_SIZE, World
from pyoxigraph import NamedNode, RdfFormat, parse

from smartregion.core.vocabulary import DCT, LDES, PROV, QUDT, RDF, SH, SOSA, TREE
from smartregion.ldes.serialisation import STREAM_FORMATS
from smartregion.storage.history import now_micros

pytestmark = pytest.mark.anyio

BASE = "http://testserver"
FORMATS = {
    "text/turtle": RdfFormat.TURTLE,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/n-quads": RdfFormat.N_QUADS,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "application/trig": RdfFormat.TRIG,
}


def triples(body: bytes, media: str) -> list[tuple[str, str, Any]]:
    """(subject, predicate, object) of a parsed body; IRIs and blank nodes as strings."""
    out = []
    for q in parse(body, format=FORMATS[media]):
        s = q.subject.value
        o = q.object.value if not hasattr(q.object, "datatype") else q.object
        out.append((s, q.predicate.value, o))
    return out


def objects(ts: list[tuple[str, str, Any]], s: str, p: str) -> list[Any]:
    return [o for s2, p2, o in ts if s2 == s and p2 == p]


def check_page(
    ts: list[tuple[str, str, Any]], url: str, stream: str
) -> tuple[list[str], list[str]]:
    """Assert the page's shape; return its member IRIs and the nodes its relations lead to."""
    views = [(s, o) for s, p, o in ts if p == TREE + "view"]
    assert views == [(stream, url)], views
    assert objects(ts, stream, RDF + "type") == [LDES + "EventStream"]
    assert objects(ts, stream, LDES + "timestampPath") == [PROV + "generatedAtTime"]
    assert objects(ts, stream, LDES + "versionOfPath") == [DCT + "isVersionOf"]
    shapes = objects(ts, stream, TREE + "shape")
    assert len(shapes) == 1 and objects(ts, shapes[0], RDF + "type") == [SH + "NodeShape"]
    members = [o for s, p, o in ts if p == TREE + "member"]
    assert all(s == stream for s, p, _ in ts if p == TREE + "member")
    for m in members:
        assert objects(ts, m, RDF + "type") == [SOSA + "Observation"]
        for prop in ("madeBySensor", "hasFeatureOfInterest", "observedProperty", "resultTime"):
            assert len(objects(ts, m, SOSA + prop)) == 1, (m, prop)
        assert len(objects(ts, m, PROV + "generatedAtTime")) == 1
        assert len(objects(ts, m, DCT + "isVersionOf")) == 1
    nodes = []
    for rel in objects(ts, url, TREE + "relation"):
        for prop in ("node", "path", "value"):
            assert len(objects(ts, rel, TREE + prop)) == 1, (rel, prop)
        kind = objects(ts, rel, RDF + "type")
        if "/latest" in url:  # the latest view pages by version object
            assert objects(ts, rel, TREE + "path") == [DCT + "isVersionOf"]
            assert kind == [TREE + "GreaterThanRelation"]
        else:
            assert objects(ts, rel, TREE + "path") == [PROV + "generatedAtTime"]
            assert kind in ([TREE + "GreaterThanOrEqualToRelation"], [TREE + "LessThanRelation"])
        nodes.append(objects(ts, rel, TREE + "node")[0])
    return members, nodes


async def walk(w: World, root: str, media: str = "text/turtle") -> tuple[list[str], dict[str, Any]]:
    """Every member reachable from `root` (with repeats), and each visited page's response."""
    stream = root.split("/by-time")[0].removesuffix("/paged").removesuffix("/latest")
    seen: dict[str, Any] = {}
    members: list[str] = []
    todo = [root]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        r = await w.client.get(url, headers={"Accept": media})
        assert r.status_code == 200, (url, r.status_code, r.text)
        seen[url] = r
        found, nodes = check_page(triples(r.content, media), url, stream)
        members += found
        todo += nodes
    return members, seen


async def test_every_media_type_parses_to_a_page_to_the_letter(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 4)  # 12 observations + 12 status values: 24 members
    w.at(now_micros() + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('open')}"
    for media in STREAM_FORMATS:
        r = await w.client.get(f"{stream}/paged", headers={"Accept": media})
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == media
        members, nodes = check_page(triples(r.content, media), f"{stream}/paged", stream)
        assert len(members) == PAGE_SIZE and len(nodes) == 1


async def test_both_views_reach_every_member_exactly_once(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 4)
    await w.write("Lamp", 2, 1)  # another data set's entities: not in this stream
    w.at(now_micros() + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('open')}"
    paged, pages = await walk(w, f"{stream}/paged")
    assert len(paged) == 24 and len(set(paged)) == 24
    assert len(pages) == 5  # 24 members, 5 a page
    timed, nodes = await walk(w, f"{stream}/by-time")
    assert Counter(timed) == Counter(paged)
    # the by-time tree: root, year, month, day, hour pages (and continuations within an hour)
    assert any(url.count("/") == stream.count("/") + 5 for url in nodes)
    # member IRIs are stable: the same on every request, and dereferenceable-looking
    again, _ = await walk(w, f"{stream}/paged", "application/n-quads")
    assert sorted(again) == sorted(paged)
    assert all(m.startswith(f"{stream}/members/") for m in paged)


async def test_observation_members_carry_sosa_and_qudt(world: World) -> None:
    w = world
    await w.write("Sensor", 1, 1)
    w.at(now_micros() + 2 * HOUR)
    r = await w.client.get(
        f"/ldes/{w.ds('open')}/paged", headers={"Accept": "application/n-triples"}
    )
    ts = triples(r.content, "application/n-triples")
    temp = "https://uri.etsi.org/ngsi-ld/default-context/temperature"
    [member] = [s for s, p, o in ts if p == SOSA + "observedProperty" and o == temp]
    [result] = objects(ts, member, SOSA + "hasResult")
    assert objects(ts, result, RDF + "type") == [QUDT + "QuantityValue"]
    assert float(objects(ts, result, QUDT + "numericValue")[0].value) == 0.5
    assert objects(ts, result, QUDT + "unit") == ["http://qudt.org/vocab/unit/DEG_C"]
    [sensor] = objects(ts, member, SOSA + "madeBySensor")
    assert sensor == f"urn:ngsi-ld:Sensor:{w.suffix}-0"
    status = "https://uri.etsi.org/ngsi-ld/status"  # a term of the core context
    [other] = [s for s, p, o in ts if p == SOSA + "observedProperty" and o == status]
    assert [o.value for o in objects(ts, other, SOSA + "hasSimpleResult")] == ["round 0"]


async def test_caching_headers_etag_and_immutability(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 2)  # 12 members: two full pages and a growing one
    w.at(now_micros() + 5_000_000)  # settled, but the current hour is still open
    root = f"/ldes/{w.ds('open')}/paged"
    first = await w.client.get(root)
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert first.headers["vary"] == "Accept"
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    _, nodes = check_page(
        triples(first.content, "text/turtle"), BASE + root, f"{BASE}/ldes/{w.ds('open')}"
    )
    second_url = nodes[0].removeprefix(BASE)
    second = await w.client.get(second_url)
    assert second.headers["cache-control"] == "public, max-age=31536000, immutable"
    _, more = check_page(
        triples(second.content, "text/turtle"), nodes[0], f"{BASE}/ldes/{w.ds('open')}"
    )
    last = await w.client.get(more[0].removeprefix(BASE))
    assert last.headers["cache-control"] == "public, max-age=10"  # the growing page
    # 304 on If-None-Match, with the validators and no body
    not_modified = await w.client.get(root, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    # another representation has another tag
    nq = await w.client.get(root, headers={"Accept": "application/n-quads"})
    assert nq.headers["etag"] != etag
    # full pages keep their bytes after more writes, also when rendered afresh
    await w.write("Sensor", 3, 2, start=10)
    w.at(now_micros() + 5_000_000)
    w.streams._cache.entries.clear()
    again = await w.client.get(second_url)
    assert again.content == second.content and again.headers["etag"] == second.headers["etag"]
    grown = await w.client.get(more[0].removeprefix(BASE))
    assert grown.content != last.content  # the growing page grew


async def test_closed_hours_are_immutable_and_open_ones_are_not(world: World) -> None:
    w = world
    await w.write("Sensor", 1, 1)
    now = now_micros()
    w.at(now + 5_000_000)
    stream = f"/ldes/{w.ds('open')}"
    _, nodes = await walk(w, f"{BASE}{stream}/by-time")
    hours = [u for u in nodes if u.count("/") == f"{BASE}{stream}".count("/") + 5]
    [hour] = hours
    assert (await w.client.get(hour)).headers["cache-control"] == "public, max-age=10"
    w.at(now + 2 * HOUR)
    assert (await w.client.get(hour)).headers["cache-control"].endswith("immutable")
    # a future hour is not published yet
    assert (await w.client.get(f"{stream}/by-time/9999")).status_code == 404


async def test_non_canonical_page_urls_redirect_to_the_page_iri(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 2)
    w.at(now_micros() + 2 * HOUR)
    stream = f"/ldes/{w.ds('open')}"
    first = await w.client.get(f"{stream}/paged")
    _, nodes = check_page(
        triples(first.content, "text/turtle"), f"{BASE}{stream}/paged", BASE + stream
    )
    p, s, t, q = nodes[0].split("after=")[1].split(".")
    odd = f"{stream}/paged?after=0{p}.{s}.{t}.{q}"
    r = await w.client.get(odd)
    assert r.status_code == 308 and r.headers["location"] == nodes[0]
    for bad in ("?after=x", "?after=1.2.3.4&after=1.2.3.5", "?limit=3"):
        r = await w.client.get(f"{stream}/paged{bad}")
        assert r.status_code == 400, bad
    assert (await w.client.get(f"{stream}/by-time/2026/13")).status_code == 404
    assert (await w.client.get(f"{stream}/nothing")).status_code == 404


async def test_not_acceptable_and_overload(world: World) -> None:
    w = world
    await w.write("Sensor", 1, 1)
    w.at(now_micros() + 2 * HOUR)
    page = f"/ldes/{w.ds('open')}/paged"
    r = await w.client.get(page, headers={"Accept": "application/json"})
    assert r.status_code == 406
    # pages being rendered up to the limit (as under load): the next one is refused, not queued
    w.streams._in_flight = w.streams.config.max_concurrent
    r = await w.client.get(page)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    w.streams._in_flight = 0
    assert (await w.client.get(page)).status_code == 200


async def test_stream_description(world: World) -> None:
    w = world
    stream = f"{BASE}/ldes/{w.ds('open')}"
    r = await w.client.get(stream, headers={"Accept": "application/ld+json"})
    assert r.status_code == 200
    ts = triples(r.content, "application/ld+json")
    assert objects(ts, stream, TREE + "view") == [f"{stream}/paged"]
    assert objects(ts, stream, RDF + "type") == [LDES + "EventStream"]
    assert NamedNode(stream)  # a valid IRI


async def test_page_iris_follow_the_host_asked_also_for_cached_pages(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 2)
    w.at(now_micros() + 2 * HOUR)
    path = f"/ldes/{w.ds('open')}/paged"
    here = await w.client.get(path)
    assert here.headers["cache-control"].endswith("immutable")  # now in the page cache
    there = await w.client.get(path, headers={"Host": "data.example.org"})
    check_page(
        triples(there.content, "text/turtle"),
        f"http://data.example.org{path}",
        f"http://data.example.org/ldes/{w.ds('open')}",
    )


def _bounds(path: str) -> tuple[datetime, datetime]:
    """The period a by-time node's path names, computed here from the calendar."""
    parts = [int(p) for p in path.split("/by-time/")[1].split("?")[0].split("/")]
    y, m, d, h = (parts + [1, 1, 1, 0][len(parts) :])[:4]
    start = datetime(y, m, d, h, tzinfo=UTC)
    if len(parts) == 1:
        end = start.replace(year=y + 1)
    elif len(parts) == 2:
        end = start.replace(year=y + (m == 12), month=m % 12 + 1)
    elif len(parts) == 3:
        end = start + timedelta(days=1)
    else:
        end = start + timedelta(hours=1)
    return start, end


async def test_by_time_relations_bound_each_child_by_its_period(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 3)
    w.at(now_micros() + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('open')}"
    _, pages = await walk(w, f"{stream}/by-time")
    checked = 0
    for url, response in pages.items():
        ts = triples(response.content, "text/turtle")
        for rel in objects(ts, url, TREE + "relation"):
            node = objects(ts, rel, TREE + "node")[0]
            if "?after=" in node:
                continue
            kind = objects(ts, rel, RDF + "type")[0]
            value = datetime.fromisoformat(
                objects(ts, rel, TREE + "value")[0].value.replace("Z", "+00:00")
            )
            start, end = _bounds(node)
            assert value == (start if kind == TREE + "GreaterThanOrEqualToRelation" else end), (
                node,
                kind,
            )
            checked += 1
    assert checked >= 8  # root → year → month → day → hour, two relations each


async def test_latest_view_keeps_one_version_of_each_object(world: World) -> None:
    w = world
    await w.write("Sensor", 3, 3)  # 3 entities × (temperature, status) = 6 objects, 18 members
    w.at(now_micros() + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('open')}"
    members, pages = await walk(w, f"{stream}/latest")
    assert len(members) == 6 and len(pages) == 2
    root = triples(pages[f"{stream}/latest"].content, "text/turtle")
    [policy] = objects(root, f"{stream}/latest", LDES + "retentionPolicy")
    assert objects(root, policy, RDF + "type") == [LDES + "LatestVersionSubset"]
    assert objects(root, policy, LDES + "amount")[0].value == "1"
    values = []
    versions = []
    for response in pages.values():
        ts = triples(response.content, "text/turtle")
        for m in objects(ts, stream, TREE + "member"):
            versions += objects(ts, m, DCT + "isVersionOf")
            results = objects(ts, m, SOSA + "hasResult") or objects(ts, m, SOSA + "hasSimpleResult")
            [result] = results
            numeric = objects(ts, result, QUDT + "numericValue") if isinstance(result, str) else []
            values.append(float(numeric[0].value) if numeric else result.value)
    assert len(set(versions)) == 6
    # the last round (2): temperatures 200.5, 201.5, 202.5 and status "round 2" three times
    assert sorted(v for v in values if isinstance(v, float)) == [200.5, 201.5, 202.5]
    assert [v for v in values if not isinstance(v, float)] == ["round 2"] * 3
    # versions are in the order the relations promise (IRIs compared as strings)
    assert versions == sorted(versions)


async def test_member_iris_dereference_to_the_members_triples(world: World) -> None:
    w = world
    await w.write("Sensor", 2, 1)
    await w.write("Building", 1, 1)
    w.at(now_micros() + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('open')}"
    page = await w.client.get(f"{stream}/paged", headers={"Accept": "application/n-triples"})
    on_page = set(triples(page.content, "application/n-triples"))
    members = objects(list(on_page), stream, TREE + "member")
    assert len(members) == 4
    for m in members:
        r = await w.client.get(m, headers={"Accept": "application/n-triples"})
        assert r.status_code == 200 and r.headers["cache-control"].endswith("immutable")
        own = set(triples(r.content, "application/n-triples"))
        foi = {o for s, p, o in own if s == m and p == SOSA + "hasFeatureOfInterest"}
        assert own and own <= on_page
        # the member, its result nodes, and the type of its feature of interest
        assert all(
            s == m or s.startswith("r") or (s in foi and p == RDF + "type") for s, p, _ in own
        )
        assert any(s in foi and p == RDF + "type" for s, p, _ in own)
    # a member of another data set is not one of this stream's
    restricted = await w.client.get(f"/ldes/{w.ds('restricted')}/paged", headers=w.auth("a.editor"))
    other = objects(
        triples(restricted.content, "text/turtle"),
        f"{BASE}/ldes/{w.ds('restricted')}",
        TREE + "member",
    )[0]
    key = other.rsplit("/", 1)[1]
    assert (await w.client.get(f"/ldes/{w.ds('open')}/members/{key}")).status_code == 404
    assert (await w.client.get(other)).status_code == 404  # anonymous: the restricted stream
    assert (await w.client.get(other, headers=w.auth("a.editor"))).status_code == 200
    assert (await w.client.get(f"/ldes/{w.ds('open')}/members/x.1.2")).status_code == 404


async def test_every_kind_of_value_survives_every_media_type(world: World) -> None:
    w = world
    tricky = 'say "hi" \\ back\nslash\r and ünïcödé {s} <x>'
    entity = {
        "id": f"urn:ngsi-ld:Sensor:{w.suffix}-kinds",
        "type": "Sensor",
        "note": {"type": "Property", "value": tricky},
        "count": {"type": "Property", "value": 7},
        "ok": {"type": "Property", "value": True},
        "config": {"type": "JsonProperty", "json": {"a": [1, 'two"2']}},
        "name": {
            "type": "LanguageProperty",
            "languageMap": {"nl": 'Sensor "één"', "en": "Sensor one"},
        },
        "partOf": {"type": "Relationship", "object": "urn:ngsi-ld:Building:9"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [3.72, 51.05]},
        },
        "speed": {"type": "Property", "value": 12.5, "unitCode": "XYZ"},
    }
    r = await w.client.post(
        "/ngsi-ld/v1/entityOperations/upsert", json=[entity], headers=w.auth("a.editor")
    )
    assert r.status_code in (201, 204), r.text
    w.at(now_micros() + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('open')}"
    seen: dict[str, Any] = {}
    for media in STREAM_FORMATS:
        members, pages = await walk(w, f"{stream}/paged", media)
        assert len(members) == 8
        ts = [t for response in pages.values() for t in triples(response.content, media)]
        found: dict[str, Any] = {}
        for m in members:
            [prop] = objects(ts, m, SOSA + "observedProperty")
            name = prop.rsplit("/", 1)[1]
            simple = sorted(
                (o.value, o.language, o.datatype.value)
                for o in objects(ts, m, SOSA + "hasSimpleResult")
            )
            result = objects(ts, m, SOSA + "hasResult")
            nested = sorted(
                (p2, str(getattr(o, "value", o)))
                for r_ in result
                if isinstance(r_, str) and not r_.startswith("urn:")
                for s2, p2, o in ts
                if s2 == r_
            )
            found[name] = (simple, [r_ for r_ in result if r_.startswith("urn:")], nested)
        seen[media] = found
    first = seen["text/turtle"]
    assert all(found == first for found in seen.values())
    xsd = "http://www.w3.org/2001/XMLSchema#"
    assert first["note"][0] == [(tricky, None, xsd + "string")]
    assert first["count"][0] == [("7", None, xsd + "integer")]
    assert first["ok"][0] == [("true", None, xsd + "boolean")]
    assert first["config"][0][0][0] == '{"a":[1,"two\\"2"]}'
    assert sorted((v, lang) for v, lang, _ in first["name"][0]) == [
        ('Sensor "één"', "nl"),
        ("Sensor one", "en"),
    ]
    assert first["partOf"][1] == ["urn:ngsi-ld:Building:9"]
    assert any("POINT (3.72 51.05)" in v for _, v in first["location"][2])
    assert (QUDT + "numericValue", "12.5") in first["speed"][2]
