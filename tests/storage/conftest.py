"""Backend fixtures for the storage contract suite: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from smartregion.storage import Store, open_store

_PG_TABLES = (
    "entity, entity_type, attr_value, geo_index, series, jsonld_context, iri, organisation, typeset,"
    " subscription, outbox, gov_organisation, gov_person, gov_membership, gov_api_key, gov_mandate,"
    " gov_dataset, gov_access_request, gov_agreement, gov_grant, audit_log, audit_head, ingest_dead_letter,"
    " instance, rollup, ldes_replication, ldes_member_seen,"
    " hub_object, hub_key, hub_word, hub_endorsement, hub_adoption,"
    " hub_adoption_event, hub_follow, hub_dismissal, hub_match_dismissal"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def reset_postgres(url: str) -> None:
    """Empty every table of a migrated test database (the default tenant stays)."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('entity') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute(f"TRUNCATE {_PG_TABLES} RESTART IDENTITY")
            # history partitions are made on demand: each test starts without any
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'instance'::regclass"
            ).fetchall():
                conn.execute(f'DROP TABLE "{name}"')
            conn.execute("DELETE FROM tenant WHERE name <> ''")


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL for `backend`, empty at the start of the test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open, migrated store on an empty database."""
    s = open_store(store_url)
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()
