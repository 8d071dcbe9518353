"""What the app's start-up does to the process: the heap frozen while it runs (app.py)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from smartregion.app import create_app
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_heap_is_frozen_while_the_app_runs_and_unfrozen_after(tmp_path: Path) -> None:
    # frozen: the collections large answers trigger skip what start-up made (docs/architecture.md,
    # "Garbage collection"); unfrozen at the end, so that the next app of the process (tests)
    # can collect this one
    for name in ("one", "two"):
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/{name}.db"))
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            # what start-up made is among the frozen objects, not the collector's generations
            frozen_store = app.state.broker.store
            assert not any(obj is frozen_store for obj in gc.get_objects())
        assert gc.get_freeze_count() == 0
        assert any(obj is frozen_store for obj in gc.get_objects())
