"""Browser fixtures: a real `smartregion serve --demo` and Debian's Chromium driven by Playwright.

Never `playwright install`: the tests use /usr/bin/chromium (`apt-get install chromium`).
Without it they are skipped, unless CI=true, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_serve import server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
AXE = Path(__file__).resolve().parents[1] / "fixtures" / "vendor" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo server with anonymous writes (the live journey writes a value)."""
    directory = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMARTREGION_SECRET_KEY", "browser-tests-secret-0123456789abcdef")
        with server(
            "--database",
            f"sqlite:///{directory}/demo.db",
            "--demo",
            "--anonymous-writes",
            "--no-access-log",
        ) as base:
            yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs /usr/bin/chromium (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        yield chromium
        chromium.close()
