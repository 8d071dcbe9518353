"""The bridge and MQTT notifications over TLS with authentication, against a real Mosquitto.

The broker is `tls_mosquitto` (tests/ingestion/mqtt_tls.py): a throwaway CA, a password listener
and a client-certificate listener.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from mqtt_tls import TlsBroker, tls_broker
from test_bridge import eventually, opened, running, unique

from smartregion.broker.contexts import ContextResolver
from smartregion.broker.mqtt import MqttRefused, TlsFiles, parse_mqtt_url
from smartregion.broker.notifier import publish_mqtt
from smartregion.broker.service import Broker
from smartregion.errors import BadRequestData
from smartregion.ingestion.bridge import BridgeConfig, MqttBridge

pytestmark = pytest.mark.anyio

#: paho-mqtt 2.2 does not close the TLS socket whose handshake failed (`_ssl_wrap_socket`); it
#: is closed when it is garbage-collected, with a ResourceWarning — collected inside the tests
#: that meet it (`gc.collect()`), where this filter applies, not at some later test's end
PAHO_HANDSHAKE_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def tls_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    with tls_broker(tmp_path_factory.mktemp("mosquitto-tls")) as broker:
        yield broker


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bridge.db'}"


def _client(url: str, tls: TlsFiles, **login: Any) -> aiomqtt.Client:
    return aiomqtt.Client(**parse_mqtt_url(url, tls=tls, **login).client_options())


async def _publish(broker: TlsBroker, topic: str, payload: dict[str, Any]) -> None:
    login = {"username": broker.username, "password": broker.password}
    async with _client(broker.password_url, TlsFiles(str(broker.ca_file)), **login) as client:
        await client.publish(topic, orjson.dumps(payload), qos=1)


async def test_bridge_over_tls_with_a_password(tls_mosquitto: TlsBroker, sqlite_url: str) -> None:
    prefix, org = unique("sr"), unique("org")
    config = BridgeConfig(
        tls_mosquitto.password_url, org, prefix=prefix, client_id=unique("c"),
        username=tls_mosquitto.username, password=tls_mosquitto.password,
        tls=TlsFiles(ca_file=str(tls_mosquitto.ca_file)),
    )  # fmt: skip
    async with opened(sqlite_url) as store, running(store, config):
        await _publish(
            tls_mosquitto,
            f"{prefix}/entities",
            {"id": "urn:ngsi-ld:Room:t1", "type": "Room", "n": 1},
        )
        doc = await eventually(lambda: store.get_entity("", "urn:ngsi-ld:Room:t1"))
        assert doc["attrs"]["https://uri.etsi.org/ngsi-ld/default-context/n"][0]["value"] == 1


async def test_bridge_over_tls_with_a_client_certificate(
    tls_mosquitto: TlsBroker, sqlite_url: str
) -> None:
    prefix, org = unique("sr"), unique("org")
    tls = TlsFiles(
        str(tls_mosquitto.ca_file), str(tls_mosquitto.client_cert), str(tls_mosquitto.client_key)
    )
    config = BridgeConfig(
        tls_mosquitto.certificate_url, org, prefix=prefix, client_id=unique("c"), tls=tls
    )
    async with opened(sqlite_url) as store, running(store, config):
        async with _client(tls_mosquitto.certificate_url, tls) as client:
            entity = {"id": "urn:ngsi-ld:Room:t2", "type": "Room", "n": 2}
            await client.publish(f"{prefix}/entities", orjson.dumps(entity), qos=1)
        assert await eventually(lambda: store.get_entity("", "urn:ngsi-ld:Room:t2"))


async def _refused(config: BridgeConfig, sqlite_url: str) -> str:
    async with opened(sqlite_url) as store:
        broker = Broker.build(store, ContextResolver(preload_dir=None, allow_remote=False))
        try:
            with pytest.raises(MqttRefused) as refused:
                await asyncio.wait_for(MqttBridge(broker, config).run(), 30)
        finally:
            await broker.contexts.aclose()
    return str(refused.value)


async def test_a_wrong_password_stops_the_bridge_with_a_clear_error(
    tls_mosquitto: TlsBroker, sqlite_url: str
) -> None:
    config = BridgeConfig(
        tls_mosquitto.password_url, unique("org"), client_id=unique("c"),
        username=tls_mosquitto.username, password="not the password",
        tls=TlsFiles(ca_file=str(tls_mosquitto.ca_file)),
    )  # fmt: skip
    message = await _refused(config, sqlite_url)
    assert "refused the credentials" in message
    assert "not the password" not in message


@PAHO_HANDSHAKE_LEAK
async def test_an_untrusted_broker_certificate_stops_the_bridge(
    tls_mosquitto: TlsBroker, sqlite_url: str
) -> None:
    config = BridgeConfig(
        tls_mosquitto.password_url, unique("org"), client_id=unique("c"),
        username=tls_mosquitto.username, password=tls_mosquitto.password,
        tls=TlsFiles(ca_file=str(tls_mosquitto.other_ca_file)),
    )  # fmt: skip
    message = await _refused(config, sqlite_url)
    assert "certificate is not trusted" in message
    gc.collect()


def _connects(argv: list[str], env: dict[str, str], log: Path) -> None:
    """The bridge process logs in (its "connected to" line), then stops cleanly on SIGTERM."""
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 90
        while b"connected to mqtts://" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_cli_takes_the_password_from_a_file_or_the_environment(
    tls_mosquitto: TlsBroker, tmp_path: Path
) -> None:
    right, wrong = tmp_path / "password", tmp_path / "wrong"
    right.write_text(tls_mosquitto.password + "\n")
    wrong.write_text("not the password\n")
    base = [
        sys.executable, "-m", "smartregion", "mqtt", "bridge", "--broker", tls_mosquitto.password_url,
        "--org", unique("org"), "--database", f"sqlite:///{tmp_path / 'cli.db'}",
        "--username", tls_mosquitto.username, "--ca-file", str(tls_mosquitto.ca_file),
        "--client-id", unique("c"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTREGION_MQTT")}
    _connects([*base, "--password-file", str(right)], env, tmp_path / "file.log")
    _connects(
        base, {**env, "SMARTREGION_MQTT_PASSWORD": tls_mosquitto.password}, tmp_path / "env.log"
    )
    by_file = subprocess.run(
        [*base, "--password-file", str(wrong)], env=env, capture_output=True, timeout=120
    )
    assert by_file.returncode == 1
    assert b"error: the MQTT broker refused the credentials" in by_file.stderr
    assert b"not the password" not in by_file.stderr
    # a password in the URL is refused before anything starts, and not repeated
    in_url = tls_mosquitto.password_url.replace("mqtts://", "mqtts://bridge:secret@")
    argv = [in_url if a == tls_mosquitto.password_url else a for a in base]
    refused = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert refused.returncode == 2
    assert b"must not be part of the broker URL" in refused.stderr
    assert b"secret" not in refused.stderr


def test_configuration_errors_are_refused_up_front(
    tls_mosquitto: TlsBroker, tmp_path: Path
) -> None:
    ca = TlsFiles(ca_file=str(tls_mosquitto.ca_file))
    with pytest.raises(BadRequestData, match="must not be part of the broker URL"):
        BridgeConfig("mqtts://u:p@localhost", "o", tls=ca)
    with pytest.raises(BadRequestData, match="need an mqtts:// broker URL"):
        BridgeConfig("mqtt://localhost", "o", tls=ca)
    with pytest.raises(BadRequestData, match="TLS file not found"):
        BridgeConfig("mqtts://localhost", "o", tls=TlsFiles(ca_file=str(tmp_path / "missing.pem")))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(BadRequestData, match="TLS files could not be used"):
        BridgeConfig("mqtts://localhost", "o", tls=TlsFiles(ca_file=str(not_pem)))
    with pytest.raises(BadRequestData, match="needs a user name"):
        BridgeConfig("mqtts://localhost", "o", password="p")
    assert "p4ss" not in repr(BridgeConfig("mqtts://localhost", "o", username="u", password="p4ss"))
    address = parse_mqtt_url("mqtts://example.org")
    assert (address.host, address.port, address.secure) == ("example.org", 8883, True)


async def _collect(broker: TlsBroker, topic: str, ready: asyncio.Event, out: list[bytes]) -> None:
    login = {"username": broker.username, "password": broker.password}
    async with _client(broker.password_url, TlsFiles(str(broker.ca_file)), **login) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            out.append(bytes(message.payload))  # type: ignore[arg-type]
            return


@PAHO_HANDSHAKE_LEAK
async def test_mqtts_notification_endpoint_with_credentials(tls_mosquitto: TlsBroker) -> None:
    topic = unique("notifications")
    port = tls_mosquitto.password_url.rpartition(":")[2]
    # NGSI-LD 1.8 §7.3.1: the endpoint URI carries the credentials
    uri = f"mqtts://{tls_mosquitto.username}:{tls_mosquitto.password.replace(' ', '%20')}@localhost:{port}/{topic}"
    received: list[bytes] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_collect(tls_mosquitto, topic, ready, received))
    await asyncio.wait_for(ready.wait(), 10)
    trusted = TlsFiles(ca_file=str(tls_mosquitto.ca_file))
    body = {"type": "Notification", "data": []}
    assert await publish_mqtt(uri, body, {}, [{"key": "MQTT-QoS", "value": "1"}], 10, trusted)
    await asyncio.wait_for(listener, 10)
    assert orjson.loads(received[0])["body"] == body
    # a wrong password, an untrusted broker: not delivered (retried later by the notifier)
    wrong = uri.replace("battery", "batter")
    assert not await publish_mqtt(wrong, body, {}, [], 10, trusted)
    assert not await publish_mqtt(
        uri, body, {}, [], 10, TlsFiles(ca_file=str(tls_mosquitto.other_ca_file))
    )
    gc.collect()
