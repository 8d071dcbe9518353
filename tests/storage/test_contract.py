"""The storage contract: every test runs against SQLite and PostgreSQL (`backend` fixture)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from storage_docs import LOCATION, NS, entity

from smartregion.core.geo import parse_geo_query
from smartregion.core.qlang import parse_q
from smartregion.core.scopes import parse_scope_q
from smartregion.errors import AlreadyExists
from smartregion.storage import DEFAULT_TENANT, Delete, EntityQuery, Put, Store, WriteOp, migrations

pytestmark = pytest.mark.anyio


def _expand(term: str) -> str:
    return NS + term


async def put(store: Store, *docs: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None:
    await store.transact(
        tenant, [d["id"] for d in docs], lambda _: ([Put(d) for d in docs], None), owner="org:a"
    )


async def ids(store: Store, query: EntityQuery, tenant: str = DEFAULT_TENANT) -> list[str]:
    query.limit = 1000
    return [d["id"] for d in (await store.query(tenant, query)).docs]


def types(*names: str) -> list[frozenset[str]]:
    return [frozenset({NS + n}) for n in names]


# --- migrations -------------------------------------------------------------------------


async def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    assert await store.migrate() == []  # the fixture applied them already
    assert await store.migrate() == []
    await put(store, entity(1, temperature=20))
    assert await store.get_entity("", "urn:ngsi-ld:T:1") is not None


async def test_fresh_database_applies_every_migration(store_url: str) -> None:
    from smartregion.storage import open_store

    s = open_store(store_url)
    await s.open()
    try:
        applied = await s.migrate()
        if s.backend == "sqlite":  # the PostgreSQL database is shared by the session
            shipped = migrations.discover("smartregion.storage.sqlite.migrations")
            assert applied == [m.name for m in shipped]
            assert applied[:2] == ["0001_initial", "0002_subscriptions"]
        assert await s.migrate() == []
        await s.health()
    finally:
        await s.close()


# --- transact ---------------------------------------------------------------------------


async def test_create_read_replace_delete(store: Store) -> None:
    doc = entity(1, temperature=20.5, name="a")
    await put(store, doc)
    assert await store.get_entity("", doc["id"]) == doc
    assert await store.get_entities("", [doc["id"], "urn:ngsi-ld:T:none"]) == {doc["id"]: doc}

    changed = entity(1, temperature=30)
    await put(store, changed)
    assert await store.get_entity("", doc["id"]) == changed

    await store.transact("", [doc["id"]], lambda _: ([Delete(doc["id"])], None), owner="o")
    assert await store.get_entity("", doc["id"]) is None
    assert await ids(store, EntityQuery()) == []


async def test_a_replaced_entity_is_found_by_its_new_types_and_attributes_only(
    store: Store,
) -> None:
    # the index rows of the types and attributes a replacement drops are removed — only those:
    # the other entities with the same types and attributes keep theirs
    def sensor(key: int, types: tuple[str, ...] = ("T", "Sensor"), **attrs: Any) -> dict[str, Any]:
        doc = entity(key, **attrs)
        doc["type"] = [NS + t for t in types]
        return doc

    point = {"type": "Point", "coordinates": [3.7, 51]}
    for key in (1, 2, 3):
        await put(store, sensor(key, temperature=20.5 + key, location=point))
    dropped_attrs = sensor(1, humidity=60)  # same types, other attributes
    dropped_type = sensor(3, ("T",), temperature=23.5, location=point)  # same attributes
    await put(store, dropped_attrs, dropped_type)
    assert await store.get_entity("", dropped_attrs["id"]) == dropped_attrs
    assert await store.get_entity("", dropped_type["id"]) == dropped_type
    sensors = [frozenset({NS + "Sensor"})]
    assert await ids(store, EntityQuery(types=sensors)) == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"]
    warm = parse_q("temperature>20", _expand)
    assert await ids(store, EntityQuery(types=sensors, q=warm)) == ["urn:ngsi-ld:T:2"]
    assert await ids(store, EntityQuery(q=warm)) == ["urn:ngsi-ld:T:2", "urn:ngsi-ld:T:3"]
    near = parse_geo_query("near;maxDistance==1000", "Point", "[3.7,51]", None)
    assert await ids(store, EntityQuery(geo=near)) == ["urn:ngsi-ld:T:2", "urn:ngsi-ld:T:3"]
    humid = await ids(store, EntityQuery(attrs=frozenset({NS + "humidity"})))
    assert humid == ["urn:ngsi-ld:T:1"]


async def test_transact_sees_current_docs_and_returns_result(store: Store) -> None:
    await put(store, entity(1, n=1))
    seen: dict[str, Any] = {}

    def mutate(current: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], str]:
        seen.update(current)
        return [], "done"

    result = await store.transact("", ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"], mutate, owner="o")
    assert result == "done"
    assert seen["urn:ngsi-ld:T:1"] == entity(1, n=1)
    assert seen["urn:ngsi-ld:T:2"] is None


async def test_exception_in_mutate_rolls_back(store: Store) -> None:
    await put(store, entity(1, n=1))

    def mutate(current: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], None]:
        raise AlreadyExists("no")

    with pytest.raises(AlreadyExists):
        await store.transact("", ["urn:ngsi-ld:T:1"], mutate, owner="o")
    assert await store.get_entity("", "urn:ngsi-ld:T:1") == entity(1, n=1)


async def test_failing_write_writes_nothing(store: Store) -> None:
    await put(store, entity(1, n=1))
    bad = entity(2, n=2)
    bad["self"] = {1, 2}  # not JSON-serialisable: the write fails after other rows were sent

    ops: list[WriteOp] = [Put(entity(1, n=99)), Delete("urn:ngsi-ld:T:1"), Put(entity(3)), Put(bad)]
    with pytest.raises(TypeError):
        await store.transact("", ["urn:ngsi-ld:T:1"], lambda _: (ops, None), owner="o")
    assert await store.get_entity("", "urn:ngsi-ld:T:1") == entity(1, n=1)
    assert await ids(store, EntityQuery()) == ["urn:ngsi-ld:T:1"]
    # and the store still works
    await put(store, entity(4))
    assert await store.get_entity("", "urn:ngsi-ld:T:4") == entity(4)


async def test_concurrent_increments_lose_no_update(store: Store) -> None:
    eid = "urn:ngsi-ld:T:counter"

    def increment(current: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], int]:
        doc = current[eid]
        n = 0 if doc is None else doc["attrs"][NS + "n"][0]["value"]
        return [Put(entity("counter", n=n + 1))], n + 1

    results = await asyncio.gather(
        *(store.transact("", [eid], increment, owner="o") for _ in range(50))
    )
    assert sorted(results) == list(range(1, 51))
    doc = await store.get_entity("", eid)
    assert doc is not None and doc["attrs"][NS + "n"][0]["value"] == 50


async def test_concurrent_creates_of_one_id_only_one_succeeds(store: Store) -> None:
    eid = "urn:ngsi-ld:T:1"

    def create(current: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], str]:
        if current[eid] is not None:
            raise AlreadyExists(eid)
        return [Put(entity(1))], "created"

    outcomes = await asyncio.gather(
        *(store.transact("", [eid], create, owner="o") for _ in range(20)), return_exceptions=True
    )
    assert outcomes.count("created") == 1
    assert all(isinstance(o, AlreadyExists) for o in outcomes if o != "created")


async def test_concurrent_writers_commit_alone_or_together_but_a_failure_stays_its_own(
    store: Store,
) -> None:
    # Both backends group-commit concurrent transactions: whatever is grouped, a failing one
    # raises its own error and writes nothing, the others all commit, and every one sees the
    # state the ones before it left (the shared counter loses no increment).
    await put(store, entity("counter", n=0), entity("victim", n=1))
    counter = "urn:ngsi-ld:T:counter"

    def increment(current: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], int]:
        doc = current[counter]
        assert doc is not None
        n = doc["attrs"][NS + "n"][0]["value"] + 1
        return [Put(entity("counter", n=n))], n

    def create(k: int) -> Any:
        return lambda _: ([Put(entity(k, n=k))], k)

    def refuse(_: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], None]:
        raise AlreadyExists("refused")

    unserialisable = entity("victim", n=2)
    unserialisable["self"] = {1, 2}
    bad: list[WriteOp] = [Delete("urn:ngsi-ld:T:victim"), Put(entity(999)), Put(unserialisable)]
    calls: list[Any] = []
    for k in range(30):
        calls.append(store.transact("", [f"urn:ngsi-ld:T:{k}"], create(k), owner="o"))
        calls.append(store.transact("", [counter], increment, owner="o"))
    calls.insert(7, store.transact("", ["urn:ngsi-ld:T:victim"], refuse, owner="o"))
    calls.insert(21, store.transact("", ["urn:ngsi-ld:T:victim"], lambda _: (bad, None), owner="o"))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(outcomes.pop(21), TypeError)
    assert isinstance(outcomes.pop(7), AlreadyExists)
    assert outcomes[0::2] == list(range(30))
    assert sorted(outcomes[1::2]) == list(range(1, 31))
    assert await store.get_entity("", "urn:ngsi-ld:T:victim") == entity("victim", n=1)
    assert await store.get_entity("", "urn:ngsi-ld:T:999") is None
    assert await store.get_entity("", counter) == entity("counter", n=30)
    stored = await store.get_entities("", [f"urn:ngsi-ld:T:{k}" for k in range(30)])
    assert len(stored) == 30
    n_five = parse_q("n==5", _expand)
    assert await ids(store, EntityQuery(q=n_five)) == ["urn:ngsi-ld:T:5"]


def group_sizes(store: Store) -> list[int]:
    """Spy on the store's group commits: the sizes of the groups it commits, in order."""
    sizes: list[int] = []
    commit_group = store._commit_group  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(commit_group):

        async def spy_async(group: list[Any], **how: Any) -> None:
            sizes.append(len(group))
            await commit_group(group, **how)

        store._commit_group = spy_async  # type: ignore[attr-defined]
    else:

        def spy(group: list[Any], **how: Any) -> None:
            sizes.append(len(group))
            commit_group(group, **how)

        store._commit_group = spy  # type: ignore[attr-defined]
    return sizes


