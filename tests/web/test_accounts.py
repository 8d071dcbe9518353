"""Sign-in, sessions and the organisation admin page, in process, as a browser uses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smartregion.governance import Principal
from smartregion.web.sessions import COOKIE, SessionCodec
from tests.web.conftest import ANNA, BART, form_token, sign_in

pytestmark = pytest.mark.anyio


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_sign_in_and_out(portal: Callable[..., Any]) -> None:
    client = portal()
    r = await client.get("/admin")
    assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=%2Fadmin"
    r = await sign_in(client, (ANNA[0], "not the password"))
    assert r.status_code == 401 and "Het e-mailadres of het wachtwoord klopt niet." in r.text
    assert COOKIE not in client.cookies
    r = await sign_in(client, (ANNA[0].upper(), ANNA[1]))  # e-mail addresses are case-blind
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    set_cookie = r.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    page = await client.get("/admin?lang=en")
    assert page.status_code == 200 and "Signed in as Anna Peeters, admin." in text_of(page.text)
    r = await client.post("/sign-out", data={"csrf_token": form_token(page.text)})
    assert r.status_code == 303
    assert (await client.get("/admin")).status_code == 303


async def test_unknown_address_and_wrong_password_look_the_same(portal: Callable[..., Any]) -> None:
    one = await sign_in(portal(), ("nobody@example.org", "whatever-password"))
    two = await sign_in(portal(), (ANNA[0], "whatever-password"))
    assert one.status_code == two.status_code == 401
    assert text_of(one.text).replace("nobody@example.org", "") == text_of(two.text).replace(
        ANNA[0], ""
    )


async def test_forged_or_foreign_session_cookies_are_ignored(portal: Callable[..., Any]) -> None:
    other = SessionCodec(lambda: b"another-secret-that-is-long-enough-000")
    forged = other.encode(other.new("anna", "smartregion"))
    client = portal()
    client.cookies.set(COOKIE, forged)
    assert (await client.get("/admin")).status_code == 303
    client.cookies.set(COOKIE, "garbage.value")
    assert (await client.get("/admin")).status_code == 303


async def test_sign_in_redirects_only_within_the_site(portal: Callable[..., Any]) -> None:
    client = portal()
    page = await client.get("/sign-in?next=//evil.example/")
    assert 'name="next" value="/"' in page.text
    r = await client.post(
        "/sign-in",
        data={
            "email": ANNA[0],
            "password": ANNA[1],
            "next": "https://evil.example/",
            "csrf_token": form_token(page.text),
        },
    )
    assert r.headers["location"] == "/"


async def test_forms_need_the_csrf_token(portal: Callable[..., Any]) -> None:
    client = portal()
    await sign_in(client, ANNA)
    r = await client.post("/admin/keys", data={"label": "x", "role": "reader"})
    assert r.status_code == 403
    r = await client.post(
        "/admin/keys", data={"label": "x", "role": "reader", "csrf_token": "forged.token"}
    )
    assert r.status_code == 403
    r = await client.post(
        "/admin/keys", data={"label": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403


async def test_access_request_granted_then_the_data_is_readable(portal: Callable[..., Any]) -> None:
    bart, anna = portal(), portal()
    await sign_in(bart, BART)
    page = await bart.get("/datasets/demo-water?lang=en")
    assert "Request access" in page.text and "Peilmeter" not in page.text
    assert (await bart.get("/datasets/demo-water/download.csv")).status_code == 404
    # an empty purpose is refused with a precise message, and nothing is created
    r = await bart.post(
        "/datasets/demo-water/access", data={"purpose": " ", "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 400 and 'aria-invalid="true"' in r.text
    assert "Say what you will use the data for, in at most 500 characters." in r.text
    long = "x" * 501
    r = await bart.post(
        "/datasets/demo-water/access", data={"purpose": long, "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 400 and long in r.text  # what was typed is kept
    r = await bart.post(
        "/datasets/demo-water/access",
        data={
            "purpose": "Flood warnings for the city council",
            "csrf_token": form_token(page.text),
        },
    )
    assert r.status_code == 303
    page = await bart.get(r.headers["location"].split("#")[0] + "&lang=en")
    assert "Your request was sent." in text_of(page.text)

    await sign_in(anna, ANNA)
    inbox = await anna.get("/admin?lang=en")
    assert "Flood warnings for the city council" in inbox.text
    assert inbox.text.count("/approve") == 1  # the refused inputs created no request
    action = re.search(r'action="(/admin/requests/[^"]+/approve)"', inbox.text)
    assert action
    r = await anna.post(action.group(1), data={"csrf_token": form_token(inbox.text)})
    assert r.status_code == 303
    inbox = await anna.get("/admin?lang=en&done=approved")
    assert "The request was approved" in inbox.text and "/approve" not in inbox.text
    # deciding twice is a clear 409, not a 500
    r = await anna.post(action.group(1), data={"csrf_token": form_token(inbox.text)})
    assert r.status_code == 409

    page = await bart.get("/datasets/demo-water?lang=en")
    assert "Peilmeter Gent" in text_of(page.text) and "Download CSV" in page.text
    r = await bart.get("/datasets/demo-water/download.csv")
    assert r.status_code == 200 and "waterLevel" in r.text
    # the chart's values too: the portal answers with the session's rights
    chart = re.search(r'data-src="([^"]+)"', page.text)
    assert chart
    r = await bart.get(chart.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and len(r.json()["waterLevel"]["avg"]) >= 7 * 24 - 2
    # and its dashboard now has the water-level indicator
    assert "Water level at Peilmeter Gent" in (await bart.get("/municipalities/Gent?lang=en")).text


async def test_refusing_a_request(portal: Callable[..., Any]) -> None:
    bart, anna = portal(), portal()
    await sign_in(bart, BART)
    page = await bart.get("/datasets/demo-water")
    await bart.post(
        "/datasets/demo-water/access",
        data={"purpose": "Research", "csrf_token": form_token(page.text)},
    )
    await sign_in(anna, ANNA)
    inbox = await anna.get("/admin")
    action = re.search(r'action="(/admin/requests/[^"]+/refuse)"', inbox.text)
    assert action
    assert (
        await anna.post(action.group(1), data={"csrf_token": form_token(inbox.text)})
    ).status_code == 303
    assert "Peilmeter" not in (await bart.get("/datasets/demo-water")).text
    assert "geweigerd" in (await bart.get("/admin")).text  # bart's own requests list


async def test_editors_cannot_decide_or_manage_keys(portal: Callable[..., Any]) -> None:
    bart = portal()
    await sign_in(bart, BART)
    page = await bart.get("/admin?lang=en")
    assert page.status_code == 200 and "API keys" not in page.text
    r = await bart.post("/admin/keys", data={"role": "admin", "csrf_token": form_token(page.text)})
    assert r.status_code == 403 and "admin role" in r.text


async def test_api_key_is_shown_once_and_works(portal: Callable[..., Any]) -> None:
    anna = portal()
    await sign_in(anna, ANNA)
    page = await anna.get("/admin")
    r = await anna.post(
        "/admin/keys",
        data={"label": "sensor gateway", "role": "editor", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    key = re.search(r'<code class="key" id="new-key">([^<]+)</code>', r.text)
    assert key
    api = portal()
    entity = {
        "id": "urn:ngsi-ld:Sensor:from-key",
        "type": "Sensor",
        "n": {"type": "Property", "value": 1},
    }
    headers = {"Authorization": f"Bearer {key.group(1)}"}
    assert (await api.post("/ngsi-ld/v1/entities", json=entity, headers=headers)).status_code == 201
    later = await anna.get("/admin")
    assert key.group(1) not in later.text and "sensor gateway" in later.text
    revoke = re.search(r'action="(/admin/keys/[^"]+/revoke)"', later.text)
    assert revoke
    assert (
        await anna.post(revoke.group(1), data={"csrf_token": form_token(later.text)})
    ).status_code == 303
    entity["id"] = "urn:ngsi-ld:Sensor:after-revoke"
    assert (await api.post("/ngsi-ld/v1/entities", json=entity, headers=headers)).status_code == 401


async def test_changing_a_policy_opens_the_data(portal: Callable[..., Any]) -> None:
    anna = portal()
    await sign_in(anna, ANNA)
    page = await anna.get("/admin")
    r = await anna.post(
        "/admin/datasets/demo-water/policy",
        data={"policy": "open", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 303
    assert "Peilmeter Gent" in (await portal().get("/datasets/demo-water")).text
    r = await anna.post(
        "/admin/datasets/demo-water/policy",
        data={"policy": "bogus", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 400


async def test_switching_organisation_needs_membership(portal: Callable[..., Any]) -> None:
    bart = portal()
    await sign_in(bart, BART)
    page = await bart.get("/admin")
    r = await bart.post(
        "/account/organisation", data={"org": "smartregion", "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 400
    client: httpx.AsyncClient = bart
    assert (await client.get("/admin")).status_code == 200


async def test_a_token_from_before_sign_in_does_not_pass_after_it(
    portal: Callable[..., Any],
) -> None:
    client = portal()
    before = form_token((await client.get("/sign-in")).text)
    await sign_in(client, ANNA)
    # the old token (and its cookie) were bound to no session: refused now
    r = await client.post("/admin/keys", data={"label": "x", "csrf_token": before})
    assert r.status_code == 403
    page = await client.get("/admin")  # issues a token bound to this session
    after = form_token(page.text)
    assert after != before
    assert (
        await client.post("/admin/keys", data={"label": "x", "csrf_token": after})
    ).status_code == 200


async def test_admins_change_roles_and_remove_members(portal: Callable[..., Any]) -> None:
    anna, bart = portal(), portal()
    await sign_in(anna, ANNA)
    page = await anna.get("/admin")
    # gent's editor joins the owner organisation as a reader (the platform admin may do so)
    gov = portal.app.state.governance
    from smartregion.governance import Principal

    await gov.set_membership(Principal.cli(), "bart", "smartregion", "reader")
    page = await anna.get("/admin?lang=en")
    assert 'action="/admin/members/bart/role"' in page.text
    assert 'action="/admin/members/anna/remove"' not in page.text  # not oneself
    r = await anna.post(
        "/admin/members/bart/role", data={"role": "editor", "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 303
    roles = {m.person_id: m.role for m in await gov.store.list_memberships(org_id="smartregion")}
    assert roles["bart"] == "editor"
    r = await anna.post(
        "/admin/members/bart/role", data={"role": "owner", "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 400
    r = await anna.post("/admin/members/bart/remove", data={"csrf_token": form_token(page.text)})
    assert r.status_code == 303
    assert "bart" not in {
        m.person_id for m in await gov.store.list_memberships(org_id="smartregion")
    }
    # bart's session for gent is untouched; an editor cannot manage members
    await sign_in(bart, BART)
    page = await bart.get("/admin")
    r = await bart.post(
        "/admin/members/bart/role", data={"role": "admin", "csrf_token": form_token(page.text)}
    )
    assert r.status_code == 403


async def test_owner_creates_a_data_set_in_the_admin_page(portal: Callable[..., Any]) -> None:
    anna, bart = portal(), portal()
    app = portal.app  # type: ignore[attr-defined]
    owner = app.state.settings.default_org
    # the owner's sensors already write noise levels (through an API key of the owner)
    key = (await app.state.governance.create_api_key(Principal.cli(), owner, role="editor")).key
    noise = {
        "id": "urn:ngsi-ld:NoiseLevelObserved:gent-1",
        "type": "NoiseLevelObserved",
        "LAeq": {"type": "Property", "value": 61.5},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [3.72, 51.05]},
        },
    }
    r = await anna.post(
        "/ngsi-ld/v1/entities", json=noise, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 201, r.text

    await sign_in(anna, ANNA)
    page = await anna.get("/admin?lang=en")
    assert 'action="/admin/datasets"' in page.text and "New data set" in page.text
    token = form_token(page.text)
    # the form's own checks: every missing field named, what was typed kept
    r = await anna.post(
        "/admin/datasets?lang=en",
        data={
            "id": "",
            "title_nl": "",
            "title_en": "Noise in Ghent",
            "types": " , ",
            "policy": "restricted",
            "csrf_token": token,
        },
    )
    assert r.status_code == 400
    text = text_of(r.text)
    assert "Give the data set an identifier." in text and "Name at least one entity type." in text
    assert "Give the data set a title." not in text  # an English title is enough
    assert 'value="Noise in Ghent"' in r.text and r.text.count('aria-invalid="true"') == 2
    # the service's checks: a bad identifier is a 400 that says why, and nothing is created
    r = await anna.post(
        "/admin/datasets?lang=en",
        data={
            "id": "geluid gent!",
            "title_nl": "Geluid in Gent",
            "types": "NoiseLevelObserved",
            "policy": "restricted",
            "csrf_token": token,
        },
    )
    assert r.status_code == 400 and "The data set could not be created:" in text_of(r.text)
    assert "geluid gent!" not in {d.id for d in await app.state.governance.list_datasets()}
    r = await anna.post(
        "/admin/datasets",
        data={
            "id": "gent-geluid",
            "title_nl": "Geluid in Gent",
            "title_en": "Noise in Ghent",
            "types": "NoiseLevelObserved",
            "policy": "restricted",
            "theme": "environment",
            "description_nl": "Geluidsniveaus langs de ring",
            "csrf_token": token,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin?done=dataset#datasets"
    page = await anna.get("/admin?lang=en&done=dataset")
    assert (
        "The data set was created." in text_of(page.text)
        and 'href="/datasets/gent-geluid"' in page.text
    )
    created = await app.state.governance.store.get_dataset("gent-geluid")
    assert (
        created is not None and created.owner_org == owner and created.policy_kind == "restricted"
    )
    assert created.theme == "environment" and created.title == {
        "nl": "Geluid in Gent",
        "en": "Noise in Ghent",
    }
    # the same identifier again: a 409 next to the field
    r = await anna.post(
        "/admin/datasets?lang=en",
        data={
            "id": "gent-geluid",
            "title_nl": "Nog eens",
            "types": "NoiseLevelObserved",
            "policy": "open",
            "csrf_token": token,
        },
    )
    assert r.status_code == 409 and "A data set with this identifier already exists." in text_of(
        r.text
    )

    # another organisation's editor neither sees the form nor may post it
    await sign_in(bart, BART)
    page = await bart.get("/admin?lang=en")
    assert 'action="/admin/datasets"' not in page.text
    r = await bart.post(
        "/admin/datasets",
        data={
            "id": "x-y",
            "title_nl": "X",
            "types": "T",
            "policy": "open",
            "csrf_token": form_token(page.text),
        },
    )
    assert r.status_code == 403
    # the new restricted data set: not readable by Bart until Anna grants his request
    page = await bart.get("/datasets/gent-geluid?lang=en")
    assert page.status_code == 200 and "Request access" in page.text and "LAeq" not in page.text
    r = await bart.post(
        "/datasets/gent-geluid/access",
        data={"purpose": "Noise action plan", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 303
    inbox = await anna.get("/admin?lang=en")
    action = re.search(r'action="(/admin/requests/[^"]+/approve)"', inbox.text)
    assert action and "Noise action plan" in inbox.text
    assert (
        await anna.post(action.group(1), data={"csrf_token": form_token(inbox.text)})
    ).status_code == 303
    r = await bart.get("/datasets/gent-geluid/download.csv")
    assert r.status_code == 200 and "urn:ngsi-ld:NoiseLevelObserved:gent-1" in r.text
