"""The main journeys in a real browser, keyboard only (tests/browser/conftest.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx

from tests.browser.keyboard import focused_outline, sign_in_by_keyboard, tab_to
from tests.web.conftest import ANNA, BART


def new_page(browser: Any, base_url: str, **options: Any) -> Any:
    context = browser.new_context(base_url=base_url, accept_downloads=True, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def test_visitor_opens_a_data_set_changes_the_period_and_downloads_csv(
    browser: Any, base_url: str
) -> None:
    page = new_page(browser, base_url)
    page.goto("/datasets?lang=en")
    tab_to(page, 'a[href="/datasets/demo"]')
    assert focused_outline(page) == "solid"
    page.keyboard.press("Enter")
    page.wait_for_url("**/datasets/demo")
    chart = page.locator("#chart")
    chart.locator("canvas").wait_for()
    week = int(chart.get_attribute("data-points") or 0)
    assert week >= 7 * 24 - 2  # hourly values of the last week
    # the map shows the sensors of the data set
    page.locator(".leaflet-marker-icon").first.wait_for()
    assert page.locator(".leaflet-marker-icon").count() == 16  # stations and parkings (points)
    # choose the last 24 hours by keyboard: the chart section is replaced, not the page
    # a radio group is one Tab stop (its checked radio); the arrow keys choose within it
    tab_to(page, 'input[name="period"]:checked')
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.value") == "24h"
    tab_to(page, ".chart-form button")
    page.keyboard.press("Enter")
    page.wait_for_url("**period=24h**")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.points) < 30")
    day = int(page.locator("#chart").get_attribute("data-points") or 0)
    assert 20 <= day <= 25
    tab_to(page, 'a[href="/datasets/demo/download.csv"]')
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    download = info.value
    assert download.suggested_filename == "demo.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len({r["id"] for r in rows}) == 24
    assert page.errors == []


def test_owner_grants_access_and_the_other_organisation_sees_the_data(
    browser: Any, base_url: str
) -> None:
    bart = new_page(browser, base_url)
    bart.goto("/datasets/demo-water?lang=en")
    assert bart.locator("#map").count() == 0
    sign_in_by_keyboard(bart, BART, '#access a[href^="/sign-in"]')
    bart.wait_for_url(f"{base_url}/datasets/demo-water")
    tab_to(bart, "#purpose")
    bart.keyboard.type("Flood warnings for the council")
    bart.keyboard.press("Tab")
    bart.keyboard.press("Enter")
    bart.get_by_text("Your request was sent.").wait_for()

    anna = new_page(browser, base_url)
    anna.goto("/sign-in?lang=en")
    sign_in_by_keyboard(anna, ANNA)
    anna.wait_for_url("**/admin")
    row = anna.locator("tr", has_text="Flood warnings for the council")
    assert row.count() == 1
    tab_to(anna, 'form[action$="/approve"] button')
    anna.keyboard.press("Enter")
    anna.get_by_text("The request was approved").wait_for()

    bart.goto("/datasets/demo-water")
    bart.locator(".leaflet-marker-icon").first.wait_for()
    assert bart.locator("caption", has_text="Peilmeter Gent").count() == 1
    assert bart.errors == [] and anna.errors == []


def test_dashboard_updates_live_when_a_value_arrives(browser: Any, base_url: str) -> None:
    page = new_page(browser, base_url)
    page.goto("/municipalities/Gent?lang=nl")
    page.wait_for_function("() => document.getElementById('live').dataset.live === 'connected'")
    cell = page.locator(
        'table[data-entity="urn:ngsi-ld:AirQualityObserved:44021-001"] [data-attr="no2"]'
    )
    assert cell.inner_text() != "77,25"
    r = httpx.patch(
        base_url + "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:44021-001/attrs",
        json={"no2": {"type": "Property", "value": 77.25, "unitCode": "GQ"}},
    )
    assert r.status_code == 204, r.text
    page.wait_for_function(
        '() => document.querySelector(\'table[data-entity="urn:ngsi-ld:AirQualityObserved:44021-001"] '
        "[data-attr=\"no2\"]').textContent === '77,25'",
        timeout=10_000,
    )
    assert "Luchtmeetstation Gent" in (page.locator("#live-status").text_content() or "")
    assert page.errors == []


def test_language_switch_is_remembered(browser: Any, base_url: str) -> None:
    page = new_page(browser, base_url, locale="nl-BE")
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "nl"
    tab_to(page, 'a[hreflang="en"]')
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert (
        page.get_by_role("heading", level=1).inner_text()
        == "Data and cooperation for the Flemish smart region"
    )
    page.goto("/datasets")  # no ?lang: the cookie remembers
    assert page.locator("html").get_attribute("lang") == "en"
    tab_to(page, 'a[hreflang="nl"]')
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.documentElement.lang === 'nl'")
    assert page.get_by_role("heading", level=1).inner_text() == "Datacatalogus"


def test_skip_link_is_the_first_stop(browser: Any, base_url: str) -> None:
    page = new_page(browser, base_url)
    page.goto("/datasets/demo")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_owner_creates_a_data_set_grants_access_and_the_other_organisation_sees_it(
    browser: Any, base_url: str
) -> None:
    # the owner's sensors write noise levels (anonymous writes are the platform organisation's,
    # whose admin Anna is)
    noise = {
        "id": "urn:ngsi-ld:NoiseLevelObserved:ring-gent",
        "type": "NoiseLevelObserved",
        "name": {"type": "Property", "value": "Geluidsmeter Ring Gent"},
        "LAeq": {"type": "Property", "value": 61.5},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [3.72, 51.05]},
        },
    }
    assert httpx.post(f"{base_url}/ngsi-ld/v1/entities", json=noise, timeout=30).status_code == 201

    anna = new_page(browser, base_url)
    anna.goto("/sign-in?lang=en")
    sign_in_by_keyboard(anna, ANNA)
    anna.wait_for_url("**/admin")
    # the new data set, keyboard only
    tab_to(anna, "#ds-id")
    anna.keyboard.type("gent-geluid")
    tab_to(anna, "#ds-title_nl")
    anna.keyboard.type("Geluid langs de ring")
    tab_to(anna, "#ds-types")
    anna.keyboard.type("NoiseLevelObserved")
    tab_to(anna, "#new-dataset button[type=submit]")
    anna.keyboard.press("Enter")
    anna.get_by_text("The data set was created.").wait_for()
    assert anna.locator('#datasets ~ table a[href="/datasets/gent-geluid"]').count() == 1

    bart = new_page(browser, base_url)
    bart.goto("/datasets/gent-geluid?lang=en")
    assert bart.locator("#map").count() == 0
    sign_in_by_keyboard(bart, BART, '#access a[href^="/sign-in"]')
    bart.wait_for_url(f"{base_url}/datasets/gent-geluid")
    tab_to(bart, "#purpose")
    bart.keyboard.type("Noise action plan")
    bart.keyboard.press("Tab")
    bart.keyboard.press("Enter")
    bart.get_by_text("Your request was sent.").wait_for()

    anna.goto("/admin")
    assert anna.locator("tr", has_text="Noise action plan").count() == 1
    tab_to(anna, 'form[action$="/approve"] button')
    anna.keyboard.press("Enter")
    anna.get_by_text("The request was approved").wait_for()

    bart.goto("/datasets/gent-geluid")
    bart.locator(".leaflet-marker-icon").first.wait_for()
    assert bart.locator("caption", has_text="Geluidsmeter Ring Gent").count() == 1
    assert bart.errors == [] and anna.errors == []
