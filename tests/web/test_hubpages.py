"""The hub's pages in process: use cases (facets, search, the adopters' map, endorsing),
stories, initiatives (filters, totals, the printable report), actors (facets, map), the home
page's hub parts and the dashboard's PNG charts."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from PIL import Image

from smartregion.governance import Principal
from smartregion.hub.places import municipality_points, point_of
from smartregion.hub.taxonomy import load_taxonomy
from smartregion.settings import HTML_CSP
from smartregion.web.charts import nice_ticks
from tests.web.conftest import ANNA, BART, form_token, sign_in
from tests.web.test_pages import text_of

pytestmark = pytest.mark.anyio

HUB_PAGES = [
    "/use-cases",
    "/use-cases?term=domain:mobility",
    "/use-cases/slim-parkeren-gent",
    "/stories",
    "/stories/fatima-meet-de-lucht",
    "/initiatives",
    "/initiatives/report",
    "/initiatives/slimme-binnenstad-leuven",
    "/actors",
    "/actors/actor-gent",
]


def map_data(html: str) -> dict[str, Any]:
    """The GeoJSON a page hands its map."""
    found = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S)
    assert found, "the page has no map data"
    data: dict[str, Any] = orjson.loads(found.group(1))
    return data


def result_titles(html: str) -> list[str]:
    """The titles of a list page's results."""
    return re.findall(r'<article class="result">\s*<h3><a href="[^"]+">([^<]+)</a>', html)


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_every_hub_page_answers_in_the_language_asked(
    portal: Callable[..., Any], lang: str
) -> None:
    client = portal()
    for path in HUB_PAGES:
        sep = "&" if "?" in path else "?"
        r = await client.get(f"{path}{sep}lang={lang}")
        assert r.status_code == 200, (path, r.text[:500])
        assert f'<html lang="{lang}">' in r.text, path
        assert r.headers["Content-Security-Policy"] == HTML_CSP
        assert 'href="#main"' in r.text and '<main id="main"' in r.text
        for tag in re.findall(r"<script\b[^>]*>", r.text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        # every hub section is in the main navigation, portalb's too
        for link in (
            "/use-cases",
            "/stories",
            "/initiatives",
            "/actors",
            "/challenges",
            "/funding",
        ):
            assert f'<li><a href="{link}">' in r.text, (path, link)
    nl = text_of((await client.get("/use-cases/slim-parkeren-gent?lang=nl")).text)
    en = text_of((await client.get("/use-cases/slim-parkeren-gent?lang=en")).text)
    assert "Slim parkeren in de binnenstad" in nl and "Geleerde lessen" in nl and "in gebruik" in nl
    assert (
        "Smart parking in the city centre" in en and "Lessons learned" in en and "implemented" in en
    )


async def test_unknown_hub_objects_are_404_pages(portal: Callable[..., Any]) -> None:
    client = portal()
    for path in (
        "/use-cases/nope",
        "/stories/nope",
        "/initiatives/nope",
        "/actors/nope",
        # an object of another kind is not found under this one
        "/use-cases/fatima-meet-de-lucht",
        "/actors/slim-parkeren-gent",
    ):
        r = await client.get(f"{path}?lang=en")
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html") and '<html lang="en">' in r.text


async def test_bad_list_filters_are_400_pages(portal: Callable[..., Any]) -> None:
    client = portal()
    for path in (
        "/use-cases?status=famous",
        "/use-cases?term=domain:nonsense",
        "/use-cases?term=funder:x",
        "/use-cases?page=0",
        "/use-cases?page=abc",
        "/initiatives?status=dreaming",
        "/actors?owner_kind=alien",
        "/actors?status=industry-ish",
        "/stories?term=nis:99999",
    ):
        r = await client.get(path)
        assert r.status_code == 400, path
        assert r.headers["content-type"].startswith("text/html")


async def test_use_case_library_facets_and_search(portal: Callable[..., Any]) -> None:
    client = portal()
    page = (await client.get("/use-cases?lang=en")).text
    assert "5 use cases" in page
    # most endorsed first (3, then 2)
    assert result_titles(page)[:2] == [
        "Citizen air quality network",
        "Smart parking in the city centre",
    ]
    # a facet link adds its term; its count is what the filtered list then shows
    link = re.search(r'<a href="([^"]*term=domain%3Amobility)">Mobility \((\d+)\)</a>', page)
    assert link, "no Mobility facet"
    filtered = (await client.get(link.group(1).replace("&amp;", "&"))).text
    assert f"{link.group(2)} use cases" in filtered
    assert set(result_titles(filtered)) == {
        "Smart parking in the city centre",
        "Shared-bike data for policy",
    }
    # the chosen value is marked and links back to the list without it
    assert 'aria-current="true"><strong>Mobility</strong>' in filtered
    # broader terms find narrower tags: the province finds Ghent's use case; maturity and SDG facets
    r = await client.get("/use-cases?lang=en&term=nis:40000")
    assert result_titles(r.text) == ["Smart parking in the city centre"]
    r = await client.get("/use-cases?lang=en&status=scaled")
    assert result_titles(r.text) == ["Citizen air quality network"]
    assert "SDG 13" in (await client.get("/use-cases?lang=en")).text
    # full text, in both languages, prefixes of words
    r = await client.get("/use-cases?lang=en&q=parker")  # a prefix of "parkeren" (the Dutch title)
    assert result_titles(r.text) == ["Smart parking in the city centre"]
    r = await client.get("/use-cases?lang=nl&q=heat")
    assert result_titles(r.text) == ["Hittestresskaart"]
    r = await client.get("/use-cases?lang=en&q=zzzz")
    assert "No use case matches" in r.text


async def test_use_case_page_shows_adopters_on_a_map_and_their_scale_up(
    portal: Callable[..., Any],
) -> None:
    client = portal()
    r = await client.get("/use-cases/slim-parkeren-gent?lang=en")
    text = text_of(r.text)
    assert "15% less search traffic" in text and "Sensors on cobblestones came loose" in text
    # adopters: Leuven went from interested to piloting, Kortrijk is interested
    data = map_data(r.text)
    stages = {f["id"]: f["properties"]["stage"] for f in data["features"]}
    assert stages == {"nis:24062": "piloting", "nis:34022": "interested"}
    leuven = next(f for f in data["features"] if f["id"] == "nis:24062")
    lon, lat = leuven["geometry"]["coordinates"]  # RFC 7946: longitude first
    assert 50.8 < lat < 51.0 and 4.6 < lon < 4.8
    # readable without JavaScript: the same in a table, and the history in order
    assert re.search(r"Leuven piloting .*Kortrijk interested", text)
    assert re.search(r"Leuven — interested .*Leuven — piloting .*Kortrijk — interested", text)
    # endorsers by name, the stories told about it, the leaflet assets only where a map is
    assert "Stad Leuven" in text and "Stad Kortrijk" in text
    assert "No more driving in circles" in text
    assert "/static/vendor/leaflet/leaflet.js" in r.text
    # initiatives that name the use case are linked from it
    r = await client.get("/use-cases/luchtmeetnet-burgers?lang=en")
    assert 'href="/initiatives/slimme-binnenstad-leuven"' in r.text
    # no adopters: no map, a sentence instead
    r = await client.get("/use-cases/hittekaart-genk?lang=en")
    assert (
        'id="map"' not in r.text
        and "No other municipality has taken this use case over yet." in r.text
    )


async def test_use_case_page_links_only_visible_data_sets(portal: Callable[..., Any]) -> None:
    client, anna = portal(), portal()
    hub = portal.app.state.hub  # type: ignore[attr-defined]
    current = await hub.get("usecase", "hittekaart-genk")
    await hub.replace(
        Principal.cli(),
        "usecase",
        "hittekaart-genk",
        dict(current.doc, datasets=["demo", "demo-water"]),
    )
    page = (await client.get("/use-cases/hittekaart-genk?lang=en")).text
    assert (
        'href="/datasets/demo"' in page and 'href="/datasets/demo-water"' in page
    )  # restricted: listed
    # made private, a data set is its owner's only: others no longer see the link
    await sign_in(anna, ANNA)
    admin = await anna.get("/admin")
    r = await anna.post(
        "/admin/datasets/demo-water/policy",
        data={"policy": "private", "csrf_token": form_token(admin.text)},
    )
    assert r.status_code == 303
    page = (await client.get("/use-cases/hittekaart-genk?lang=en")).text
    assert 'href="/datasets/demo"' in page and 'href="/datasets/demo-water"' not in page
    assert (
        'href="/datasets/demo-water"' in (await anna.get("/use-cases/hittekaart-genk?lang=en")).text
    )


async def test_endorse_permissions_and_once_per_organisation(portal: Callable[..., Any]) -> None:
    visitor, bart, anna = portal(), portal(), portal()
    # a visitor is invited to sign in; posting without a session changes nothing
    page = await visitor.get("/use-cases/digitale-tweeling-kortrijk?lang=en")
    assert "Sign in to endorse this use case." in page.text and "/endorse" not in page.text
    visitor_token = form_token((await visitor.get("/sign-in")).text)
    r = await visitor.post(
        "/use-cases/digitale-tweeling-kortrijk/endorse", data={"csrf_token": visitor_token}
    )
    assert r.status_code == 401
    # Bart edits for Ghent, a municipality: the form, then the endorsement, then no second one
    await sign_in(bart, BART)
    page = await bart.get("/use-cases/digitale-tweeling-kortrijk?lang=en")
    assert "Endorse on behalf of Stad Gent" in page.text
    token = form_token(page.text)
    # the CSRF token is required
    r = await bart.post("/use-cases/digitale-tweeling-kortrijk/endorse", data={})
    assert r.status_code == 403
    assert (
        "No local government has endorsed"
        in (await bart.get("/use-cases/digitale-tweeling-kortrijk?lang=en")).text
    )
    r = await bart.post("/use-cases/digitale-tweeling-kortrijk/endorse", data={"csrf_token": token})
    assert r.status_code == 303
    assert r.headers["location"] == "/use-cases/digitale-tweeling-kortrijk?endorsed=1#endorse"
    page = await bart.get(r.headers["location"].split("#")[0] + "&lang=en")
    text = text_of(page.text)
    assert "Your organisation now endorses this use case." in text
    assert "1 local government vouches for this use case: Stad Gent" in text
    assert (
        "Endorse on behalf of" not in text and "Your organisation endorses this use case." in text
    )
    r = await bart.post("/use-cases/digitale-tweeling-kortrijk/endorse", data={"csrf_token": token})
    assert r.status_code == 409 and '<html lang="en">' in r.text
    # the count ranks the library
    library = text_of((await visitor.get("/use-cases?lang=en&term=nis:34022")).text)
    assert re.search(r"Digital twin of the city centre .*?Endorsed by 1 local government", library)
    # Anna's organisation is no local government: told so, and a post is refused
    await sign_in(anna, ANNA)
    page = await anna.get("/use-cases/hittekaart-genk?lang=en")
    assert "Only editors of a municipality or province can endorse use cases." in page.text
    r = await anna.post(
        "/use-cases/hittekaart-genk/endorse", data={"csrf_token": form_token(page.text)}
    )
    assert r.status_code == 403
    assert (
        "No local government has endorsed"
        in (await anna.get("/use-cases/hittekaart-genk?lang=en")).text
    )
    # an unknown use case
    r = await bart.post("/use-cases/nope/endorse", data={"csrf_token": token})
    assert r.status_code == 404


async def test_stories(portal: Callable[..., Any]) -> None:
    client = portal()
    page = (await client.get("/stories")).text
    assert "Slimme Stad in Mensentaal" in page and "2 verhalen" in page
    # newest first
    assert result_titles(page) == [
        "Nooit meer rondjes rijden",
        "Fatima meet de lucht in haar straat",
    ]
    r = await client.get("/stories?term=domain:environment")
    assert result_titles(r.text) == ["Fatima meet de lucht in haar straat"]
    story = text_of((await client.get("/stories/fatima-meet-de-lucht?lang=en")).text)
    assert "Two years ago Fatima hung a small sensor on her facade." in story
    assert "Citizen air quality network" in story  # the use case behind it


async def test_initiatives_filters_and_totals(portal: Callable[..., Any]) -> None:
    client = portal()
    page = text_of((await client.get("/initiatives?lang=en")).text)
    assert "3 initiatives" in page
    # 420,000 + 1,200,000 + 300,000; funding 210,000 + 720,000 + 180,000
    assert (
        "Budget € 1,920,000" in page
        and "Funding € 1,110,000" in page
        and "Own share € 810,000" in page
    )
    r = await client.get("/initiatives?lang=en&status=running")
    assert result_titles(r.text) == ["Smart city centre Leuven"]
    assert "Budget € 420,000" in text_of(r.text)
    # the funder facet is labelled with the funder's name and filters by it
    raw = (await client.get("/initiatives?lang=en")).text
    assert re.search(r'term=funder%3Aeuropese-unie">Europese Unie \(2\)', raw)
    r = await client.get("/initiatives?lang=en&term=funder:europese-unie")
    assert set(result_titles(r.text)) == {"Climate-resilient Limburg", "Kortrijk digital twin"}
    r = await client.get("/initiatives?lang=en&term=domain:environment")
    assert set(result_titles(r.text)) == {"Smart city centre Leuven", "Climate-resilient Limburg"}
    # the report link keeps the selection
    assert (
        'href="/initiatives/report?lang=en&amp;term=domain%3Aenvironment"' in r.text
        or 'href="/initiatives/report?lang=en&amp;term=domain:environment"' in r.text
    )


async def test_printable_report(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/initiatives/report?lang=en&term=funder:europese-unie")
    assert r.status_code == 200
    assert '<link rel="stylesheet" href="/static/portal/print.css">' in r.text
    text = text_of(r.text)
    assert "Selection: Europese Unie" in text
    assert "Initiatives 2" in text and "Budget € 1,500,000" in text
    assert "Europese Unie € 660,000" in text and "Vlaamse overheid € 240,000" in text
    css = await client.get("/static/portal/print.css")
    assert (
        css.status_code == 200 and "size: A4 landscape" in css.text and "@media print" in css.text
    )
    nl = text_of((await client.get("/initiatives/report?lang=nl")).text)
    assert "Portefeuilleverslag" in nl and "Alle initiatieven." in nl and "€ 1.920.000" in nl
    # the next open milestone of each line
    assert "Evaluatierapport" in nl


async def test_initiative_page(portal: Callable[..., Any]) -> None:
    text = text_of((await portal().get("/initiatives/slimme-binnenstad-leuven?lang=en")).text)
    assert "Lead Stad Leuven" in text and "Parkwise BV (demo)" in text
    assert "Sensors installed" in text and "Evaluation report" in text
    assert "Vlaamse overheid" in text and "€ 210,000" in text
    assert "Citizen air quality network" in text


async def test_actors_directory_facets_and_map(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/actors?lang=en")
    assert "4 actors" in r.text
    # Ghent is on the map (its organisation's NIS code); companies without a place are not
    data = map_data(r.text)
    assert [f["id"] for f in data["features"]] == ["nis:44021"]
    assert data["features"][0]["properties"] == {"name": "City of Ghent", "role": "government"}
    r = await client.get("/actors?lang=en&status=industry")
    assert result_titles(r.text) == ["Parkwise"]
    r = await client.get("/actors?lang=en&owner_kind=citizens_organisation")
    assert result_titles(r.text) == ["Neighbourhood Network Flanders"]
    assert (
        'aria-current="true"><strong>citizens\' organisation</strong>' in r.text
        or 'aria-current="true"><strong>citizens&#39; organisation</strong>' in r.text
    )
    r = await client.get("/actors?lang=en&term=nis:40000")  # East Flanders
    assert result_titles(r.text) == ["City of Ghent"]
    # offers and seeks are searched
    r = await client.get("/actors?lang=en&q=pilot")
    assert result_titles(r.text) == ["Parkwise"]
    page = text_of((await client.get("/actors/actor-parkwise?lang=en")).text)
    assert "What they offer Sensors, installation and an NGSI-LD connection." in page
    assert "What they are looking for Cities ready for a pilot." in page


async def test_home_shows_the_hub(portal: Callable[..., Any]) -> None:
    r = await portal().get("/?lang=en")
    text = text_of(r.text)
    assert "Lighthouse stories" in text and "Fatima measures the air in her street" in text
    assert "Citizen air quality network" in text and "Endorsed by 3 local governments" in text
    assert "What's new in the hub" in text
    # quick paths to the hub's pages, and what home had before
    for link in (
        "/use-cases",
        "/stories",
        "/actors",
        "/challenges",
        "/funding",
        "/municipalities",
        "/datasets",
    ):
        assert f'href="{link}"' in r.text, link
    assert "Recently updated data sets" in text


async def test_indicator_png_for_a_council_report(portal: Callable[..., Any]) -> None:
    client = portal()
    dashboard = (await client.get("/municipalities/Gent?lang=en")).text
    pngs = re.findall(r'href="([^"]+\.png)"', dashboard)
    csvs = re.findall(r'href="([^"]+\.csv)"', dashboard)
    assert pngs and len(pngs) == len(csvs)  # one chart beside each CSV
    for link in pngs:
        r = await client.get(link)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.headers["content-disposition"].startswith("attachment; filename=")
        image = Image.open(io.BytesIO(r.content))
        assert image.format == "PNG" and image.size == (1600, 900)
        # drawn: more than a blank canvas, in the portal's blue
        colours = image.convert("RGB").getcolors(maxcolors=100_000) or []
        assert any(c == (29, 112, 184) for _, c in colours)
    r = await client.get("/municipalities/Gent/nope-1.png")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def test_nice_ticks_cover_the_values() -> None:
    assert nice_ticks(0, 67) == [0, 20, 40, 60, 80]
    assert nice_ticks(0, 2.5) == [0, 0.5, 1.0, 1.5, 2.0, 2.5]
    ticks = nice_ticks(0, 7834)
    assert ticks[0] == 0 and ticks[-1] >= 7834 and len(ticks) <= 7
    assert nice_ticks(5, 5)[-1] >= 5  # a flat series still has an axis


def test_municipality_points() -> None:
    taxonomy = load_taxonomy()
    points = municipality_points()
    current = [
        t
        for t in taxonomy.in_scheme("region")
        if t.parent not in (None, "nis:02000") and t.replaced_by is None
    ]
    # most current municipalities have a point, all inside Flanders' bounding box
    assert sum(t.id in points for t in current) >= 0.9 * len(current)
    for lat, lon in points.values():
        assert 50.6 < lat < 51.6 and 2.5 < lon < 6.0
    assert all(term in {t.id for t in taxonomy.in_scheme("region")} for term in points)
    # a province lies among its municipalities; a term of another scheme has no point
    limburg = point_of(taxonomy, "nis:70000")
    assert limburg is not None and 50.7 < limburg[0] < 51.3 and 5.0 < limburg[1] < 5.9
    assert point_of(taxonomy, "domain:mobility") is None
