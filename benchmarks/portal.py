"""Portal pages: server-side time per page (p50/p95) and bytes per page type (issue 8).

    .venv/bin/python -m benchmarks.portal [--requests 200] [--database sqlite:///…]

The app runs in process over the demo content (loaded into a fresh database first) and every
page type is requested through the full ASGI stack (security middleware, sessions, templates)
with httpx's ASGITransport: the time measured is the server's, without sockets or a browser.
Signed-in pages are measured for the demo's admin. Target: p95 ≤ 150 ms per page.

Bytes per page type: the HTML, and everything the page loads on a first visit (its stylesheets,
scripts and images, counted from the static files it references), raw and gzip-compressed (what
a reverse proxy with compression sends); repeat visits load only the HTML (static files are
cached). Run on a quiet machine; the figures go into docs/benchmarks.md by the integrator.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.loadgen import percentile
from smartregion.app import create_app
from smartregion.broker.demo import DEMO_PASSWORD, DEMO_PEOPLE
from smartregion.settings import Settings

STATIC = Path(__file__).resolve().parents[1] / "smartregion" / "web" / "static"
PAGES = {
    "home": "/",
    "catalogue": "/datasets",
    "catalogue (search)": "/datasets?q=lucht&theme=environment",
    "data set": "/datasets/demo",
    "chart values (JSON)": "/datasets/demo/series?id=urn:ngsi-ld:AirQualityObserved:44021-001"
    "&attrs=pm10&options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=PT1H&timerel=after"
    "&timeAt={week_ago}",
    "municipality dashboard": "/municipalities/Gent",
    "sign-in": "/sign-in",
    "indicator chart (PNG)": "/municipalities/Gent/pm10-44021-001.png",
    # the hub's pages
    "use cases": "/use-cases",
    "use cases (facet, search)": "/use-cases?term=domain:mobility&q=parkeren",
    "use case": "/use-cases/slim-parkeren-gent",
    "stories": "/stories",
    "initiatives": "/initiatives",
    "portfolio report": "/initiatives/report",
    "actors": "/actors",
    # the hub's pages (docs/portal.md): lists, a challenge with its matches, joint purchases,
    # the funding finder answering, an instrument, the deadline calendar
    "challenges": "/challenges",
    "challenges (facet, search)": "/challenges?domain=domain:mobility&q=parkeer",
    "challenge with matches": "/challenges/parkeerzoekverkeer-kortrijk",
    "solution with matches": "/solutions/parkwise-sensor",
    "joint purchases": "/joint-purchases",
    "funding finder (answers)": "/funding?kind=municipality&domain=domain:mobility&amount=100000",
    "funding instrument": "/funding/smart-cities-call",
    "deadline calendar": "/funding/calendar?month=2027-04",
}
SIGNED_IN = {
    "organisation admin": "/admin",
    "post a challenge": "/challenges/new",
    "my follows": "/account/follows",
}


def assets_of(html: str) -> list[Path]:
    """The static files a page references (stylesheets, scripts, icons, Leaflet's markers)."""
    paths = re.findall(r'(?:href|src)="/static/([^"?#]+)"', html)
    files = [STATIC / p for p in paths]
    if "leaflet.js" in html:
        files += [
            STATIC / "vendor/leaflet/images/marker-icon.png",
            STATIC / "vendor/leaflet/images/marker-shadow.png",
        ]
    return files


async def measure(client: httpx.AsyncClient, path: str, requests: int) -> tuple[list[float], bytes]:
    body = b""
    for _ in range(5):  # warm-up: template compilation, caches
        body = (await client.get(path)).content
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        r = await client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code}")
    return samples, body


async def run(database_url: str, requests: int) -> None:
    settings = Settings(
        database_url=database_url,
        demo=True,
        secret_key="benchmark-secret-" + "x" * 32,
        access_log=False,
        rate_limit_address_rate=0,
        rate_limit_address_burst=0,
    )
    app = create_app(settings)
    week_ago = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 7 * 86400))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://bench") as anonymous,
            httpx.AsyncClient(transport=transport, base_url="http://bench") as admin,
        ):
            page = await admin.get("/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            _, email, *_ = DEMO_PEOPLE[0]
            r = await admin.post(
                "/sign-in",
                data={
                    "email": email,
                    "password": DEMO_PASSWORD,
                    "next": "/admin",
                    "csrf_token": token.group(1),
                },
            )
            assert r.status_code == 303, r.text
            print(
                f"{'page':<26} {'p50 ms':>8} {'p95 ms':>8} {'HTML B':>9} {'first visit B':>14} {'gzip B':>9}"
            )
            targets = [
                (name, path.format(week_ago=week_ago), anonymous) for name, path in PAGES.items()
            ]
            targets += [(name, path, admin) for name, path in SIGNED_IN.items()]
            for name, path, client in targets:
                samples, body = await measure(client, path, requests)
                assets = assets_of(body.decode("utf-8", "replace"))
                raw = len(body) + sum(f.stat().st_size for f in assets)
                packed = len(gzip.compress(body)) + sum(
                    len(gzip.compress(f.read_bytes())) for f in assets
                )
                print(
                    f"{name:<26} {percentile(samples, 50):8.1f} {percentile(samples, 95):8.1f} "
                    f"{len(body):9,d} {raw:14,d} {packed:9,d}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    if args.database:
        asyncio.run(run(args.database, args.requests))
        return
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(f"sqlite:///{directory}/portal.db", args.requests))


if __name__ == "__main__":
    main()
