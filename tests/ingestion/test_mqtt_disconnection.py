"""An MQTT client whose broker goes away while it is connected leaves nothing behind.

aiomqtt 2.5 records an unexpected disconnection as an exception on a future of its own, and
its `__aexit__` returns early when that future is done — without retrieving the exception, so
asyncio reports "Future exception was never retrieved … Unexpected disconnection" when the
client is collected. Both MQTT clients of the broker (the bridge, MQTT notifications) leave
their connection through `connected` (broker/mqtt.py), which takes note of it.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from benchmarks.servers import free_port
from smartregion.broker.mqtt import connected
from tests.conftest import mosquitto_binary, running_mosquitto

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_broker_going_away_leaves_no_unretrieved_error(tmp_path: Path) -> None:
    binary = mosquitto_binary()
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        with running_mosquitto(binary, config, [port]) as mosquitto:
            client = aiomqtt.Client("127.0.0.1", port, timeout=5)
            async with connected(client):
                mosquitto.terminate()
                mosquitto.wait(timeout=10)
                for _ in range(200):  # the client notices the closed connection
                    if client._disconnected.done():
                        break
                    await asyncio.sleep(0.05)
                assert client._disconnected.done()
        del client
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    unretrieved = [c for c in reported if "never retrieved" in str(c.get("message", ""))]
    assert not unretrieved, unretrieved
