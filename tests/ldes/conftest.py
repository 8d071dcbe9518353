"""Fixtures of the event-stream and catalogue tests: a `World` (ldes_world.py) on SQLite and
PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ldes_world import OP, PAGE_SIZE, World

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ldes.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    suffix = secrets.token_hex(3)
    a, c = f"a-{suffix}", f"c-{suffix}"
    settings = Settings(
        database_url=database_url,
        default_org=f"platform-{suffix}",
        ldes_page_size=PAGE_SIZE,
        ldes_settle_seconds=1.0,
        history_purge_interval=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        await gov.create_organisation(OP, f"platform-{suffix}", "Platform", "region")
        await gov.create_organisation(OP, a, "Stad A", "municipality")
        await gov.create_organisation(OP, c, "Bedrijf C", "company")
        keys = {
            "a.editor": (await gov.create_api_key(OP, a, role="editor")).key,
            "a.admin": (await gov.create_api_key(OP, a, role="admin")).key,
            "c.editor": (await gov.create_api_key(OP, c, role="editor")).key,
        }
        owner = Principal(a, "admin")
        await gov.create_dataset(
            owner,
            f"{a}-open",
            a,
            {"nl": "Sensoren", "en": "Sensors"},
            ["Sensor"],
            description={"nl": "Temperatuur per sensor"},
            theme="environment",
            policy="open",
        )
        await gov.create_dataset(
            owner,
            f"{a}-restricted",
            a,
            "Gebouwen",
            ["Building"],
            theme="living",
            policy="restricted",
        )
        await gov.create_dataset(
            owner, f"{a}-short", a, "Lantaarns", ["Lamp"], policy="open", retention_days=1
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield World(app, client, gov, a, c, keys, suffix)
