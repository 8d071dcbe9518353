"""Who may read an event stream, and what retention removes — over HTTP, on both backends.

Access follows the platform's one read rule: open data sets are public streams; a restricted
one answers 404 — exactly as a data set that does not exist — to everyone but its owner and the
holders of a grant. Retention: a page wholly older than the data set's retention answers 410,
and no page still served has a relation leading to it.
"""

from __future__ import annotations

import pytest
from ldes_world import HOUR, World
from test_ldes_pages import BASE, check_page, objects, triples, walk

from smartregion.core.vocabulary import LDES, TREE
from smartregion.governance import Principal
from smartregion.storage.history import now_micros

pytestmark = pytest.mark.anyio
DAY = 24 * HOUR


async def test_restricted_streams_answer_404_until_a_grant_opens_them(world: World) -> None:
    w = world
    await w.write("Building", 2, 1)
    w.at(now_micros() + 2 * HOUR)
    stream = f"/ldes/{w.ds('restricted')}"
    absent = await w.client.get("/ldes/no-such-data-set/paged")
    assert absent.status_code == 404
    for who in (None, "c.editor"):
        for url in (stream, f"{stream}/paged", f"{stream}/by-time"):
            r = await w.client.get(url, headers=w.auth(who))
            assert r.status_code == 404, (who, url)
            assert r.json()["type"] == absent.json()["type"]
            assert w.ds("restricted") in r.json()["detail"]
    owner = await w.client.get(f"{stream}/paged", headers=w.auth("a.editor"))
    assert owner.status_code == 200
    members, _ = check_page(
        triples(owner.content, "text/turtle"), f"{BASE}{stream}/paged", BASE + stream
    )
    assert len(members) == 4
    # restricted pages are for their reader only: no shared cache may keep them
    assert owner.headers["cache-control"].startswith("private, ")
    assert owner.headers["vary"] == "Accept, Authorization"
    # a grant opens the stream to c
    request = await w.gov.request_access(Principal(w.c, "editor"), w.ds("restricted"), "research")
    await w.gov.approve_access_request(Principal(w.a, "admin"), request.id)
    granted = await w.client.get(f"{stream}/paged", headers=w.auth("c.editor"))
    assert granted.status_code == 200 and granted.content == owner.content
    # open streams are public
    assert (await w.client.get(f"/ldes/{w.ds('open')}/paged")).status_code == 200


async def test_retention_removes_pages_with_410_and_every_relation_to_them(world: World) -> None:
    w = world
    await w.write("Lamp", 2, 4)  # 16 members in a stream keeping one day
    recorded = now_micros()
    w.at(recorded + 2 * HOUR)
    stream = f"{BASE}/ldes/{w.ds('short')}"
    before_paged, paged_pages = await walk(w, f"{stream}/paged")
    before_timed, timed_pages = await walk(w, f"{stream}/by-time")
    assert len(before_paged) == 16 and sorted(before_timed) == sorted(before_paged)
    old_pages = [
        u
        for u in (*paged_pages, *timed_pages)
        if "?after=" in u or u.count("/") >= stream.count("/") + 4
    ]
    assert old_pages
    # the view root states its retention policy
    root = triples(paged_pages[f"{stream}/paged"].content, "text/turtle")
    [policy] = objects(root, f"{stream}/paged", LDES + "retentionPolicy")
    assert objects(root, policy, TREE + "value")[0].value == "P1D"
    # three days on, the recorded members are past retention
    w.at(recorded + 3 * DAY)
    for url in old_pages:
        r = await w.client.get(url)
        assert r.status_code == 410, url
    after_paged, pages_now = await walk(w, f"{stream}/paged")  # walk asserts every page is 200
    after_timed, timed_now = await walk(w, f"{stream}/by-time")
    assert after_paged == [] and after_timed == []
    assert not set(old_pages) & (set(pages_now) | set(timed_now))
    # and the immutable cache does not resurrect a removed page
    for url in old_pages:
        assert (await w.client.get(url)).status_code == 410


