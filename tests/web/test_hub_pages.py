"""The hub's portal pages, in process: challenges and solutions (browse, pages, matches, post and
edit forms with the near-duplicate warning), joint purchases, funding and follows."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.settings import HTML_CSP, Settings
from tests.web.conftest import ANNA, BART, SECRET, form_token, sign_in

pytestmark = pytest.mark.anyio

PIETER = ("pieter@demo.smartregion.be", "demo-wachtwoord")  # editor of the company parkwise
KORTRIJK = "/challenges/parkeerzoekverkeer-kortrijk"


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".")


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


async def post_form(
    client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    page = await client.get(page_url)
    return await client.post(action, data={**data, "csrf_token": form_token(page.text)})


HUB_PAGES = [
    "/challenges",
    "/challenges?domain=domain:mobility&status=open",
    "/solutions",
    KORTRIJK,
    "/solutions/parkwise-sensor",
    "/joint-purchases",
    "/funding",
    "/funding?kind=company",
    "/funding/smart-cities-call",
    "/funding/calendar",
    "/funding/calendar?month=2027-04",
]


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_every_hub_page_keeps_the_page_rules(portal: Callable[..., Any], lang: str) -> None:
    client = portal()
    await sign_in(client, BART)  # signed in: the follow and not-relevant forms are on the pages
    for path in [*HUB_PAGES, "/challenges/new", "/solutions/parkwise-sensor", "/account/follows"]:
        r = await client.get(f"{path}{'&' if '?' in path else '?'}lang={lang}")
        assert r.status_code == 200, (path, r.text[:500])
        assert f'<html lang="{lang}">' in r.text and r.headers["Content-Language"] == lang, path
        assert r.headers["Content-Security-Policy"] == HTML_CSP
        assert 'href="#main"' in r.text and '<main id="main"' in r.text
        assert f'hreflang="{"en" if lang == "nl" else "nl"}"' in r.text
        for tag in re.findall(r"<script\b[^>]*>", r.text):
            assert "src=" in tag, (path, tag)  # no inline script
        assert " style=" not in r.text, path  # no inline style
        assert r.text.count("<h1") == 1, path
        for form in re.findall(r'<form method="post".*?</form>', r.text, flags=re.S):
            assert 'name="csrf_token"' in form, (path, form[:200])


# --- browse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "nl",
            [
                "Uitdagingen",
                "Zoekverkeer naar parkeerplaatsen in het centrum",
                "4 uitdagingen",
                "Domein",
            ],
        ),
        (
            "en",
            ["Challenges", "Traffic searching for parking in the centre", "4 challenges", "Domain"],
        ),
    ],
)
async def test_challenges_in_both_languages(
    portal: Callable[..., Any], lang: str, words: list[str]
) -> None:
    r = await portal().get(f"/challenges?lang={lang}")
    assert r.status_code == 200 and f'<html lang="{lang}">' in r.text
    page = text_of(r.text)
    for word in words:
        assert word in page


async def test_facets_and_search_narrow_the_list(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/challenges?lang=en&domain=domain:mobility.parking")
    page = text_of(r.text)
    assert "2 challenges" in page and "Heat in classrooms" not in page
    assert 'aria-current="true"' in r.text  # the chosen value is marked, with a link to remove it
    r = await client.get("/challenges?lang=en&region=nis:71016")
    assert "1 challenge" in text_of(r.text) and "Heat in classrooms" in r.text
    r = await client.get("/challenges?lang=en&q=classrooms")
    assert "1 challenge" in text_of(r.text)
    r = await client.get("/challenges?lang=en&status=in_progress")
    assert "Noticing loneliness among older people" in r.text and "1 challenge" in text_of(r.text)
    r = await client.get("/solutions?lang=en&owner=parkwise")
    assert "1 solution" in text_of(r.text) and "Parkwise parking sensor" in r.text


@pytest.mark.parametrize(
    "query",
    [
        "status=nonsense",
        "domain=nis:44021",
        "domain=domain:no-such-thing",
        "region=domain:mobility",
        "page=two",
    ],
)
async def test_bad_filters_are_a_400_page(portal: Callable[..., Any], query: str) -> None:
    r = await portal().get(f"/challenges?lang=en&{query}")
    assert r.status_code == 400 and "Something is not right in what was sent" in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/challenges/no-such-challenge",
        "/solutions/no-such-solution",
        "/solutions/hitte-scholen",
        "/challenges/parkwise-sensor",
        "/funding/no-such-instrument",
        "/joint-purchases/bundle-000000000000",
        "/joint-purchases/bundle-000000000000/tender.json",
        "/challenges/no-such-challenge/edit",
    ],
)
async def test_unknown_objects_are_404_pages(portal: Callable[..., Any], path: str) -> None:
    client = portal()
    await sign_in(client, BART)
    r = await client.get(f"{path}?lang=nl")
    assert r.status_code == 404 and "Pagina niet gevonden" in r.text


# --- object pages and matches -----------------------------------------------------------------


async def test_challenge_page_shows_ranked_solutions_with_why(portal: Callable[..., Any]) -> None:
    r = await portal().get(f"{KORTRIJK}?lang=en")
    assert r.status_code == 200
    matches = text_of(section(r.text, 'id="matches"', "Left out, and why"))
    assert "Parkwise parking sensor" in matches
    assert "Why: shared words parking" in matches
    assert "Same domain: Mobility, Parking." in matches
    assert "Price from € 8, within the budget of € 90,000." in matches
    left_out = text_of(section(r.text, "Left out, and why", "</section>"))
    assert "LuchtLab measurement kit" in left_out and "No domain in common." in left_out
    nl = text_of((await portal().get(f"{KORTRIJK}?lang=nl")).text)
    assert "Zelfde domein: Mobiliteit, Parkeren." in nl and "binnen het budget van € 90.000" in nl


async def test_solution_page_shows_ranked_challenges(portal: Callable[..., Any]) -> None:
    r = await portal().get("/solutions/parkwise-sensor?lang=en")
    matches = text_of(section(r.text, 'id="matches"', "</ol>"))
    assert matches.index("Traffic searching for parking in the centre") < matches.index(
        "Less traffic searching for parking"
    )
    assert "Mature enough: level 9 of 9, 6 needed." in matches


async def test_not_relevant_hides_the_match_for_that_organisation_only(
    portal: Callable[..., Any],
) -> None:
    bart, anonymous = portal(), portal()
    await sign_in(bart, BART)
    action = f"{KORTRIJK}/matches/parkwise-sensor/not-relevant"
    assert (await anonymous.post(action, data={})).status_code == 401  # anonymous: sign in first
    r = await post_form(bart, KORTRIJK, action, {})
    assert r.status_code == 303 and r.headers["location"].endswith("done=dismissed#matches")
    page = await bart.get(f"{KORTRIJK}?lang=en&done=dismissed")
    matches = text_of(section(page.text, 'id="matches"', "</section>"))
    assert "Parkwise parking sensor" not in matches
    assert "1 match your organisation marked not relevant is hidden." in matches
    assert 'href="/solutions/parkwise-sensor"' in section(
        (await anonymous.get(KORTRIJK)).text, 'id="matches"', "</ol>"
    )
    # and the other way round: on the solution's page, for bart's organisation
    assert "parkeerzoekverkeer-kortrijk" not in section(
        (await bart.get("/solutions/parkwise-sensor")).text, 'id="matches"', "</ol>"
    )
    r = await post_form(
        bart, KORTRIJK, "/challenges/parkeerzoekverkeer-kortrijk/matches/no-such/not-relevant", {}
    )
    assert r.status_code == 404


# --- posting and editing ----------------------------------------------------------------------


async def test_anonymous_cannot_post(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/challenges/new")
    assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=%2Fchallenges%2Fnew"
    r = await post_form(client, "/sign-in", "/challenges/new", {"title": "x", "problem": "y"})
    assert r.status_code == 401
    r = await post_form(client, "/sign-in", "/solutions/parkwise-sensor/edit", {"title": "x"})
    assert r.status_code == 401
    assert "Meld u aan om een uitdaging te plaatsen" in (await client.get("/challenges")).text


async def test_post_form_errors_are_shown_next_to_fields_with_input_kept(
    portal: Callable[..., Any],
) -> None:
    client = portal()
    await sign_in(client, BART)
    r = await post_form(
        client,
        "/challenges/new?lang=en",
        "/challenges/new",
        {
            "title": "  ",
            "problem": "Too many bikes <b>parked</b> on pavements",
            "budget_min": "5000",
            "budget_max": "100",
            "quantity": "lots",
            "timeline_start": "2027-13-01",
            "terms": ["domain:mobility", "domain:invented"],
            "min_maturity": "perfect",
        },
    )
    assert r.status_code == 400
    page = r.text
    for field, message in [
        ("title", "Give the challenge a short title."),
        ("budget_max", "The highest budget is below the lowest."),
        ("quantity", "Enter a number, like 40."),
        ("timeline_start", "Enter a date, like 2027-03-01."),
        ("terms", "Choose one of the options."),
        ("min_maturity", "Choose one of the options."),
    ]:
        assert f'id="{field}-error"' in page, field
        assert message in text_of(section(page, f'id="{field}-error"', "</p>")), field
    assert 'aria-invalid="true"' in page and 'class="error-summary"' in page
    # input kept, and escaped
    assert "Too many bikes &lt;b&gt;parked&lt;/b&gt; on pavements</textarea>" in page
    assert 'value="lots"' in page and 'value="domain:mobility" checked' in page
    nl = await post_form(
        client, "/challenges/new?lang=nl", "/challenges/new", {"title": "", "problem": ""}
    )
    assert nl.status_code == 400
    assert "Beschrijf het probleem in uw eigen woorden." in nl.text
    # an amount that is no amount, a number too large; an amount left empty is optional
    r = await post_form(
        client,
        "/challenges/new?lang=en",
        "/challenges/new",
        {"title": "Bikes", "problem": "Parked on pavements", "budget_min": "a lot",
         "quantity": "2000000000"},
    )  # fmt: skip
    assert r.status_code == 400
    for field, message in [
        ("budget_min", "Enter an amount in euro, like 50000."),
        ("quantity", "Enter a number, like 40."),
    ]:
        assert message in text_of(section(r.text, f'id="{field}-error"', "</p>")), field
    assert 'id="budget_max-error"' not in r.text
    assert (await client.get("/challenges?q=bikes")).text.count(
        'class="result"'
    ) == 0  # nothing stored


async def test_a_near_duplicate_is_shown_before_saving_then_posted_anyway(
    portal: Callable[..., Any],
) -> None:
    client = portal()
    await sign_in(client, BART)
    fields = {
        "title": "Zoekverkeer naar parkeerplaatsen in de binnenstad",
        "problem": "Bezoekers zoeken lang naar een vrije parkeerplaats; het zoekverkeer zorgt voor file.",
        "terms": ["domain:mobility.parking"],
        "budget_max": "60.000",
        "quantity": "300",
        "unit": "parkeerplaatsen",
    }
    r = await post_form(client, "/challenges/new", "/challenges/new", fields)
    assert r.status_code == 200
    warning = text_of(section(r.text, 'id="similar"', "</section>"))
    assert "Er bestaan al gelijkaardige uitdagingen" in warning
    assert "Zoekverkeer naar parkeerplaatsen in het centrum" in warning
    assert 'name="confirm" value="yes"' in r.text and "Toch plaatsen" in r.text
    assert 'value="60.000"' in r.text  # the input is kept
    r = await client.post(
        "/challenges/new", data={**fields, "confirm": "yes", "csrf_token": form_token(r.text)}
    )
    assert r.status_code == 303
    location = r.headers["location"]
    assert re.fullmatch(
        r"/challenges/zoekverkeer-naar-parkeerplaatsen-in-de-binnenstad-[0-9a-f]{6}\?done=posted",
        location,
    )
    page = await client.get(location.split("?")[0] + "?lang=en&done=posted")
    assert "Your challenge is posted." in page.text
    assert "Posted by Stad Gent" in text_of(page.text)
    assert "Parkwise parking sensor" in section(page.text, 'id="matches"', "</section>")
    assert "€ 60,000" in text_of(page.text)  # "60.000" read as Dutch
    assert "Change this challenge" in page.text


async def test_only_the_owners_editors_change_an_object(portal: Callable[..., Any]) -> None:
    pieter, bart = portal(), portal()
    await sign_in(pieter, PIETER)
    await sign_in(bart, BART)
    assert (await pieter.get(f"{KORTRIJK}/edit")).status_code == 403
    r = await post_form(
        pieter, KORTRIJK, f"{KORTRIJK}/edit", {"title": "taken over", "problem": "x"}
    )
    assert r.status_code == 403
    assert "Change this challenge" not in (await pieter.get(f"{KORTRIJK}?lang=en")).text
    assert (await bart.get("/solutions/parkwise-sensor/edit")).status_code == 403
    # the owner's editor changes it: the other language's text stays
    r = await pieter.get("/solutions/parkwise-sensor/edit?lang=en")
    assert r.status_code == 200 and 'value="Parkwise parking sensor"' in r.text
    r = await pieter.post(
        "/solutions/parkwise-sensor/edit",
        data={
            "title": "Parkwise parking sensor 2",
            "summary": "A wireless ground sensor.",
            "maturity": "scaled",
            "pricing_model": "subscription",
            "price_min": "8",
            "price_max": "15",
            "terms": ["domain:mobility.parking"],
            "confirm": "yes",
            "csrf_token": form_token(r.text),
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/solutions/parkwise-sensor?done=saved"
    assert (
        "Parkwise parking sensor 2" in (await pieter.get("/solutions/parkwise-sensor?lang=en")).text
    )
    nl = await pieter.get("/solutions/parkwise-sensor?lang=nl")
    assert "Parkwise parkeersensor" in nl.text and "Uw wijzigingen zijn bewaard" not in nl.text


async def test_a_supplier_publishes_a_solution(portal: Callable[..., Any]) -> None:
    client = portal()
    await sign_in(client, PIETER)
    r = await post_form(
        client,
        "/solutions/new?lang=en",
        "/solutions/new",
        {
            "title": "Bicycle counter",
            "summary": "Counts bicycles on cycle paths, every minute.",
            "maturity": "implemented",
            "pricing_model": "one_off",
            "price_min": "1,500",
            "terms": ["domain:mobility"],
        },
    )
    assert r.status_code == 303, text_of(r.text)[:500]
    page = await client.get(r.headers["location"].split("?")[0] + "?lang=en")
    assert "Offered by Parkwise BV (demo)" in text_of(page.text) and "from € 1,500" in text_of(
        page.text
    )
    assert "Publish a solution" in (await client.get("/solutions?lang=en")).text


# --- joint purchases --------------------------------------------------------------------------


async def test_joint_purchases_with_their_tender_outline(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/joint-purchases?lang=en")
    page = text_of(r.text)
    assert r.status_code == 200 and "Together: Stad Leuven, Stad Kortrijk." in page
    assert "Combined budget € 240,000" in page and "Combined demand 650 parkeerplaatsen" in page
    bundle = re.search(r'href="/joint-purchases/(bundle-[0-9a-f]{12})"', r.text)
    assert bundle
    one = await client.get(f"/joint-purchases/{bundle.group(1)}?lang=nl")
    assert "Percelen van de aanbesteding" in one.text and "lot-2" in one.text
    assert "Parkwise parkeersensor" in one.text
    download = await client.get(f"/joint-purchases/{bundle.group(1)}/tender.json")
    assert download.headers["content-type"] == "application/json"
    assert "attachment" in download.headers["content-disposition"]
    release = orjson.loads(download.content)
    assert release["tag"] == ["planning"] and release["ocid"].endswith(bundle.group(1))
    assert [lot["value"]["amount"] for lot in release["tender"]["lots"]] == [150_000, 90_000]
    assert (await client.get("/joint-purchases/not-a-bundle")).status_code == 404


# --- funding ----------------------------------------------------------------------------------


async def test_funding_finder_answers_with_rules_and_deadlines(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/funding?lang=en")
    assert (
        r.status_code == 200
        and "1. Who are you?" in r.text
        and 'id="results-heading"' not in r.text
    )
    r = await client.get("/funding?lang=en&kind=municipality&domain=domain:mobility&amount=100000")
    page = text_of(r.text)
    assert "Smart Cities and Municipalities Call" in page
    result = text_of(section(r.text, 'href="/funding/smart-cities-call"', "</article>"))
    assert "Organisations of your kind may apply." in result
    assert "A call is open: next deadline" in result
    assert "Grants up to € 3,800,000: enough for your amount." in result
    company = await client.get("/funding?lang=en&kind=company")
    smart = text_of(section(company.text, 'href="/funding/smart-cities-call"', "</article>"))
    assert "Does not fit you" in smart and "Only these may apply: municipality." in smart
    late = text_of((await client.get("/funding?lang=en&kind=municipality&when=2090-01-01")).text)
    assert "No call open then: the last deadline has passed." in late and "Fits you" not in late


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("kind=alien", "kind", "Kies een van de mogelijkheden."),
        ("kind=company&amount=veel", "amount", "Vul een bedrag in euro in, zoals 50000."),
        ("kind=company&when=morgen", "when", "Vul een datum in, zoals 2027-03-01."),
        ("kind=company&domain=nis:44021", "domain", "Kies een van de mogelijkheden."),
    ],
)
async def test_funding_finder_bad_answers(
    portal: Callable[..., Any], query: str, field: str, message: str
) -> None:
    r = await portal().get(f"/funding?lang=nl&{query}")
    assert r.status_code == 400
    assert message in text_of(section(r.text, f'id="{field}-error"', "</p>"))
    assert f'id="{field}"' in r.text and 'aria-invalid="true"' in r.text


async def test_instrument_page_and_calendar(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/funding/smart-cities-call?lang=nl")
    page = text_of(r.text)
    assert "Wie mag aanvragen gemeente" in page and "30 april 2027" in page
    assert 'href="/api/v1/funding/deadlines.ics?lang=nl"' in r.text
    cal = await client.get("/funding/calendar?lang=en&month=2027-04")
    assert cal.status_code == 200 and "April 2027" in cal.text
    grid = section(cal.text, '<table class="calendar">', "</table>")
    assert 'href="/funding/smart-cities-call"' in grid
    assert "Smart Cities and Municipalities Call" in text_of(
        section(cal.text, "This month", "</ul>")
    )
    assert 'month=2027-03" rel="prev"' in cal.text and 'month=2027-05" rel="next"' in cal.text
    ics = await client.get("/api/v1/funding/deadlines.ics")
    assert ics.status_code == 200 and "BEGIN:VCALENDAR" in ics.text
    for bad in ("2027-13", "april", "1999-01"):
        assert (await client.get(f"/funding/calendar?month={bad}")).status_code == 400


# --- follows ----------------------------------------------------------------------------------


async def test_follow_unfollow_and_digest_setting(portal: Callable[..., Any]) -> None:
    client, anonymous = portal(), portal()
    assert (await anonymous.get("/account/follows")).status_code == 303
    assert 'action="/follows"' not in (await anonymous.get(KORTRIJK)).text
    await sign_in(client, BART)
    r = await post_form(
        client, KORTRIJK, "/follows", {"target": "parkeerzoekverkeer-kortrijk", "next": KORTRIJK}
    )
    assert r.status_code == 303 and r.headers["location"] == KORTRIJK
    r = await post_form(
        client,
        "/challenges",
        "/follows",
        {"target": "domain:mobility.parking", "next": "/challenges?domain=domain:mobility.parking"},
    )
    assert r.status_code == 303
    page = await client.get("/account/follows?lang=en")
    rows = text_of(section(page.text, "<tbody>", "</tbody>"))
    assert "Traffic searching for parking in the centre" in rows and "Parking" in rows
    assert "Stop following" in (await client.get(f"{KORTRIJK}?lang=en")).text
    r = await client.post(
        "/account/digest", data={"frequency": "none", "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 303
    page = await client.get("/account/follows?lang=en&done=digest")
    assert 'value="none" checked' in page.text and "Your digest setting is saved." in page.text
    follow_id = re.search(r'action="/follows/(follow-[0-9a-f]{16})/delete"', page.text)
    assert follow_id
    r = await client.post(
        f"/follows/{follow_id.group(1)}/delete", data={"csrf_token": form_token(page.text)}
    )
    assert r.status_code == 303 and r.headers["location"] == "/account/follows?done=stopped"
    rows = text_of(section((await client.get("/account/follows")).text, "<tbody>", "</tbody>"))
    assert rows.count("Stop following") == 1  # the language chosen before is remembered
    # another organisation's member cannot stop it
    pieter = portal()
    await sign_in(pieter, PIETER)
    other = re.search(
        r'action="/follows/(follow-[0-9a-f]{16})/delete"',
        (await client.get("/account/follows")).text,
    )
    assert other
    r = await post_form(pieter, "/challenges", f"/follows/{other.group(1)}/delete", {})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("/follows", {"target": "no-such-object"}),
        ("/follows", {"target": ""}),
        ("/account/digest", {"frequency": "hourly"}),
    ],
)
async def test_follow_forms_bad_input(
    portal: Callable[..., Any], action: str, data: dict[str, str]
) -> None:
    client = portal()
    await sign_in(client, ANNA)
    r = await post_form(client, "/challenges", action, data)
    assert r.status_code == 400 and '<html lang="nl">' in r.text
    assert (
        "Something is not right in what was sent"
        in (
            await client.post(action + "?lang=en", data={**data, "csrf_token": form_token(r.text)})
        ).text
    )


async def test_hub_forms_need_the_csrf_token(portal: Callable[..., Any]) -> None:
    client = portal()
    await sign_in(client, BART)
    for action in (
        "/challenges/new",
        "/follows",
        "/account/digest",
        f"{KORTRIJK}/matches/parkwise-sensor/not-relevant",
    ):
        assert (await client.post(action, data={"title": "x"})).status_code == 403, action


# --- both backends ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hub-pages.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_post_match_dismiss_and_follow_on_both_backends(
    database_url: str, tmp_path: Any
) -> None:
    s = secrets.token_hex(3)
    op = Principal.cli()
    app = create_app(
        Settings(
            database_url=database_url, secret_key=SECRET, secret_key_file=str(tmp_path / "secret")
        )
    )
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        await gov.create_organisation(op, f"muni-{s}", f"Gemeente {s}", "municipality")
        await gov.create_organisation(op, f"supplier-{s}", f"Supplier {s}", "company")
        for person, org in ((f"m{s}", f"muni-{s}"), (f"p{s}", f"supplier-{s}")):
            await gov.create_person(op, person, f"{person}@example.org", person, "a long password!")
            await gov.set_membership(op, person, org, "editor")
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as muni,
            httpx.AsyncClient(transport=transport, base_url="http://t") as supplier,
        ):
            await sign_in(muni, (f"m{s}@example.org", "a long password!"))
            await sign_in(supplier, (f"p{s}@example.org", "a long password!"))
            r = await post_form(
                supplier,
                "/solutions/new",
                "/solutions/new",
                {
                    "title": f"Bikeshedsensor{s} parking",
                    "summary": f"Counts bikes in sheds, model {s}.",
                    "maturity": "implemented",
                    "pricing_model": "subscription",
                    "price_min": "5",
                    "terms": ["domain:mobility"],
                    "confirm": "yes",
                },
            )
            assert r.status_code == 303, text_of(r.text)[:300]
            solution = r.headers["location"].split("?")[0]
            r = await post_form(
                muni,
                "/challenges/new",
                "/challenges/new",
                {
                    "title": f"Full bike sheds {s}",
                    "problem": f"Our bike sheds are full; Bikeshedsensor{s} wanted.",
                    "terms": ["domain:mobility"],
                    "budget_max": "10000",
                    "confirm": "yes",
                },
            )
            assert r.status_code == 303, text_of(r.text)[:300]
            challenge = r.headers["location"].split("?")[0]
            page = await muni.get(challenge + "?lang=en")
            assert f'href="{solution}"' in section(page.text, 'id="matches"', "</section>")
            r = await post_form(
                muni,
                challenge,
                f"{challenge}/matches/{solution.rsplit('/', 1)[1]}/not-relevant",
                {},
            )
            assert r.status_code == 303
            page = await muni.get(challenge + "?lang=en")
            assert f'href="{solution}"' not in section(page.text, 'id="matches"', "</section>")
            assert f'href="{solution}"' in section(
                (await supplier.get(challenge)).text, 'id="matches"', "</ol>"
            )
            r = await post_form(
                muni,
                challenge,
                "/follows",
                {"target": challenge.rsplit("/", 1)[1], "next": challenge},
            )
            assert r.status_code == 303
            page = await muni.get("/account/follows?lang=en")
            r = await muni.post(
                "/account/digest", data={"frequency": "daily", "csrf_token": form_token(page.text)}
            )
            assert r.status_code == 303
            page = await muni.get("/account/follows?lang=en")
            assert f"Full bike sheds {s}" in page.text and 'value="daily" checked' in page.text
            # a follow's "next" never leaves the site
            r = await post_form(
                muni,
                challenge,
                "/follows",
                {"target": "domain:mobility", "next": "//evil.example/"},
            )
            assert r.headers["location"] == "/account/follows"
