"""Fetching linked entities (NGSI-LD 1.8 §4.5.23) from a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from smartregion.broker.linking import fetch_linked
from smartregion.core.entities import parse_entity
from smartregion.core.jsonld import TermMap
from smartregion.core.rendering import RenderOptions, linked_targets
from smartregion.storage import open_store
from smartregion.storage.base import Put, Store

pytestmark = pytest.mark.anyio

T = "default"
V = TermMap()
NOW = "2026-11-27T08:00:00.000000Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def entity(entity_id: str, **links: str | list[str]) -> dict[str, Any]:
    payload: dict[str, Any] = {"id": entity_id, "type": "Thing"}
    for name, target in links.items():
        if isinstance(target, list):
            payload[name] = {
                "type": "ListRelationship",
                "objectList": [{"object": t} for t in target],
            }
        else:
            payload[name] = {"type": "Relationship", "object": target}
    return parse_entity(payload, V, now=NOW)


class CountingStore:
    """Counts get_entities round trips of a real store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[list[str]] = []

    async def get_entities(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(sorted(ids))
        return await self.store.get_entities(tenant, ids)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/link.db")
    await s.open()
    await s.migrate()
    docs = [
        entity("urn:b:1", locatedAt="urn:c:1", owner="urn:p:1"),
        entity("urn:b:2", locatedAt="urn:c:1"),
        entity("urn:c:1", inCountry="urn:k:1", sister="urn:c:2"),
        entity("urn:c:2", sister="urn:c:1"),  # a cycle with urn:c:1
        entity("urn:k:1", members=["urn:c:1", "urn:c:2", "urn:missing"]),
        entity("urn:p:1"),
    ]
    await s.transact(
        T, [d["id"] for d in docs], lambda _: ([Put(d) for d in docs], None), owner="org"
    )
    yield s
    await s.close()


def everything(doc: dict[str, Any], state: int) -> Iterator[tuple[str, int]]:
    """Follow every relationship; the state counts the hops."""
    for _, uri in linked_targets(doc, RenderOptions()):
        yield uri, state + 1


async def roots(store: Store, *ids: str) -> list[tuple[dict[str, Any], int]]:
    found = await store.get_entities(T, list(ids))
    return [(found[i], 0) for i in ids]


async def test_one_level_one_round_trip(store: Store) -> None:
    counting = CountingStore(store)
    result = await fetch_linked(
        cast(Store, counting),
        T,
        await roots(store, "urn:b:1", "urn:b:2"),
        levels=1,
        follow=everything,
        readable=None,
    )
    assert list(result.found) == ["urn:c:1", "urn:p:1"]
    assert counting.calls == [["urn:c:1", "urn:p:1"]]  # shared target fetched once


def same_state(doc: dict[str, Any], state: int) -> Iterator[tuple[str, int]]:
    """Follow every relationship keeping the state (as unprojected render options do)."""
    for _, uri in linked_targets(doc, RenderOptions()):
        yield uri, state


async def test_cycles_end_before_the_level_limit(store: Store) -> None:
    counting = CountingStore(store)
    result = await fetch_linked(
        cast(Store, counting),
        T,
        await roots(store, "urn:b:2"),
        levels=50,
        follow=same_state,
        readable=None,
    )
    assert set(result.found) == {"urn:c:1", "urn:k:1", "urn:c:2"}
    # level 1: c1; level 2: k1 + c2; level 3: the dangling id, asked once; then nothing is new
    assert counting.calls == [["urn:c:1"], ["urn:c:2", "urn:k:1"], ["urn:missing"]]


async def test_levels_bound_the_walk(store: Store) -> None:
    counting = CountingStore(store)
    one = await fetch_linked(
        cast(Store, counting),
        T,
        await roots(store, "urn:b:2"),
        levels=1,
        follow=everything,
        readable=None,
    )
    assert list(one.found) == ["urn:c:1"] and len(counting.calls) == 1
    # a state that changes every hop is bounded by the levels alone, and nothing is re-fetched
    counting.calls.clear()
    many = await fetch_linked(
        cast(Store, counting),
        T,
        await roots(store, "urn:b:2"),
        levels=6,
        follow=everything,
        readable=None,
    )
    assert set(many.found) == {"urn:c:1", "urn:k:1", "urn:c:2"}
    assert counting.calls == [["urn:c:1"], ["urn:c:2", "urn:k:1"], ["urn:missing"]]


async def test_roots_and_known_ids_are_not_returned(store: Store) -> None:
    result = await fetch_linked(
        store,
        T,
        await roots(store, "urn:c:1", "urn:c:2"),
        levels=1,
        follow=everything,
        readable=None,
        known=["urn:k:1"],
    )
    assert list(result.found) == []
    assert result.docs() == {}


async def test_list_relationships_are_followed_and_dangling_ids_skipped(store: Store) -> None:
    result = await fetch_linked(
        store, T, await roots(store, "urn:k:1"), levels=1, follow=everything, readable=None
    )
    assert list(result.found) == ["urn:c:1", "urn:c:2"]
    assert result.found["urn:c:1"][1] == 1


async def test_follow_decides_which_relationships(store: Store) -> None:
    def only_located(doc: dict[str, Any], state: int) -> Iterator[tuple[str, int]]:
        for iri, uri in linked_targets(doc, RenderOptions()):
            if iri.endswith("locatedAt"):
                yield uri, state

    result = await fetch_linked(
        store, T, await roots(store, "urn:b:1"), levels=3, follow=only_located, readable=None
    )
    assert list(result.found) == ["urn:c:1"]


async def test_no_levels_no_round_trip(store: Store) -> None:
    counting = CountingStore(store)
    result = await fetch_linked(
        cast(Store, counting),
        T,
        await roots(store, "urn:b:1"),
        levels=0,
        follow=everything,
        readable=None,
    )
    assert len(result) == 0 and counting.calls == []