async def test_streams_leave_out_what_a_readers_view_hides(world: World) -> None:
    """Privacy views (docs/security.md) hold for streams too: an open reader gets no members of
    sensitive attributes or counts, a grant holder none of personal ones, the owner all; an
    open view that coarsens times has no stream; reads through a grant are audited."""
    w = world
    owner = Principal(w.a, "admin")
    await w.gov.set_dataset_privacy(owner, w.ds("open"), {"sensitive": ["status"]})
    await w.gov.set_dataset_privacy(owner, w.ds("restricted"), {"personal": ["status"]})
    await w.write("Sensor", 2, 1)
    await w.write("Building", 2, 1)
    w.at(now_micros() + 2 * HOUR)

    async def observed(url: str, who: str | None) -> list[str]:
        r = await w.client.get(url, headers=w.auth(who))
        assert r.status_code == 200, r.text
        got = triples(r.content, "text/turtle")
        return sorted(
            {str(o) for _, p, o in got if p == "http://www.w3.org/ns/sosa/observedProperty"}
        )

    opened = f"/ldes/{w.ds('open')}/paged"
    assert [p.rsplit("/", 1)[-1].rstrip(">") for p in await observed(opened, None)] == [
        "temperature"
    ]
    assert len(await observed(opened, "a.editor")) == 2  # the owner gets both
    request = await w.gov.request_access(Principal(w.c, "editor"), w.ds("restricted"), "research")
    await w.gov.approve_access_request(Principal(w.a, "admin"), request.id)
    granted = await observed(f"/ldes/{w.ds('restricted')}/paged", "c.editor")
    assert [p.rsplit("/", 1)[-1].rstrip(">") for p in granted] == ["temperature"]
    records = await w.gov.store.audit_records(limit=100_000)
    reads = [r for r in records if r.action == "data.read" and r.subject == w.ds("restricted")]
    assert len(reads) == 1 and reads[0].actor.startswith("key:")  # c's key; the owner's: none
    assert reads[0].detail["datasets"] == [w.ds("restricted")]
    await w.gov.set_dataset_privacy(owner, w.ds("open"), {"coarsenTime": 3600})
    assert (await w.client.get(opened)).status_code == 404
    assert (await w.client.get(opened, headers=w.auth("a.editor"))).status_code == 200


async def test_a_scoped_data_sets_stream_holds_only_its_scopes_entities(world: World) -> None:
    w = world
    owner = Principal(w.a, "admin")
    await w.gov.create_dataset(
        owner, w.ds("benches"), w.a, "Banken", ["Bench"], policy="open", scope="/Zone/In"
    )
    scopes = {"in": "Zone/In/Sub", "at": "/Zone/In", "out": "/Zone/Inside", "top": "/Zone"}
    entities = [
        {
            "id": f"urn:ngsi-ld:Bench:{w.suffix}-{key}",
            "type": "Bench",
            "scope": scope,
            "temperature": {"type": "Property", "value": 1.5, "unitCode": "CEL"},
        }
        for key, scope in scopes.items()
    ]
    r = await w.client.post(
        "/ngsi-ld/v1/entityOperations/upsert", json=entities, headers=w.auth("a.editor")
    )
    assert r.status_code in (201, 204), r.text
    w.at(now_micros() + 2 * HOUR)
    for root in (f"{BASE}/ldes/{w.ds('benches')}/paged", f"{BASE}/ldes/{w.ds('benches')}/by-time"):
        members, pages = await walk(w, root)
        assert len(set(members)) == 2  # one temperature member of each entity within the scope
        text = "".join(p.text for p in pages.values())
        for key in scopes:
            assert (f"urn:ngsi-ld:Bench:{w.suffix}-{key}" in text) == (key in ("in", "at")), key
