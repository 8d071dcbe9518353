"""The real server across a socket: `smartregion serve` and `smartregion db migrate` as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

SMARTREGION = [sys.executable, "-m", "smartregion"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(*args: str, output: list[str] | None = None) -> Iterator[str]:
    port = free_port()
    # output to a file, not a pipe: nobody reads a pipe while the server runs, and a full pipe
    # (64 KiB of access log) would block the server's event loop on its next log line
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [*SMARTREGION, "serve", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    def text() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not come up:\n{text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if output is not None:
            output.append(text())
        log.close()


def test_acknowledged_writes_survive_a_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/serve.db"
    entity = {
        "id": "urn:ngsi-ld:Sensor:durable",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 12.5},
    }
    with server("--database", db, "--anonymous-writes") as base:
        r = httpx.post(base + "/ngsi-ld/v1/entities", json=entity)
        assert r.status_code == 201, r.text
    with server("--database", db) as base:
        # without --anonymous-writes the server refuses writes, and anonymous readers see open
        # data sets only: the default organisation's entity is not theirs to read
        r = httpx.post(base + "/ngsi-ld/v1/entities", json={**entity, "id": "urn:ngsi-ld:Sensor:2"})
        assert r.status_code == 401
        r = httpx.get(base + "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:durable")
        assert r.status_code == 404
    with server("--database", db, "--anonymous-writes") as base:
        # trial mode: anonymous clients read as the default organisation, which owns it
        r = httpx.get(base + "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:durable")
        assert r.status_code == 200
        assert r.json()["temperature"]["value"] == 12.5


def test_demo_content_is_served(tmp_path: Path) -> None:
    with server("--database", f"sqlite:///{tmp_path}/demo.db", "--demo") as base:
        r = httpx.get(
            base + "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved", "count": "true"}
        )
        assert r.status_code == 200
        assert int(r.headers["NGSILD-Results-Count"]) == 8


def test_db_migrate_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/migrate.db"
    first = subprocess.run(
        [*SMARTREGION, "db", "migrate", "--database", url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "applied" in first.stdout
    second = subprocess.run(
        [*SMARTREGION, "db", "migrate", "--database", url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in second.stdout


def test_database_url_from_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/env.db"
    env = {**os.environ, "SMARTREGION_DATABASE_URL": url}
    subprocess.run(
        [*SMARTREGION, "db", "migrate"], capture_output=True, text=True, check=True, env=env
    )
    assert (tmp_path / "env.db").exists()


def test_demo_does_not_overwrite_changes_on_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/demo2.db"
    station = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:44021-001"
    with server("--database", db, "--demo", "--anonymous-writes") as base:
        r = httpx.patch(
            base + station + "/attrs", json={"no2": {"type": "Property", "value": 99.0}}
        )
        assert r.status_code == 204, r.text
    with server("--database", db, "--demo") as base:
        assert httpx.get(base + station).json()["no2"]["value"] == 99.0


def test_several_workers_share_one_database(tmp_path: Path) -> None:
    # worker processes rebuild their settings from the environment: database and flags must reach them
    db = f"sqlite:///{tmp_path}/workers.db"
    with server("--database", db, "--anonymous-writes", "--workers", "2") as base:
        for i in range(20):
            entity = {
                "id": f"urn:ngsi-ld:Sensor:w{i}",
                "type": "Sensor",
                "n": {"type": "Property", "value": i},
            }
            with httpx.Client() as client:  # a new connection each time: spread over the workers
                assert client.post(base + "/ngsi-ld/v1/entities", json=entity).status_code == 201
        r = httpx.get(
            base + "/ngsi-ld/v1/entities", params={"type": "Sensor", "count": "true", "limit": "0"}
        )
        assert r.headers["NGSILD-Results-Count"] == "20"


def test_security_basics_across_a_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # settings reach the server through the environment, as for an operator
    monkeypatch.setenv("SMARTREGION_MAX_BODY_BYTES", "2000")
    monkeypatch.setenv("SMARTREGION_RATE_LIMIT_ADDRESS_RATE", "0.01")
    monkeypatch.setenv("SMARTREGION_RATE_LIMIT_ADDRESS_BURST", "3")
    monkeypatch.setenv("SMARTREGION_SECRET_KEY_FILE", str(tmp_path / "smartregion.secret"))
    with server("--database", f"sqlite:///{tmp_path}/security.db", "--anonymous-writes") as base:
        health = httpx.get(base + "/healthz")  # exempt from the rate limit, polled above too
        assert health.headers["X-Content-Type-Options"] == "nosniff"
        assert health.headers["X-Frame-Options"] == "DENY"
        big = httpx.post(
            base + "/ngsi-ld/v1/entities",
            content=b"{" + b" " * 5000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
        assert big.headers["content-type"].startswith("application/problem+json")
        statuses = [httpx.get(base + "/ngsi-ld/v1/types").status_code for _ in range(3)]
        limited = httpx.get(base + "/ngsi-ld/v1/types")
        assert statuses[:2] == [200, 200]  # the 413 took the third token
        assert statuses[2] == limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1


def test_a_credential_in_the_query_string_is_refused_and_kept_out_of_the_access_log(
    tmp_path: Path,
) -> None:
    secret = "srk_0123456789abcdef_" + "s" * 43
    output: list[str] = []
    with server("--database", f"sqlite:///{tmp_path}/log.db", output=output) as base:
        for url in [
            f"/ngsi-ld/v1/entities?type=T&access_token={secret}",
            f"/ngsi-ld/v1/entities/?type=T&x={secret}",
            f"/api/v1/organisations?api_key={secret}",
        ]:
            r = httpx.get(base + url)
            assert r.status_code == 400, url
    log = output[0]
    assert "/ngsi-ld/v1/entities" in log and "400" in log  # the requests were logged …
    assert "s" * 43 not in log  # … without the credential


@pytest.mark.parametrize(
    ("level", "asked", "logged"),
    [
        ("info", True, True),
        ("debug", True, True),
        ("trace", True, True),
        ("INFO", True, True),
        ("warning", True, False),
        ("error", True, False),
        ("info", False, False),
        ("no-such-level", True, True),  # uvicorn decides what an unknown level means
    ],
)
def test_access_log_lines_are_made_only_where_the_level_shows_them(
    level: str, asked: bool, logged: bool
) -> None:
    from smartregion.cli.main import logs_access
    from smartregion.settings import Settings

    assert logs_access(Settings(log_level=level, access_log=asked)) is logged
