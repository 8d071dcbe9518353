"""Processes under test: the broker (`smartregion serve`) and the bare app, and throwaway databases."""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    """Wait until 127.0.0.1:`port` accepts connections; raise if `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll GET /healthz until it answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was healthy")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} not healthy after {timeout:.0f} s")


class Server:
    """A server subprocess (output to `log_path`) that can be restarted on the same port."""

    def __init__(self, argv: list[str], port: int, log_path: Path) -> None:
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start the process and wait until GET /healthz answers 200."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ)
            )
        try:
            wait_healthy(self.port, self.proc)
        except RuntimeError as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\n--- {self.log_path} ---\n{tail}") from None

    def stop(self) -> None:
        """Terminate the process (kill it after 20 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Stop and start again (e.g. to abandon a request that timed out)."""
        self.stop()
        self.restarts += 1
        self.start()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def broker_argv(database_url: str, port: int) -> list[str]:
    """The command line of the broker under test: one worker, anonymous writes."""
    return [
        str(VENV_BIN / "smartregion"),
        "serve",
        "--anonymous-writes",
        "--database",
        database_url,
        "--port",
        str(port),
    ]


def bare_argv(port: int) -> list[str]:
    """The command line of the bare-handler baseline."""
    return [sys.executable, "-m", "benchmarks.bare", "--port", str(port)]


def pg_admin_available() -> bool:
    """Whether the PostgreSQL server for throwaway databases answers."""
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3, autocommit=True):
            return True
    except psycopg.Error:
        return False


def pg_version() -> str:
    """`SHOW server_version` of the benchmark PostgreSQL."""
    with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def pg_settings() -> dict[str, str]:
    """The PostgreSQL settings that decide write speed."""
    names = ("fsync", "synchronous_commit", "shared_buffers", "max_wal_size", "autovacuum")
    with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3, autocommit=True) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def pg_setting(dsn: str, name: str) -> str:
    """One server setting, read through `dsn`."""
    with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
        return str(row[0]) if row else ""


def pg_analyze(dsn: str) -> None:
    """ANALYZE every table of the database `dsn`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


@contextmanager
def throwaway_pg_database(label: str = "") -> Iterator[str]:
    """Create `smartregion_bench_<random>` and drop it (with its connections) afterwards."""
    name = f"smartregion_bench_{label}{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