async def test_writes_queued_in_the_next_turns_of_the_loop_share_one_group(store: Store) -> None:
    # Requests read from their sockets a turn or two of the event loop after the first (16
    # clients PATCHing) join its group and share its COMMIT, instead of each group taking only
    # the few queued in the same turn (docs/benchmarks.md, ninth session).
    sizes = group_sizes(store)

    async def write(k: int, turns: int) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        await store.transact("", [f"urn:ngsi-ld:T:{k}"], lambda _: ([Put(entity(k))], k), owner="o")

    await asyncio.gather(write(1, 0), write(2, 1), write(3, 1))
    assert sizes == [3]
    sizes.clear()
    await write(4, 0)  # a write alone is written too, in a group of its own
    assert sizes == [1]
    assert len(await store.get_entities("", [f"urn:ngsi-ld:T:{k}" for k in range(1, 5)])) == 4


async def test_batch_of_a_thousand_in_one_transaction(store: Store) -> None:
    docs = [
        entity(
            i,
            temperature=float(i),
            name=f"n{i}",
            location={"type": "Point", "coordinates": [4.0, 51.0]},
        )
        for i in range(1000)
    ]
    await put(store, *docs)
    await put(store, *[entity(i, temperature=float(i + 1)) for i in range(1000)])  # replace all
    page = await store.query("", EntityQuery(count=True, limit=5, offset=10))
    assert page.count == 1000
    assert [d["id"] for d in page.docs] == [f"urn:ngsi-ld:T:{i}" for i in range(10, 15)]
    assert page.docs[0]["attrs"][NS + "temperature"][0]["value"] == 11.0
    near = parse_geo_query("near;maxDistance==100", "Point", "[4.0, 51.0]", None)
    assert (await store.query("", EntityQuery(geo=near, count=True))).count == 0


