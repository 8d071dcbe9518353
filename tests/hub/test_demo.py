"""`serve --demo` fills the hub once, with the funding instruments the strategy names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from smartregion.app import create_app
from smartregion.hub.demo import load_hub_demo
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_demo_content_is_loaded_once(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/demo.db", demo=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            funding = (await c.get("/funding?limit=100")).json()
            assert {f["id"] for f in funding["items"]} >= {
                "smart-cities-call",
                "efro-erdf",
                "interreg",
                "pio",
                "coock",
                "hermesfonds",
            }
            assert all(f["demo"] for f in funding["items"])
            call = (await c.get("/funding/smart-cities-call")).json()
            assert call["max_amount"] == 3_800_000 and call["level"] == "flemish"
            for path in (
                "/actors",
                "/use-cases",
                "/challenges",
                "/solutions",
                "/initiatives",
                "/stories",
            ):
                body = (await c.get(path)).json()
                assert body["total"] > 0, path
                assert all(i["title"].get("nl") for i in body["items"]), path
            ranked = (await c.get("/use-cases?sort=-endorsements&limit=1")).json()["items"][0]
            assert ranked["endorsements"] == 3
            # a second load into a hub with content changes nothing
            assert await load_hub_demo(app.state.hub, owner="smartregion") == 0
