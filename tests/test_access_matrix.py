"""The generated cross-organisation access matrix (issue 3), on both backends.

Principals (anonymous; reader, editor and admin of the owners A and B; organisations holding a
valid, an expired and a revoked grant; an organisation A mandated; one a restricted policy
names; a revoked key) × every NGSI-LD endpoint and method (entities, attributes, batch
operations and their results, queries and counts, discovery, the temporal API, subscriptions,
purge, @context documents), the admin API and every later interface (the event streams, the
DCAT catalogue, the portal's pages, downloads and chart series, the hub API) × open,
restricted and private data sets, plus data in no data set. The same roles again as OIDC
bearer tokens of a local issuer; in the portal, as signed-in people. Every request is real
HTTP through the ASGI app with a real API key made by the governance service (grants through
an access request and its approval). The same cases run on both backends.

The expected outcome of every case comes from `Model`, a reference written here from the rules
in docs/security.md — never from the code under test. Each case checks the status AND the body:
an entity read is the entity or a 404, a list holds exactly the readable matches, a count
(`NGSILD-Results-Count`, `entityCount`, `attributeCount`) counts exactly those, a batch result
lists a refused entity among its errors, and a refused write leaves the stored entity as it
was. Failures are collected and reported together with the figures per interface; the figures
of a run are printed (`-s`) and quoted in docs/security.md ("matrix figures").
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from smartregion.api.csrf import SecretKey
from smartregion.app import create_app
from smartregion.core.audit import AuditEvent
from smartregion.errors import ResourceNotFound
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.governance.passwords import hash_password
from smartregion.settings import Settings
from smartregion.storage.base import EntityQuery, Readable
from smartregion.storage.governance import Person
from smartregion.web import SessionCodec
from smartregion.web.sessions import COOKIE as SESSION_COOKIE

pytestmark = pytest.mark.anyio

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
LINK = f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
OP = Principal.cli()

#: categories of data: the policy of the data set holding it ("loose": in no data set); the
#: scoped ones are data sets with the scope SCOPE, holding an owner's entities of their type
#: whose scope lies within it (copy 1) — the owner's others of that type (copy 0, in a scope
#: that shares SCOPE's text but lies outside it) are in no data set
CATEGORIES = {
    "open": "Park",
    "restricted": "Building",
    "private": "Camera",
    "loose": "Lamp",
    "scoped-open": "Bench",
    "scoped-restricted": "Kiosk",
}
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
    revoked_key: bool = False  # refused credentials: a revoked key, an expired OIDC token


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
#: the same roles as OIDC bearer tokens (a local issuer's JWTs naming organisation and role);
#: an expired token stands for the revoked key
OIDC_PRINCIPALS = [
    Who(
        f"oidc:{p.name}" if not p.revoked_key else "oidc:token.expired",
        p.org,
        p.role,
        p.revoked_key,
    )
    for p in PRINCIPALS
    if p.org is not None
]

#: (holder, owner, category) of the grants that are active; d's expired and e's were revoked
#: (a private data set cannot be requested: its existence is not revealed to others)
ACTIVE_GRANTS = {
    ("c", "a", "restricted"),
    ("c", "b", "restricted"),
    ("c", "a", "scoped-restricted"),
    ("c", "b", "scoped-restricted"),
}
REQUESTED = [
    ("a", "restricted"),
    ("b", "restricted"),
    ("a", "scoped-restricted"),
    ("b", "scoped-restricted"),
]
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
    Item(
        f"urn:ngsi-ld:{CATEGORIES[cat]}:{owner}{n}",
        owner,
        cat,
        tuple(COPY_SCOPES[n]) if cat.startswith("scoped") else (),
    )
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
    seconds: Counter[str] = field(default_factory=Counter)  # interface -> time of its cases
    #: the default tenant's copy of each fixture entity (what data sets select): id -> its id
    public: dict[str, str] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)  # data set -> a member's path
    hour: str = ""  # the by-time view's hour page of the copies (`/YYYY/MM/DD/HH`)
    cookies: dict[str, str] = field(default_factory=dict)  # principal -> portal session
    hub_objects: dict[str, str] = field(default_factory=dict)  # owner -> its actor profile
    #: the stored document of each fixture entity as it was made (a refused write leaves it)
    snapshots: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def bearer(self, who: Who) -> dict[str, str]:
        """The principal's credentials, without NGSI-LD headers (the other interfaces)."""
        return {"Authorization": f"Bearer {self.keys[who.name]}"} if who.name in self.keys else {}

    def session(self, who: Who) -> dict[str, str]:
        """The portal session cookie of a person in the principal's role (none: anonymous)."""
        cookie = self.cookies.get(who.name)
        return {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}

    def headers(self, who: Who | None, **extra: str) -> dict[str, str]:
        h = {"NGSILD-Tenant": self.tenant, "Link": LINK}
        if who is not None and who.name in self.keys:
            h["Authorization"] = f"Bearer {self.keys[who.name]}"
        return {**h, **extra}

    async def call(
        self,
        who: Who | None,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        **headers: str,
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
        self.snapshots[item.id] = await self.stored(item.id)

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


AUDIENCE = "smartregion-matrix"


@dataclass(frozen=True)
class Issuer:
    """A local OIDC issuer: its JWKS served over real HTTP, its tokens signed here."""

    base: str
    key: rsa.RSAPrivateKey

    def token(self, org: str, role: str, *, expired: bool = False) -> str:
        now = int(time.time())
        claims = {
            "iss": self.base,
            "aud": AUDIENCE,
            "sub": f"matrix-{org}-{role}",
            "iat": now - 120,
            "exp": now - 60 if expired else now + 3600,
            "smartregion_org": org,
            "smartregion_role": role,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "m1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "m1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Issuer(f"http://127.0.0.1:{server.server_address[1]}", key)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def world(database_url: str, issuer: Issuer) -> AsyncIterator[World]:
    suffix = secrets.token_hex(3)
    orgs = {short: f"{short}-{suffix}" for short in ("a", "b", "c", "d", "e", "m", "p")}
    settings = Settings(
        database_url=database_url,
        default_org=f"trial-{suffix}",
        secret_key=secrets.token_hex(32),
        oidc_issuer=issuer.base,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{issuer.base}/jwks",
        ldes_settle_seconds=0,  # the streams publish the fixture's members at once
    )
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
        for who in OIDC_PRINCIPALS:
            keys[who.name] = issuer.token(
                orgs[who.org or ""], who.role or "reader", expired=who.revoked_key
            )
        # portal sessions: a person in each principal's role; the revoked key's person has left
        codec = SessionCodec(SecretKey(settings.secret_key, settings.secret_key_file).get)
        cookies: dict[str, str] = {}
        hashed = hash_password("matrix-password-1")  # once: argon2 is slow by design
        for n, who in enumerate(p for p in PRINCIPALS if p.org is not None):
            person = f"p{n}-{suffix}"
            await gov.store.create_person(
                Person(person, f"{person}@example.org", who.name, hashed),
                audit=AuditEvent(OP.actor, "person.create", person),
            )
            await gov.set_membership(OP, person, orgs[who.org or ""], who.role or "reader")
            if who.revoked_key:
                await gov.remove_membership(OP, person, orgs[who.org or ""])
            cookies[who.name] = codec.encode(codec.new(person, orgs[who.org or ""]))
        for owner in OWNERS:
            admin = Principal(orgs[owner], "admin")
            for cat, etype in CATEGORIES.items():
                if cat == "loose":
                    continue
                policy = cat.removeprefix("scoped-")
                permissions = (
                    [{"action": "read", "assignee": orgs[PARTNER]}]
                    if policy == "restricted"
                    else None
                )
                await gov.create_dataset(
                    admin,
                    f"{orgs[owner]}-{cat}",
                    orgs[owner],
                    etype,
                    [etype],
                    policy=policy,
                    permissions=permissions,
                    scope=SCOPE if cat.startswith("scoped") else None,
                )
        await gov.create_mandate(Principal(orgs["a"], "admin"), orgs["a"], orgs["m"])
        # grants: request, approve (valid, already expired), approve and revoke
        now = datetime.now(UTC)
        for holder, expires in (
            ("c", now + timedelta(days=1)),
            ("d", now - timedelta(minutes=1)),
            ("e", now + timedelta(days=1)),
        ):
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
            w = World(app, client, gov, f"m{suffix}", orgs, keys, cookies=cookies)
            for item in ITEMS:
                await w.restore(item)
            await _publish(w, suffix)
            for owner in OWNERS:
                await _create_actor(w, owner)
            for owner in OWNERS:
                r = await w.call(
                    PRINCIPALS[[p.name for p in PRINCIPALS].index(f"{owner}.admin")],
                    "POST",
                    "/ngsi-ld/v1/subscriptions",
                    json={
                        "type": "Subscription",
                        "entities": [{"type": "Camera"}],
                        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
                    },
                )
                assert r.status_code == 201, r.text
                w.subs[owner] = r.headers["Location"].rsplit("/", 1)[1]
                await _host_context(w, owner)
            yield w


async def _publish(w: World, suffix: str) -> None:
    """A copy of every fixture entity in the default tenant, which the data sets select."""
    temporal = w.app.state.broker.temporal
    vocab = await w.app.state.broker.contexts.term_map(CORE)
    w.hour = datetime.now(UTC).strftime("/%Y/%m/%d/%H")
    for item in ITEMS:
        w.public[item.id] = f"{item.id}-{suffix}"
        await temporal.upsert(
            "",
            {**temporal_payload(item), "id": w.public[item.id]},
            vocab,
            writer=WriteAccess(w.orgs[item.owner]),
        )
    for owner in OWNERS:
        for cat in DATASET_CATEGORIES:
            ds = f"{w.orgs[owner]}-{cat}"
            r = await w.client.get(
                f"/ldes/{ds}/paged",
                headers={**w.bearer(by_name(f"{owner}.admin")), "Accept": "application/n-triples"},
            )
            found = re.search(rf"/ldes/{re.escape(ds)}/members/[0-9.-]+", r.text)
            assert r.status_code == 200 and found, r.text[:500]
            w.members[ds] = found[0]


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
    for variant in (
        {},
        {"options": "keyValues"},
        {"format": "concise"},
        {"attrs": "temperature"},
        {"options": "sysAttrs"},
        {"pick": "id,type,name"},
    ):
        r = await w.call(who, "GET", base, params=variant)
        await read_one(w, who, item, f"{who.name} GET entity {item.id} {variant}", r)
    r = await w.call(who, "GET", base, Accept="application/geo+json")
    await read_one(w, who, item, f"{who.name} GET entity geojson {item.id}", r)
    temporal = f"{NGSI}/temporal/entities/{item.id}"
    for variant in (
        {},
        {"lastN": "1"},
        {"options": "temporalValues"},
        {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"},
        {"attrs": "temperature"},
        {"aggrMethods": "max", "aggrPeriodDuration": "P1D", "format": "aggregatedValues"},
    ):
        r = await w.call(who, "GET", temporal, params=variant)
        await read_one(w, who, item, f"{who.name} GET temporal {item.id} {variant}", r)
    expected = matches(who, [item])
    queries = [
        {"id": item.id, "type": item.type, "count": "true"},
        {"id": item.id, "type": item.type, "count": "true", "options": "keyValues"},
        {"idPattern": f"^{item.id}$", "type": item.type, "count": "true"},
        {
            "type": item.type,
            "q": f'name=="{item.owner}-{item.category}"',
            "count": "true",
            "id": item.id,
        },
        {"id": item.id, "attrs": "temperature", "count": "true"},
        {
            "id": item.id,
            "georel": "near;maxDistance==100",
            "geometry": "Point",
            "coordinates": "[3.72,51.05]",
            "count": "true",
        },
    ]
    for params in queries:
        r = await w.call(who, "GET", f"{NGSI}/entities", params=params)
        await read_list(w, who, expected, f"{who.name} GET /entities {params}", r, counted=True)
        tparams = {**params, "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
        tparams.pop("options", None)
        if (
            "attrs" not in tparams
            and "type" not in tparams
            and "q" not in tparams
            and "georel" not in tparams
        ):
            tparams["type"] = item.type
        r = await w.call(who, "GET", f"{NGSI}/temporal/entities", params=tparams)
        await read_list(
            w, who, expected, f"{who.name} GET temporal list {tparams}", r, counted=True
        )
    body = {"type": "Query", "entities": [{"id": item.id, "type": item.type}]}
    r = await w.call(
        who, "POST", f"{NGSI}/entityOperations/query", json=body, params={"count": "true"}
    )
    await read_list(w, who, expected, f"{who.name} POST query {item.id}", r, counted=True)
    tbody = {**body, "temporalQ": {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}}
    r = await w.call(
        who, "POST", f"{NGSI}/temporal/entityOperations/query", json=tbody, params={"count": "true"}
    )
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
        (
            "POST attrs noOverwrite",
            "POST",
            f"{e}/attrs",
            {"extra": prop},
            {"options": "noOverwrite"},
        ),
        ("PATCH attr", "PATCH", f"{e}/attrs/temperature", {"value": 98}, {}),
        ("PUT attr", "PUT", f"{e}/attrs/temperature", prop, {}),
        ("DELETE attr", "DELETE", f"{e}/attrs/name", None, {}),
        ("PUT entity", "PUT", e, {"type": item.type, "temperature": prop}, {}),
        ("PATCH entity", "PATCH", e, {"temperature": prop}, {}),
        ("DELETE entity", "DELETE", e, None, {}),
        ("batch upsert", "POST", f"{NGSI}/entityOperations/upsert", [whole], {}),
        (
            "batch upsert update",
            "POST",
            f"{NGSI}/entityOperations/upsert",
            [whole],
            {"options": "update"},
        ),
        ("batch update", "POST", f"{NGSI}/entityOperations/update", [whole], {}),
        ("batch merge", "POST", f"{NGSI}/entityOperations/merge", [whole], {}),
        ("batch delete", "POST", f"{NGSI}/entityOperations/delete", [item.id], {}),
        ("purge", "DELETE", f"{NGSI}/entities", None, {"id": item.id, "type": item.type}),
        (
            "purge drop",
            "DELETE",
            f"{NGSI}/entities",
            None,
            {"id": item.id, "type": item.type, "drop": "name"},
        ),
        (
            "temporal upsert",
            "POST",
            f"{NGSI}/temporal/entities",
            {
                "id": item.id,
                "type": item.type,
                "temperature": [
                    {"type": "Property", "value": 5, "observedAt": "2024-01-03T00:00:00Z"}
                ],
            },
            {},
        ),
        (
            "temporal add attrs",
            "POST",
            f"{t}/attrs",
            {
                "temperature": [
                    {"type": "Property", "value": 6, "observedAt": "2024-01-04T00:00:00Z"}
                ]
            },
            {},
        ),
        ("temporal delete attr", "DELETE", f"{t}/attrs/temperature", None, {"deleteAll": "true"}),
        (
            "temporal PATCH instance",
            "PATCH",
            f"{t}/attrs/temperature/{{instance}}",
            {"type": "Property", "value": 7, "observedAt": T1},
            {},
        ),
        ("temporal DELETE instance", "DELETE", f"{t}/attrs/temperature/{{instance}}", None, {}),
        ("temporal delete", "DELETE", t, None, {}),
    ]


#: the authorised writes after which the next ones would find nothing to change: the entity
#: is restored after them (and once after the last write of a principal that changed it)
RESTORE_AFTER = {
    "DELETE entity",
    "batch delete",
    "purge",
    "temporal delete attr",
    "temporal delete",
}


async def entity_writes(w: World, who: Who, item: Item) -> None:
    changed = False  # by an authorised write of this principal, not yet restored
    for label, method, path, body, params in write_requests(item):
        case = f"{who.name} {label} {item.id}"
        if "{instance}" in path:
            path = path.replace("{instance}", await w.instance_of(item))
        purge = label.startswith("purge")
        # unchanged since its restore, the entity is its snapshot: no read before the request
        before = await w.stored(item.id) if changed and purge else w.snapshots[item.id]
        r = await w.call(who, method, path, json=body, params=params)
        w.figures["cases"] += 1
        if who.revoked_key:
            w.figures["cases"] -= 1
            await expect_refused_auth(w, case, r)
            continue
        allowed = Model.writes(who, item.owner)
        after = await w.stored(item.id) if purge or not allowed else None
        # a purge answers 204 whatever it matched: whether the entity changed decides
        refused = after == before if purge else _refused(r, item.id)
        if allowed:
            if refused or not r.is_success:
                w.fail(case, f"authorised write answered {r.status_code} {r.text[:200]}")
            changed = True
            if label in RESTORE_AFTER:
                await w.restore(item)
                changed = False
            continue
        if not refused:
            w.figures["unauthorised 2xx"] += 1
            w.fail(case, f"unauthorised write answered {r.status_code} {r.text[:200]}")
        elif r.status_code not in (207, 401, 403, 404) and not purge:
            w.fail(case, f"unauthorised write answered {r.status_code}, not 401/403/404")
        if after != before:
            w.figures["unauthorised changes"] += 1
            w.fail(case, "the stored entity changed")
            await w.restore(item)
    if changed:
        await w.restore(item)


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
    before = w.snapshots[item.id]
    body = {"id": item.id, "type": item.type, "temperature": {"type": "Property", "value": 1}}
    for label, path, payload in (
        ("create", f"{NGSI}/entities", body),
        ("batch create", f"{NGSI}/entityOperations/create", [body]),
    ):
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
        for scope_q, copies in (("/Zone/#", (0, 1)), ("/Zone/In/#", (1,)), ("/Zone/Inside", (0,))):
            wanted = [i for i in ITEMS if i.type in etype.split(",") and int(i.id[-1]) in copies]
            params = {"type": etype, "scopeQ": scope_q, "count": "true", "limit": "100"}
            r = await w.call(who, "GET", f"{NGSI}/entities", params=params)
            await read_list(
                w, who, matches(who, wanted), f"{who.name} list {params}", r, counted=True
            )
    for etype in [*CATEGORIES.values(), "Park,Camera", "Building|Lamp"]:
        wanted = [i for i in ITEMS if i.type in etype.replace("|", ",").split(",")]
        expected = matches(who, wanted)
        for extra in (
            {},
            {"options": "keyValues"},
            {"limit": "100"},
            {"q": "temperature>0"},
            {"attrs": "name"},
            {"orderBy": "id"},
        ):
            params = {"type": etype, "count": "true", "limit": "100", **extra}
            r = await w.call(who, "GET", f"{NGSI}/entities", params=params)
            await read_list(w, who, expected, f"{who.name} list {params}", r, counted=True)
        r = await w.call(
            who,
            "GET",
            f"{NGSI}/entities",
            params={"type": etype, "limit": "100"},
            Accept="application/geo+json",
        )
        await read_list(w, who, expected, f"{who.name} list geojson {etype}", r, counted=False)
        r = await w.call(
            who, "GET", f"{NGSI}/entities", params={"type": etype, "count": "true", "limit": "0"}
        )
        await read_list(w, who, set(), f"{who.name} count only {etype}", r, counted=False)
        if not who.revoked_key and r.headers.get("NGSILD-Results-Count") != str(len(expected)):
            w.figures["foreign rows"] += 1
            w.fail(f"{who.name} count only {etype}", "count differs")
        body = {"type": "Query", "entities": [{"type": t} for t in etype.split(",")]}
        r = await w.call(
            who,
            "POST",
            f"{NGSI}/entityOperations/query",
            json=body,
            params={"count": "true", "limit": "100"},
        )
        await read_list(w, who, expected, f"{who.name} POST query {etype}", r, counted=True)
        tparams = {
            "type": etype,
            "timerel": "after",
            "timeAt": "2000-01-01T00:00:00Z",
            "count": "true",
            "limit": "100",
        }
        r = await w.call(who, "GET", f"{NGSI}/temporal/entities", params=tparams)
        await read_list(w, who, expected, f"{who.name} temporal list {etype}", r, counted=True)
        tbody = {**body, "temporalQ": {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}}
        r = await w.call(
            who,
            "POST",
            f"{NGSI}/temporal/entityOperations/query",
            json=tbody,
            params={"count": "true", "limit": "100"},
        )
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
            got = (
                set(body["attributeList"])
                if isinstance(body, dict)
                else {a["attributeName"] for a in body}
            )
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
        if (
            r.status_code != 200
            or body.get("attributeCount") != len(readable)
            or set(body.get("typeNames", [])) != set(types)
        ):
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
        by_name(f"{owner}.admin"),
        "POST",
        f"{NGSI}/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Camera"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        },
    )
    assert r.status_code == 201, r.text
    w.subs[owner] = r.headers["Location"].rsplit("/", 1)[1]


async def create_and_context_cases(w: World, who: Who) -> None:
    """Creating subscriptions, entities and @context documents: editors and admins only."""
    new_id = f"urn:ngsi-ld:Lamp:new-{secrets.token_hex(4)}"
    requests: list[tuple[str, str, str, Any]] = [
        (
            "create subscription",
            "POST",
            f"{NGSI}/subscriptions",
            {
                "type": "Subscription",
                "entities": [{"type": "Park"}],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
            },
        ),
        (
            "create entity",
            "POST",
            f"{NGSI}/entities",
            {"id": new_id, "type": "Lamp", "name": {"type": "Property", "value": "x"}},
        ),
        (
            "create context",
            "POST",
            f"{NGSI}/jsonldContexts",
            {"@context": {"x": "https://example.org/x"}},
        ),
    ]
    for label, method, path, body in requests:
        h = {"Content-Type": "application/json"} if label == "create context" else {}
        if label == "create context":
            r = await w.client.request(
                method,
                path,
                json=body,
                headers={k: v for k, v in w.headers(who, **h).items() if k != "Link"},
            )
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
                w.tenant, new_id, writer=WriteAccess.system("x")
            )
    r = await w.call(who, "GET", f"{NGSI}/jsonldContexts")
    w.figures["cases"] += 1
    if who.revoked_key:
        w.figures["cases"] -= 1
        await expect_refused_auth(w, f"{who.name} GET contexts", r)
    elif r.status_code != 200:
        w.fail(f"{who.name} GET contexts", f"answered {r.status_code}")


