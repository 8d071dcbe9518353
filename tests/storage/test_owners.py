"""`Store.transact(check_owners=…)`: the owners of the locked entities, on both backends.

Write authorisation (`governance/ownership.py`) relies on it, including inside one group commit
where an earlier call created or deleted an entity a later call names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from storage_docs import entity

from smartregion.governance import Forbidden
from smartregion.storage import DEFAULT_TENANT, Delete, Put, Store

pytestmark = pytest.mark.anyio


def _put(*docs: dict[str, Any]) -> Any:
    return lambda _: ([Put(d) for d in docs], None)


async def test_existing_entities_report_their_owner_new_ones_take_the_writers(store: Store) -> None:
    a, b = entity(1, n=1), entity(2, n=2)
    await store.transact(DEFAULT_TENANT, [a["id"]], _put(a), owner="org-a")
    seen: list[dict[str, str]] = []
    # an update by another writer does not change the owner
    await store.transact(
        DEFAULT_TENANT,
        [a["id"], b["id"]],
        _put(a, b),
        owner="org-b",
        check_owners=lambda owners: seen.append(dict(owners)),
    )
    await store.transact(
        DEFAULT_TENANT,
        [a["id"], b["id"], "urn:x:none"],
        lambda _: ([], None),
        owner="org-c",
        check_owners=lambda owners: seen.append(dict(owners)),
    )
    assert seen == [{a["id"]: "org-a"}, {a["id"]: "org-a", b["id"]: "org-b"}]


async def test_a_refusing_check_writes_nothing_and_fails_only_its_call(store: Store) -> None:
    docs = [entity(i, n=i) for i in range(6)]
    await store.transact(DEFAULT_TENANT, [d["id"] for d in docs], _put(*docs), owner="org-a")
    refused = docs[2]["id"]

    def check(eid: str) -> Any:
        def run(owners: Mapping[str, str]) -> None:
            assert owners == {eid: "org-a"}
            if eid == refused:
                raise Forbidden("not yours")

        return run

    changed = [{**d, "attrs": {}} for d in docs]
    # concurrent calls: the backends may run them in one group commit
    outcomes = await asyncio.gather(
        *[
            store.transact(
                DEFAULT_TENANT, [d["id"]], _put(d), owner="org-b", check_owners=check(d["id"])
            )
            for d in changed
        ],
        return_exceptions=True,
    )
    assert [isinstance(o, Forbidden) for o in outcomes] == [d["id"] == refused for d in docs]
    stored = await store.get_entities(DEFAULT_TENANT, [d["id"] for d in docs])
    assert [stored[d["id"]]["attrs"] == {} for d in docs] == [d["id"] != refused for d in docs]


async def test_within_a_group_a_created_entity_is_the_creators_and_a_deleted_one_is_gone(
    store: Store,
) -> None:
    doc, old = entity(7, n=1), entity(8, n=1)
    await store.transact(DEFAULT_TENANT, [old["id"]], _put(old), owner="org-a")
    seen: list[dict[str, str]] = []
    await asyncio.gather(
        store.transact(DEFAULT_TENANT, [doc["id"]], _put(doc), owner="org-n"),
        store.transact(
            DEFAULT_TENANT, [old["id"]], lambda _: ([Delete(old["id"])], None), owner="org-n"
        ),
        store.transact(
            DEFAULT_TENANT,
            [doc["id"], old["id"]],
            lambda _: ([], None),
            owner="org-n",
            check_owners=lambda owners: seen.append(dict(owners)),
        ),
    )
    assert seen == [{doc["id"]: "org-n"}]
