"""The MQTT ingestion bridge against a real Mosquitto and real databases."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from ingestion_payloads import (
    PLAIN_READING,
    PLAIN_TOPIC,
    TTN_TOPIC,
    TTN_UPLINK,
    Z2M_STATE,
    Z2M_TOPIC,
)

from smartregion.broker.contexts import ContextResolver
from smartregion.broker.service import Broker
from smartregion.ingestion.bridge import BridgeConfig, MqttBridge, parse_broker_url
from smartregion.ingestion.mapping import load_mapping
from smartregion.storage import Store, open_store
from smartregion.storage.ingestion import IngestionStore

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "mqtt"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
CTX = {"Room": "https://ex.org/Room", "temperature": "https://ex.org/temperature"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bridge.db'}"


def unique(name: str) -> str:
    # one Mosquitto serves the whole session: topics and client ids must not meet across tests
    return f"{name}-{secrets.token_hex(4)}"


async def publish(url: str, topic: str, payload: Any) -> None:
    host, port = parse_broker_url(url)
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    async with aiomqtt.Client(host, port) as client:
        await client.publish(topic, body, qos=1)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def running(store: Store, config: BridgeConfig) -> AsyncIterator[MqttBridge]:
    broker = Broker.build(store, ContextResolver(preload_dir=None, allow_remote=False))
    bridge = MqttBridge(broker, config)
    task = asyncio.create_task(bridge.run())
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        yield bridge
    finally:
        bridge.stop()
        await asyncio.wait_for(task, 10)
        await broker.contexts.aclose()


async def test_default_topic_upserts_as_merge(mosquitto_url: str, db_url: str) -> None:
    prefix, org, tenant = unique("sr"), unique("org"), unique("t")
    config = BridgeConfig(
        mosquitto_url, org=org, tenant=tenant, prefix=prefix, client_id=unique("c")
    )
    async with opened(db_url) as store, running(store, config) as bridge:
        first = {
            "id": "urn:ngsi-ld:Room:1",
            "type": "Room",
            "temperature": {"type": "Property", "value": 20.5},
            "@context": CTX,
        }
        await publish(mosquitto_url, f"{prefix}/entities", first)
        doc = await eventually(lambda: store.get_entity(tenant, "urn:ngsi-ld:Room:1"))
        assert doc["type"] == ["https://ex.org/Room"]
        assert doc["attrs"]["https://ex.org/temperature"][0]["value"] == 20.5
        # a list, keyValues-style (no @context: the core context), merged into the existing entity
        await publish(
            mosquitto_url,
            f"{prefix}/entities",
            [
                {"id": "urn:ngsi-ld:Room:1", "type": "Room", "humidity": 40},
                {"id": "urn:ngsi-ld:Room:2", "type": "Room", "humidity": 55},
            ],
        )

        async def merged() -> Any:
            doc = await store.get_entity(tenant, "urn:ngsi-ld:Room:1")
            return doc if doc and DEFAULT + "humidity" in doc["attrs"] else None

        doc = await eventually(merged)
        # the earlier attribute stays: a merge, not a replace
        assert doc["attrs"]["https://ex.org/temperature"][0]["value"] == 20.5
        assert doc["attrs"][DEFAULT + "humidity"][0]["value"] == 40
        assert DEFAULT + "Room" in doc["type"]
        two = await store.get_entity(tenant, "urn:ngsi-ld:Room:2")
        assert two is not None and two["attrs"][DEFAULT + "humidity"][0]["value"] == 55
        assert bridge.ingested == 3 and bridge.dead == 0


@pytest.mark.parametrize(
    ("example", "topic", "payload", "entity_id", "attribute", "value"),
    [
        (
            "ttn.yaml",
            TTN_TOPIC,
            TTN_UPLINK,
            "urn:ngsi-ld:AirQualityObserved:70B3D57ED005A1B2",
            "https://smartdatamodels.org/dataModel.Environment/pm25",
            12.4,
        ),
        (
            "zigbee2mqtt.yaml",
            Z2M_TOPIC,
            Z2M_STATE,
            "urn:ngsi-ld:Device:zigbee:living_room_sensor",
            DEFAULT + "temperature",
            21.37,
        ),
        (
            "plain.toml",
            PLAIN_TOPIC,
            PLAIN_READING,
            "urn:ngsi-ld:AirQualityObserved:gent-042",
            DEFAULT + "pm25",
            9.1,
        ),
    ],
)
async def test_worked_mapping_examples_end_to_end(
    mosquitto_url: str,
    sqlite_url: str,
    example: str,
    topic: str,
    payload: dict[str, Any],
    entity_id: str,
    attribute: str,
    value: float,
) -> None:
    org = unique("org")
    config = BridgeConfig(
        mosquitto_url, org=org, mapping=load_mapping(EXAMPLES / example), client_id=unique("c")
    )
    async with opened(sqlite_url) as store, running(store, config):
        await publish(mosquitto_url, topic, payload)
        doc = await eventually(lambda: store.get_entity("", entity_id))
        instance = doc["attrs"][attribute][0]
        assert instance["value"] == value
        assert instance["observedAt"].endswith("Z")
        if example != "zigbee2mqtt.yaml":
            location = doc["attrs"]["https://uri.etsi.org/ngsi-ld/location"][0]
            assert location["type"] == "GeoProperty"
            assert location["value"]["type"] == "Point"


async def test_bad_messages_become_dead_letters_and_the_bridge_goes_on(
    mosquitto_url: str, db_url: str
) -> None:
    org = unique("org")
    config = BridgeConfig(
        mosquitto_url, org=org, mapping=load_mapping(EXAMPLES / "plain.toml"), client_id=unique("c")
    )
    device = unique("dev")
    topic = f"sensors/{device}/air"
    async with opened(db_url) as store, running(store, config) as bridge:
        assert isinstance(store, IngestionStore)
        await publish(mosquitto_url, topic, b"{not json" + b"x" * 10000)
        await publish(mosquitto_url, topic, {"unrelated": True})
        await publish(mosquitto_url, topic, {"pm25": 3.5})
        doc = await eventually(
            lambda: store.get_entity("", f"urn:ngsi-ld:AirQualityObserved:{device}")
        )
        assert doc["attrs"][DEFAULT + "pm25"][0]["value"] == 3.5
        letters = await eventually(lambda: store.dead_letters(org))
        assert len(letters) == 2
        newest, oldest = letters
        assert "not JSON" in oldest.reason and oldest.topic == topic
        assert oldest.payload.startswith("{not json") and len(oldest.payload) < 5000
        assert "no mapped attribute" in newest.reason
        assert newest.org == org and newest.tenant == ""
        assert bridge.dead == 2


async def test_default_topic_invalid_entity_is_a_dead_letter(
    mosquitto_url: str, sqlite_url: str
) -> None:
    prefix, org = unique("sr"), unique("org")
    config = BridgeConfig(mosquitto_url, org=org, prefix=prefix, client_id=unique("c"))
    async with opened(sqlite_url) as store, running(store, config):
        assert isinstance(store, IngestionStore)
        await publish(
            mosquitto_url,
            f"{prefix}/entities",
            [
                {"id": "not a uri", "type": "Room"},
                {"id": "urn:ngsi-ld:Room:ok", "type": "Room", "humidity": 1},
            ],
        )
        (letter,) = await eventually(lambda: store.dead_letters(org))
        assert "not a uri" in letter.reason
        # the valid entity of the same message was written
        assert await store.get_entity("", "urn:ngsi-ld:Room:ok") is not None


async def test_a_message_whose_write_fails_is_not_acknowledged_and_comes_again(
    mosquitto_url: str, sqlite_url: str
) -> None:
    prefix, org = unique("sr"), unique("org")
    config = BridgeConfig(
        mosquitto_url, org=org, prefix=prefix, client_id=unique("c"), backoff_initial=0.1
    )
    async with opened(sqlite_url) as store, running(store, config) as bridge:
        writer = bridge.broker.batch.store
        real = writer.transact
        failures = []

        async def failing_once(*args: Any, **kwargs: Any) -> Any:
            if not failures:
                failures.append(1)
                raise OSError("database unavailable")
            return await real(*args, **kwargs)

        writer.transact = failing_once  # type: ignore[method-assign]
        await publish(
            mosquitto_url,
            f"{prefix}/entities",
            {"id": "urn:ngsi-ld:Room:r", "type": "Room", "a": 1},
        )
        # only Mosquitto's redelivery of the unacknowledged message can bring it back
        doc = await eventually(lambda: store.get_entity("", "urn:ngsi-ld:Room:r"))
        assert doc["attrs"][DEFAULT + "a"][0]["value"] == 1
        assert failures == [1]
        assert bridge.ingested == 1
        # once acknowledged, it is not delivered again
        await asyncio.sleep(0.5)
        assert bridge.ingested == 1


def _start(
    url: str, db: str, prefix: str, org: str, client_id: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smartregion",
                "mqtt",
                "bridge",
                "--broker",
                url,
                "--org",
                org,
                "--prefix",
                prefix,
                "--database",
                db,
                "--client-id",
                client_id,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "SMARTREGION_ALLOW_REMOTE_CONTEXTS": "false"},
        )


async def test_killed_bridge_gets_what_was_published_while_it_was_down(
    mosquitto_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    prefix, org, client_id = unique("sr"), unique("org"), unique("c")
    log = tmp_path / "bridge.log"
    topic = f"{prefix}/entities"

    def entity(n: int) -> dict[str, Any]:
        return {"id": f"urn:ngsi-ld:Room:k{n}", "type": "Room", "n": n}

    proc = _start(mosquitto_url, sqlite_url, prefix, org, client_id, log)
    try:
        async with opened(sqlite_url) as store:
            # the first message proves the session (and its subscription) exists
            async def first() -> Any:
                await publish(mosquitto_url, topic, entity(0))
                await asyncio.sleep(0.3)
                return await store.get_entity("", "urn:ngsi-ld:Room:k0")

            await eventually(first, timeout=30)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            for n in range(1, 21):
                await publish(mosquitto_url, topic, entity(n))
            proc = _start(mosquitto_url, sqlite_url, prefix, org, client_id, log)

            async def all_there() -> bool:
                found = await store.get_entities("", [f"urn:ngsi-ld:Room:k{n}" for n in range(21)])
                return len(found) == 21

            await eventually(all_there, timeout=30)
        # SIGTERM: a clean shutdown
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_filters_and_client_id() -> None:
    plain = BridgeConfig("mqtt://h:1", org="o", prefix="p")
    assert plain.filters() == ["p/entities"]
    assert plain.identifier() == "smartregion-bridge-o"
    shared = BridgeConfig(
        "mqtt://h:1",
        org="o",
        shared_group="g",
        client_id="b1",
        mapping=load_mapping(EXAMPLES / "ttn.yaml"),
    )
    assert shared.filters() == ["$share/g/v3/+/devices/+/up"]
    assert shared.identifier() == "b1"
    assert parse_broker_url("mqtt://example.org") == ("example.org", 1883)
