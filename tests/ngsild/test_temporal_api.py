"""The temporal API over real storage (SQLite and PostgreSQL): what a client of
/temporal/entities relies on, and that every ordinary entity write lands in history."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartregion.app import create_app
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

E = "urn:ngsi-ld:Vehicle:T1"


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/temporal.db"
    else:
        url = request.getfixturevalue("postgres_url")
    settings = Settings(database_url=url, anonymous_writes=True, temporal_max_instances=8)
    app = create_app(settings)
    headers = {"NGSILD-Tenant": f"t{secrets.token_hex(4)}"}  # the PostgreSQL database is shared
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1", headers=headers
        ) as c:
            yield c


def _speed(value: float, at: str) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at}


async def _create(client: httpx.AsyncClient, **attrs: list[dict[str, Any]]) -> None:
    r = await client.post("/temporal/entities", json={"id": E, "type": "Vehicle", **attrs})
    assert r.status_code == 201, r.text


async def test_a_temporal_representation_round_trips(client: httpx.AsyncClient) -> None:
    speeds = [_speed(v, f"2020-08-01T12:0{i}:00Z") for i, v in enumerate((120, 80, 100))]
    await _create(client, speed=speeds)
    r = await client.get(f"/temporal/entities/{E}")
    assert r.status_code == 200, r.text
    got = r.json()["speed"]
    assert [(i["value"], i["observedAt"]) for i in got] == [
        (120, "2020-08-01T12:00:00Z"),
        (80, "2020-08-01T12:01:00Z"),
        (100, "2020-08-01T12:02:00Z"),
    ]
    assert all(i["instanceId"].startswith("urn:") for i in got)
    # the current entity is the latest instance
    r = await client.get(f"/entities/{E}", params={"options": "keyValues"})
    assert r.json()["speed"] == 100
    # a window and the simplified representation
    r = await client.get(
        f"/temporal/entities/{E}",
        params={"timerel": "after", "timeAt": "2020-08-01T12:01:00Z", "options": "temporalValues"},
    )
    assert r.json()["speed"]["values"] == [
        [80, "2020-08-01T12:01:00Z"],
        [100, "2020-08-01T12:02:00Z"],
    ]
    # adding more instances answers 204, and they appear
    r = await client.post(
        f"/temporal/entities/{E}/attrs", json={"speed": [_speed(90, "2020-08-01T12:05:00Z")]}
    )
    assert r.status_code == 204, r.text
    r = await client.get(f"/temporal/entities/{E}", params={"lastN": "2"})
    assert [i["value"] for i in r.json()["speed"]] == [100, 90]


async def test_ordinary_entity_writes_are_recorded_with_deletions(
    client: httpx.AsyncClient,
) -> None:
    entity = {"id": E, "type": "Vehicle", "speed": {"type": "Property", "value": 1}}
    assert (await client.post("/entities", json=entity)).status_code == 201
    r = await client.patch(f"/entities/{E}/attrs", json={"speed": {"type": "Property", "value": 2}})
    assert r.status_code == 204
    # an unchanged value is not a new instance
    r = await client.patch(f"/entities/{E}/attrs", json={"speed": {"type": "Property", "value": 2}})
    assert r.status_code == 204
    assert (await client.delete(f"/entities/{E}/attrs/speed")).status_code == 204
    r = await client.get(f"/temporal/entities/{E}", params={"timeproperty": "modifiedAt"})
    values = [i.get("value") for i in r.json()["speed"]]
    assert values[:2] == [1, 2]
    assert len(values) == 3 and values[2] == "urn:ngsi-ld:null"
    r = await client.get(
        f"/temporal/entities/{E}",
        params={"timeproperty": "deletedAt", "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"},
    )
    (deleted,) = r.json()["speed"]
    assert "deletedAt" in deleted


async def test_the_scope_has_a_history(client: httpx.AsyncClient) -> None:  # suite 020_19/20
    entity = {
        "id": E,
        "type": "Vehicle",
        "scope": ["/Gent/Centrum"],
        "speed": {"type": "Property", "value": 1, "observedAt": "2020-08-01T12:00:00Z"},
    }
    assert (await client.post("/entities", json=entity)).status_code == 201
    r = await client.patch(f"/entities/{E}", json={"scope": ["/Gent/Zuid", "/Gent/Centrum"]})
    assert r.status_code == 204, r.text
    # a write that leaves the scope as it was adds nothing to its history
    speed = {"type": "Property", "value": 2, "observedAt": "2020-08-01T13:00:00Z"}
    r = await client.patch(f"/entities/{E}/attrs", json={"speed": speed})
    assert r.status_code == 204, r.text
    assert (await client.delete(f"/entities/{E}/attrs/scope")).status_code == 204
    r = await client.get(f"/temporal/entities/{E}", params={"timeproperty": "modifiedAt"})
    assert r.status_code == 200, r.text
    history = r.json()["scope"]
    assert [i["value"] for i in history] == [["/Gent/Centrum"], ["/Gent/Zuid", "/Gent/Centrum"], []]
    assert [("deletedAt" in i) for i in history] == [False, False, True]
    r = await client.get(f"/temporal/entities/{E}", params={"timeproperty": "deletedAt"})
    (removed,) = r.json()["scope"]
    assert removed["value"] == [] and removed["deletedAt"] == history[2]["modifiedAt"]
    r = await client.get(
        f"/temporal/entities/{E}", params={"timeproperty": "deletedAt", "options": "temporalValues"}
    )
    assert r.json()["scope"] == {"type": "Property", "values": [[[], removed["deletedAt"]]]}
    # by observation time (the default), attributes only: the scope has no observedAt
    r = await client.get(f"/temporal/entities/{E}")
    assert "scope" not in r.json() and len(r.json()["speed"]) == 2
    # deleting the scope again changes nothing: no second deletion
    assert (await client.delete(f"/entities/{E}/attrs/scope")).status_code == 404
    r = await client.get(f"/temporal/entities/{E}", params={"timeproperty": "deletedAt"})
    assert len(r.json()["scope"]) == 1
    # a temporal representation's scope is recorded as well
    other = {
        "id": E + "b",
        "type": "Vehicle",
        "scope": "/Brugge",
        "speed": [_speed(3, "2020-08-01T12:00:00Z")],
    }
    assert (await client.post("/temporal/entities", json=other)).status_code == 201
    r = await client.get(f"/temporal/entities/{E}b", params={"timeproperty": "createdAt"})
    assert [i["value"] for i in r.json()["scope"]] == [["/Brugge"]]


async def test_redelivered_upserts_add_no_duplicate_instances(client: httpx.AsyncClient) -> None:
    """The MQTT bridge's at-least-once delivery: unacknowledged messages come again, in their
    old order, after newer ones were written; each observation stays one instance."""

    def message(value: float, at: str) -> list[dict[str, Any]]:
        return [{"id": E, "type": "Vehicle", "speed": _speed(value, at)}]

    first = message(80, "2020-08-01T12:00:00Z")
    second = message(90, "2020-08-01T12:01:00Z")
    for body in (first, second, first, second, first):
        r = await client.post("/entityOperations/upsert", params={"options": "update"}, json=body)
        assert r.status_code in (201, 204), r.text
    r = await client.get(f"/temporal/entities/{E}")
    assert [(i["value"], i["observedAt"]) for i in r.json()["speed"]] == [
        (80, "2020-08-01T12:00:00Z"),
        (90, "2020-08-01T12:01:00Z"),
    ]
    # a corrected value at the same time is a new instance
    r = await client.post(
        "/entityOperations/upsert",
        params={"options": "update"},
        json=message(85, "2020-08-01T12:00:00Z"),
    )
    assert r.status_code == 204
    r = await client.get(f"/temporal/entities/{E}")
    assert sorted(i["value"] for i in r.json()["speed"]) == [80, 85, 90]


async def test_query_aggregates_and_filters(client: httpx.AsyncClient) -> None:
    await _create(
        client, speed=[_speed(v, f"2020-08-01T1{h}:30:00Z") for h, v in enumerate((10, 20, 30, 50))]
    )
    r = await client.get(
        "/temporal/entities",
        params={
            "type": "Vehicle",
            "timerel": "after",
            "timeAt": "2020-08-01T10:00:00Z",
            "options": "aggregatedValues",
            "aggrMethods": "avg,max",
            "aggrPeriodDuration": "PT2H",
        },
    )
    assert r.status_code == 200, r.text
    (body,) = r.json()
    assert body["speed"]["avg"] == [
        [15.0, "2020-08-01T10:00:00Z", "2020-08-01T12:00:00Z"],
        [40.0, "2020-08-01T12:00:00Z", "2020-08-01T14:00:00Z"],
    ]
    assert [row[0] for row in body["speed"]["max"]] == [20.0, 50.0]
    # no timerel: a query needs one
    r = await client.get("/temporal/entities", params={"type": "Vehicle"})
    assert r.status_code == 400
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


async def test_the_instance_limit_answers_206_with_the_range(client: httpx.AsyncClient) -> None:
    await _create(client, speed=[_speed(i, f"2020-01-01T00:{i:02d}:00Z") for i in range(12)])
    r = await client.get(f"/temporal/entities/{E}")
    assert r.status_code == 206
    assert r.headers["Content-Range"] == "date-time 2020-01-01T00:00:00Z-2020-01-01T00:07:00Z/*"
    assert len(r.json()["speed"]) == 8
    r = await client.get(f"/temporal/entities/{E}", params={"lastN": "10"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == "date-time 2020-01-01T00:11:00Z-2020-01-01T00:04:00Z/10"


async def test_instances_are_modified_and_deleted_one_by_one(client: httpx.AsyncClient) -> None:
    await _create(
        client, speed=[_speed(1, "2020-01-01T00:00:00Z"), _speed(2, "2020-01-01T00:01:00Z")]
    )
    first, second = (await client.get(f"/temporal/entities/{E}")).json()["speed"]
    r = await client.patch(
        f"/temporal/entities/{E}/attrs/speed/{first['instanceId']}",
        json={"type": "Property", "value": 7, "observedAt": "2020-01-01T00:00:00Z"},
    )
    assert r.status_code == 204, r.text
    r = await client.delete(f"/temporal/entities/{E}/attrs/speed/{second['instanceId']}")
    assert r.status_code == 204
    assert [i["value"] for i in (await client.get(f"/temporal/entities/{E}")).json()["speed"]] == [
        7
    ]
    # unknown and invalid instance ids
    r = await client.delete(f"/temporal/entities/{E}/attrs/speed/{second['instanceId']}")
    assert r.status_code == 404
    r = await client.delete(f"/temporal/entities/{E}/attrs/speed/notAnId")
    assert r.status_code == 400
    # the attribute's history, then the whole temporal entity
    assert (await client.delete(f"/temporal/entities/{E}/attrs/speed")).status_code == 204
    assert (await client.delete(f"/temporal/entities/{E}")).status_code == 204
    assert (await client.get(f"/temporal/entities/{E}")).status_code == 404
    assert (await client.get(f"/entities/{E}")).status_code == 404


async def test_bad_temporal_input_is_refused_whole(client: httpx.AsyncClient) -> None:
    bad = {
        "id": E,
        "type": "Vehicle",
        "speed": [_speed(1, "2020-01-01T00:00:00Z"), _speed(2, "yesterday")],
    }
    r = await client.post("/temporal/entities", json=bad)
    assert r.status_code == 400
    assert (await client.get(f"/temporal/entities/{E}")).status_code == 404
    r = await client.get(
        f"/temporal/entities/{E}", params={"timerel": "between", "timeAt": "2020-01-01T00:00:00Z"}
    )
    assert r.status_code == 400  # between needs endTimeAt (and the entity is unknown anyway)


async def test_history_is_read_only_by_who_may_read_the_entity(
    tmp_path: Path,
) -> None:
    from smartregion.governance import Principal

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/owned.db"))
    async with app.router.lifespan_context(app):
        gov = app.state.governance
        op = Principal.cli()
        await gov.create_organisation(op, "org-a", "Organisation A", "municipality")
        await gov.create_organisation(op, "org-b", "Organisation B", "company")
        key_a = (await gov.create_api_key(op, "org-a", role="editor")).key
        key_b = (await gov.create_api_key(op, "org-b", role="reader")).key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1"
        ) as c:
            a = {"Authorization": f"Bearer {key_a}"}
            b = {"Authorization": f"Bearer {key_b}"}
            body = {"id": E, "type": "Vehicle", "speed": [_speed(1, "2020-01-01T00:00:00Z")]}
            assert (await c.post("/temporal/entities", json=body)).status_code == 401
            assert (await c.post("/temporal/entities", json=body, headers=a)).status_code == 201
            assert (await c.get(f"/temporal/entities/{E}", headers=a)).status_code == 200
            # another organisation, and anonymous callers: as if it did not exist
            for headers in (b, {}):
                assert (await c.get(f"/temporal/entities/{E}", headers=headers)).status_code == 404
                r = await c.get(
                    "/temporal/entities",
                    params={
                        "type": "Vehicle",
                        "timerel": "after",
                        "timeAt": "2000-01-01T00:00:00Z",
                    },
                    headers=headers,
                )
                assert r.status_code == 200 and r.json() == []
            # nor may they change or delete it
            r = await c.delete(f"/temporal/entities/{E}", headers=b)
            assert r.status_code == 403


async def test_record_history_off_keeps_only_what_the_temporal_api_writes(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/off.db", anonymous_writes=True, record_history=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1"
        ) as c:
            entity = {"id": E, "type": "Vehicle", "speed": {"type": "Property", "value": 1}}
            assert (await c.post("/entities", json=entity)).status_code == 201
            r = await c.patch(
                f"/entities/{E}/attrs", json={"speed": {"type": "Property", "value": 2}}
            )
            assert r.status_code == 204
            assert "speed" not in (await c.get(f"/temporal/entities/{E}")).json()
            r = await c.post(
                f"/temporal/entities/{E}/attrs", json={"speed": [_speed(3, "2020-01-01T00:00:00Z")]}
            )
            assert r.status_code == 204
            got = (await c.get(f"/temporal/entities/{E}")).json()["speed"]
            assert [i["value"] for i in got] == [3]