# --- tenants ----------------------------------------------------------------------------


async def test_tenants_are_isolated(store: Store) -> None:
    assert await store.tenant_exists(DEFAULT_TENANT)
    assert not await store.tenant_exists("acme")
    await put(store, entity(1, n=1))
    await put(store, entity(1, n=2), tenant="acme")
    assert await store.tenant_exists("acme")
    assert await store.tenants() == ["", "acme"]
    one = await store.get_entity("acme", "urn:ngsi-ld:T:1")
    assert one is not None and one["attrs"][NS + "n"][0]["value"] == 2
    q = EntityQuery(q=parse_q("n==1", _expand))
    assert await ids(store, q) == ["urn:ngsi-ld:T:1"]
    assert await ids(store, q, tenant="acme") == []
    assert await ids(store, EntityQuery(), tenant="nobody") == []
    assert await store.get_entity("nobody", "urn:ngsi-ld:T:1") is None
    assert not await store.tenant_exists("nobody")


async def test_a_transaction_without_writes_creates_no_tenant(store: Store) -> None:
    await store.transact("ghost", ["urn:ngsi-ld:T:1"], lambda _: ([], None), owner="o")
    assert not await store.tenant_exists("ghost")


# --- queries ----------------------------------------------------------------------------


@pytest.fixture
async def city(store: Store) -> Store:
    docs = [
        entity(
            1,
            "Sensor",
            temperature=25.0,
            name="alpha",
            location={"type": "Point", "coordinates": [3.72, 51.05]},
        ),
        entity(
            2,
            "Sensor",
            temperature=15,
            name="beta",
            location={"type": "Point", "coordinates": [4.40, 51.22]},
        ),
        entity(3, "Vehicle", speed=50, name="gamma"),
        entity(4, "Sensor", temperature=[18, 22], name="delta"),
    ]
    docs[1]["type"].append(NS + "Device")
    docs[1]["type"].sort()
    docs[2]["attrs"][NS + "owner"] = [{"type": "Relationship", "object": "urn:ngsi-ld:Person:zed"}]
    docs[0]["scope"] = ["/Flanders/Ghent"]
    docs[1]["scope"] = ["/Flanders/Antwerp"]
    await put(store, *docs)
    return store


