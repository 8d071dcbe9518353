"""axe-core (npm, tests/fixtures/vendor) on every page type in both languages: 0 violations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import AXE
from tests.web.conftest import ANNA, BART

PAGES = [
    "/",
    "/datasets",
    "/datasets/demo",
    "/datasets/demo-water",
    "/municipalities",
    "/municipalities/Gent",
    "/sign-in",
    "/no-such-page",
    # the hub's pages (web/usecases.py, initiatives.py, actors.py)
    "/use-cases",
    "/use-cases/slim-parkeren-gent",
    "/stories",
    "/stories/fatima-meet-de-lucht",
    "/initiatives",
    "/initiatives/report",
    "/initiatives/slimme-binnenstad-leuven",
    "/actors",
    "/actors/actor-gent",
]
#: pages whose map must be drawn before axe looks at them
MAPS = {"/datasets/demo", "/use-cases/slim-parkeren-gent", "/actors", "/actors/actor-gent"}
#: the hub's page types (docs/portal.md): lists, object pages with matches, joint purchases,
#: the funding finder with answers, an instrument, the deadline calendar
HUB_PAGES = [
    "/challenges",
    "/challenges?domain=domain:mobility",
    "/challenges/parkeerzoekverkeer-kortrijk",
    "/solutions",
    "/solutions/parkwise-sensor",
    "/joint-purchases",
    "/funding",
    "/funding?kind=municipality&domain=domain:mobility&amount=100000",
    "/funding?kind=alien",
    "/funding/smart-cities-call",
    "/funding/calendar?month=2027-04",
]
#: WCAG 2.1 A and AA, plus axe's best practices
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def violations(page: Any) -> list[dict[str, Any]]:
    # evaluated over the DevTools protocol: the page's CSP (rightly) forbids injected scripts
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: list[dict[str, Any]] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(r => r.violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})))",
        TAGS,
    )
    return result


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_no_violations_on_any_page_type(browser: Any, base_url: str, lang: str) -> None:
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    found = {}
    bundle = page.request.get(f"{base_url}/api/v1/joint-purchases").json()[0]["id"]
    for path in [*PAGES, *HUB_PAGES, f"/joint-purchases/{bundle}"]:
        page.goto(f"{path}{'&' if '?' in path else '?'}lang={lang}")
        page.wait_for_load_state("networkidle")
        if path == "/datasets/demo":
            page.locator("#chart canvas").wait_for()
        if path in MAPS:
            page.locator(".leaflet-marker-icon").first.wait_for()
        found[path] = violations(page)
    # signed in: the organisation admin page
    page.goto("/sign-in")
    page.fill("#email", ANNA[0])
    page.fill("#password", ANNA[1])
    page.locator("form.narrow button").click()
    page.wait_for_url("**/admin")
    found["/admin"] = violations(page)
    context.close()
    # a form with an error: the request-access form sent with a blank purpose
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto(f"/sign-in?lang={lang}")
    page.fill("#email", BART[0])
    page.fill("#password", BART[1])
    page.locator("form.narrow button").click()
    page.wait_for_url("**/admin")
    page.goto("/datasets/demo-water")
    page.fill("#purpose", "   ")
    page.locator("#access form button").click()
    page.locator(".error-summary").wait_for()
    found["/datasets/demo-water (form error)"] = violations(page)
    # a local government's editor: the use case page with the endorse form
    page.goto("/use-cases/digitale-tweeling-kortrijk")
    page.locator('form[action$="/endorse"]').wait_for()
    found["/use-cases/{id} (endorse form)"] = violations(page)
    # the hub's forms, signed in: the post form, its errors, the near-duplicate warning, follows
    page.goto("/challenges/new")
    found["/challenges/new"] = violations(page)
    page.locator("form.post-form button[type=submit]").click()
    page.locator(".error-summary").wait_for()
    found["/challenges/new (form errors)"] = violations(page)
    page.fill("#title", "Zoekverkeer naar parkeerplaatsen in de binnenstad")
    page.fill("#problem", "Bezoekers zoeken lang naar een vrije parkeerplaats in de binnenstad.")
    page.locator("form.post-form button[type=submit]").click()
    page.locator("#similar").wait_for()
    found["/challenges/new (near-duplicate warning)"] = violations(page)
    page.goto("/solutions/new")
    found["/solutions/new"] = violations(page)
    page.goto("/challenges/parkeerzoekverkeer-kortrijk")
    follow = page.locator('form[action="/follows"] button')
    if follow.count():  # not yet followed in the other language's run
        follow.click()
        page.wait_for_url("**/challenges/parkeerzoekverkeer-kortrijk")
    page.goto("/account/follows")
    assert page.locator("tbody tr form").count() >= 1
    found["/account/follows"] = violations(page)
    context.close()
    assert {p: v for p, v in found.items() if v} == {}
