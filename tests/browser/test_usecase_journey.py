"""The hub's journey in a real browser, keyboard only: a visitor browses use cases."""

from __future__ import annotations

from typing import Any

from tests.browser.keyboard import focused_outline, tab_to
from tests.browser.test_journeys import new_page


def test_visitor_browses_use_cases(browser: Any, base_url: str) -> None:
    page = new_page(browser, base_url)
    page.goto("/?lang=en")
    # from the main menu to the library
    tab_to(page, 'nav a[href="/use-cases"]')
    assert focused_outline(page) == "solid"
    page.keyboard.press("Enter")
    page.wait_for_url("**/use-cases")
    assert page.locator("article.result").count() == 5
    # a facet: Mobility
    tab_to(page, '.facets a[href*="term=domain%3Amobility"]')
    page.keyboard.press("Enter")
    page.wait_for_url("**term=domain%3Amobility**")
    assert page.locator("article.result").count() == 2
    # a search within the facet: type, then Enter submits the form
    tab_to(page, "#q")
    page.keyboard.type("parkeren")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=parkeren**")
    assert "term=domain%3Amobility" in page.url  # the facet is kept
    results = page.locator("article.result h3 a")
    assert results.count() == 1 and results.first.inner_text() == "Smart parking in the city centre"
    # open it
    tab_to(page, 'article.result a[href="/use-cases/slim-parkeren-gent"]')
    page.keyboard.press("Enter")
    page.wait_for_url("**/use-cases/slim-parkeren-gent")
    assert page.locator("h1").inner_text() == "Smart parking in the city centre"
    # the map shows the adopting municipalities, each marker named and reachable by keyboard
    markers = page.locator(".leaflet-marker-icon")
    markers.first.wait_for()
    assert markers.count() == 2
    assert sorted(m.get_attribute("alt") or "" for m in markers.all()) == ["Kortrijk", "Leuven"]
    tab_to(page, '.leaflet-marker-icon[alt="Leuven"]')
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "Leuven" in popup.inner_text() and "stage: piloting" in popup.inner_text()
    # the same without the map, in the table
    assert (
        page.locator("table", has_text="Municipalities and how far they are")
        .locator("td", has_text="Leuven")
        .count()
        == 1
    )
    assert page.errors == []