def q(text: str) -> EntityQuery:
    return EntityQuery(q=parse_q(text, _expand))


async def test_query_by_ids_pattern_types_attrs(city: Store) -> None:
    assert await ids(city, EntityQuery(ids=("urn:ngsi-ld:Vehicle:3", "urn:ngsi-ld:Sensor:1"))) == [
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Vehicle:3",
    ]
    assert await ids(city, EntityQuery(id_pattern="Sensor:[12]$")) == [
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Sensor:2",
    ]
    assert await ids(city, EntityQuery(types=types("Vehicle"))) == ["urn:ngsi-ld:Vehicle:3"]
    assert len(await ids(city, EntityQuery(types=types("Vehicle", "Sensor")))) == 4
    both = [frozenset({NS + "Sensor", NS + "Device"})]
    assert await ids(city, EntityQuery(types=both)) == ["urn:ngsi-ld:Sensor:2"]
    assert await ids(city, EntityQuery(types=types("Unknown"))) == []
    assert await ids(city, EntityQuery(attrs=frozenset({NS + "speed", NS + "nothing"}))) == [
        "urn:ngsi-ld:Vehicle:3"
    ]


async def test_paging_is_stable_and_counts_are_exact(city: Store) -> None:
    first = await city.query("", EntityQuery(limit=2, count=True))
    second = await city.query("", EntityQuery(limit=2, offset=2, count=True))
    assert first.count == second.count == 4
    assert [d["id"] for d in first.docs + second.docs] == [
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Sensor:2",
        "urn:ngsi-ld:Vehicle:3",
        "urn:ngsi-ld:Sensor:4",
    ]
    none = await city.query("", EntityQuery(limit=0, count=True, types=types("Sensor")))
    assert none.docs == [] and none.count == 3
    assert (await city.query("", EntityQuery())).count is None
    # a query Python must filter pages and counts the same way
    scoped = EntityQuery(scope_q=parse_scope_q("/Flanders/#"), limit=1, offset=1, count=True)
    result = await city.query("", scoped)
    assert [d["id"] for d in result.docs] == ["urn:ngsi-ld:Sensor:2"] and result.count == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("temperature>20", [1, 4]),
        ("temperature>=25", [1]),
        ("temperature<16", [2]),
        ("temperature==15", [2]),
        ("temperature==15..18", [2, 4]),
        ("temperature==22,25", [1, 4]),
        ("temperature!=18", [1, 2]),
        ('name=="beta"', [2]),
        ('name>"c"', [3, 4]),
        ('name~="^[ab]"', [1, 2]),
        ("temperature", [1, 2, 4]),
        ("!temperature", [3]),
        ("owner==urn:ngsi-ld:Person:zed", [3]),
        ('owner>"a"', []),
        ('temperature>20;name=="delta"', [4]),
        ("speed>10|temperature<16", [2, 3]),
        ("temperature>100|nothing", []),
        ("!nothing", [1, 2, 3, 4]),
        ("temperature.observedAt", []),
        ('modifiedAt>"2025"', [1, 2, 3, 4]),
    ],
)
async def test_q(city: Store, text: str, expected: list[int]) -> None:
    found = await ids(city, q(text))
    assert [int(i.rsplit(":", 1)[1]) for i in found] == expected
    counted = await city.query("", EntityQuery(q=parse_q(text, _expand), count=True, limit=1))
    assert counted.count == len(expected)


