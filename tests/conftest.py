"""Shared fixtures.

`postgres_url` (session scope): a throwaway PostgreSQL database `smartregion_test_<random>` with
PostGIS, created on 127.0.0.1:5432 as user `postgres` (trust auth; override the server with
SMARTREGION_TEST_PG, e.g. `postgresql://postgres@127.0.0.1:5432/postgres`) and dropped at the end
of the session. No other database is touched. Without a reachable server the tests using it are
skipped — unless CI=true, where they fail: CI must exercise PostgreSQL.

`mosquitto_url` (session scope): a throwaway Mosquitto broker started from the installed
binary on a free 127.0.0.1 port (anonymous, no persistence), stopped at the end of the session.
The shared broker on 1883 is never used. Without the binary: skipped, or failed when CI=true.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from benchmarks.servers import free_port, wait_port

_SERVER = os.environ.get("SMARTREGION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty database with PostGIS available; dropped after the session."""
    try:
        admin = psycopg.connect(_SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"smartregion_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield _with_database(_SERVER, name)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def mosquitto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """mqtt://127.0.0.1:PORT of a Mosquitto broker of this test session's own."""
    binary = mosquitto_binary()
    port = free_port()
    config = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    with running_mosquitto(binary, config, [port]):
        yield f"mqtt://127.0.0.1:{port}"


def mosquitto_binary() -> str:
    """The installed Mosquitto; the test fails without it in CI and is skipped elsewhere."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Mosquitto is required in CI but not installed")
        pytest.skip("Mosquitto is not installed")
    return binary


@contextmanager
def running_mosquitto(
    binary: str, config: Path, ports: list[int]
) -> Iterator[subprocess.Popen[bytes]]:
    """Mosquitto started with `config`, once every port in `ports` accepts connections (fails
    the test with Mosquitto's own message otherwise); stopped on leaving."""
    proc = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for port in ports:
            try:
                wait_port(port, proc, "Mosquitto", timeout=10)
            except RuntimeError:
                err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
                pytest.fail(f"Mosquitto did not start: {err}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
