"""The bridge across a restart of Mosquitto itself, during ingest: it reconnects by itself, and
every message the broker acknowledged to its publisher is ingested exactly once (issue 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from test_bridge import eventually, opened, running, unique

from benchmarks.servers import free_port, wait_port
from smartregion.broker.mqtt import connected
from smartregion.ingestion.bridge import BridgeConfig
from smartregion.storage.history import HistoryQuery, HistoryStore
from tests.conftest import mosquitto_binary


@contextmanager
def mosquitto(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Mosquitto of this test's own that keeps its sessions and queues on disk."""
    binary = mosquitto_binary()
    config = workdir / "mosquitto.conf"
    # started as root, Mosquitto drops to its own user, which may not write in a test's
    # private directory: it keeps root's (and writes its persistence file here)
    as_root = "user root\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nautosave_interval 1\n"
        f"{as_root}"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(port, proc, "Mosquitto", timeout=10)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a clean stop writes its persistence file
            proc.wait(10)


async def _publish_all(port: int, topic: str, payloads: list[bytes]) -> None:
    """Publish at QoS 1 until Mosquitto has acknowledged every message (reconnecting as needed)."""
    pending = list(payloads)
    deadline = time.monotonic() + 60
    while pending:
        try:
            # `connected` retrieves the error aiomqtt keeps when the broker goes away, which
            # asyncio would otherwise report whenever the client is collected (a later test)
            async with connected(aiomqtt.Client("127.0.0.1", port)) as client:
                while pending:
                    await client.publish(topic, pending[0], qos=1)  # returns on PUBACK
                    pending.pop(0)
        except aiomqtt.MqttError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def test_the_bridge_rides_out_a_mosquitto_restart(tmp_path: Path) -> None:
    # plain asyncio.run, not the anyio runner: when the broker dies, aiomqtt leaves errors in
    # callbacks and futures nobody awaits (a socket already closed, a publish cut off); asyncio
    # logs them, the anyio runner would fail the test on them. What users rely on — every
    # acknowledged message ingested exactly once — is asserted below.
    asyncio.run(_restart_during_ingest(tmp_path))


async def _restart_during_ingest(tmp_path: Path) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    prefix, org, client_id = unique("sr"), unique("org"), unique("c")
    topic = f"{prefix}/entities"
    total = 300

    def payload(n: int) -> bytes:
        entity: dict[str, Any] = {"id": f"urn:ngsi-ld:Meter:m{n}", "type": "Meter", "reading": n}
        return orjson.dumps(entity)

    config = BridgeConfig(
        url,
        org,
        prefix=prefix,
        client_id=client_id,
        backoff_initial=0.1,
        backoff_max=1.0,
        keepalive=2,
    )
    db = f"sqlite:///{tmp_path}/restart.db"
    (tmp_path / "mq").mkdir()
    with mosquitto(port, tmp_path / "mq") as first:
        async with opened(db) as store:
            async with running(store, config):
                await _publish_all(port, topic, [payload(n) for n in range(100)])
                # the restart, while the second hundred is on its way
                sending = asyncio.create_task(
                    _publish_all(port, topic, [payload(n) for n in range(100, 200)])
                )
                await asyncio.sleep(0.05)
                first.send_signal(signal.SIGTERM)
                first.wait(10)
                with mosquitto(port, tmp_path / "mq"):
                    await sending
                    await _publish_all(port, topic, [payload(n) for n in range(200, total)])
                    ids = [f"urn:ngsi-ld:Meter:m{n}" for n in range(total)]

                    async def all_there() -> bool:
                        return len(await store.get_entities("", ids)) == total

                    try:
                        await eventually(all_there, timeout=30)
                    except AssertionError:
                        got = await store.get_entities("", ids)
                        missing = [n for n in range(total) if ids[n] not in got]
                        raise AssertionError(
                            f"{len(missing)} messages never arrived: {missing}"
                        ) from None
            # exactly once: one history instance per message, no duplicate from a redelivery
            assert isinstance(store, HistoryStore)
            found = await store.query_instances("", HistoryQuery(entity_ids=tuple(ids)))
            per_entity = {h.series.entity_id: len(h.instances) for h in found}
            assert sorted(per_entity) == sorted(ids)
            assert set(per_entity.values()) == {1}