@pytest.mark.parametrize(
    ("type_names", "text", "count"),
    [
        (["Sensor"], "temperature>10", 3),
        (["Device"], "temperature>10", 1),
        (["Vehicle", "Device"], "speed==50", 1),
        (None, "temperature==18,22", 1),
        (["Unknown"], "temperature>10", 0),
        (None, 'name>"b"', 3),
    ],
)
async def test_counts_by_type_and_one_term(
    city: Store, type_names: list[str] | None, text: str, count: int
) -> None:
    query = EntityQuery(q=parse_q(text, _expand), count=True, limit=0)
    if type_names is not None:
        query.types = types(*type_names)
    assert (await city.query("", query)).count == count


async def test_geo_queries(city: Store) -> None:
    near_ghent = parse_geo_query("near;maxDistance==2000", "Point", "[3.73, 51.05]", None)
    assert await ids(city, EntityQuery(geo=near_ghent)) == ["urn:ngsi-ld:Sensor:1"]
    far = parse_geo_query("near;minDistance==2000", "Point", "[3.73, 51.05]", None)
    assert await ids(city, EntityQuery(geo=far)) == ["urn:ngsi-ld:Sensor:2"]
    box = "[[[3.0,50.0],[5.0,50.0],[5.0,52.0],[3.0,52.0],[3.0,50.0]]]"
    within = parse_geo_query("within", "Polygon", box, None)
    assert await ids(city, EntityQuery(geo=within, count=True)) == [
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Sensor:2",
    ]
    other = parse_geo_query("within", "Polygon", box, "elsewhere", _expand)
    assert await ids(city, EntityQuery(geo=other)) == []


async def test_scope_queries(city: Store) -> None:
    assert await ids(city, EntityQuery(scope_q=parse_scope_q("/Flanders/Ghent"))) == [
        "urn:ngsi-ld:Sensor:1"
    ]


async def test_delete_where(city: Store) -> None:
    assert (
        await city.delete_where(
            "", EntityQuery(types=types("Sensor"), q=parse_q("temperature>20", _expand))
        )
        == 2
    )
    assert await ids(city, EntityQuery()) == ["urn:ngsi-ld:Sensor:2", "urn:ngsi-ld:Vehicle:3"]
    assert await ids(city, q("temperature")) == ["urn:ngsi-ld:Sensor:2"]
    assert await city.delete_where("nobody", EntityQuery()) == 0


