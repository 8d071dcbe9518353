"""Every portal page in process: status, language, content readable without JavaScript."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from smartregion.app import page_csp
from smartregion.governance import Principal
from smartregion.settings import HTML_CSP, Settings
from smartregion.web.dashboard import PM10_DAILY_LIMIT

pytestmark = pytest.mark.anyio

PAGES = [
    "/",
    "/datasets",
    "/datasets?theme=environment",
    "/datasets/demo",
    "/datasets/demo-water",
    "/municipalities",
    "/municipalities/Gent",
    "/sign-in",
]


def text_of(html: str) -> str:
    """What a reader without JavaScript reads: the markup without scripts and tags."""
    html = re.sub(r"<script\b.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_every_page_answers_in_the_language_asked(
    portal: Callable[..., Any], lang: str
) -> None:
    client = portal()
    for path in PAGES:
        sep = "&" if "?" in path else "?"
        r = await client.get(f"{path}{sep}lang={lang}")
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert f'<html lang="{lang}">' in r.text, path
        assert r.headers["Content-Language"] == lang
        assert r.headers["Content-Security-Policy"] == HTML_CSP
        assert 'href="#main"' in r.text and '<main id="main"' in r.text  # skip link, landmark
        other = "en" if lang == "nl" else "nl"
        assert f'hreflang="{other}"' in r.text  # the language switch, on every page
        # no inline script: the policy would block it (application/json data blocks are inert)
        for tag in re.findall(r"<script\b[^>]*>", r.text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)


async def test_language_choice_order(portal: Callable[..., Any]) -> None:
    client = portal()
    assert '<html lang="nl">' in (await client.get("/")).text  # default: Dutch
    r = await client.get("/", headers={"Accept-Language": "fr-BE, en-GB;q=0.8, nl;q=0.5"})
    assert '<html lang="en">' in r.text and "set-cookie" not in {k.lower() for k in r.headers}
    r = await client.get("/datasets?lang=en")
    assert "smartregion_lang=en" in r.headers["set-cookie"]
    # remembered: the cookie wins over Accept-Language
    r = await client.get("/", headers={"Accept-Language": "nl"})
    assert '<html lang="en">' in r.text and "Data catalogue" in r.text
    r = await client.get("/?lang=nl")
    assert '<html lang="nl">' in r.text and "Datacatalogus" in r.text
    # an unknown language is ignored, not an error
    r = await portal().get("/?lang=de")
    assert r.status_code == 200 and '<html lang="nl">' in r.text


async def test_dates_and_numbers_in_the_readers_locale(portal: Callable[..., Any]) -> None:
    client = portal()
    nl = text_of((await client.get("/datasets/demo?lang=nl")).text)
    en = text_of((await client.get("/datasets/demo?lang=en")).text)
    # the Gent station's NO2 value 18.0 + PM2.5 7.5 from the demo; decimal comma in Dutch
    assert re.search(r"pm25 7,5 µg/m³", nl) and re.search(r"pm25 7\.5 µg/m³", en)
    months_nl = "jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec"
    assert re.search(rf"\d{{1,2}} ({months_nl})\.? \d{{4}}", nl)
    assert re.search(r"\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sept?|Oct|Nov|Dec) \d{4}", en)


async def test_catalogue_facets_and_search(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/datasets?lang=en")
    assert "2 data sets" in text_of(r.text)
    r = await client.get("/datasets?lang=en&policy=restricted")
    page = text_of(r.text)
    assert "1 data set" in page and "Water levels of the demo rivers" in page
    assert "Demo sensors across Flanders" not in page
    assert 'aria-current="true"' in r.text  # the chosen facet value is marked
    r = await client.get("/datasets?lang=en&q=parking")
    page = text_of(r.text)
    assert "1 data set" in page and "Demo sensors across Flanders" in page
    r = await client.get("/datasets?lang=en&q=nothing+like+this")
    assert "0 data sets" in text_of(r.text)


async def test_private_data_sets_are_not_shown_to_others(portal: Callable[..., Any]) -> None:
    client = portal()
    governance = portal.app.state.governance
    await governance.create_dataset(
        Principal.cli(), "hidden", "smartregion", "Verborgen", ["Secret"]
    )
    assert "Verborgen" not in (await client.get("/datasets")).text
    r = await client.get("/datasets/hidden")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert (await client.get("/datasets/hidden/download.csv")).status_code == 404


async def test_data_set_page_without_javascript(portal: Callable[..., Any]) -> None:
    r = await portal().get("/datasets/demo?lang=en")
    page = text_of(r.text)
    for expected in (
        "smartregion",
        "open",
        "https://creativecommons.org/licenses/by/4.0/",
        "AirQualityObserved",
        "Luchtmeetstation Herzele",
        "Parking Centrum Lommel",
    ):
        assert expected in page
    assert 'href="/datasets/demo/download.csv"' in r.text
    assert (
        'href="/ngsi-ld/v1/entities?type=AirQualityObserved%2COffStreetParking%2CTrafficFlowObserved'
        in r.text
    )
    # the map's data is the GeoJSON of the sensors; the chart's is a temporal API query
    geojson = re.search(
        r'<script type="application/json" id="map-data">(.*?)</script>', r.text, re.S
    )
    assert geojson and '"FeatureCollection"' in geojson.group(1)
    src = re.search(r'data-src="([^"]+)"', r.text)
    assert src and src.group(1).startswith("/datasets/demo/series?")
    assert "options=aggregatedValues" in src.group(1)
    assert re.search(
        r'href="/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:[^"]+options=aggregatedValues', r.text
    )


async def test_the_chart_reads_what_the_temporal_api_answers(portal: Callable[..., Any]) -> None:
    client = portal()
    page = await client.get(
        "/datasets/demo?period=24h&aggr=max&series=urn:ngsi-ld:AirQualityObserved:44021-001|pm10"
    )
    chart = re.search(r'data-src="([^"]+)"', page.text)
    api = re.search(r'href="(/ngsi-ld/v1/temporal/entities/[^"]+)"', page.text)
    assert chart and api
    r = await client.get(chart.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rows = r.json()["pm10"]["max"]
    assert 20 <= len(rows) <= 25  # one per hour of the last day
    assert all(isinstance(v, float | int) for v, _, _ in rows if v is not None)
    # the portal's answer is the temporal API's, for this (anonymous) reader
    from_api = await client.get(api.group(1).replace("&amp;", "&"))
    assert from_api.status_code == 200 and from_api.json()["pm10"] == r.json()["pm10"]
    # an entity outside the data set, and restricted data, are not answered
    other = chart.group(1).replace("&amp;", "&").replace("/datasets/demo/", "/datasets/demo-water/")
    assert (await client.get(other)).status_code == 404


async def test_bad_chart_choices_are_a_400_page(portal: Callable[..., Any]) -> None:
    client = portal()
    for query in ("period=1y", "aggr=median", "series=urn:x|y"):
        r = await client.get(f"/datasets/demo?{query}&lang=en")
        assert r.status_code == 400, query
        assert "Something is not right" in r.text and '<html lang="en">' in r.text


async def test_downloads(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/datasets/demo/download.csv")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="demo.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["type"] for row in rows} == {
        "AirQualityObserved",
        "OffStreetParking",
        "TrafficFlowObserved",
    }
    assert len({row["id"] for row in rows}) == 24
    gent = [row for row in rows if row["id"].endswith("44021-001") and row["attribute"] == "pm25"]
    assert gent[0]["value"] == "7.5" and gent[0]["unitCode"] == "µg/m³"
    r = await client.get("/datasets/demo/download.geojson")
    assert r.headers["content-type"] == "application/geo+json"
    collection = r.json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 24
    # restricted data: nothing to download for who may not read it
    assert (await client.get("/datasets/demo-water/download.csv")).status_code == 404


async def test_dashboard_readings_match_their_csv(portal: Callable[..., Any]) -> None:
    client = portal()
    page = text_of((await client.get("/municipalities/Gent?lang=en")).text)
    reading = re.search(r"On (\d+) of the last (\d+) days the daily mean of PM10 was above", page)
    assert reading
    r = await client.get("/municipalities/Gent/pm10-44021-001.csv")
    rows = list(csv.reader(io.StringIO(r.text)))[1:]
    assert len(rows) == int(reading.group(2))
    assert sum(float(v) > PM10_DAILY_LIMIT for _, v in rows) == int(reading.group(1))
    assert "vehicles a day passed" in page
    # the water level is restricted: anonymous readers get no indicator of it
    assert "Water level" not in page
    assert (await client.get("/municipalities/Atlantis")).status_code == 404


async def test_unknown_pages_are_html_404s_in_the_readers_language(
    portal: Callable[..., Any],
) -> None:
    r = await portal().get("/no/such/page", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and "Page not found" in r.text
    r = await portal().get("/no/such/page")
    assert r.status_code == 404 and "Pagina niet gevonden" in r.text
    # the APIs keep their problem documents
    r = await portal().get("/ngsi-ld/v1/entities/urn:ngsi-ld:X:missing")
    assert r.headers["content-type"].startswith("application/")


async def test_vendored_assets_are_served(portal: Callable[..., Any]) -> None:
    client = portal()
    for path in (
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/images/marker-icon.png",
        "/static/vendor/uplot/uPlot.iife.min.js",
        "/static/portal/portal.css",
        "/static/portal/chart.js",
    ):
        assert (await client.get(path)).status_code == 200, path


def test_map_tiles_extend_only_the_image_sources() -> None:
    assert page_csp(Settings()) == HTML_CSP
    policy = page_csp(Settings(map_tiles_url="https://tile.openstreetmap.org/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in policy
    assert "script-src 'self';" in policy
