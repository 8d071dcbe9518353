"""Fixtures for in-process portal tests: an app over a copy of one demo database per session."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from smartregion.app import create_app
from smartregion.settings import Settings

SECRET = "portal-tests-secret-0123456789abcdef"
ANNA = ("anna@demo.smartregion.be", "demo-wachtwoord")  # admin of the owner (smartregion)
BART = ("bart@demo.smartregion.be", "demo-wachtwoord")  # editor of the municipality gent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A database with the demo content loaded once (history, data sets, people)."""
    path = tmp_path_factory.mktemp("portal-demo") / "demo.db"

    async def load() -> None:
        app = create_app(Settings(database_url=f"sqlite:///{path}", demo=True, secret_key=SECRET))
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(load())
    yield path


@pytest.fixture
def settings(tmp_path: Path, demo_database: Path) -> Settings:
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{demo_database}{suffix}")
        if source.exists():
            shutil.copy(source, tmp_path / f"portal.db{suffix}")
    return Settings(
        database_url=f"sqlite:///{tmp_path}/portal.db",
        demo=True,
        secret_key=SECRET,
        secret_key_file=str(tmp_path / "secret"),
    )


@pytest.fixture
async def portal(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """A factory of clients (each with its own cookies) of one running app."""
    app: Starlette = create_app(settings)
    clients: list[httpx.AsyncClient] = []
    async with app.router.lifespan_context(app):

        def client() -> httpx.AsyncClient:
            c = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )
            clients.append(c)
            return c

        client.app = app  # type: ignore[attr-defined]
        yield client
        for c in clients:
            await c.aclose()


def form_token(html: str) -> str:
    """The CSRF token of a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, who: tuple[str, str]) -> httpx.Response:
    """Sign in through the form, as a browser does."""
    page = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={
            "email": who[0],
            "password": who[1],
            "next": "/admin",
            "csrf_token": form_token(page.text),
        },
    )