# --- discovery --------------------------------------------------------------------------


async def test_entity_types_and_attribute_infos(city: Store) -> None:
    infos = {t.type_iri: t for t in await city.entity_types("")}
    assert sorted(infos) == [NS + "Device", NS + "Sensor", NS + "Vehicle"]
    assert infos[NS + "Sensor"].entity_count == 3
    assert infos[NS + "Vehicle"].attribute_names == [NS + "name", NS + "owner", NS + "speed"]
    attrs = {a.attr_iri: a for a in await city.attribute_infos("")}
    assert attrs[NS + "owner"].attribute_types == ["Relationship"]
    assert attrs[NS + "owner"].type_names == [NS + "Vehicle"]
    assert attrs[NS + "name"].attribute_count == 4
    assert attrs[LOCATION].attribute_types == ["GeoProperty"]
    assert attrs[NS + "temperature"].type_names == [NS + "Device", NS + "Sensor"]
    assert await city.entity_types("nobody") == []


# --- @context documents -----------------------------------------------------------------


async def test_contexts(store: Store) -> None:
    doc = {"@context": {"b": "urn:b", "a": "urn:a"}}
    await store.put_context("urn:ctx:1", doc)
    await store.put_context("urn:ctx:0", {"@context": {}}, kind="cached")
    got = await store.get_context("urn:ctx:1")
    assert got is not None and got.document == doc and got.kind == "hosted"
    assert list(got.document["@context"]) == ["b", "a"]  # kept verbatim
    assert [c.context_id for c in await store.list_contexts()] == ["urn:ctx:0", "urn:ctx:1"]
    assert await store.delete_context("urn:ctx:1")
    assert not await store.delete_context("urn:ctx:1")
    assert await store.get_context("urn:ctx:1") is None


async def test_replacing_reindexes_exactly_what_changed(store: Store) -> None:
    ghent = {"type": "Point", "coordinates": [3.72, 51.05]}
    antwerp = {"type": "Point", "coordinates": [4.40, 51.22]}
    await put(store, entity(1, "Sensor", temperature=25, name="a", location=ghent))
    eid = "urn:ngsi-ld:Sensor:1"

    def edit(current: dict[str, dict[str, Any] | None]) -> tuple[list[WriteOp], None]:
        doc = current[eid]
        assert doc is not None
        # edits the document it was given in place: the index must still follow
        doc["type"] = [NS + "Device"]
        del doc["attrs"][NS + "name"]
        doc["attrs"][NS + "temperature"][0]["value"] = 5
        doc["attrs"][LOCATION][0]["value"] = antwerp
        doc["attrs"][NS + "speed"] = [{"type": "Property", "value": 7}]
        return [Put(doc)], None

    await store.transact("", [eid], edit, owner="o")
    assert await ids(store, EntityQuery(types=types("Sensor"))) == []
    assert await ids(store, EntityQuery(types=types("Device"))) == [eid]
    assert await ids(store, q("name")) == []
    assert await ids(store, q("temperature>20")) == []
    assert await ids(store, q("temperature==5;speed==7")) == [eid]
    near = "near;maxDistance==1000"
    at_ghent = parse_geo_query(near, "Point", "[3.72, 51.05]", None)
    at_antwerp = parse_geo_query(near, "Point", "[4.40, 51.22]", None)
    assert await ids(store, EntityQuery(geo=at_ghent)) == []
    assert await ids(store, EntityQuery(geo=at_antwerp)) == [eid]
    # replaced through an op on an id that was not locked-and-read: a full re-index
    other = entity(1, "Sensor", temperature=30, location=ghent)
    await store.transact("", [], lambda _: ([Put(other)], None), owner="o")
    assert await ids(store, EntityQuery(types=types("Device"))) == []
    assert await ids(store, q("speed")) == []
    assert await ids(store, EntityQuery(geo=at_ghent, q=parse_q("temperature>20", _expand))) == [
        eid
    ]