async def _host_context(w: World, owner: str) -> None:
    r = await w.client.post(
        f"{NGSI}/jsonldContexts",
        json={"@context": {"x": "https://example.org/x"}},
        headers={
            "Authorization": f"Bearer {w.keys[f'{owner}.editor']}",
            "NGSILD-Tenant": w.tenant,
            "Content-Type": "application/json",
        },
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
        elif (
            await w.client.get(
                f"{NGSI}/jsonldContexts/{w.contexts[owner]}", headers={"NGSILD-Tenant": w.tenant}
            )
        ).status_code != 200:
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
    expected = {
        f"{w.orgs[o]}-{c}"
        for o in OWNERS
        for c in CATEGORIES
        if c != "loose" and Model.sees_dataset(who, o, c)
    }
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
            await w.client.put(
                f"{api}/datasets/{w.orgs[owner]}-private/policy",
                json={"policy": "private"},
                headers=h,
            )
    r = await get("/grants")
    tally(f"{who.name} GET grants", r, True)
    if r.status_code == 200:
        parties = {(g["owner_org"], g["org_id"]) for g in r.json()}
        mine = w.orgs.get(who.org or "", "")
        if any(mine not in pair for pair in parties):
            w.figures["foreign rows"] += 1
            w.fail(f"{who.name} GET grants", f"foreign grants {parties}")


# --- the later interfaces: LDES, the DCAT catalogue, the portal's exports, the hub -----------
#
# They read the default tenant (the one the data sets select): the world publishes a copy of
# every fixture entity there under a run-unique id (`World.public`), so the shared PostgreSQL
# database of a test session holds nothing another test could confuse with them.

URN = re.compile(r"urn:ngsi-ld:[A-Za-z]+:[A-Za-z0-9-]+")
DATASET_CATEGORIES = [c for c in CATEGORIES if c != "loose"]


def in_dataset(item: Item, owner: str, category: str) -> bool:
    return item.owner == owner and item.category == category


def tally(
    w: World,
    iface: str,
    who: Who,
    case: str,
    r: httpx.Response,
    allowed: bool,
    *,
    refused: tuple[int, ...] = (404,),
    got: set[str] | None = None,
    expected: set[str] | None = None,
    exact: bool = True,
) -> None:
    """One case of a later interface: its status, and the rows it shows against the readable
    ones (`got` ⊆ `expected`; equal when `exact`)."""
    w.figures["cases"] += 1
    case = f"{who.name} {iface} {case}"
    if who.revoked_key:
        if r.status_code != 401:
            w.figures["unauthorised 2xx"] += r.is_success
            w.fail(case, f"refused credentials answered {r.status_code}")
        return
    if not allowed:
        if r.status_code not in refused:
            w.figures["unauthorised 2xx"] += r.is_success
            w.fail(case, f"answered {r.status_code}, expected one of {refused}: {r.text[:200]}")
        return
    if not r.is_success:
        w.fail(case, f"authorised, answered {r.status_code} {r.text[:200]}")
        return
    if got is not None and expected is not None:
        foreign = got - expected
        if foreign:
            w.figures["foreign rows"] += len(foreign)
            w.fail(case, f"foreign rows {sorted(foreign)}")
        if exact and expected - got:
            w.fail(case, f"missing {sorted(expected - got)}")


async def ldes_cases(w: World, who: Who) -> None:
    """Each data set's stream, its three views' roots, an hour page and a member: the stream
    or 404 as if absent; no member of an entity outside the data set or unreadable."""
    hour = w.hour
    for owner in OWNERS:
        for cat in DATASET_CATEGORIES:
            ds = f"{w.orgs[owner]}-{cat}"
            allowed = Model.reads(who, owner, cat)
            mine = {w.public[i.id] for i in ITEMS if in_dataset(i, owner, cat)}
            stream = f"/ldes/{ds}"
            for path, holds in (
                (stream, False),
                (f"{stream}/paged", True),
                (f"{stream}/by-time", False),
                (f"{stream}/by-time{hour}", False),
                (f"{stream}/latest", True),
                (w.members[ds], False),
            ):
                # every page as N-Triples; the paged view's also as Turtle (another renderer)
                accepts = ["application/n-triples"]
                if path.endswith("/paged"):
                    accepts.append("text/turtle")
                for accept in accepts:
                    r = await w.client.get(path, headers={**w.bearer(who), "Accept": accept})
                    got = set(URN.findall(r.text)) if r.is_success else None
                    tally(
                        w,
                        "ldes",
                        who,
                        f"{path} {accept}",
                        r,
                        allowed,
                        got=got,
                        expected=mine,
                        exact=holds,
                    )
    r = await w.client.get(f"/ldes/{w.orgs['a']}-none/paged", headers=w.bearer(who))
    tally(w, "ldes", who, "absent data set", r, False)


async def catalogue_cases(w: World, who: Who) -> None:
    """The DCAT catalogue lists exactly the data sets the caller may read."""
    ours = re.compile(
        "|".join(rf"{re.escape(w.orgs[o])}-(?:{'|'.join(DATASET_CATEGORIES)})" for o in OWNERS)
    )
    expected = {
        f"{w.orgs[o]}-{c}" for o in OWNERS for c in DATASET_CATEGORIES if Model.reads(who, o, c)
    }
    for accept in ("text/turtle", "application/ld+json"):
        r = await w.client.get("/catalog", headers={**w.bearer(who), "Accept": accept})
        got = set(ours.findall(r.text)) if r.is_success else None
        tally(w, "catalogue", who, accept, r, True, got=got, expected=expected)


def portal_principal(who: Who) -> Who:
    """Whom the portal sees: a session whose person lost the membership reads as anonymous."""
    return Who("anonymous", None) if who.revoked_key else who


def sees_in_portal(who: Who, owner: str, cat: str) -> bool:
    """Private data sets only for their owner; open and restricted ones for everyone."""
    return cat != "private" or who.org == owner


async def portal_cases(w: World, who: Who) -> None:
    """The portal's catalogue, data set pages, CSV/GeoJSON downloads and chart series, in the
    session of a person with the principal's role (404 for what the reader may not read)."""
    seen = portal_principal(who)
    h = w.session(who)
    ours = re.compile(
        rf"/datasets/((?:{'|'.join(re.escape(w.orgs[o]) for o in OWNERS)})"
        rf"-(?:scoped-)?[a-z]+)\""
    )
    r = await w.client.get("/datasets", headers=h)
    visible = {
        f"{w.orgs[o]}-{c}" for o in OWNERS for c in DATASET_CATEGORIES if sees_in_portal(seen, o, c)
    }
    got = set(ours.findall(r.text)) if r.is_success else None
    tally(w, "portal", seen, "catalogue page", r, True, got=got, expected=visible)
    for owner in OWNERS:
        for cat in DATASET_CATEGORIES:
            ds = f"{w.orgs[owner]}-{cat}"
            # a data set the portal does not show (another's private one) is not found at all
            readable = sees_in_portal(seen, owner, cat) and Model.reads(seen, owner, cat)
            mine = {w.public[i.id] for i in ITEMS if in_dataset(i, owner, cat)}
            r = await w.client.get(f"/datasets/{ds}", headers=h)
            got = set(URN.findall(r.text)) if r.is_success else None
            tally(
                w,
                "portal",
                seen,
                f"page {ds}",
                r,
                sees_in_portal(seen, owner, cat),
                got=got,
                expected=mine if readable else set(),
                exact=False,
            )
            r = await w.client.get(f"/datasets/{ds}/download.csv", headers=h)
            got = set(URN.findall(r.text)) if r.is_success else None
            tally(w, "portal", seen, f"csv {ds}", r, readable, got=got, expected=mine)
            r = await w.client.get(f"/datasets/{ds}/download.geojson", headers=h)
            got = {f["id"] for f in r.json()["features"]} if r.is_success else None
            tally(w, "portal", seen, f"geojson {ds}", r, readable, got=got, expected=mine)
            # the chart's series: of the data set's entities, and of the same owner's private
            # and loose ones through this data set (never answered from another data set)
            for item in ITEMS:
                if item.owner != owner or not (
                    in_dataset(item, owner, cat)
                    or (item.kind in ("private", "loose") and item.id[-1] == "0")
                ):
                    continue
                public = w.public[item.id]
                r = await w.client.get(
                    f"/datasets/{ds}/series",
                    headers=h,
                    params={
                        "id": public,
                        "attrs": "temperature",
                        "options": "aggregatedValues",
                        "aggrMethods": "max",
                        "aggrPeriodDuration": "P1D",
                        "timerel": "after",
                        "timeAt": "2000-01-01T00:00:00Z",
                    },
                )
                got = {r.json().get("id")} if r.is_success else None
                tally(
                    w,
                    "portal",
                    seen,
                    f"series {ds} {item.id}",
                    r,
                    readable and in_dataset(item, owner, cat),
                    got=got,
                    expected={public},
                )


def hub_writes(who: Who, owner: str) -> bool:
    """Hub objects: changed by their owner's editors and admins (mandates do not extend)."""
    return who.org == owner and who.role in ("editor", "admin")


def actor_body(title: str) -> dict[str, Any]:
    return {"title": {"en": title}, "helix_role": "industry"}


async def hub_cases(w: World, who: Who) -> None:
    """The hub API: public reads of every organisation's objects; writes by non-members refused
    (never a 2xx) and leaving the object as it was."""
    api = "/api/v1/actors"
    h = w.bearer(who)
    for owner in OWNERS:
        org = w.orgs[owner]
        obj = w.hub_objects[owner]
        r = await w.client.get(f"{api}/{obj}", headers=h)
        got = {r.json()["id"]} if r.is_success else None
        tally(w, "hub", who, f"GET {obj}", r, True, got=got, expected={obj})
        for path in (api, f"{api}/export.json", f"{api}/export.csv"):
            r = await w.client.get(path, headers=h, params={"owner": org})
            if not r.is_success:
                got = None
            elif path.endswith(".csv"):
                got = {line.split(",", 1)[0] for line in r.text.splitlines()[1:] if line}
            else:
                body = r.json()
                got = {o["id"] for o in (body["items"] if isinstance(body, dict) else body)}
            tally(w, "hub", who, f"list {path} of {owner}", r, True, got=got, expected={obj})
        before = (await w.client.get(f"{api}/{obj}")).json()
        allowed = hub_writes(who, owner)
        refused = (401, 403, 404)
        r = await w.client.put(f"{api}/{obj}", headers=h, json=actor_body(f"changed by {who.name}"))
        tally(w, "hub", who, f"PUT {obj}", r, allowed, refused=refused)
        if r.is_success:
            await w.client.put(
                f"{api}/{obj}",
                headers=w.bearer(by_name(f"{owner}.editor")),
                json=actor_body(before["title"]["en"]),
            )
        r = await w.client.delete(f"{api}/{obj}", headers=h)
        tally(w, "hub", who, f"DELETE {obj}", r, allowed, refused=refused)
        if r.is_success:
            await _create_actor(w, owner)
        new_id = f"x{secrets.token_hex(4)}"
        r = await w.client.post(
            api, headers=h, json={**actor_body("new"), "id": new_id, "owner": org}
        )
        tally(w, "hub", who, f"create for {owner}", r, allowed, refused=refused)
        if r.is_success:
            gone = await w.client.delete(
                f"{api}/{new_id}", headers=w.bearer(by_name(f"{owner}.editor"))
            )
            assert gone.status_code == 204, gone.text
        after = (await w.client.get(f"{api}/{w.hub_objects[owner]}")).json()
        if not allowed and after != before:
            w.figures["unauthorised changes"] += 1
            w.fail(f"{who.name} hub writes to {obj}", f"changed: {before} -> {after}")


async def _create_actor(w: World, owner: str) -> None:
    r = await w.client.post(
        "/api/v1/actors",
        headers=w.bearer(by_name(f"{owner}.editor")),
        json=actor_body(f"actor of {owner}"),
    )
    assert r.status_code == 201, r.text
    w.hub_objects[owner] = r.json()["id"]


FIGURES = ("cases", "unauthorised 2xx", "foreign rows", "unauthorised changes")
INTERFACES = ("ngsi-ld", "admin", "ldes", "catalogue", "portal", "hub")


async def counted(w: World, interface: str, coro: Awaitable[None]) -> None:
    """Run some cases, adding what they count to the interface's own figures."""
    before = {k: w.figures[k] for k in FIGURES}
    started = time.perf_counter()
    await coro
    w.seconds[interface] += time.perf_counter() - started
    for k in FIGURES:
        w.figures[f"{interface}: {k}"] += w.figures[k] - before[k]


async def run_matrix(
    w: World, principals: list[Who], items: list[Item], write_items: list[Item]
) -> None:
    """Every case of `principals`: reads of `items`, writes to `write_items`."""
    for who in principals:
        for item in items:
            await counted(w, "ngsi-ld", entity_reads(w, who, item))
        for item in write_items:
            await counted(w, "ngsi-ld", entity_writes(w, who, item))
            await counted(w, "ngsi-ld", create_cases(w, who, item))
        if who.name.startswith("oidc:"):
            await counted(w, "ngsi-ld", discovery_cases(w, who))  # the counts, not the lists
        else:
            # the lists; and the subscription and @context cases, which create and delete as
            # the principal (with a token they would only repeat what the keys prove)
            await counted(w, "ngsi-ld", list_cases(w, who))
            await counted(w, "ngsi-ld", subscription_cases(w, who))
            await counted(w, "ngsi-ld", create_and_context_cases(w, who))
            await counted(w, "ngsi-ld", context_delete_cases(w, who))
            await counted(w, "portal", portal_cases(w, who))  # sessions, not bearer tokens
        await counted(w, "admin", admin_cases(w, who))
        await counted(w, "ldes", ldes_cases(w, who))
        await counted(w, "catalogue", catalogue_cases(w, who))
        await counted(w, "hub", hub_cases(w, who))


def report(w: World, backend: str, elapsed: float) -> str:
    """The figures of a run, in total and per interface (printed, and shown on failure)."""
    lines = [
        f"matrix [{backend}]: "
        + ", ".join(f"{w.figures[k]} {k}" for k in FIGURES)
        + f", {len(w.failures)} failures, {elapsed:.1f} s"
    ]
    for interface in INTERFACES:
        lines.append(
            f"  {interface:10} "
            + ", ".join(f"{w.figures[f'{interface}: {k}']} {k}" for k in FIGURES)
            + f", {w.seconds[interface]:.1f} s"
        )
    return "\n".join(lines)


#: the entities read: one of each owner and category, and the copies within the scoped data
#: sets' scope (the others of a scoped type are in no data set, like the loose ones)
READ_ITEMS = [i for i in ITEMS if i.id[-1] == "0" or i.category.startswith("scoped")]
#: the entities written: one of each owner and data-set policy, and one in no data set
WRITE_ITEMS = [
    i
    for i in ITEMS
    if (i.id[-1] == "0" and not i.kind.startswith("scoped")) or i.category == "scoped-restricted"
]
#: the OIDC principals: their reads on the entities that are not open, writes on open ones
OIDC_READ_ITEMS = [i for i in ITEMS if i.id[-1] == "0" and i.kind in ("restricted", "private")]
OIDC_WRITE_ITEMS = [i for i in ITEMS if i.id[-1] == "0" and i.kind == "open"]


async def test_cross_organisation_matrix(world: World, database_url: str) -> None:
    started = time.perf_counter()
    # the same cases on both backends: API keys on every interface, the same roles as OIDC
    # tokens on every read interface (and the writes of one open entity per owner)
    await run_matrix(world, PRINCIPALS, READ_ITEMS, WRITE_ITEMS)
    await run_matrix(world, OIDC_PRINCIPALS, OIDC_READ_ITEMS, OIDC_WRITE_ITEMS)
    elapsed = time.perf_counter() - started
    backend = database_url.split(":", 1)[0]
    print("\n" + report(world, backend, elapsed))  # the figures quoted in docs/security.md
    assert world.failures == [], (
        report(world, backend, elapsed) + "\n" + "\n".join(world.failures[:40])
    )
    assert world.figures["cases"] >= 10_000
    assert all(world.figures[f"{i}: cases"] > 0 for i in INTERFACES)
    # refused authorisations are in the audit log (route templates, never concrete URLs), and
    # the hash chain still verifies
    count, problems = await world.gov.verify_audit()
    assert problems == [] and count > 0
    refused = [
        r
        for r in await world.gov.store.audit_records(after=0, limit=1_000_000)
        if r.action == "authz.refused" and r.actor.startswith("key:")
    ]
    assert {r.detail["interface"] for r in refused} == {"ngsi-ld", "admin"}
    assert all("urn:" not in str(r.detail) for r in refused)
    # every fixture entity is still there, as it was made
    for item in ITEMS:
        assert await world.stored(item.id) is not None, item.id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_matrix_catches_a_leaky_read_path(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The matrix can fail: with the one read rule broken (everyone reads everything) and the
    hub's write rule broken (everyone edits), every interface counts unauthorised 2xx or
    foreign rows, and the report names them per interface."""

    async def everything(self: Governance, *args: Any, **kwargs: Any) -> None:
        return None

    async def anyone(self: Governance, *args: Any, **kwargs: Any) -> bool:
        return True

    monkeypatch.setattr(Governance, "readable_for", everything)
    monkeypatch.setattr(Governance, "may_read", anyone)
    monkeypatch.setattr(type(world.app.state.hub), "may_edit", anyone)
    who = by_name("b.reader")
    private = next(i for i in ITEMS if i.owner == "a" and i.kind == "private")
    await counted(world, "ngsi-ld", entity_reads(world, who, private))
    await counted(world, "ngsi-ld", discovery_cases(world, who))
    await counted(world, "ldes", ldes_cases(world, who))
    await counted(world, "catalogue", catalogue_cases(world, who))
    await counted(world, "portal", portal_cases(world, who))
    await counted(world, "hub", hub_cases(world, who))
    text = report(world, "sqlite", 0.0)
    for interface in ("ngsi-ld", "ldes", "catalogue", "portal", "hub"):
        caught = (
            world.figures[f"{interface}: unauthorised 2xx"]
            + world.figures[f"{interface}: foreign rows"]
        )
        assert caught > 0, f"{interface} leak not caught\n{text}"
        assert f"  {interface} " in text
    assert world.failures
