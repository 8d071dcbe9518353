"""Regenerate the portal's screenshots in docs/screenshots/ (referenced from the README).

    .venv/bin/python scripts/screenshots.py

Starts `smartregion serve --demo` on a fresh database and a free port, opens the main pages in
Debian's Chromium (/usr/bin/chromium, headless, driven by Playwright; never `playwright
install`) at 1280×800, and writes one PNG per page and language.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PAGES = [
    ("home", "/"),
    ("catalogue", "/datasets"),
    ("dataset", "/datasets/demo"),
    ("dashboard", "/municipalities/Gent"),
    # the hub's pages
    ("use-cases", "/use-cases"),
    ("use-case", "/use-cases/slim-parkeren-gent"),
    ("stories", "/stories"),
    ("initiatives", "/initiatives"),
    ("report", "/initiatives/report"),
    ("actors", "/actors"),
    # the hub's pages: a challenge with its matches and why, the joint purchases, the funding
    # finder with answers and the deadline calendar
    ("challenge", "/challenges/parkeerzoekverkeer-kortrijk"),
    ("joint-purchases", "/joint-purchases"),
    ("funding", "/funding?kind=municipality&domain=domain:mobility&amount=100000"),
    ("calendar", "/funding/calendar?month=2027-03"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        env = {**os.environ, "SMARTREGION_SECRET_KEY": "screenshots-secret-0123456789abcdef"}
        with open(Path(directory) / "server.log", "wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "smartregion",
                    "serve",
                    "--demo",
                    "--port",
                    str(port),
                    "--database",
                    f"sqlite:///{directory}/demo.db",
                    "--no-access-log",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the server did not start; see its log")
                    time.sleep(0.2)
                shoot(base)
            finally:
                server.terminate()
                server.wait(timeout=15)


def shoot(base: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for lang in ("nl", "en"):
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            for name, path in PAGES:
                page.goto(f"{path}{'&' if '?' in path else '?'}lang={lang}")
                page.wait_for_load_state("networkidle")
                target = OUT / f"{name}-{lang}.png"
                if name == "dataset":
                    # the map and the chart, not the long tables below them
                    page.locator("#chart canvas").wait_for()
                    page.evaluate("() => document.getElementById('map-heading').scrollIntoView()")
                    page.screenshot(path=str(target))
                elif name in ("use-case", "actors"):
                    # the map drawn, then the whole page
                    page.locator(".leaflet-marker-icon").first.wait_for()
                    page.screenshot(path=str(target), full_page=True)
                else:
                    page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target.relative_to(ROOT)}")
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
