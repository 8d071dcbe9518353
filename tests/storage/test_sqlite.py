"""SQLite-specific behaviour: durability across processes, URLs, the in-memory database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from storage_docs import NS, entity

from smartregion.errors import InvalidRequest
from smartregion.storage import EntityQuery, Put, open_store
from smartregion.storage.postgres import PostgresStore
from smartregion.storage.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


async def test_acknowledged_writes_survive_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    # The writer process exits hard (no close, no checkpoint) right after the acknowledgement.
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from smartregion.storage import Put, open_store
        async def main():
            s = open_store("sqlite:///{db}")
            await s.open()
            await s.migrate()
            doc = {{"id": "urn:ngsi-ld:T:1", "type": ["urn:T"], "attrs": {{}}}}
            await s.transact("", ["urn:ngsi-ld:T:1"], lambda _: ([Put(doc)], None), owner="o")
            print("acknowledged", flush=True)
            os._exit(0)
        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "acknowledged"
    s = open_store(f"sqlite:///{db}")
    await s.open()
    try:
        assert await s.migrate() == []
        doc = await s.get_entity("", "urn:ngsi-ld:T:1")
        assert doc is not None and doc["type"] == ["urn:T"]
    finally:
        await s.close()


async def test_close_and_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    s = open_store(url)
    await s.open()
    await s.migrate()
    await s.transact("t1", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=1))], None), owner="o")
    await s.close()
    s = open_store(url)
    await s.open()
    try:
        assert await s.get_entity("t1", "urn:ngsi-ld:T:1") == entity(1, n=1)
        assert await s.tenants() == ["", "t1"]
    finally:
        await s.close()


async def test_memory_database() -> None:
    s = open_store("sqlite:///:memory:")
    assert isinstance(s, SQLiteStore) and s.memory
    await s.open()
    try:
        assert await s.migrate() == ["0001_initial"]
        await s.transact(
            "", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=3))], None), owner="o"
        )
        result = await s.query("", EntityQuery(count=True))
        assert result.count == 1 and result.docs[0]["attrs"][NS + "n"][0]["value"] == 3
    finally:
        await s.close()


def test_database_urls(tmp_path: Path) -> None:
    relative = open_store("sqlite:///./smartregion.db")
    assert isinstance(relative, SQLiteStore) and relative.path == "./smartregion.db"
    absolute = open_store("sqlite:////var/lib/sr.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == "/var/lib/sr.db"
    assert isinstance(open_store("postgresql://u@h/db"), PostgresStore)
    assert open_store("postgresql://u@h/db").backend == "postgresql"
    with pytest.raises(InvalidRequest):
        open_store("mysql://x")
