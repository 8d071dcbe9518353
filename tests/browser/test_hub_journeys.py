"""The hub's journeys in a real browser, keyboard only: a municipality employee posts a challenge
and sees matches; a supplier publishes a solution (tests/browser/conftest.py)."""

from __future__ import annotations

from typing import Any

from tests.browser.keyboard import focused_outline, sign_in_by_keyboard, tab_to
from tests.browser.test_journeys import new_page
from tests.web.conftest import BART

PIETER = ("pieter@demo.smartregion.be", "demo-wachtwoord")  # editor of the company parkwise


def type_into(page: Any, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.type(text)


def test_a_municipality_employee_posts_a_challenge_and_sees_matches(
    browser: Any, base_url: str
) -> None:
    page = new_page(browser, base_url)
    page.goto("/challenges?lang=en")
    sign_in_by_keyboard(page, BART, 'a[href="/sign-in?next=/challenges/new"]')
    page.wait_for_url(f"{base_url}/challenges/new")
    type_into(page, "#title", "Parking search traffic in the old town")
    type_into(
        page,
        "#problem",
        "Visitors search a long time for a free parking space; "
        "the searching causes congestion in the city centre.",
    )
    tab_to(page, 'input[value="domain:mobility.parking"]')
    page.keyboard.press("Space")
    type_into(page, "#budget_max", "70000")
    type_into(page, "#quantity", "200")
    tab_to(page, "form.post-form button[type=submit]")
    assert focused_outline(page) == "solid"
    page.keyboard.press("Enter")
    # the same need exists in Kortrijk: the warning comes before anything is saved
    page.locator("#similar").wait_for()
    assert "Traffic searching for parking in the centre" in page.locator("#similar").inner_text()
    assert page.input_value("#budget_max") == "70000"
    tab_to(page, "form.post-form button[type=submit]")
    assert page.evaluate("document.activeElement.textContent").strip() == "Post anyway"
    page.keyboard.press("Enter")
    page.wait_for_url("**/challenges/parking-search-traffic-in-the-old-town-*")
    page.get_by_text("Your challenge is posted.").wait_for()
    matches = page.locator("ol.matches").inner_text()
    assert "Parkwise parking sensor" in matches and "Same domain: Mobility, Parking." in matches
    # it is in the list now, for everyone
    page.goto("/challenges?lang=en&q=old+town")
    assert page.locator("article.result").count() == 1
    assert page.errors == []


def test_a_supplier_publishes_a_solution(browser: Any, base_url: str) -> None:
    page = new_page(browser, base_url)
    page.goto("/solutions?lang=en")
    sign_in_by_keyboard(page, PIETER, 'a[href="/sign-in?next=/solutions/new"]')
    page.wait_for_url(f"{base_url}/solutions/new")
    type_into(page, "#title", "Classroom climate sensor")
    type_into(
        page, "#summary", "Measures heat and CO2 in classrooms and warns teachers in hot weeks."
    )
    for domain in ("domain:environment.climate", "domain:people.education"):
        tab_to(page, f'input[value="{domain}"]')
        page.keyboard.press("Space")
    tab_to(page, "#maturity")
    assert page.input_value("#maturity") == "pilot"
    type_into(page, "#price_min", "250")
    tab_to(page, "form.post-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/solutions/classroom-climate-sensor-*")
    page.get_by_text("Your solution is published.").wait_for()
    assert "Offered by Parkwise BV (demo)" in page.locator("main").inner_text()
    matches = page.locator("ol.matches").inner_text()
    assert "Heat in classrooms" in matches
    # the owner may change it; the link is reachable by keyboard
    tab_to(page, 'a[href$="/edit"]')
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit")
    assert page.input_value("#title") == "Classroom climate sensor"
    assert page.errors == []
