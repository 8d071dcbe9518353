"""The hub API: create, read, replace, delete, lists with facets and search, export, permissions."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hub_env import Env

pytestmark = pytest.mark.anyio


def usecase(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": {"nl": "Slim parkeren", "en": "Smart parking"},
        "summary": {"nl": "Parkeersensoren tonen vrije plaatsen."},
        "maturity": "pilot",
        "terms": ["domain:mobility.parking", "nis:44021", "sdg:11.2"],
    }
    body.update(overrides)
    return body


async def test_create_read_replace_delete(env: Env) -> None:
    c = env.client
    r = await c.post("/use-cases", json=usecase(id="slim-parkeren"), headers=env.auth("ghent"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created.pop("similar") == []  # the near-duplicate warning of the create answer
    assert created["id"] == "slim-parkeren" and created["owner"] == "ghent"
    assert created["kind"] == "usecase" and created["endorsements"] == 0
    assert created["title"] == {"nl": "Slim parkeren", "en": "Smart parking"}

    r = await c.get("/use-cases/slim-parkeren")  # reading is public
    assert r.status_code == 200 and r.json() == created

    changed = usecase(maturity="implemented", achievements={"en": "Less search traffic"})
    r = await c.put("/use-cases/slim-parkeren", json=changed, headers=env.auth("ghent"))
    assert r.status_code == 200, r.text
    assert r.json()["maturity"] == "implemented"
    assert r.json()["created_at"] == created["created_at"]
    assert r.json()["updated_at"] >= created["updated_at"]
    assert (await c.get("/use-cases/slim-parkeren")).json()["achievements"][
        "en"
    ] == "Less search traffic"

    r = await c.delete("/use-cases/slim-parkeren", headers=env.auth("ghent"))
    assert r.status_code == 204
    r = await c.get("/use-cases/slim-parkeren")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_ids_are_made_from_the_title_and_duplicates_refused(env: Env) -> None:
    r = await env.client.post("/use-cases", json=usecase(), headers=env.auth("ghent"))
    assert r.status_code == 201 and r.json()["id"].startswith("slim-parkeren-")
    r = await env.client.post("/use-cases", json=usecase(id="x1"), headers=env.auth("ghent"))
    assert r.status_code == 201
    r = await env.client.post("/use-cases", json=usecase(id="x1"), headers=env.auth("ghent"))
    assert r.status_code == 409
    r = await env.client.post(
        "/initiatives",
        headers=env.auth("ghent"),
        json={"id": "report", "title": {"nl": "x"}, "status": "planned"},
    )
    assert r.status_code == 400  # /initiatives/report is the portfolio report


async def test_an_object_of_one_kind_is_not_found_as_another(env: Env) -> None:
    await env.client.post("/use-cases", json=usecase(id="uc"), headers=env.auth("ghent"))
    assert (await env.client.get("/challenges/uc")).status_code == 404
    assert (await env.client.delete("/challenges/uc", headers=env.auth("ghent"))).status_code == 404


@pytest.mark.parametrize(
    "body, where",
    [
        (usecase(maturity="finished"), "maturity"),
        (usecase(title={}), "title"),
        (usecase(title={"nl": "   "}), "title"),
        (usecase(title={"fr": "Stationnement"}), "title"),
        (usecase(terms=["sdg:18"]), "sdg:18"),
        (usecase(terms=["Mobility"]), "terms"),
        (usecase(datasets=["no-such-dataset"]), "no-such-dataset"),
        (usecase(initiatives=["no-such-initiative"]), "no-such-initiative"),
        (usecase(colour="blue"), "colour"),
        (usecase(summary={"nl": "nul \x00 byte"}), "summary"),
        (usecase(owner="nobody"), "nobody"),
    ],
)
async def test_bad_input_is_a_400_problem_and_changes_nothing(
    env: Env, body: dict[str, Any], where: str
) -> None:
    r = await env.client.post("/use-cases", json=body, headers=env.auth("platform"))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert where in r.text
    assert (await env.client.get("/use-cases")).json()["total"] == 0


async def test_numbers_must_be_finite_and_ranges_ordered(env: Env) -> None:
    base = {"title": {"nl": "Hitte"}, "problem": {"nl": "Te warm"}, "status": "open"}
    for extra in (
        {"budget_min": 10, "budget_max": 5},
        {"budget_max": -1},
        {"timeline_start": "2027-05-01", "timeline_end": "2027-01-01"},
    ):
        r = await env.client.post("/challenges", json={**base, **extra}, headers=env.auth("ghent"))
        assert r.status_code == 400, extra
    r = await env.client.post(
        "/challenges",
        content=b'{"title": {"nl": "x"}, "problem": {"nl": "y"}, "status": "open",'
        b' "budget_max": Infinity}',
        headers={**env.auth("ghent"), "content-type": "application/json"},
    )
    assert r.status_code == 400


async def test_members_edit_their_organisation_and_admins_moderate(env: Env) -> None:
    c = env.client
    r = await c.post("/use-cases", json=usecase(id="uc"), headers=env.auth("ghent"))
    assert r.status_code == 201
    # no credentials: 401; a reader: 403; another organisation: 403
    assert (await c.post("/use-cases", json=usecase())).status_code == 401
    assert (
        await c.post("/use-cases", json=usecase(), headers=env.auth("ghent-reader"))
    ).status_code == 403
    assert (
        await c.put("/use-cases/uc", json=usecase(), headers=env.auth("leuven"))
    ).status_code == 403
    assert (await c.delete("/use-cases/uc", headers=env.auth("acme"))).status_code == 403
    # creating for another organisation is refused too
    r = await c.post("/use-cases", json=usecase(owner="leuven"), headers=env.auth("ghent"))
    assert r.status_code == 403
    # the platform organisation's admins moderate anyone's objects
    r = await c.put(
        "/use-cases/uc", json=usecase(title={"nl": "Gemodereerd"}), headers=env.auth("platform")
    )
    assert r.status_code == 200 and r.json()["owner"] == "ghent"
    # an admin of another organisation is no moderator
    assert (await c.delete("/use-cases/uc", headers=env.auth("uni"))).status_code == 403
    assert (await c.delete("/use-cases/uc", headers=env.auth("platform"))).status_code == 204


async def test_changes_are_in_the_audit_chain(env: Env) -> None:
    await env.client.post("/use-cases", json=usecase(id="uc"), headers=env.auth("ghent"))
    await env.client.delete("/use-cases/uc", headers=env.auth("ghent"))
    actions = [r.action for r in await env.gov.store.audit_records()]
    assert actions[-2:] == ["hub.usecase.create", "hub.usecase.delete"]
    _count, problems = await env.gov.verify_audit()
    assert problems == []


async def _seed(env: Env) -> None:
    specs = [
        ("ghent", usecase(id="gent-parkeren", maturity="implemented")),
        (
            "ghent",
            usecase(
                id="gent-fiets",
                title={"nl": "Fietstellers"},
                summary={},
                terms=["domain:mobility", "nis:44021"],
            ),
        ),
        (
            "leuven",
            usecase(
                id="leuven-lucht",
                title={"nl": "Burgermeetnet luchtkwaliteit"},
                summary={"en": "Citizens measure air quality"},
                terms=["domain:environment.air", "nis:24062", "sdg:3.9"],
            ),
        ),
        (
            "acme",
            usecase(
                id="acme-sensor",
                title={"en": "Sensor platform"},
                summary={},
                maturity="idea",
                terms=["vloca:field"],
            ),
        ),
    ]
    for who, body in specs:
        r = await env.client.post("/use-cases", json=body, headers=env.auth(who))
        assert r.status_code == 201, r.text


async def test_lists_filter_facet_search_and_page(env: Env) -> None:
    await _seed(env)
    c = env.client
    r = await c.get("/use-cases")
    body = r.json()
    assert body["total"] == 4 and next(i["id"] for i in body["items"]) == "acme-sensor"
    facets = body["facets"]
    assert {f["value"]: f["count"] for f in facets["maturity"]} == {
        "pilot": 2,
        "implemented": 1,
        "idea": 1,
    }
    assert {f["value"]: f["count"] for f in facets["owner_kind"]} == {
        "municipality": 3,
        "company": 1,
    }
    region = {f["value"]: f for f in facets["region"]}
    assert region["nis:40000"]["count"] == 2  # Ghent's two, under East Flanders
    assert region["nis:44021"]["label"] == {"nl": "Gent", "en": "Ghent"}
    assert {f["value"] for f in facets["domain"]} >= {"domain:mobility", "domain:mobility.parking"}
    assert facets["sdg"][0]["value"] in {"sdg:11", "sdg:11.2", "sdg:3", "sdg:3.9"}

    def ids(resp: Any) -> list[str]:
        return sorted(i["id"] for i in resp.json()["items"])

    assert ids(await c.get("/use-cases?term=domain:mobility")) == ["gent-fiets", "gent-parkeren"]
    assert ids(await c.get("/use-cases?term=nis:20001")) == ["leuven-lucht"]  # Flemish Brabant
    assert ids(await c.get("/use-cases?term=domain:mobility&term=sdg:11")) == ["gent-parkeren"]
    assert ids(await c.get("/use-cases?status=idea&status=implemented")) == [
        "acme-sensor",
        "gent-parkeren",
    ]
    assert ids(await c.get("/use-cases?owner_kind=company")) == ["acme-sensor"]
    assert ids(await c.get("/use-cases?owner=leuven")) == ["leuven-lucht"]
    assert ids(await c.get("/use-cases?q=luchtkwaliteit")) == ["leuven-lucht"]
    assert ids(await c.get("/use-cases?q=citizens air")) == ["leuven-lucht"]
    assert ids(await c.get("/use-cases?q=parkeer")) == ["gent-parkeren"]  # prefix of a compound
    assert ids(await c.get("/use-cases?q=nergens")) == []

    page = (await c.get("/use-cases?sort=title&limit=2&offset=1")).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert [i["id"] for i in page["items"]] == ["gent-fiets", "acme-sensor"]
    assert (await c.get("/use-cases?facets=false")).json()["facets"] == {}


@pytest.mark.parametrize(
    "query",
    [
        "term=Mobility",
        "term=funder:vlaio",
        "status=Pilot",
        "owner=Gent!",
        "owner_kind=bank",
        "sort=random",
        "limit=0",
        "limit=101",
        "offset=-1",
        "q=" + "x" * 201,
        "q=%00",
    ],
)
async def test_bad_list_parameters_are_400(env: Env, query: str) -> None:
    r = await env.client.get(f"/use-cases?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_kind_keys_filter_initiatives_by_funder(env: Env) -> None:
    fund = {
        "title": {"nl": "Oproep"},
        "funder": "Vlaamse overheid",
        "level": "flemish",
        "eligible_applicants": ["municipality"],
        "calls": [{"deadline": "2027-04-30"}],
    }
    assert (
        await env.client.post(
            "/funding", json={**fund, "id": "oproep"}, headers=env.auth("platform")
        )
    ).status_code == 201
    init = {
        "title": {"nl": "Slimme binnenstad"},
        "status": "running",
        "budget": 1000,
        "partners": ["acme"],
        "funding": [{"funder": "Vlaamse overheid", "instrument": "oproep", "amount": 400}],
    }
    r = await env.client.post(
        "/initiatives", json={**init, "id": "binnenstad"}, headers=env.auth("ghent")
    )
    assert r.status_code == 201, r.text
    r = await env.client.post(
        "/initiatives", json={**init, "id": "other", "funding": []}, headers=env.auth("ghent")
    )
    assert r.status_code == 201
    r = await env.client.get("/initiatives?term=funder:vlaamse-overheid")
    assert [i["id"] for i in r.json()["items"]] == ["binnenstad"]
    assert {f["value"] for f in r.json()["facets"]["funder"]} == {"funder:vlaamse-overheid"}
    assert [
        i["id"] for i in (await env.client.get("/initiatives?term=partner:acme")).json()["items"]
    ] == ["other", "binnenstad"]
    assert (await env.client.get("/funding?term=applicant:municipality")).json()["total"] == 1
    # a reference to an unknown instrument or partner is refused
    bad = {**init, "funding": [{"funder": "X", "instrument": "nope", "amount": 1}]}
    assert (
        await env.client.post("/initiatives", json=bad, headers=env.auth("ghent"))
    ).status_code == 400
    assert (
        await env.client.post(
            "/initiatives", json={**init, "partners": ["ghost"]}, headers=env.auth("ghent")
        )
    ).status_code == 400


async def test_exports_carry_the_same_selection(env: Env) -> None:
    await _seed(env)
    r = await env.client.get("/use-cases/export.json?term=nis:44021&sort=title")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert [o["id"] for o in r.json()] == ["gent-fiets", "gent-parkeren"]
    r = await env.client.get("/use-cases/export.csv?term=nis:44021&sort=title")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == ["gent-fiets", "gent-parkeren"]
    assert rows[1]["title_nl"] == "Slim parkeren" and rows[1]["title_en"] == "Smart parking"
    assert rows[1]["terms"] == "domain:mobility.parking; nis:44021; sdg:11.2"
    assert rows[1]["maturity"] == "implemented"


async def test_csv_cells_never_start_a_formula(env: Env) -> None:
    body = usecase(
        id="formula", title={"nl": '=HYPERLINK("http://x")'}, summary={"nl": "+1", "en": "@SUM(A1)"}
    )
    assert (
        await env.client.post("/use-cases", json=body, headers=env.auth("ghent"))
    ).status_code == 201
    row = next(csv.DictReader(io.StringIO((await env.client.get("/use-cases/export.csv")).text)))
    assert (
        row["title_nl"].startswith("'=")
        and row["summary_nl"] == "'+1"
        and row["summary_en"] == "'@SUM(A1)"
    )


async def test_one_actor_profile_per_organisation(env: Env) -> None:
    profile = {"title": {"nl": "Acme"}, "helix_role": "industry", "offers": {"nl": "Sensoren"}}
    r = await env.client.post("/actors", json=profile, headers=env.auth("acme"))
    assert r.status_code == 201 and r.json()["id"] == "actor-acme"
    assert (
        await env.client.post("/actors", json=profile, headers=env.auth("acme"))
    ).status_code == 409
    assert (await env.client.get("/actors?status=industry")).json()["total"] == 1


async def test_stale_write_is_a_conflict(env: Env) -> None:
    await env.client.post("/use-cases", json=usecase(id="uc"), headers=env.auth("ghent"))
    obj = await env.hub.get("usecase", "uc")
    # someone else changes it between our read and our write: the write over the old version fails
    await env.client.put(
        "/use-cases/uc", json=usecase(maturity="scaled"), headers=env.auth("ghent")
    )
    from smartregion.core.audit import AuditEvent
    from smartregion.storage.hub import HubStore

    store = env.hub.store
    assert isinstance(store, HubStore)
    assert not await store.replace_hub_object(
        obj, [], [], expected_updated_at=obj.updated_at, audit=AuditEvent("t", "t", "uc", {})
    )


async def test_openapi_documents_the_hub(env: Env) -> None:
    paths = (await env.client.get("/openapi.json")).json()["paths"]
    for kind in (
        "actors",
        "initiatives",
        "use-cases",
        "challenges",
        "solutions",
        "funding",
        "stories",
    ):
        for path in (
            f"/{kind}",
            f"/{kind}/{{object_id}}",
            f"/{kind}/export.csv",
            f"/{kind}/export.json",
        ):
            assert path in paths, path
    assert set(paths["/use-cases"]) == {"get", "post"}
    assert set(paths["/use-cases/{object_id}"]) == {"get", "put", "delete"}
    assert "/organisations" in paths  # one API, one document


async def test_challenge_co_owners_are_local_governments(env: Env) -> None:
    body = {"title": {"nl": "Hitte"}, "problem": {"nl": "Te warm"}, "status": "open"}
    r = await env.client.post(
        "/challenges", json={**body, "co_owners": ["leuven"]}, headers=env.auth("ghent")
    )
    assert r.status_code == 201 and r.json()["co_owners"] == ["leuven"]
    assert (await env.client.get("/challenges?term=coowner:leuven")).json()["total"] == 1
    for bad in (["acme"], ["ghost"]):
        r = await env.client.post(
            "/challenges", json={**body, "co_owners": bad}, headers=env.auth("ghent")
        )
        assert r.status_code == 400 and bad[0] in r.text
