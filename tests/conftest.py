"""Shared fixtures.

`postgres_url` (session scope): a throwaway PostgreSQL database `smartregion_test_<random>` with
PostGIS, created on 127.0.0.1:5432 as user `postgres` (trust auth; override the server with
SMARTREGION_TEST_PG, e.g. `postgresql://postgres@127.0.0.1:5432/postgres`) and dropped at the end
of the session. No other database is touched. Without a reachable server the tests using it are
skipped — unless CI=true, where they fail: CI must exercise PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

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
