"""The `readable` filter (what a caller may read) on both backends: queries, counts, discovery.

Every test writes into a tenant of its own. The hypothesis test compares the stores against a
Python reference (`Readable.admits`) over random owners, types, filters and restrictions.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_docs import LOCATION, NS, entity

from smartregion.core.geo import geo_matches, parse_geo_query
from smartregion.core.qlang import matches, parse_q
from smartregion.core.scopes import scopes_within
from smartregion.storage import EntityQuery, Put, Readable, Store, open_store
from smartregion.storage.base import Slice

T = NS + "T"
U = NS + "U"
V = NS + "V"


def fresh_tenant() -> str:
    return f"readable-{secrets.token_hex(4)}"


async def put(store: Store, tenant: str, owner: str, *docs: dict[str, Any]) -> None:
    await store.transact(
        tenant, [d["id"] for d in docs], lambda _: ([Put(d) for d in docs], None), owner=owner
    )


def typed(key: str, *types: str, **attrs: Any) -> dict[str, Any]:
    doc = entity(key, "T", **attrs)
    doc["id"] = f"urn:ngsi-ld:E:{key}"
    doc["type"] = sorted(NS + t for t in types)
    return doc


async def ids(store: Store, tenant: str, query: EntityQuery) -> tuple[list[str], int | None]:
    result = await store.query(tenant, query)
    return [d["id"] for d in result.docs], result.count


@pytest.fixture
async def loaded(store: Store) -> tuple[Store, str]:
    """a: a1 (T), a2 (U); b: b1 (T), b2 (U), b3 (T, U), b4 (V)."""
    tenant = fresh_tenant()
    await put(store, tenant, "a", typed("a1", "T", n=1), typed("a2", "U", n=2, m="x"))
    await put(
        store,
        tenant,
        "b",
        typed("b1", "T", n=3),
        typed("b2", "U", n=4, secret=1),
        typed("b3", "T", "U", n=5),
        typed("b4", "V", n=6, hidden=1),
    )
    return store, tenant


@pytest.mark.anyio
async def test_owners_read_all_of_their_entities(loaded: tuple[Store, str]) -> None:
    store, tenant = loaded
    only_a = Readable(owners=frozenset({"a"}))
    assert await ids(store, tenant, EntityQuery(readable=only_a, count=True)) == (
        ["urn:ngsi-ld:E:a1", "urn:ngsi-ld:E:a2"],
        2,
    )
    # a count that would otherwise come from the attribute-value index alone
    q = parse_q("n>0", lambda t: NS + t)
    query = EntityQuery(types=[frozenset({T})], q=q, readable=only_a, count=True, limit=0)
    assert await ids(store, tenant, query) == ([], 1)
    unrestricted = EntityQuery(types=[frozenset({T})], q=q, count=True, limit=0)
    assert await ids(store, tenant, unrestricted) == ([], 3)


@pytest.mark.anyio
async def test_slices_read_an_owners_entities_of_some_types(loaded: tuple[Store, str]) -> None:
    store, tenant = loaded
    readable = Readable(owners=frozenset({"a"}), slices=(Slice("b", frozenset({U})),))
    found, count = await ids(store, tenant, EntityQuery(readable=readable, count=True))
    assert found == ["urn:ngsi-ld:E:a1", "urn:ngsi-ld:E:a2", "urn:ngsi-ld:E:b2", "urn:ngsi-ld:E:b3"]
    assert count == 4
    # a slice is the owner's only: a's T entity is not in b's T slice and vice versa
    t_of_b = Readable(slices=(Slice("b", frozenset({T})),))
    assert (await ids(store, tenant, EntityQuery(readable=t_of_b)))[0] == [
        "urn:ngsi-ld:E:b1",
        "urn:ngsi-ld:E:b3",
    ]
    # retrieving one entity goes through the same filter
    assert (await ids(store, tenant, EntityQuery(ids=("urn:ngsi-ld:E:b2",), readable=t_of_b)))[
        0
    ] == []
    assert (await ids(store, tenant, EntityQuery(ids=("urn:ngsi-ld:E:b3",), readable=t_of_b)))[
        0
    ] == ["urn:ngsi-ld:E:b3"]


@pytest.mark.anyio
async def test_unknown_organisations_and_types_select_nothing(loaded: tuple[Store, str]) -> None:
    store, tenant = loaded
    for readable in [
        Readable(),
        Readable(owners=frozenset({"nobody"})),
        Readable(slices=(Slice("nobody", frozenset({T})),)),
        Readable(slices=(Slice("b", frozenset({NS + "Unknown"})),)),
        Readable(slices=(Slice("b", frozenset()),)),
    ]:
        assert await ids(store, tenant, EntityQuery(readable=readable, count=True)) == ([], 0)
        assert await store.entity_types(tenant, readable) == []
        assert await store.attribute_infos(tenant, readable) == []
    # an unknown type beside a known one still reads the known one
    mixed = Readable(slices=(Slice("b", frozenset({NS + "Unknown", V})),))
    assert (await ids(store, tenant, EntityQuery(readable=mixed)))[0] == ["urn:ngsi-ld:E:b4"]


@pytest.mark.anyio
async def test_discovery_describes_readable_entities_only(loaded: tuple[Store, str]) -> None:
    store, tenant = loaded
    readable = Readable(owners=frozenset({"a"}), slices=(Slice("b", frozenset({T})),))
    types = {t.type_iri: t for t in await store.entity_types(tenant, readable)}
    # V (b4 only) is foreign: not listed; the counts cover readable entities only
    assert sorted(types) == [T, U]
    assert types[T].entity_count == 3  # a1, b1, b3
    assert types[U].entity_count == 2  # a2, b3 (b2 is not readable)
    assert types[U].attribute_names == [NS + "m", NS + "n"]  # not b2's `secret`
    attrs = {a.attr_iri: a for a in await store.attribute_infos(tenant, readable)}
    assert sorted(attrs) == [NS + "m", NS + "n"]  # no `secret`, no `hidden`
    assert attrs[NS + "n"].attribute_count == 4
    assert attrs[NS + "n"].type_names == [T, U]
    # unrestricted: everything
    everything = {t.type_iri: t.entity_count for t in await store.entity_types(tenant)}
    assert everything == {T: 3, U: 3, V: 1}
    assert {a.attr_iri for a in await store.attribute_infos(tenant)} == {
        NS + "n",
        NS + "m",
        NS + "secret",
        NS + "hidden",
    }


# --- exactness against a Python reference --------------------------------------------------

ORGS = ["o1", "o2", "o3"]
TYPES = ["A", "B", "C"]


def corpus() -> list[tuple[str, dict[str, Any]]]:
    """(owner, document) pairs with random type sets, numbers and points, deterministically."""
    rng = random.Random(5)
    out = []
    for i in range(48):
        types = rng.sample(TYPES, rng.randint(1, 2))
        attrs: dict[str, Any] = {"n": rng.randint(0, 9)}
        if rng.random() < 0.5:
            attrs["x"] = rng.choice(["p", "q"])
        if rng.random() < 0.7:
            attrs["location"] = {
                "type": "Point",
                "coordinates": [3.7 + rng.uniform(-0.02, 0.02), 51.05 + rng.uniform(-0.02, 0.02)],
            }
        doc = typed(str(i), *types, **attrs)
        if rng.random() < 0.7:
            doc["scope"] = rng.sample(SCOPES, rng.randint(1, 2))
        out.append((rng.choice(ORGS), doc))
    return out


#: entity scopes: levels, sub-levels, a leading `/` left out (§4.18 allows it), and names that
#: share a text prefix with a scope without lying within it
SCOPES = ["/G", "/G/C", "G/C/N", "/G/CN", "/GX", "/A/G", "C", "/G/C/N/M"]


_readables = st.builds(
    lambda owners, slices: Readable(owners=frozenset(owners), slices=tuple(slices)),
    st.sets(st.sampled_from([*ORGS, "nobody"]), max_size=2),
    st.lists(
        st.builds(
            Slice,
            st.sampled_from([*ORGS, "nobody"]),
            st.frozensets(st.sampled_from([NS + t for t in [*TYPES, "Z"]]), max_size=2),
            st.sampled_from([None, None, "/G", "/G/C", "/C", "/Z"]),
        ),
        max_size=3,
    ),
)


def test_readable_filter_agrees_with_python(store_url: str) -> None:
    docs = corpus()
    tenant = fresh_tenant()
    owner_of = {doc["id"]: owner for owner, doc in docs}
    loop = asyncio.new_event_loop()
    store = open_store(store_url)

    async def load() -> None:
        await store.open()
        await store.migrate()
        for org in ORGS:
            await put(store, tenant, org, *[d for o, d in docs if o == org])

    loop.run_until_complete(load())
    # docs in storage order (the order queries return)
    ordered = [d for org in ORGS for o, d in docs if o == org]
    expand = lambda t: NS + t  # noqa: E731
    filters = [
        EntityQuery(),
        EntityQuery(types=[frozenset({NS + "A"})], q=parse_q("n>4", expand)),  # exact, fast count
        EntityQuery(q=parse_q("n!=3", expand)),  # decided in Python
        EntityQuery(  # decided on indexed points
            geo=parse_geo_query("near;maxDistance==1500", "Point", "[3.7,51.05]", None, expand)
        ),
    ]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(readable=_readables, which=st.integers(0, len(filters) - 1), offset=st.integers(0, 3))
    def check(readable: Readable, which: int, offset: int) -> None:
        base = filters[which]

        def selected(doc: dict[str, Any]) -> bool:
            if base.types is not None and not any(c <= set(doc["type"]) for c in base.types):
                return False
            if base.q is not None and not matches(base.q, doc):
                return False
            if base.geo is not None and not geo_matches(base.geo, doc):
                return False
            return readable.admits(owner_of[doc["id"]], doc["type"], doc.get("scope"))

        expected = [d["id"] for d in ordered if selected(d)]

        async def run() -> None:
            full = await store.query(
                tenant,
                EntityQuery(
                    types=base.types,
                    q=base.q,
                    geo=base.geo,
                    readable=readable,
                    limit=1000,
                    count=True,
                ),
            )
            assert [d["id"] for d in full.docs] == expected
            assert full.count == len(expected)
            page = await store.query(
                tenant,
                EntityQuery(
                    types=base.types,
                    q=base.q,
                    geo=base.geo,
                    readable=readable,
                    limit=2,
                    offset=offset,
                    count=True,
                ),
            )
            assert [d["id"] for d in page.docs] == expected[offset : offset + 2]
            assert page.count == len(expected)
            # discovery over the same readable entities
            readable_docs = [
                d for d in ordered if readable.admits(owner_of[d["id"]], d["type"], d.get("scope"))
            ]
            want_types: dict[str, int] = {}
            for d in readable_docs:
                for t in d["type"]:
                    want_types[t] = want_types.get(t, 0) + 1
            got = {t.type_iri: t.entity_count for t in await store.entity_types(tenant, readable)}
            assert got == want_types
            want_attrs: dict[str, int] = {}
            for d in readable_docs:
                for a, instances in d["attrs"].items():
                    if a != LOCATION:
                        want_attrs[a] = want_attrs.get(a, 0) + len(instances)
            got_attrs = {
                a.attr_iri: a.attribute_count
                for a in await store.attribute_infos(tenant, readable)
                if a.attr_iri != LOCATION
            }
            assert got_attrs == want_attrs

        loop.run_until_complete(run())

    try:
        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()


# --- scoped slices (data sets with a scope) ------------------------------------------------


def test_scopes_within_is_the_scope_hierarchy() -> None:
    # NGSI-LD §4.19 EXAMPLE 2: /Madrid/# covers /Madrid and everything below it
    assert scopes_within("/Madrid", ["/Madrid"])
    assert scopes_within("/Madrid", ["/Madrid/Gardens", "/Other"])
    assert scopes_within("/Madrid", ["Madrid/Gardens/Retiro"])  # leading / is optional
    assert not scopes_within("/Madrid", ["/MadridNorth", "/Spain/Madrid"])
    assert not scopes_within("/Madrid/Gardens", ["/Madrid"])
    assert not scopes_within("/Madrid", [])
    assert not scopes_within("/Madrid", None)
    assert not scopes_within("/Madrid", ["urn:ngsi-ld:null"])


@pytest.mark.anyio
async def test_scoped_slices_read_entities_within_the_scope(store: Store) -> None:
    tenant = fresh_tenant()
    docs = {
        "in": ["/Ghent/Centre"],
        "below": ["/Ghent/Centre/Korenmarkt"],
        "noslash": ["Ghent/Centre"],
        "two": ["/Leuven", "/Ghent/Centre/Kouter"],
        "prefix": ["/Ghent/CentreNorth"],
        "above": ["/Ghent"],
        "other": ["/Leuven"],
        "none": None,
    }
    for key, scopes in docs.items():
        doc = typed(key, "T", n=1, **{key: 1})
        if scopes is not None:
            doc["scope"] = scopes
        await put(store, tenant, "b", doc)
    await put(store, tenant, "b", typed("u", "U", n=1))  # right scope, wrong type
    store_u = await store.get_entity(tenant, "urn:ngsi-ld:E:u")
    assert store_u is not None
    within = ["in", "below", "noslash", "two"]
    readable = Readable(slices=(Slice("b", frozenset({T, U}), "/Ghent/Centre"),))
    await put(store, tenant, "b", {**store_u, "scope": ["/Elsewhere"]})
    found, count = await ids(store, tenant, EntityQuery(readable=readable, count=True))
    assert found == [f"urn:ngsi-ld:E:{k}" for k in within] and count == len(within)
    # retrieve: out of scope is as if absent
    for key in docs:
        one = EntityQuery(ids=(f"urn:ngsi-ld:E:{key}",), readable=readable)
        assert (await ids(store, tenant, one))[0] == (
            [f"urn:ngsi-ld:E:{key}"] if key in within else []
        )
    # counts on the attribute-value index path agree
    q = parse_q("n==1", lambda t: NS + t)
    counted = EntityQuery(types=[frozenset({T})], q=q, readable=readable, count=True, limit=0)
    assert await ids(store, tenant, counted) == ([], len(within))
    # discovery: only attributes of entities within the scope
    attrs = {a.attr_iri for a in await store.attribute_infos(tenant, readable)}
    assert attrs == {NS + "n", *(NS + k for k in within)}
    types = {t.type_iri: t.entity_count for t in await store.entity_types(tenant, readable)}
    assert types == {T: len(within)}
    # an unscoped slice of the same owner and type reads them all (alternatives add up)
    both = Readable(slices=(*readable.slices, Slice("b", frozenset({T}))))
    assert (await ids(store, tenant, EntityQuery(readable=both, count=True)))[1] == len(docs)
    # a deeper scope reads less; an owner in `owners` reads everything regardless
    deeper = Readable(slices=(Slice("b", frozenset({T}), "/Ghent/Centre/Korenmarkt"),))
    assert (await ids(store, tenant, EntityQuery(readable=deeper)))[0] == ["urn:ngsi-ld:E:below"]
    owner = Readable(owners=frozenset({"b"}), slices=deeper.slices)
    assert (await ids(store, tenant, EntityQuery(readable=owner, count=True)))[1] == len(docs) + 1
