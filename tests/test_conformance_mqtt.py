"""The conformance runner's `docker` stand-in (scripts/conformance_mqtt.py): the ETSI suite's
`docker run … -e CONF=<file>` starts a real, throwaway Mosquitto with that configuration on a
loopback address of its own, `docker rm -f` stops it, and nothing else is pretended."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import conformance_mqtt as mqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
NAME = "ngsi-ld-test-suite-mosquitto-container"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def docker(tmp_path: Path) -> Iterator[tuple[Path, str, int]]:
    """(the stand-in executable, its MQTT host, its non-default port); configurations shaped like
    the suite's (`listener 1883`, a password file under /mosquitto/config/)."""
    if not Path(MOSQUITTO).exists() or shutil.which("mosquitto_passwd") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Mosquitto is required in CI but not installed")
        pytest.skip("Mosquitto is not installed")
    confs = tmp_path / "confs"
    confs.mkdir()
    (confs / "open.conf").write_text("allow_anonymous true\nlistener 1883")
    (confs / "locked.conf").write_text(
        "allow_anonymous false\nlistener 1883\npassword_file /mosquitto/config/pwd\n"
    )
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(confs / "pwd"), "alice", "secret"], check=True
    )
    host, port = mqtt.pick_mqtt_host()
    state = tmp_path / "state"
    mqtt.install(tmp_path / "bin", state, confs, host, port, MOSQUITTO)
    try:
        yield tmp_path / "bin" / "docker", host, port
    finally:
        mqtt.stop_all(state)


def run(docker: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(docker), *args], capture_output=True, text=True, check=False)


def start(docker: Path, conf: str) -> None:
    # exactly the suite's call (resources/mqttUtils/MqttUtils.resource)
    result = run(docker, "run", "-d", "--network", "compose-files_default", "-e", f"CONF={conf}",
                 "--name", NAME, "scorpio-test-mosquitto:latest")  # fmt: skip
    assert result.returncode == 0, result.stderr


async def round_trip(host: str, port: int, **login: str) -> bytes:
    async with aiomqtt.Client(host, port=port, **login) as client:  # type: ignore[arg-type]
        await client.subscribe("t/x", qos=1)
        await client.publish("t/x", b"hello", qos=1)
        async for message in client.messages:
            return bytes(message.payload)  # type: ignore[arg-type]
    raise AssertionError("no message")


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def test_an_open_broker_on_both_ports_of_its_own_address(
    docker: tuple[Path, str, int],
) -> None:
    exe, host, port = docker
    assert host.startswith("127.") and host != "127.0.0.1"
    start(exe, "open.conf")
    assert await round_trip(host, 1883) == b"hello"
    assert await round_trip(host, port) == b"hello"
    assert run(exe, "rm", "-f", NAME).returncode == 0
    assert not accepts(host, 1883)
    assert not accepts(host, port)


async def test_the_password_file_is_enforced(docker: tuple[Path, str, int]) -> None:
    exe, host, port = docker
    start(exe, "locked.conf")
    assert await round_trip(host, port, username="alice", password="secret") == b"hello"
    with pytest.raises(aiomqtt.MqttError):
        await round_trip(host, port)
    with pytest.raises(aiomqtt.MqttError):
        await round_trip(host, 1883, username="alice", password="wrong")
    # the suite's `docker container rm -f "name"` form
    assert run(exe, "container", "rm", "-f", NAME).returncode == 0
    assert not accepts(host, 1883)


async def test_a_second_run_replaces_the_first(docker: tuple[Path, str, int]) -> None:
    exe, host, _ = docker
    start(exe, "locked.conf")
    start(exe, "open.conf")  # the suite always runs `rm -f` first; a forgotten one must not clash
    assert await round_trip(host, 1883) == b"hello"


def test_other_docker_calls_fail_loudly(docker: tuple[Path, str, int]) -> None:
    exe, _, _ = docker
    result = run(exe, "ps")
    assert result.returncode == 1
    assert "only the suite's Mosquitto calls" in result.stderr
    assert run(exe, "run", "-d", "-e", "CONF=missing.conf", "--name", NAME, "x").returncode != 0
