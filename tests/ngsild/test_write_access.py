"""Who may write what over NGSI-LD: the write matrix, on SQLite and on real PostgreSQL.

Organisation A owns entities; B has no mandate; C holds A's mandate for all its data; D held one
that A revoked; E holds A's mandate for one data set (air quality) only. Every principal tries
every kind of write on an entity of A; the expected status is the rule of docs/security.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

BASE = "http://testserver/ngsi-ld/v1"
AIR = "AirQualityObserved"
PARKING = "ParkingSpot"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/write.db"
    return str(request.getfixturevalue("postgres_url"))


@dataclass
class World:
    client: httpx.AsyncClient
    gov: Governance
    orgs: dict[str, str]  # letter -> organisation id (unique per run: PostgreSQL is shared)
    keys: dict[str, str]  # principal name -> API key
    tag: str

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"} if who in self.keys else {}

    def new_id(self, kind: str = PARKING) -> str:
        return f"urn:ngsi-ld:{kind}:{self.tag}-{secrets.token_hex(4)}"

    async def entity_of_a(self, kind: str = PARKING) -> str:
        eid = self.new_id(kind)
        r = await self.client.post(
            "/entities",
            headers=self.headers("editor A"),
            json={"id": eid, "type": kind, "n": {"type": "Property", "value": 1}},
        )
        assert r.status_code == 201, r.text
        return eid


async def build_world(settings: Settings, body: Callable[[World], Awaitable[None]]) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        op = Principal.cli()
        tag = secrets.token_hex(3)
        orgs = {letter: f"{letter.lower()}-{tag}" for letter in "ABCDE"}
        for letter, org in orgs.items():
            await gov.create_organisation(op, org, f"Organisation {letter}", "company")
        a = orgs["A"]
        await gov.create_dataset(op, f"air-{tag}", a, "Lucht", [AIR], policy="open")
        await gov.create_mandate(op, a, orgs["C"])
        revoked = await gov.create_mandate(op, a, orgs["D"])
        await gov.revoke_mandate(op, revoked.id)
        await gov.create_mandate(op, a, orgs["E"], dataset_id=f"air-{tag}")
        keys = {}
        for name, letter, role in [
            ("reader A", "A", "reader"),
            ("editor A", "A", "editor"),
            ("admin A", "A", "admin"),
            ("editor B", "B", "editor"),
            ("admin B", "B", "admin"),
            ("editor C", "C", "editor"),
            ("editor D", "D", "editor"),
            ("editor E", "E", "editor"),
        ]:
            keys[name] = (await gov.create_api_key(op, orgs[letter], role=role)).key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await body(World(client, gov, orgs, keys, tag))


PRINCIPALS = [
    "anonymous",
    "reader A",
    "editor A",
    "admin A",
    "editor B",
    "admin B",
    "editor C",
    "editor D",
    "editor E",
]
#: the status of a change to an entity of A (type ParkingSpot: outside E's data set)
ON_A = {
    "anonymous": 401,
    "reader A": 403,
    "editor A": 204,
    "admin A": 204,
    "editor B": 403,
    "admin B": 403,
    "editor C": 204,
    "editor D": 403,
    "editor E": 403,
}

Op = Callable[[World, str, dict[str, str]], Awaitable[httpx.Response]]


def _prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


OPERATIONS: dict[str, Op] = {
    "replace entity": lambda w, eid, h: w.client.put(
        f"/entities/{eid}", headers=h, json={"type": PARKING, "n": _prop(2)}
    ),
    "merge entity": lambda w, eid, h: w.client.patch(
        f"/entities/{eid}", headers=h, json={"n": _prop(3)}
    ),
    "append attrs": lambda w, eid, h: w.client.post(
        f"/entities/{eid}/attrs", headers=h, json={"m": _prop(1)}
    ),
    "update attrs": lambda w, eid, h: w.client.patch(
        f"/entities/{eid}/attrs", headers=h, json={"n": _prop(4)}
    ),
    "patch attr": lambda w, eid, h: w.client.patch(
        f"/entities/{eid}/attrs/n", headers=h, json={"value": 5}
    ),
    "replace attr": lambda w, eid, h: w.client.put(
        f"/entities/{eid}/attrs/n", headers=h, json=_prop(6)
    ),
    "delete attr": lambda w, eid, h: w.client.delete(f"/entities/{eid}/attrs/n", headers=h),
    "delete entity": lambda w, eid, h: w.client.delete(f"/entities/{eid}", headers=h),
}


async def check_matrix(w: World) -> list[str]:
    wrong: list[str] = []

    def expect(case: str, r: httpx.Response, status: int) -> None:
        if r.status_code != status:
            wrong.append(f"{case}: {r.status_code}, expected {status} ({r.text[:120]})")

    for who in PRINCIPALS:
        h = w.headers(who)
        role_refusal = {"anonymous": 401, "reader A": 403}.get(who)
        # changes to an entity of A, one fresh entity per case
        for name, op in OPERATIONS.items():
            eid = await w.entity_of_a()
            expect(f"{who} / {name}", await op(w, eid, h), ON_A[who])
        # create a new entity: any editor or admin, for its own organisation
        r = await w.client.post("/entities", headers=h, json={"id": w.new_id(), "type": PARKING})
        expect(f"{who} / create", r, role_refusal or 201)
        # create with the id of A's entity: 409 for those who may write it, else refused
        eid = await w.entity_of_a()
        r = await w.client.post("/entities", headers=h, json={"id": eid, "type": PARKING})
        expect(f"{who} / create over A's", r, 409 if ON_A[who] == 204 else ON_A[who])
        # batch upsert of A's entity plus a new one: a refusal fails that entity only
        eid, new = await w.entity_of_a(), w.new_id()
        r = await w.client.post(
            "/entityOperations/upsert",
            headers=h,
            json=[{"id": eid, "type": PARKING, "n": _prop(7)}, {"id": new, "type": PARKING}],
        )
        if role_refusal:
            expect(f"{who} / batch upsert", r, role_refusal)
        elif ON_A[who] == 204:
            expect(f"{who} / batch upsert", r, 201)
        else:
            expect(f"{who} / batch upsert", r, 207)
            if r.status_code == 207:
                body = r.json()
                if (
                    body["success"] != [new]
                    or [e["entityId"] for e in body["errors"]] != [eid]
                    or body["errors"][0]["error"]["status"] != 403
                ):
                    wrong.append(f"{who} / batch upsert result: {body}")
        # batch delete
        eid = await w.entity_of_a()
        r = await w.client.post("/entityOperations/delete", headers=h, json=[eid])
        expect(f"{who} / batch delete", r, role_refusal or (204 if ON_A[who] == 204 else 207))
        # subscriptions: any editor or admin creates; only the owner's change or delete them
        sub = {
            "type": "Subscription",
            "entities": [{"type": PARKING}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        }
        r = await w.client.post("/subscriptions", headers=h, json=sub)
        expect(f"{who} / create subscription", r, role_refusal or 201)
        r = await w.client.post("/subscriptions", headers=w.headers("editor A"), json=sub)
        location = r.headers["location"].removeprefix("/ngsi-ld/v1")
        own = who in ("editor A", "admin A")
        r = await w.client.patch(location, headers=h, json={"throttling": 5})
        expect(f"{who} / update A's subscription", r, role_refusal or (204 if own else 403))
        r = await w.client.delete(location, headers=h)
        expect(f"{who} / delete A's subscription", r, role_refusal or (204 if own else 403))
    return wrong


async def test_the_write_matrix(database_url: str) -> None:
    wrong: list[str] = []

    async def body(w: World) -> None:
        wrong.extend(await check_matrix(w))

    await build_world(Settings(database_url=database_url), body)
    assert not wrong, "\n".join(wrong)


async def test_mandates_decide_ownership_of_what_is_created(database_url: str) -> None:
    async def body(w: World) -> None:
        # E (mandated for A's air data set) writes into A's air quality entities, not others
        air = await w.entity_of_a(AIR)
        r = await w.client.patch(
            f"/entities/{air}/attrs", headers=w.headers("editor E"), json={"n": _prop(9)}
        )
        assert r.status_code == 204
        # what E creates in that data set is A's: B may not touch it, A may, E still may
        mine = w.new_id(AIR)
        r = await w.client.post(
            "/entities", headers=w.headers("editor E"), json={"id": mine, "type": AIR}
        )
        assert r.status_code == 201
        for who, status in [("editor B", 403), ("editor A", 204), ("editor E", 204)]:
            r = await w.client.patch(
                f"/entities/{mine}/attrs", headers=w.headers(who), json={"x": _prop(1)}
            )
            assert r.status_code == status, who
        # what E creates outside it is E's own: A may not change it
        own = w.new_id(PARKING)
        r = await w.client.post(
            "/entityOperations/create",
            headers=w.headers("editor E"),
            json=[{"id": own, "type": PARKING}, {"id": w.new_id(AIR), "type": AIR}],
        )
        assert r.status_code == 201, r.text
        r = await w.client.delete(f"/entities/{own}", headers=w.headers("editor A"))
        assert r.status_code == 403
        # C (mandated for everything) creates an air entity: A's; a parking spot: C's own
        c_air, c_parking = w.new_id(AIR), w.new_id(PARKING)
        for eid, kind in [(c_air, AIR), (c_parking, PARKING)]:
            r = await w.client.post(
                "/entities", headers=w.headers("editor C"), json={"id": eid, "type": kind}
            )
            assert r.status_code == 201
        assert (
            await w.client.delete(f"/entities/{c_air}", headers=w.headers("editor A"))
        ).status_code == 204
        assert (
            await w.client.delete(f"/entities/{c_parking}", headers=w.headers("editor A"))
        ).status_code == 403

    await build_world(Settings(database_url=database_url), body)


async def test_a_revoked_mandate_and_a_revoked_key_count_from_the_next_request(
    database_url: str,
) -> None:
    async def body(w: World) -> None:
        eid = await w.entity_of_a()
        op = Principal.cli()
        mandate = await w.gov.create_mandate(op, w.orgs["A"], w.orgs["B"])
        r = await w.client.patch(
            f"/entities/{eid}/attrs", headers=w.headers("editor B"), json={"n": _prop(1)}
        )
        assert r.status_code == 204
        await w.gov.revoke_mandate(op, mandate.id)
        r = await w.client.patch(
            f"/entities/{eid}/attrs", headers=w.headers("editor B"), json={"n": _prop(2)}
        )
        assert r.status_code == 403
        issued = await w.gov.create_api_key(op, w.orgs["A"], role="editor")
        headers = {"Authorization": f"Bearer {issued.key}"}
        r = await w.client.patch(f"/entities/{eid}/attrs", headers=headers, json={"n": _prop(3)})
        assert r.status_code == 204
        await w.gov.revoke_api_key(op, issued.record.id)
        r = await w.client.patch(f"/entities/{eid}/attrs", headers=headers, json={"n": _prop(4)})
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        # reads too: a revoked key is no key
        assert (await w.client.get("/types", headers=headers)).status_code == 401

    await build_world(Settings(database_url=database_url), body)


async def test_purge_deletes_only_what_the_caller_may_write(database_url: str) -> None:
    async def body(w: World) -> None:
        kind = f"Purged{w.tag}"
        theirs = [await w.entity_of_a(kind) for _ in range(3)]
        mine = w.new_id(kind)
        r = await w.client.post(
            "/entities", headers=w.headers("editor B"), json={"id": mine, "type": kind}
        )
        assert r.status_code == 201
        r = await w.client.delete(f"/entities?type={kind}", headers=w.headers("editor B"))
        assert r.status_code == 204
        assert (
            await w.client.get(f"/entities/{mine}", headers=w.headers("editor B"))
        ).status_code == 404
        for eid in theirs:
            r = await w.client.get(f"/entities/{eid}", headers=w.headers("reader A"))
            assert r.status_code == 200
        r = await w.client.delete(f"/entities?type={kind}", headers=w.headers("reader A"))
        assert r.status_code == 403
        r = await w.client.delete(f"/entities?type={kind}", headers=w.headers("editor A"))
        assert r.status_code == 204
        for eid in theirs:
            assert (await w.client.get(f"/entities/{eid}")).status_code == 404

    await build_world(Settings(database_url=database_url), body)


async def test_anonymous_writes_only_with_the_flag_and_only_the_default_organisations(
    tmp_path: Path,
) -> None:
    async def body(w: World) -> None:
        eid = await w.entity_of_a()
        new = w.new_id()
        r = await w.client.post("/entities", json={"id": new, "type": PARKING})
        assert r.status_code == 201
        assert (
            await w.client.patch(f"/entities/{new}/attrs", json={"n": _prop(1)})
        ).status_code == 204
        # owned by the default organisation: A may not change it, anonymous may not change A's
        r = await w.client.patch(
            f"/entities/{new}/attrs", headers=w.headers("editor A"), json={"n": _prop(2)}
        )
        assert r.status_code == 403
        assert (await w.client.delete(f"/entities/{eid}")).status_code == 403
        r = await w.client.post("/jsonldContexts", json={"@context": {"x": "https://x.example/x"}})
        assert r.status_code == 201
        r = await w.client.post(
            "/jsonldContexts",
            headers=w.headers("reader A"),
            json={"@context": {"y": "https://x.example/y"}},
        )
        assert r.status_code == 403

    settings = Settings(database_url=f"sqlite:///{tmp_path}/anon.db", anonymous_writes=True)
    await build_world(settings, body)


async def test_credentials_in_the_query_string_are_refused_and_not_recorded(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        secret = w.keys["editor A"]
        for query in [
            f"access_token={secret}",
            f"api_key={secret}",
            "apikey=x",
            "key=x",
            "token=x",
            f"q=n==1&x={secret}",
        ]:
            r = await w.client.get(
                f"/entities?type={PARKING}&{query}", headers=w.headers("editor A")
            )
            assert r.status_code == 400, query
            assert r.headers["content-type"] == "application/problem+json"
        records = [r for r in await w.gov.store.audit_records() if r.action == "auth.refused"]
        assert len(records) == 6
        assert {r.detail["reason"] for r in records} == {"credential-in-query"}
        assert secret.split("_", 2)[2] not in repr(records)

    await build_world(Settings(database_url=f"sqlite:///{tmp_path}/q.db"), body)


async def test_failed_authentications_are_audited_with_ids_only(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        secret = w.keys["editor A"]
        key_id = secret.split("_")[1]
        wrong_secret = f"srk_{key_id}_{'x' * 43}"
        for header in [
            f"Bearer {wrong_secret}",
            "Bearer nonsense",
            "Basic dXNlcjpwYXNz",
            "Bearer ",
        ]:
            r = await w.client.get("/types", headers={"Authorization": header})
            assert r.status_code == 401, header
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["status"] == 401
        records = [r for r in await w.gov.store.audit_records() if r.action == "auth.refused"]
        assert [(r.subject, r.detail["reason"]) for r in records] == [
            (f"key:{key_id}", "invalid-key"),
            ("-", "malformed-key"),
            ("-", "malformed-header"),
            ("-", "malformed-header"),
        ]
        assert "x" * 43 not in repr(records) and "dXNlcjpwYXNz" not in repr(records)
        ok, problems = await w.gov.verify_audit()
        assert ok and not problems
        # no header at all is anonymous, not a failure
        assert (await w.client.get("/types")).status_code == 200

    await build_world(Settings(database_url=f"sqlite:///{tmp_path}/audit.db"), body)
