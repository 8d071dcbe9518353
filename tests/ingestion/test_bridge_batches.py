"""The MQTT bridge writes batches of messages: one transaction each, acknowledged after its commit.

Messages are published while the bridge is away (its persistent session keeps them), so that
they reach it in one burst and are written as one batch."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from test_bridge import DEFAULT, eventually, opened, publish, running, unique

from smartregion.ingestion.bridge import BridgeConfig, Incoming
from smartregion.storage import Store
from smartregion.storage.history import HistoryQuery, HistoryStore
from smartregion.storage.ingestion import IngestionStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'batches.db'}"
    return str(request.getfixturevalue("postgres_url"))


def reading(n: int, *, at: str = "2026-11-27T10:00:00Z") -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Meter:b{n}",
        "type": "Meter",
        "reading": {"type": "Property", "value": n, "observedAt": at},
    }


def count_transactions(store: Store) -> list[int]:
    """Wrap `store.transact` (the broker's batch writes go through it): the ids per call."""
    calls: list[int] = []
    real = store.transact

    async def counting(tenant: str, ids: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(ids))
        return await real(tenant, ids, *args, **kwargs)

    store.transact = counting  # type: ignore[method-assign]
    return calls


async def test_a_batch_dead_letters_its_bad_messages_and_ingests_the_others(
    mosquitto_url: str, db_url: str
) -> None:
    prefix, org, tenant = unique("sr"), unique("org"), unique("t")
    topic = f"{prefix}/entities"
    config = BridgeConfig(
        mosquitto_url, org=org, tenant=tenant, prefix=prefix, client_id=unique("c"), batch_wait=0.3
    )
    async with opened(db_url) as store:
        assert isinstance(store, IngestionStore)
        async with running(store, config):
            pass  # the persistent session now holds the subscription
        await publish(mosquitto_url, topic, reading(1))
        await publish(mosquitto_url, topic, {"id": "not a uri", "type": "Meter", "reading": 2})
        await publish(mosquitto_url, topic, reading(3))
        await publish(mosquitto_url, topic, b"{broken")
        await publish(mosquitto_url, topic, reading(5))
        async with running(store, config) as bridge:
            calls = count_transactions(bridge.broker.batch.store)
            ids = [f"urn:ngsi-ld:Meter:b{n}" for n in (1, 3, 5)]

            async def ingested() -> bool:
                return len(await store.get_entities(tenant, ids)) == 3

            await eventually(ingested)
            letters = await eventually(lambda: store.dead_letters(org))
            assert bridge.ingested == 3 and bridge.dead == 2
        # one transaction wrote the three entities and both dead letters
        assert calls == [3]
        newest, oldest = letters
        assert "not a uri" in oldest.reason and oldest.topic == topic
        assert "not JSON" in newest.reason and newest.payload == "{broken"
        doc = await store.get_entity(tenant, "urn:ngsi-ld:Meter:b3")
        assert doc is not None and doc["attrs"][DEFAULT + "reading"][0]["value"] == 3


async def test_a_failed_batch_is_redelivered_whole_without_loss_or_duplicates(
    mosquitto_url: str, db_url: str
) -> None:
    prefix, org, tenant = unique("sr"), unique("org"), unique("t")
    topic = f"{prefix}/entities"
    config = BridgeConfig(
        mosquitto_url,
        org=org,
        tenant=tenant,
        prefix=prefix,
        client_id=unique("c"),
        batch_wait=0.3,
        backoff_initial=0.1,
    )
    total = 40
    async with opened(db_url) as store:
        assert isinstance(store, IngestionStore) and isinstance(store, HistoryStore)
        async with running(store, config):
            pass
        for n in range(total):
            await publish(mosquitto_url, topic, reading(n))
        await publish(mosquitto_url, topic, {"id": "not a uri", "type": "Meter"})
        # the store fails once, inside the transaction: after the entities' history rows were
        # written, while the batch's dead letter is being written
        failures: list[int] = []
        real = store._take_dead_letters  # type: ignore[attr-defined]
        if asyncio.iscoroutinefunction(real):

            async def failing(conn: Any, ops: list[Any]) -> list[Any]:
                if not failures:
                    failures.append(1)
                    raise OSError("disk I/O error")
                result: list[Any] = await real(conn, ops)
                return result
        else:

            def failing(conn: Any, ops: list[Any]) -> list[Any]:  # type: ignore[misc]
                if not failures:
                    failures.append(1)
                    raise OSError("disk I/O error")
                result: list[Any] = real(conn, ops)
                return result

        store._take_dead_letters = failing  # type: ignore[attr-defined]
        ids = [f"urn:ngsi-ld:Meter:b{n}" for n in range(total)]
        async with running(store, config) as bridge:

            async def all_there() -> bool:
                return len(await store.get_entities(tenant, ids)) == total

            await eventually(all_there, timeout=30)
            await eventually(lambda: store.dead_letters(org))
            await asyncio.sleep(0.5)  # anything acknowledged is not delivered again
        assert failures == [1]
        assert bridge.ingested == total and bridge.dead == 1
        # exactly once in history, one dead letter: the failed transaction left nothing behind
        found = await store.query_instances(tenant, HistoryQuery(entity_ids=tuple(ids)))
        assert {h.series.entity_id: len(h.instances) for h in found} == dict.fromkeys(ids, 1)
        assert len(await store.dead_letters(org)) == 1


async def test_ingest_batch_reports_each_commit_and_applies_repeats_in_order(
    mosquitto_url: str, db_url: str
) -> None:
    org, tenant = unique("org"), unique("t")
    config = BridgeConfig(
        mosquitto_url, org=org, tenant=tenant, prefix=unique("sr"), client_id=unique("c")
    )
    async with opened(db_url) as store, running(store, config) as bridge:
        assert isinstance(store, HistoryStore)
        calls = count_transactions(bridge.broker.batch.store)
        topic = f"{config.prefix}/entities"
        messages = [
            Incoming(
                topic,
                orjson.dumps(
                    reading(7, at=f"2026-11-27T10:0{m}:00Z")
                    | {
                        "reading": {
                            "type": "Property",
                            "value": m,
                            "observedAt": f"2026-11-27T10:0{m}:00Z",
                        }
                    }
                ),
                "2026-11-27T10:10:00Z",
            )
            for m in range(3)
        ] + [Incoming(topic, b"[]", "2026-11-27T10:10:00Z")]
        committed: list[range] = []
        written = await bridge.ingest_batch(messages, committed.append)
        assert written == [["urn:ngsi-ld:Meter:b7"]] * 3 + [[]]
        assert committed == [range(0, 4)] and len(calls) == 1
        # the last message's value is current; every message's observation is in history
        doc = await store.get_entity(tenant, "urn:ngsi-ld:Meter:b7")
        assert doc is not None and doc["attrs"][DEFAULT + "reading"][0]["value"] == 2
        (history,) = await store.query_instances(
            tenant, HistoryQuery(entity_ids=("urn:ngsi-ld:Meter:b7",))
        )
        assert [i.doc["value"] for i in history.instances] == [0, 1, 2]
        (letter,) = await store.dead_letters(org)  # type: ignore[attr-defined]
        assert "at least one entity" in letter.reason


async def test_a_batch_of_only_bad_messages_is_dead_lettered(
    mosquitto_url: str, db_url: str
) -> None:
    org, tenant = unique("org"), unique("t")
    config = BridgeConfig(
        mosquitto_url, org=org, tenant=tenant, prefix=unique("sr"), client_id=unique("c")
    )
    async with opened(db_url) as store, running(store, config) as bridge:
        assert isinstance(store, IngestionStore)
        topic = f"{config.prefix}/entities"
        committed: list[range] = []
        written = await bridge.ingest_batch(
            [
                Incoming(topic, b"nope", "2026-11-27T10:10:00Z"),
                Incoming(topic, b'{"id": "x", "type": "Meter"}', "2026-11-27T10:10:01Z"),
            ],
            committed.append,
        )
        assert written == [[], []] and committed == [range(0, 2)]
        newest, oldest = await store.dead_letters(org)
        assert "not JSON" in oldest.reason and "not a valid URI" in newest.reason
