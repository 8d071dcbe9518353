"""Fixtures of the hub API tests: `env` on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hub_env import Env, empty_postgres, make_env


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/hub.db"
    else:
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
    async for e in make_env(url):
        yield e
