"""The generated cross-organisation access matrix (issue 3), on both backends.

Principals (anonymous; reader, editor and admin of the owners A and B; organisations holding a
valid, an expired and a revoked grant; an organisation A mandated; one a restricted policy
names; a revoked key) × every NGSI-LD endpoint and method (entities, attributes, batch
operations and their results, queries and counts, discovery, the temporal API, subscriptions,
purge, @context documents) and the admin API × open, restricted and private data sets, plus
data in no data set. Every request is real HTTP through the ASGI app with a real API key made
by the governance service (grants through an access request and its approval).

The expected outcome of every case comes from `Model`, a reference written here from the rules
in docs/security.md — never from the code under test. Each case checks the status AND the body:
an entity read is the entity or a 404, a list holds exactly the readable matches, a count
(`NGSILD-Results-Count`, `entityCount`, `attributeCount`) counts exactly those, a batch result
lists a refused entity among its errors, and a refused write leaves the stored entity as it
was. Failures are collected and reported together; the figures of a run are printed (`-s`)
and quoted in docs/security.md ("matrix figures").
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartregion.app import create_app
from smartregion.errors import ResourceNotFound
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.settings import Settings
from smartregion.storage.base import EntityQuery, Readable

pytestmark = pytest.mark.anyio

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
LINK = f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
OP = Principal.cli()

#: categories of data: the policy of the data set holding it ("loose": in no data set); the
#: scoped ones are data sets with the scope SCOPE, holding an owner's entities of their type
#: whose scope lies within it (copy 1) — the owner's others of that type (copy 0, in a scope
#: that shares SCOPE's text but lies outside it) are in no data set
CATEGORIES = {"open": "Park", "restricted": "Building", "private": "Camera", "loose": "Lamp",
              "scoped-open": "Bench", "scoped-restricted": "Kiosk"}
SCOPE = "/Zone/In"
#: the scope of each copy of a scoped category's entity: outside SCOPE, within it (no leading
#: `/`, which NGSI-LD §4.18 allows, and a level below)
COPY_SCOPES = (["/Zone/Inside", "/Elsewhere"], ["Zone/In/Sub"])
OWNERS = ("a", "b")
COPIES = 2  # entities per owner and category
T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the reference model ---------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    """A principal of the matrix: an organisation (short name) and role, or none."""

    name: str
    org: str | None
    role: str | None = None
    revoked_key: bool = False


PRINCIPALS = [
    Who("anonymous", None),
    Who("a.reader", "a", "reader"),
    Who("a.editor", "a", "editor"),
    Who("a.admin", "a", "admin"),
    Who("b.reader", "b", "reader"),
    Who("b.editor", "b", "editor"),
    Who("b.admin", "b", "admin"),
    Who("grant.valid", "c", "editor"),
    Who("grant.expired", "d", "editor"),
    Who("grant.revoked", "e", "editor"),
    Who("mandated", "m", "editor"),
    Who("partner", "p", "reader"),
    Who("key.revoked", "a", "admin", revoked_key=True),
]

#: (holder, owner, category) of the grants that are active; d's expired and e's were revoked
#: (a private data set cannot be requested: its existence is not revealed to others)
ACTIVE_GRANTS = {("c", "a", "restricted"), ("c", "b", "restricted"),
                 ("c", "a", "scoped-restricted"), ("c", "b", "scoped-restricted")}
REQUESTED = [("a", "restricted"), ("b", "restricted"),
             ("a", "scoped-restricted"), ("b", "scoped-restricted")]
#: A mandated m for all of its data; the restricted policies name p
MANDATES = {("m", "a")}
PARTNER = "p"


class Model:
    """Who may read and write what (docs/security.md), independent of the code under test."""

    @staticmethod
    def reads(who: Who, owner: str, category: str) -> bool:
        """`category`: the data set an entity is in (`Item.category`, "loose" for none)."""
        if who.org is None:
            return category in ("open", "scoped-open")
        if who.org == owner or (who.org, owner) in MANDATES:
            return True
        if category in ("open", "scoped-open"):
            return True
        if category in ("restricted", "scoped-restricted") and who.org == PARTNER:
            return True
        return (who.org, owner, category) in ACTIVE_GRANTS

    @staticmethod
    def writes(who: Who, owner: str) -> bool:
        if who.org is None or who.role == "reader":
            return False
        return who.org == owner or (who.org, owner) in MANDATES

    @staticmethod
    def writes_anything(who: Who) -> bool:
        return who.org is not None and who.role != "reader"

    @staticmethod
    def deletes_context(who: Who, owner: str) -> bool:
        """A hosted @context: deleted by the editors and admins of the organisation hosting it."""
        return Model.writes_anything(who) and who.org == owner

    @staticmethod
    def reads_subscription(who: Who, owner: str) -> bool:
        return who.org == owner

    @staticmethod
    def sees_dataset(who: Who, owner: str, category: str) -> bool:
        return who.org is not None and (category != "private" or who.org == owner)


# --- the world -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One fixture entity."""

    id: str
    owner: str
    kind: str  # its type's category
    scope: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        return CATEGORIES[self.kind]

    @property
    def category(self) -> str:
        """The data set it is in: a scoped one only when its scope lies within SCOPE."""
        if self.kind.startswith("scoped") and self.scope != tuple(COPY_SCOPES[1]):
            return "loose"
        return self.kind


