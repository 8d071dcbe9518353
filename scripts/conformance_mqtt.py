#!/usr/bin/env python3
"""Throwaway Mosquitto brokers for the ETSI suite's MQTT notification tests (058_*).

The suite starts and stops its MQTT broker itself, per test, through docker
(`resources/mqttUtils/MqttUtils.resource`: ``docker run -d -e CONF=<file> --name <name>
scorpio-test-mosquitto:latest`` and ``docker rm -f <name>``), with one of its two configurations
(`mosquitto.conf`: anonymous; `mosquitto_with_user.conf`: user `user_with_password`, password
file). The conformance runner has no docker daemon, so it puts a stand-in `docker` first on
robot's PATH: this script. It understands exactly those two calls and starts (or stops) a local
Mosquitto with the requested configuration, listening on

* the MQTT default port 1883, which the tests' ``mqtt://host/topic`` endpoints imply and the
  suite's keywords hard-code, and
* ``mqtt_broker_non_default_port`` (a free port the runner picks),

on a loopback address of its own (``127.0.0.x``, the runner's ``mqtt_broker_host``), where 1883
is free even when a Mosquitto of the machine already listens on 127.0.0.1:1883. Every other
docker call fails with exit code 1 and a message. Each broker's log is kept in the state
directory; the runner stops whatever is still running at the end (`stop_all`).

Stdlib only, like the runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PORT = 1883
STATE_FILE = "shim.json"
# Where the suite's docker image expects its configuration (password_file lines use it).
CONTAINER_CONFIG_DIR = "/mosquitto/config/"


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_mqtt_host() -> tuple[str, int]:
    """A loopback address whose port 1883 is free, and a free non-default port on it."""
    candidates = [f"127.0.{b}.{c}" for b in range(0, 4) for c in range(2, 255)]
    random.shuffle(candidates)
    for host in candidates[:200]:
        if not _bindable(host, DEFAULT_PORT):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        return host, port
    raise RuntimeError("no loopback address with a free port 1883 (is 0.0.0.0:1883 taken?)")


def install(
    bin_dir: Path, state_dir: Path, conf_dir: Path, host: str, port: int, mosquitto: str
) -> None:
    """Write the `docker` stand-in into bin_dir (put it first on robot's PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    # Mosquitto started as root drops to its own user before it reads a password file, so the
    # copies go to a directory that user can reach (the state directory may be private).
    files = Path(tempfile.mkdtemp(prefix="smartregion-conformance-mosquitto-"))
    files.chmod(0o755)
    state = {"host": host, "ports": [DEFAULT_PORT, port], "conf_dir": str(conf_dir)}
    state.update(mosquitto=mosquitto, files=str(files))
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        "# conformance runner: docker stand-in for the suite's Mosquitto (scripts/conformance_mqtt.py)\n"
        f"exec {shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} "
        f'--state {shlex.quote(str(state_dir))} "$@"\n'
    )
    script.chmod(0o755)


def _config(state_dir: Path, state: dict[str, object], conf_name: str) -> Path:
    """Translate one of the suite's configurations to local listeners and files."""
    conf_dir = Path(str(state["conf_dir"]))
    source = conf_dir / Path(conf_name).name
    if not source.is_file():
        raise SystemExit(f"conformance docker stand-in: no Mosquitto configuration {source}")
    lines = ["# generated from the suite's " + source.name, "persistence false"]
    for raw in source.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.split()[0] == "listener":
            continue
        key, _, value = line.partition(" ")
        if key == "password_file" and value.startswith(CONTAINER_CONFIG_DIR):
            local = Path(str(state["files"])) / Path(value).name
            shutil.copyfile(conf_dir / Path(value).name, local)
            local.chmod(0o644)  # readable after Mosquitto drops root privileges
            line = f"password_file {local}"
        lines.append(line)
    ports = state["ports"]
    assert isinstance(ports, list)
    lines += [f"listener {p} {state['host']}" for p in ports]
    path = state_dir / f"{Path(conf_name).stem}.generated.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pid_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name.replace('/', '_')}.pid"


def _is_ours(pid: int, state_dir: Path) -> bool:
    """Only a Mosquitto running one of our generated configurations may be stopped."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "mosquitto" in cmdline and str(state_dir) in cmdline


def stop(state_dir: Path, name: str) -> None:
    """`docker rm -f name`: stop the broker started under that name, if any."""
    pid_file = _pid_file(state_dir, name)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip() or 0)
    if pid and _is_ours(pid, state_dir):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _is_ours(pid, state_dir):
                # Reap it if it is our child (it is not when another shim call started it).
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
            if not _is_ours(pid, state_dir):
                break
    pid_file.unlink(missing_ok=True)


def stop_all(state_dir: Path) -> None:
    """Stop every broker the stand-in started and that is still running; remove its files."""
    for pid_file in state_dir.glob("*.pid"):
        stop(state_dir, pid_file.stem)
    with contextlib.suppress(OSError, ValueError, KeyError):
        files = json.loads((state_dir / STATE_FILE).read_text())["files"]
        if Path(files).name.startswith("smartregion-conformance-mosquitto-"):
            shutil.rmtree(files, ignore_errors=True)


def run(state_dir: Path, conf_name: str, name: str) -> None:
    """`docker run -d -e CONF=... --name name`: start a broker; return once it accepts."""
    state = json.loads((state_dir / STATE_FILE).read_text())
    stop(state_dir, name)
    config = _config(state_dir, state, conf_name)
    with (state_dir / f"{name}.log").open("ab") as log:
        # Detached and with no inherited pipes: robot's Run Process waits for its output
        # streams to close, and the broker must outlive this call like a container does.
        proc = subprocess.Popen(
            [state["mosquitto"], "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _pid_file(state_dir, name).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    for port in state["ports"]:
        while True:
            try:
                with socket.create_connection((state["host"], port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"conformance docker stand-in: Mosquitto did not start, see "
                        f"{state_dir / (name + '.log')}"
                    ) from None
                time.sleep(0.05)
    print(f"mosquitto-{proc.pid}")


def main(argv: list[str]) -> int:
    """Handle the docker calls of MqttUtils.resource; refuse anything else."""
    if len(argv) < 2 or argv[0] != "--state":
        print("usage: docker --state DIR <docker arguments>", file=sys.stderr)
        return 2
    state_dir, args = Path(argv[1]), argv[2:]
    if args[:1] == ["container"]:
        args = args[1:]
    if len(args) >= 2 and args[0] == "rm" and "-f" in args:
        for name in [a for a in args[1:] if a != "-f"]:
            stop(state_dir, name.strip('"'))
        return 0
    if args[:1] == ["run"]:
        conf, name = "mosquitto.conf", "mosquitto"
        it = iter(args[1:])
        for arg in it:
            if arg == "-e":
                key, _, value = next(it, "").partition("=")
                if key == "CONF":
                    conf = value
            elif arg == "--name":
                name = next(it, name).strip('"')
            elif arg == "--network":
                next(it, None)
        run(state_dir, conf, name)
        return 0
    print(
        "conformance docker stand-in: only the suite's Mosquitto calls (run, rm -f) are "
        f"supported, not: docker {shlex.join(args)}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