ITEMS = [
    Item(f"urn:ngsi-ld:{CATEGORIES[cat]}:{owner}{n}", owner, cat,
         tuple(COPY_SCOPES[n]) if cat.startswith("scoped") else ())
    for owner in OWNERS
    for cat in CATEGORIES
    for n in range(COPIES)
]


def temporal_payload(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "type": item.type,
        **({"scope": list(item.scope)} if item.scope else {}),
        "temperature": [
            {"type": "Property", "value": 10, "observedAt": T1},
            {"type": "Property", "value": 11, "observedAt": T2},
        ],
        "name": [{"type": "Property", "value": f"{item.owner}-{item.category}"}],
        "location": [
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [3.72, 51.05]}}
        ],
    }


@dataclass
class World:
    app: Any
    client: httpx.AsyncClient
    gov: Governance
    tenant: str
    orgs: dict[str, str]  # short name -> organisation id
    keys: dict[str, str]  # principal name -> API key
    subs: dict[str, str] = field(default_factory=dict)  # owner short name -> subscription id
    contexts: dict[str, str] = field(default_factory=dict)  # owner short name -> hosted @context
    instances: dict[str, str] = field(default_factory=dict)  # entity id -> a temperature instance
    failures: list[str] = field(default_factory=list)
    figures: Counter[str] = field(default_factory=Counter)

    def headers(self, who: Who | None, **extra: str) -> dict[str, str]:
        h = {"NGSILD-Tenant": self.tenant, "Link": LINK}
        if who is not None and who.name in self.keys:
            h["Authorization"] = f"Bearer {self.keys[who.name]}"
        return {**h, **extra}

    async def call(
        self, who: Who | None, method: str, path: str, *, json: Any = None,
        params: dict[str, str] | None = None, **headers: str,
    ) -> httpx.Response:
        h = self.headers(who, **headers)
        if isinstance(json, list) and not all(isinstance(e, dict) for e in json):
            h["Content-Type"] = "application/json"  # ids only (batch delete): no @context
        elif json is not None:
            h.pop("Link", None)
            json = {**json, "@context": CORE} if isinstance(json, dict) else json
            if isinstance(json, list):
                json = [{**e, "@context": CORE} for e in json]
            h["Content-Type"] = "application/ld+json"
        return await self.client.request(method, path, json=json, params=params, headers=h)

    def fail(self, case: str, why: str) -> None:
        self.failures.append(f"{case}: {why}")

    async def stored(self, entity_id: str) -> dict[str, Any] | None:
        store = self.app.state.broker.store
        doc: dict[str, Any] | None = await store.get_entity(self.tenant, entity_id)
        return doc

    async def restore(self, item: Item) -> None:
        """Put a fixture entity back as it was (after an authorised write changed it)."""
        temporal = self.app.state.broker.temporal
        vocab = await self.app.state.broker.contexts.term_map(CORE)
        system = WriteAccess.system(self.orgs[item.owner])
        with contextlib.suppress(ResourceNotFound):  # deleted by the case already
            await temporal.delete(self.tenant, item.id, writer=system)
        await temporal.upsert(
            self.tenant, temporal_payload(item), vocab, writer=WriteAccess(self.orgs[item.owner])
        )
        self.instances.pop(item.id, None)

    async def instance_of(self, item: Item) -> str:
        if item.id not in self.instances:
            owner_key = self.keys[f"{item.owner}.admin"]
            r = await self.client.get(
                f"/ngsi-ld/v1/temporal/entities/{item.id}",
                headers=self.headers(None, Authorization=f"Bearer {owner_key}"),
            )
            assert r.status_code == 200, r.text
            self.instances[item.id] = r.json()["temperature"][0]["instanceId"]
        return self.instances[item.id]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/matrix.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def _key(gov: Governance, org: str, role: str) -> str:
    return (await gov.create_api_key(OP, org, role=role)).key


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    suffix = secrets.token_hex(3)
    orgs = {short: f"{short}-{suffix}" for short in ("a", "b", "c", "d", "e", "m", "p")}
    settings = Settings(database_url=database_url, default_org=f"trial-{suffix}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        # the platform organisation (the first one, whose admins administer every other)
        await gov.create_organisation(OP, f"platform-{suffix}", "Platform", "region")
        for org in orgs.values():
            await gov.create_organisation(OP, org, org, "company")
        keys: dict[str, str] = {}
        for who in PRINCIPALS:
            if who.org is not None and not who.revoked_key:
                keys[who.name] = await _key(gov, orgs[who.org], who.role or "reader")
        # a key of A's admin, revoked: refused on every request
        revoked = await gov.create_api_key(OP, orgs["a"], role="admin")
        await gov.revoke_api_key(Principal(orgs["a"], "admin"), revoked.record.id)
        keys["key.revoked"] = revoked.key
        for owner in OWNERS:
            admin = Principal(orgs[owner], "admin")
            for cat, etype in CATEGORIES.items():
                if cat == "loose":
                    continue
                policy = cat.removeprefix("scoped-")
                permissions = (
                    [{"action": "read", "assignee": orgs[PARTNER]}]
                    if policy == "restricted" else None
                )
                await gov.create_dataset(
                    admin, f"{orgs[owner]}-{cat}", orgs[owner], etype, [etype], policy=policy,
                    permissions=permissions, scope=SCOPE if cat.startswith("scoped") else None,
                )
        await gov.create_mandate(Principal(orgs["a"], "admin"), orgs["a"], orgs["m"])
        # grants: request, approve (valid, already expired), approve and revoke
        now = datetime.now(UTC)
        for holder, expires in (("c", now + timedelta(days=1)), ("d", now - timedelta(minutes=1)),
                                ("e", now + timedelta(days=1))):
            for owner, cat in REQUESTED:
                req = await gov.request_access(
                    Principal(orgs[holder], "editor"), f"{orgs[owner]}-{cat}", "research"
                )
                _, grant = await gov.approve_access_request(
                    Principal(orgs[owner], "admin"), req.id, expires_at=expires
                )
                if holder == "e":
                    await gov.revoke_grant(Principal(orgs[owner], "admin"), grant.id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            w = World(app, client, gov, f"m{suffix}", orgs, keys)
            for item in ITEMS:
                await w.restore(item)
            for owner in OWNERS:
                r = await w.call(
                    PRINCIPALS[[p.name for p in PRINCIPALS].index(f"{owner}.admin")],
                    "POST", "/ngsi-ld/v1/subscriptions",
                    json={"type": "Subscription", "entities": [{"type": "Camera"}],
                          "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}},
                )
                assert r.status_code == 201, r.text
                w.subs[owner] = r.headers["Location"].rsplit("/", 1)[1]
                await _host_context(w, owner)
            yield w


# --- the cases -------------------------------------------------------------------------------

NGSI = "/ngsi-ld/v1"
Check = Callable[[World, Who], Awaitable[None]]


def by_name(name: str) -> Who:
    return next(p for p in PRINCIPALS if p.name == name)


async def expect_refused_auth(w: World, case: str, r: httpx.Response) -> None:
    w.figures["cases"] += 1
    if r.status_code != 401:
        w.fail(case, f"revoked key answered {r.status_code}")
        if r.is_success:
            w.figures["unauthorised 2xx"] += 1


def ids_of(body: Any) -> list[str]:
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        return [f["id"] for f in body["features"]]
    return [e["id"] for e in body]


async def read_one(w: World, who: Who, item: Item, case: str, r: httpx.Response) -> None:
    """An entity (or temporal entity) read: the entity itself, or 404 as if absent."""
    w.figures["cases"] += 1
    if who.revoked_key:
        await expect_refused_auth(w, case, r)
        w.figures["cases"] -= 1
        return
    if Model.reads(who, item.owner, item.category):
        if r.status_code != 200 or r.json().get("id") != item.id:
            w.fail(case, f"readable, answered {r.status_code} {r.text[:200]}")
    else:
        if r.status_code != 404:
            w.fail(case, f"unreadable, answered {r.status_code} {r.text[:200]}")
            if r.is_success:
                w.figures["unauthorised 2xx"] += 1


async def read_list(
    w: World, who: Who, expected: set[str], case: str, r: httpx.Response, *, counted: bool
) -> None:
    """A list: exactly the readable matches, and a count of exactly those."""
    w.figures["cases"] += 1
    if who.revoked_key:
        await expect_refused_auth(w, case, r)
        w.figures["cases"] -= 1
        return
    if r.status_code != 200:
        w.fail(case, f"answered {r.status_code} {r.text[:200]}")
        return
    got = set(ids_of(r.json()))
    foreign = got - expected
    if foreign:
        w.figures["foreign rows"] += len(foreign)
        w.fail(case, f"foreign rows {sorted(foreign)}")
    if expected - got:
        w.fail(case, f"missing {sorted(expected - got)}")
    if counted and r.headers.get("NGSILD-Results-Count") != str(len(expected)):
        w.figures["foreign rows"] += 1
        w.fail(case, f"count {r.headers.get('NGSILD-Results-Count')} != {len(expected)}")


def matches(who: Who, items: list[Item]) -> set[str]:
    return {i.id for i in items if Model.reads(who, i.owner, i.category)}


async def entity_reads(w: World, who: Who, item: Item) -> None:
    base = f"{NGSI}/entities/{item.id}"
    for variant in ({}, {"options": "keyValues"}, {"format": "concise"}, {"attrs": "temperature"},
                    {"options": "sysAttrs"}, {"pick": "id,type,name"}):
        r = await w.call(who, "GET", base, params=variant)
        await read_one(w, who, item, f"{who.name} GET entity {item.id} {variant}", r)
    r = await w.call(who, "GET", base, Accept="application/geo+json")
    await read_one(w, who, item, f"{who.name} GET entity geojson {item.id}", r)
    temporal = f"{NGSI}/temporal/entities/{item.id}"
    for variant in ({}, {"lastN": "1"}, {"options": "temporalValues"},
                    {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}, {"attrs": "temperature"},
                    {"aggrMethods": "max", "aggrPeriodDuration": "P1D", "format": "aggregatedValues"}):
        r = await w.call(who, "GET", temporal, params=variant)
        await read_one(w, who, item, f"{who.name} GET temporal {item.id} {variant}", r)
    expected = matches(who, [item])
    queries = [
        {"id": item.id, "type": item.type, "count": "true"},
        {"id": item.id, "type": item.type, "count": "true", "options": "keyValues"},
        {"idPattern": f"^{item.id}$", "type": item.type, "count": "true"},
        {"type": item.type, "q": f'name=="{item.owner}-{item.category}"', "count": "true",
         "id": item.id},
        {"id": item.id, "attrs": "temperature", "count": "true"},
        {"id": item.id, "georel": "near;maxDistance==100", "geometry": "Point",
         "coordinates": "[3.72,51.05]", "count": "true"},
    ]
    for params in queries:
        r = await w.call(who, "GET", f"{NGSI}/entities", params=params)
        await read_list(w, who, expected, f"{who.name} GET /entities {params}", r, counted=True)
        tparams = {**params, "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
        tparams.pop("options", None)
        if "attrs" not in tparams and "type" not in tparams and "q" not in tparams \
                and "georel" not in tparams:
            tparams["type"] = item.type
        r = await w.call(who, "GET", f"{NGSI}/temporal/entities", params=tparams)
        await read_list(w, who, expected, f"{who.name} GET temporal list {tparams}", r, counted=True)
    body = {"type": "Query", "entities": [{"id": item.id, "type": item.type}]}
    r = await w.call(who, "POST", f"{NGSI}/entityOperations/query", json=body,
                     params={"count": "true"})
    await read_list(w, who, expected, f"{who.name} POST query {item.id}", r, counted=True)
    tbody = {**body, "temporalQ": {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}}
    r = await w.call(who, "POST", f"{NGSI}/temporal/entityOperations/query", json=tbody,
                     params={"count": "true"})
    await read_list(w, who, expected, f"{who.name} POST temporal query {item.id}", r, counted=True)


def write_requests(item: Item) -> list[tuple[str, str, str, Any, dict[str, str]]]:
    """(label, method, path, body, params) of every write to one existing entity."""
    e = f"{NGSI}/entities/{item.id}"
    prop = {"type": "Property", "value": 99}
    whole = {"id": item.id, "type": item.type, "temperature": prop}
    t = f"{NGSI}/temporal/entities/{item.id}"
    return [
        ("PATCH attrs", "PATCH", f"{e}/attrs", {"temperature": prop}, {}),
        ("POST attrs", "POST", f"{e}/attrs", {"extra": prop}, {}),
        ("POST attrs noOverwrite", "POST", f"{e}/attrs", {"extra": prop}, {"options": "noOverwrite"}),
        ("PATCH attr", "PATCH", f"{e}/attrs/temperature", {"value": 98}, {}),
        ("PUT attr", "PUT", f"{e}/attrs/temperature", prop, {}),
        ("DELETE attr", "DELETE", f"{e}/attrs/name", None, {}),
        ("PUT entity", "PUT", e, {"type": item.type, "temperature": prop}, {}),
        ("PATCH entity", "PATCH", e, {"temperature": prop}, {}),
        ("DELETE entity", "DELETE", e, None, {}),
        ("batch upsert", "POST", f"{NGSI}/entityOperations/upsert", [whole], {}),
        ("batch upsert update", "POST", f"{NGSI}/entityOperations/upsert", [whole],
         {"options": "update"}),
        ("batch update", "POST", f"{NGSI}/entityOperations/update", [whole], {}),
        ("batch merge", "POST", f"{NGSI}/entityOperations/merge", [whole], {}),
        ("batch delete", "POST", f"{NGSI}/entityOperations/delete", [item.id], {}),
        ("purge", "DELETE", f"{NGSI}/entities", None, {"id": item.id, "type": item.type}),
        ("purge drop", "DELETE", f"{NGSI}/entities", None,
         {"id": item.id, "type": item.type, "drop": "name"}),
        ("temporal upsert", "POST", f"{NGSI}/temporal/entities",
         {"id": item.id, "type": item.type,
          "temperature": [{"type": "Property", "value": 5, "observedAt": "2024-01-03T00:00:00Z"}]},
         {}),
        ("temporal add attrs", "POST", f"{t}/attrs",
         {"temperature": [{"type": "Property", "value": 6, "observedAt": "2024-01-04T00:00:00Z"}]},
         {}),
        ("temporal delete attr", "DELETE", f"{t}/attrs/temperature", None, {"deleteAll": "true"}),
        ("temporal PATCH instance", "PATCH", f"{t}/attrs/temperature/{{instance}}",
         {"type": "Property", "value": 7, "observedAt": T1}, {}),
        ("temporal DELETE instance", "DELETE", f"{t}/attrs/temperature/{{instance}}", None, {}),
        ("temporal delete", "DELETE", t, None, {}),
    ]


async def entity_writes(w: World, who: Who, item: Item) -> None:
    for label, method, path, body, params in write_requests(item):
        case = f"{who.name} {label} {item.id}"
        if "{instance}" in path:
            path = path.replace("{instance}", await w.instance_of(item))
        before = await w.stored(item.id)
        r = await w.call(who, method, path, json=body, params=params)
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
            continue
        allowed = Model.writes(who, item.owner)
        after = await w.stored(item.id)
        # a purge answers 204 whatever it matched: whether the entity changed decides
        refused = after == before if label.startswith("purge") else _refused(r, item.id)
        if allowed:
            if refused or not r.is_success:
                w.fail(case, f"authorised write answered {r.status_code} {r.text[:200]}")
            await w.restore(item)
            continue
        if not refused:
            w.figures["unauthorised 2xx"] += 1
            w.fail(case, f"unauthorised write answered {r.status_code} {r.text[:200]}")
        elif r.status_code not in (207, 401, 403, 404) and not label.startswith("purge"):
            w.fail(case, f"unauthorised write answered {r.status_code}, not 401/403/404")
        if after != before:
            w.figures["unauthorised changes"] += 1
            w.fail(case, "the stored entity changed")
            await w.restore(item)
        elif not Model.reads(who, item.owner, item.category) and item.id in r.text \
                and r.status_code != 207:
            pass  # the id is the caller's own input; nothing else of the entity is shown


def _refused(r: httpx.Response, entity_id: str) -> bool:
    """Whether a write was refused: a 4xx, or a batch result listing the entity as an error."""
    if r.status_code == 207:
        body = r.json()
        return entity_id not in body.get("success", []) and any(
            e.get("entityId") == entity_id for e in body.get("errors", [])
        )
    return not r.is_success


async def create_cases(w: World, who: Who, item: Item) -> None:
    """Creating an entity whose id exists never succeeds, and never replaces it."""
    before = await w.stored(item.id)
    body = {"id": item.id, "type": item.type, "temperature": {"type": "Property", "value": 1}}
    for label, path, payload in (("create", f"{NGSI}/entities", body),
                                 ("batch create", f"{NGSI}/entityOperations/create", [body])):
        r = await w.call(who, "POST", path, json=payload)
        case = f"{who.name} {label} {item.id}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
            continue
        if not _refused(r, item.id):
            w.figures["unauthorised 2xx"] += 1
            w.fail(case, f"create over an existing entity answered {r.status_code}")
    if await w.stored(item.id) != before:
        w.fail(f"{who.name} create {item.id}", "the stored entity changed")
        await w.restore(item)


async def list_cases(w: World, who: Who) -> None:
    """Lists, counts and discovery over all the fixture entities."""
    for etype in ("Bench", "Kiosk", "Bench,Kiosk"):
        # scopeQ over both sides of the scoped data sets' scope: the filter still decides
        # (scopeQ, which copies it selects: 0 is outside SCOPE, 1 within it; NGSI-LD §4.19)
        for scope_q, copies in (("/Zone/#", (0, 1)), ("/Zone/In/#", (1,)),
                                ("/Zone/Inside", (0,))):
            wanted = [i for i in ITEMS if i.type in etype.split(",")
                      and int(i.id[-1]) in copies]
            params = {"type": etype, "scopeQ": scope_q, "count": "true", "limit": "100"}
            r = await w.call(who, "GET", f"{NGSI}/entities", params=params)
            await read_list(w, who, matches(who, wanted), f"{who.name} list {params}", r,
                            counted=True)
    for etype in [*CATEGORIES.values(), "Park,Camera", "Building|Lamp"]:
        wanted = [i for i in ITEMS if i.type in etype.replace("|", ",").split(",")]
        expected = matches(who, wanted)
        for extra in ({}, {"options": "keyValues"}, {"limit": "100"}, {"q": "temperature>0"},
                      {"attrs": "name"}, {"orderBy": "id"}):
            params = {"type": etype, "count": "true", "limit": "100", **extra}
            r = await w.call(who, "GET", f"{NGSI}/entities", params=params)
            await read_list(w, who, expected, f"{who.name} list {params}", r, counted=True)
        r = await w.call(who, "GET", f"{NGSI}/entities", params={"type": etype, "limit": "100"},
                         Accept="application/geo+json")
        await read_list(w, who, expected, f"{who.name} list geojson {etype}", r, counted=False)
        r = await w.call(who, "GET", f"{NGSI}/entities",
                         params={"type": etype, "count": "true", "limit": "0"})
        await read_list(w, who, set(), f"{who.name} count only {etype}", r, counted=False)
        if not who.revoked_key and r.headers.get("NGSILD-Results-Count") != str(len(expected)):
            w.figures["foreign rows"] += 1
            w.fail(f"{who.name} count only {etype}", "count differs")
        body = {"type": "Query", "entities": [{"type": t} for t in etype.split(",")]}
        r = await w.call(who, "POST", f"{NGSI}/entityOperations/query", json=body,
                         params={"count": "true", "limit": "100"})
        await read_list(w, who, expected, f"{who.name} POST query {etype}", r, counted=True)
        tparams = {"type": etype, "timerel": "after", "timeAt": "2000-01-01T00:00:00Z",
                   "count": "true", "limit": "100"}
        r = await w.call(who, "GET", f"{NGSI}/temporal/entities", params=tparams)
        await read_list(w, who, expected, f"{who.name} temporal list {etype}", r, counted=True)
        tbody = {**body, "temporalQ": {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}}
        r = await w.call(who, "POST", f"{NGSI}/temporal/entityOperations/query", json=tbody,
                         params={"count": "true", "limit": "100"})
        await read_list(w, who, expected, f"{who.name} temporal POST {etype}", r, counted=True)
    await discovery_cases(w, who)


async def discovery_cases(w: World, who: Who) -> None:
    readable = [i for i in ITEMS if Model.reads(who, i.owner, i.category)]
    types = Counter(i.type for i in readable)
    for params in ({}, {"details": "true"}):
        r = await w.call(who, "GET", f"{NGSI}/types", params=params)
        case = f"{who.name} /types {params}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
        elif r.status_code != 200:
            w.fail(case, f"answered {r.status_code}")
        else:
            body = r.json()
            got = set(body["typeList"]) if isinstance(body, dict) else {t["typeName"] for t in body}
            if got != set(types):
                w.figures["foreign rows"] += len(got - set(types))
                w.fail(case, f"types {sorted(got)} != {sorted(types)}")
    for etype in CATEGORIES.values():
        r = await w.call(who, "GET", f"{NGSI}/types/{etype}")
        case = f"{who.name} /types/{etype}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
        elif types[etype] == 0:
            if r.status_code != 404:
                w.figures["unauthorised 2xx"] += r.is_success
                w.fail(case, f"no readable {etype}, answered {r.status_code}")
        elif r.status_code != 200 or r.json().get("entityCount") != types[etype]:
            w.figures["foreign rows"] += 1
            w.fail(case, f"answered {r.status_code} {r.text[:200]}, expected {types[etype]}")
    attrs = {"temperature", "name", "location"} if readable else set()
    for params in ({}, {"details": "true"}):
        r = await w.call(who, "GET", f"{NGSI}/attributes", params=params)
        case = f"{who.name} /attributes {params}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
        elif r.status_code != 200:
            w.fail(case, f"answered {r.status_code}")
        else:
            body = r.json()
            got = (set(body["attributeList"]) if isinstance(body, dict)
                   else {a["attributeName"] for a in body})
            if got != attrs:
                w.figures["foreign rows"] += len(got - attrs)
                w.fail(case, f"attributes {sorted(got)} != {sorted(attrs)}")
    r = await w.call(who, "GET", f"{NGSI}/attributes/temperature")
    case = f"{who.name} /attributes/temperature"
    w.figures["cases"] += 1
    if who.revoked_key:
        w.figures["cases"] -= 1
        await expect_refused_auth(w, case, r)
    elif not readable:
        if r.status_code != 404:
            w.figures["unauthorised 2xx"] += r.is_success
            w.fail(case, f"answered {r.status_code}")
    else:
        body = r.json()
        if r.status_code != 200 or body.get("attributeCount") != len(readable) or \
                set(body.get("typeNames", [])) != set(types):
            w.figures["foreign rows"] += 1
            w.fail(case, f"answered {r.status_code} {r.text[:300]}, expected {len(readable)}")


async def subscription_cases(w: World, who: Who) -> None:
    for owner, sub_id in w.subs.items():
        path = f"{NGSI}/subscriptions/{sub_id}"
        r = await w.call(who, "GET", path)
        case = f"{who.name} GET subscription of {owner}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
        elif Model.reads_subscription(who, owner):
            if r.status_code != 200:
                w.fail(case, f"answered {r.status_code}")
        elif r.status_code != 404:
            w.figures["unauthorised 2xx"] += r.is_success
            w.fail(case, f"foreign subscription answered {r.status_code}")
        for method, body in (("PATCH", {"throttling": 5}), ("DELETE", None)):
            r = await w.call(who, method, path, json=body)
            case = f"{who.name} {method} subscription of {owner}"
            w.figures["cases"] += 1
            if who.revoked_key:
                w.figures["cases"] -= 1
                await expect_refused_auth(w, case, r)
                continue
            allowed = Model.writes_anything(who) and who.org == owner
            if allowed != r.is_success:
                w.figures["unauthorised 2xx"] += r.is_success
                w.fail(case, f"answered {r.status_code} {r.text[:200]}")
            if r.is_success and method == "DELETE":
                await _recreate_subscription(w, owner)
    r = await w.call(who, "GET", f"{NGSI}/subscriptions", params={"count": "true"})
    case = f"{who.name} GET subscriptions"
    w.figures["cases"] += 1
    if who.revoked_key:
        w.figures["cases"] -= 1
        await expect_refused_auth(w, case, r)
    else:
        expected = {s for o, s in w.subs.items() if Model.reads_subscription(who, o)}
        got = {s["id"] for s in r.json()} if r.status_code == 200 else None
        if got != expected or r.headers.get("NGSILD-Results-Count") != str(len(expected)):
            w.figures["foreign rows"] += len((got or set()) - expected)
            w.fail(case, f"answered {r.status_code} {got} != {expected}")


async def _recreate_subscription(w: World, owner: str) -> None:
    r = await w.call(
        by_name(f"{owner}.admin"), "POST", f"{NGSI}/subscriptions",
        json={"type": "Subscription", "entities": [{"type": "Camera"}],
              "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}},
    )
    assert r.status_code == 201, r.text
    w.subs[owner] = r.headers["Location"].rsplit("/", 1)[1]


async def create_and_context_cases(w: World, who: Who) -> None:
    """Creating subscriptions, entities and @context documents: editors and admins only."""
    new_id = f"urn:ngsi-ld:Lamp:new-{secrets.token_hex(4)}"
    requests: list[tuple[str, str, str, Any]] = [
        ("create subscription", "POST", f"{NGSI}/subscriptions",
         {"type": "Subscription", "entities": [{"type": "Park"}],
          "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}}),
        ("create entity", "POST", f"{NGSI}/entities",
         {"id": new_id, "type": "Lamp", "name": {"type": "Property", "value": "x"}}),
        ("create context", "POST", f"{NGSI}/jsonldContexts",
         {"@context": {"x": "https://example.org/x"}}),
    ]
    for label, method, path, body in requests:
        h = {"Content-Type": "application/json"} if label == "create context" else {}
        if label == "create context":
            r = await w.client.request(method, path, json=body,
                                       headers={k: v for k, v in w.headers(who, **h).items()
                                                if k != "Link"})
        else:
            r = await w.call(who, method, path, json=body)
        case = f"{who.name} {label}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
            continue
        allowed = Model.writes_anything(who)
        if allowed != r.is_success:
            w.figures["unauthorised 2xx"] += r.is_success
            w.fail(case, f"answered {r.status_code} {r.text[:200]}")
        if label == "create subscription" and r.is_success:
            created = r.headers["Location"].rsplit("/", 1)[1]
            r = await w.call(who, "DELETE", f"{NGSI}/subscriptions/{created}")
            assert r.status_code == 204, r.text
        if label == "create entity" and r.is_success:
            doc = await w.stored(new_id)
            owner = await _owner(w, new_id)
            if doc is None or owner != w.orgs[who.org or ""]:
                w.fail(case, f"created entity owned by {owner}")
            await w.app.state.broker.entities.delete(
                w.tenant, new_id, writer=WriteAccess.system("x"))
    r = await w.call(who, "GET", f"{NGSI}/jsonldContexts")
    w.figures["cases"] += 1
    if who.revoked_key:
        w.figures["cases"] -= 1
        await expect_refused_auth(w, f"{who.name} GET contexts", r)
    elif r.status_code != 200:
        w.fail(f"{who.name} GET contexts", f"answered {r.status_code}")


async def _host_context(w: World, owner: str) -> None:
    r = await w.client.post(
        f"{NGSI}/jsonldContexts", json={"@context": {"x": "https://example.org/x"}},
        headers={"Authorization": f"Bearer {w.keys[f'{owner}.editor']}",
                 "NGSILD-Tenant": w.tenant, "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    w.contexts[owner] = r.headers["Location"].rsplit("/", 1)[1]


async def context_delete_cases(w: World, who: Who) -> None:
    """Deleting a hosted @context: only its hosting organisation's editors and admins."""
    for owner in OWNERS:
        r = await w.call(who, "DELETE", f"{NGSI}/jsonldContexts/{w.contexts[owner]}")
        case = f"{who.name} DELETE context of {owner}"
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
            continue
        allowed = Model.deletes_context(who, owner)
        if allowed != r.is_success or (not allowed and r.status_code not in (401, 403)):
            w.figures["unauthorised 2xx"] += r.is_success and not allowed
            w.fail(case, f"answered {r.status_code} {r.text[:200]}")
        if r.is_success:
            await _host_context(w, owner)
        elif (await w.client.get(f"{NGSI}/jsonldContexts/{w.contexts[owner]}",
                                 headers={"NGSILD-Tenant": w.tenant})).status_code != 200:
            w.figures["unauthorised changes"] += 1
            w.fail(case, "the hosted @context is gone")


async def _owner(w: World, entity_id: str) -> str | None:
    for owner in w.orgs.values():
        found = await w.app.state.broker.store.query(
            w.tenant,
            EntityQuery(ids=(entity_id,), limit=1, readable=Readable(owners=frozenset({owner}))),
        )
        if found.docs:
            return owner
    return None


async def admin_cases(w: World, who: Who) -> None:
    """The admin API: data sets, grants and keys only to those who may know of them."""
    api = "/api/v1"
    h = {"Authorization": f"Bearer {w.keys[who.name]}"} if who.name in w.keys else {}

    async def get(path: str) -> httpx.Response:
        return await w.client.get(api + path, headers=h)

    def tally(case: str, r: httpx.Response, allowed: bool) -> None:
        w.figures["cases"] += 1
        if who.org is None or who.revoked_key:
            if r.status_code != 401:
                w.figures["unauthorised 2xx"] += r.is_success
                w.fail(case, f"answered {r.status_code}")
        elif allowed != r.is_success:
            w.figures["unauthorised 2xx"] += r.is_success
            w.fail(case, f"answered {r.status_code} {r.text[:200]}")

    r = await get("/datasets")
    expected = {f"{w.orgs[o]}-{c}" for o in OWNERS for c in CATEGORIES
                if c != "loose" and Model.sees_dataset(who, o, c)}
    tally(f"{who.name} GET datasets", r, True)
    if r.status_code == 200:
        got = {d["id"] for d in r.json()} & {f"{w.orgs[o]}-{c}" for o in OWNERS for c in CATEGORIES}
        if got != expected:
            w.figures["foreign rows"] += len(got - expected)
            w.fail(f"{who.name} GET datasets", f"{sorted(got)} != {sorted(expected)}")
    for owner in OWNERS:
        for cat in ("open", "restricted", "private"):
            r = await get(f"/datasets/{w.orgs[owner]}-{cat}")
            tally(f"{who.name} GET dataset {owner}-{cat}", r, Model.sees_dataset(who, owner, cat))
        r = await get(f"/organisations/{w.orgs[owner]}/keys")
        tally(f"{who.name} GET keys of {owner}", r, who.org == owner and who.role == "admin")
        r = await get(f"/organisations/{w.orgs[owner]}/mandates")
        tally(f"{who.name} GET mandates of {owner}", r, who.org == owner)
        r = await w.client.put(
            f"{api}/datasets/{w.orgs[owner]}-private/policy", json={"policy": "open"}, headers=h
        )
        allowed = who.org == owner and who.role == "admin"
        tally(f"{who.name} PUT policy of {owner}-private", r, allowed)
        if r.is_success:
            await w.client.put(f"{api}/datasets/{w.orgs[owner]}-private/policy",
                               json={"policy": "private"}, headers=h)
    r = await get("/grants")
    tally(f"{who.name} GET grants", r, True)
    if r.status_code == 200:
        parties = {(g["owner_org"], g["org_id"]) for g in r.json()}
        mine = w.orgs.get(who.org or "", "")
        if any(mine not in pair for pair in parties):
            w.figures["foreign rows"] += 1
            w.fail(f"{who.name} GET grants", f"foreign grants {parties}")


async def run_matrix(w: World, principals: list[Who], items: list[Item]) -> None:
    for who in principals:
        for item in items:
            await entity_reads(w, who, item)
            await entity_writes(w, who, item)
            await create_cases(w, who, item)
        await list_cases(w, who)
        await subscription_cases(w, who)
        await create_and_context_cases(w, who)
        await context_delete_cases(w, who)
        await admin_cases(w, who)


async def test_cross_organisation_matrix(world: World, database_url: str) -> None:
    started = time.perf_counter()
    full = database_url.startswith("sqlite")
    # PostgreSQL: every principal and endpoint, on one entity of each owner and category (the
    # whole matrix there takes about three times as long as on SQLite)
    await run_matrix(world, PRINCIPALS, ITEMS if full else [i for i in ITEMS if i.id[-1] == "0"])
    elapsed = time.perf_counter() - started
    backend = database_url.split(":", 1)[0]
    print(  # the figures quoted in docs/security.md
        f"\nmatrix [{backend}]: {world.figures['cases']} cases, "
        f"{world.figures['unauthorised 2xx']} unauthorised 2xx, "
        f"{world.figures['foreign rows']} foreign rows, "
        f"{world.figures['unauthorised changes']} unauthorised changes, "
        f"{len(world.failures)} failures, {elapsed:.1f} s"
    )
    assert world.failures == [], "\n".join(world.failures[:40])
    assert world.figures["cases"] >= (10_000 if full else 5_000)
    # refused authorisations are in the audit log (route templates, never concrete URLs), and
    # the hash chain still verifies
    count, problems = await world.gov.verify_audit()
    assert problems == [] and count > 0
    refused = [r for r in await world.gov.store.audit_records(after=0, limit=1_000_000)
               if r.action == "authz.refused" and r.actor.startswith("key:")]
    assert {r.detail["interface"] for r in refused} == {"ngsi-ld", "admin"}
    assert all("urn:" not in str(r.detail) for r in refused)
    # every fixture entity is still there, as it was made
    for item in ITEMS:
        assert await world.stored(item.id) is not None, item.id
