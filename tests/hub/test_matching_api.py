"""The hub's matching over /api/v1: matches with reasons, "not relevant", near-duplicates, joint
purchases, funding eligibility and the deadline calendar (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest
from hub_env import Env

from smartregion.app import create_app
from smartregion.hub.demo import load_hub_demo
from smartregion.settings import Settings
from tests.ocds import package_errors, release_errors

pytestmark = pytest.mark.anyio


async def demo(env: Env) -> None:
    assert await load_hub_demo(env.hub, owner="platform") > 0


def challenge(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": {"nl": "Luchtkwaliteit aan scholen meten"},
        "problem": {"nl": "We willen fijnstof meten aan de schoolpoort en ouders informeren."},
        "status": "open",
        "terms": ["domain:environment.air", "nis:44021"],
    }
    body.update(overrides)
    return body


def solution(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": {"nl": "Fijnstofsensoren voor scholen"},
        "description": {"nl": "Sensoren meten fijnstof aan de schoolpoort; ouders zien de kaart."},
        "maturity": "implemented",
        "pricing_model": "one_off",
        "terms": ["domain:environment.air"],
    }
    body.update(overrides)
    return body


async def post(env: Env, path: str, body: dict[str, Any], who: str) -> dict[str, Any]:
    r = await env.client.post(path, json=body, headers=env.auth(who))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["object"]["id"] for i in items]


async def test_challenge_to_solutions_ranked_with_reasons_and_exclusions(env: Env) -> None:
    await demo(env)
    r = await env.client.get("/challenges/zoekverkeer-leuven/matches")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["subject"]["id"] == "zoekverkeer-leuven"
    assert body["method"] == "hybrid"  # the embeddings extra is installed for the tests
    assert ids(body["matches"]) == ["parkwise-sensor"]
    best = body["matches"][0]
    assert best["rank"] == 1
    why = best["explanation"]
    # the sub-theme's focus domain is shared through the taxonomy
    assert {"domain:mobility", "domain:mobility.parking"} <= {
        t["id"] for t in why["shared_taxonomy"]
    }
    assert [(x["rule"], x["passed"]) for x in why["rules"]] == [
        ("domain", True),
        ("region", True),
        ("budget", True),
        ("maturity", True),
    ]
    assert "TRL 9 meets the required TRL 8" in why["rules"][3]["detail"]  # scaled vs implemented
    assert any("parking" in t["candidate_words"] for t in why["shared_terms"])
    assert why["summary"].startswith("shared words")
    excluded = {x["object"]["id"]: x["failed"] for x in body["excluded"]}
    assert set(excluded) == {"luchtlab-kit", "datavorm-twin"}
    assert excluded["luchtlab-kit"][0]["rule"] == "domain"
    assert (await env.client.get("/challenges/nope/matches")).status_code == 404
    assert (await env.client.get("/challenges/parkwise-sensor/matches")).status_code == 404


async def test_the_rules_exclude_on_price_maturity_and_region_with_the_reason(env: Env) -> None:
    # Ghent lies in East Flanders: a solution offered there is offered to Ghent
    await post(
        env,
        "/challenges",
        challenge(id="lucht-gent", budget_max=10_000, min_maturity="implemented"),
        "ghent",
    )
    await post(
        env,
        "/solutions",
        solution(id="s-ok", terms=["domain:environment.air", "nis:40000"]),
        "acme",
    )
    await post(env, "/solutions", solution(id="s-dear", price_min=50_000), "acme")
    await post(env, "/solutions", solution(id="s-young", maturity="pilot"), "acme")
    await post(
        env,
        "/solutions",
        solution(id="s-leuven", terms=["domain:environment.air", "nis:24062"]),
        "acme",
    )
    body = (await env.client.get("/challenges/lucht-gent/matches")).json()
    assert ids(body["matches"]) == ["s-ok"]
    assert "offered in nis:40000" in body["matches"][0]["explanation"]["rules"][1]["detail"]
    reasons = {
        x["object"]["id"]: [(f["rule"], f["detail"]) for f in x["failed"]] for x in body["excluded"]
    }
    assert reasons == {
        "s-dear": [("budget", "price from €50.000 exceeds budget €10.000")],
        "s-young": [("maturity", "TRL 6 below the required TRL 8")],
        "s-leuven": [("region", "not offered in the challenge's region (offered in nis:24062)")],
    }


async def test_solution_to_challenges_leaves_out_closed_ones(env: Env) -> None:
    await post(env, "/challenges", challenge(id="c-open"), "ghent")
    await post(env, "/challenges", challenge(id="c-closed", status="closed"), "leuven")
    await post(env, "/solutions", solution(id="s1"), "acme")
    body = (await env.client.get("/solutions/s1/matches")).json()
    assert body["subject"]["kind"] == "solution"
    assert ids(body["matches"]) == ["c-open"]
    # a closed challenge still gets its matches shown
    assert ids((await env.client.get("/challenges/c-closed/matches")).json()["matches"]) == ["s1"]


async def test_not_relevant_hides_the_match_for_the_organisation_and_is_recorded(env: Env) -> None:
    await post(env, "/challenges", challenge(id="c1"), "ghent")
    await post(env, "/solutions", solution(id="s1"), "acme")
    await post(
        env, "/solutions", solution(id="s2", title={"nl": "Fijnstofmeting aan scholen"}), "acme"
    )
    c = env.client
    path = "/challenges/c1/matches/s1/not-relevant"
    assert (await c.post(path)).status_code == 401
    assert (
        await c.post("/challenges/c1/matches/nope/not-relevant", headers=env.auth("ghent"))
    ).status_code == 404
    r = await c.post(path, headers=env.auth("ghent-reader"))  # any member gives feedback
    assert r.status_code == 201, r.text
    assert r.json()["org_id"] == "ghent" and r.json()["solution_id"] == "s1"
    assert (await c.post(path, headers=env.auth("ghent"))).status_code == 200  # once per pair

    mine = (await c.get("/challenges/c1/matches", headers=env.auth("ghent"))).json()
    assert ids(mine["matches"]) == ["s2"] and mine["hidden"] == ["s1"]
    # the other direction too, for the same organisation
    other_way = (await c.get("/solutions/s1/matches", headers=env.auth("ghent"))).json()
    assert other_way["matches"] == [] and other_way["hidden"] == ["c1"]
    # other organisations and anonymous readers still see it
    for headers in ({}, env.auth("leuven")):
        seen = (await c.get("/challenges/c1/matches", headers=headers)).json()
        assert set(ids(seen["matches"])) == {"s1", "s2"} and seen["hidden"] == []
    records = await env.gov.store.audit_records()
    assert [r.action for r in records].count("hub.match.dismiss") == 1

    # the solution's side marks it from its end; withdrawing shows it again
    r = await c.post("/solutions/s2/matches/c1/not-relevant", headers=env.auth("acme"))
    assert r.status_code == 201 and r.json()["challenge_id"] == "c1"
    assert (await c.delete(path, headers=env.auth("ghent"))).status_code == 204
    assert (await c.delete(path, headers=env.auth("ghent"))).status_code == 404
    again = (await c.get("/challenges/c1/matches", headers=env.auth("ghent"))).json()
    assert set(ids(again["matches"])) == {"s1", "s2"}


async def test_near_duplicates_are_warned_on_create_and_checked_before(env: Env) -> None:
    first = await post(env, "/challenges", challenge(id="lucht-scholen"), "ghent")
    assert first["similar"] == []
    again = await post(
        env,
        "/challenges",
        challenge(
            title={"nl": "Fijnstof meten aan scholen"},
            problem={"nl": "We willen fijnstof aan de schoolpoort meten en de ouders informeren."},
        ),
        "leuven",
    )
    assert [s["object"]["id"] for s in again["similar"]] == ["lucht-scholen"]
    warning = again["similar"][0]
    assert warning["similarity"] >= 1 and "fijnstof" in warning["shared_words"]
    other = await post(
        env,
        "/challenges",
        challenge(
            title={"nl": "Eenzaamheid bij ouderen"},
            problem={"nl": "Alleenwonende senioren vallen uit beeld."},
            terms=["domain:living"],
        ),
        "leuven",
    )
    assert other["similar"] == []
    # a stored object reads the same as before (the warning is part of the create answer only)
    stored = (await env.client.get("/challenges/lucht-scholen")).json()
    assert "similar" not in stored

    c = env.client
    draft = {
        "title": {"nl": "Luchtkwaliteit aan de scholen meten"},
        "problem": {
            "nl": "Wij willen het fijnstof meten aan elke schoolpoort en de ouders informeren."
        },
    }
    r = await c.post("/challenges/similar", json=draft)  # public, like reading
    assert r.status_code == 200, r.text
    assert "lucht-scholen" in [s["object"]["id"] for s in r.json()]
    r = await c.post("/challenges/similar", json={**draft, "id": "lucht-scholen"})
    assert "lucht-scholen" not in [s["object"]["id"] for s in r.json()]  # editing itself
    assert (await c.post("/challenges/similar", json={})).status_code == 400
    assert (await c.post("/challenges/similar", json={"status": "open"})).status_code == 400
    # only the same kind: a solution with these words is no duplicate of a challenge
    assert (
        await c.post("/solutions/similar", json=draft | {"description": draft.pop("problem")})
    ).json() == []

    usecase = {
        "title": {"nl": "Slim parkeren"},
        "summary": {"nl": "Parkeersensoren tonen vrije plaatsen."},
        "maturity": "pilot",
    }
    await post(env, "/use-cases", usecase | {"id": "park-1"}, "ghent")
    created = await post(env, "/use-cases", usecase, "leuven")
    assert [s["object"]["id"] for s in created["similar"]] == ["park-1"]
    r = await c.post(
        "/use-cases/similar", json={"summary": {"nl": "Parkeersensoren tonen vrije plaatsen"}}
    )
    assert {s["object"]["id"] for s in r.json()} == {"park-1", created["id"]}


async def test_joint_purchases_group_municipalities_with_an_ocds_outline(env: Env) -> None:
    await demo(env)
    r = await env.client.get("/joint-purchases")
    assert r.status_code == 200, r.text
    bundles = r.json()
    assert len(bundles) == 1
    bundle = bundles[0]
    assert {p["id"] for p in bundle["participants"]} == {"leuven", "kortrijk"}
    assert {c["id"] for c in bundle["challenges"]} == {
        "zoekverkeer-leuven",
        "parkeerzoekverkeer-kortrijk",
    }
    assert bundle["combined_budget"] == 150_000 + 90_000
    assert bundle["demand"] == {"parkeerplaatsen": 650}
    assert [s["object"]["id"] for s in bundle["solutions"]] == ["parkwise-sensor"]
    assert bundle["solutions"][0]["members_matched"] == 2
    tender = bundle["tender"]
    assert tender["ocid"] == f"ocds-smartregion-{bundle['id']}" and tender["tag"] == ["planning"]
    roles = {p["id"]: p["roles"] for p in tender["parties"]}
    assert roles == {"smartregion": ["procuringEntity"], "leuven": ["buyer"], "kortrijk": ["buyer"]}
    lots = tender["tender"]["lots"]
    assert len(lots) == 2 and {lot["value"]["amount"] for lot in lots} == {150_000, 90_000}
    assert tender["tender"]["lotGroups"][0]["optionToCombine"] is True
    assert {i["relatedLot"] for i in tender["tender"]["items"]} == {lot["id"] for lot in lots}
    assert tender["planning"]["budget"]["amount"] == {"amount": 240_000, "currency": "EUR"}
    assert "650 parkeerplaatsen" in tender["planning"]["budget"]["description"]
    # a framework agreement concluded by the platform's central purchasing body
    assert tender["tender"]["techniques"]["hasFrameworkAgreement"] is True
    assert tender["tender"]["procuringEntity"]["id"] == "smartregion"
    assert release_errors(tender) == []  # the official OCDS 1.1 schema with Lots and Techniques
    assert [u.split("/")[4] for u in bundle["tender_extensions"]] == [
        "ocds_lots_extension",
        "ocds_techniques_extension",
    ]

    one = await env.client.get(f"/joint-purchases/{bundle['id']}")
    assert one.status_code == 200 and one.json() == bundle
    package = await env.client.get(f"/joint-purchases/{bundle['id']}/ocds.json")
    assert package.status_code == 200 and package.headers["content-type"] == "application/json"
    assert package_errors(package.json()) == []
    assert package.json()["releases"] == [tender]
    assert package.json()["uri"].endswith(f"/api/v1/joint-purchases/{bundle['id']}/ocds.json")
    missing = await env.client.get("/joint-purchases/bundle-000000000000/ocds.json")
    assert missing.status_code == 404
    assert (await env.client.get("/joint-purchases/bundle-000000000000")).status_code == 404
    # closing a member's challenge dissolves the proposal
    body = (await env.client.get("/challenges/parkeerzoekverkeer-kortrijk")).json()
    fields = {
        k: v
        for k, v in body.items()
        if k not in ("id", "kind", "owner", "created_at", "updated_at")
    }
    r = await env.client.put(
        "/challenges/parkeerzoekverkeer-kortrijk",
        json=fields | {"status": "closed"},
        headers=env.auth("platform"),
    )
    assert r.status_code == 200, r.text
    assert (await env.client.get("/joint-purchases")).json() == []


def checks(instrument: dict[str, Any]) -> dict[str, str]:
    return {c["label"]: c["status"] for c in instrument["checks"]}


async def test_funding_eligibility_says_which_rules_pass_and_the_next_deadline(env: Env) -> None:
    await demo(env)
    env.hub.clock = lambda: datetime(2026, 11, 27, 12, tzinfo=UTC)
    c = env.client
    r = await c.get("/funding/eligibility", params={"initiative": "slimme-binnenstad-leuven"})
    assert r.status_code == 200, r.text
    body = r.json()
    applicant = body["applicant"]
    assert applicant["org_type"] == "municipality" and applicant["partners"] == 2
    assert applicant["facts"] == {
        "duration_months": 24,
        "own_contribution": 0.5,
        "partner_kinds": ["company", "knowledge_institution"],
    }
    found = {i["object"]["id"]: i for i in body["instruments"]}
    call = found["smart-cities-call"]
    assert call["status"] == "eligible" and call["next_deadline"] == "2027-04-30"
    assert checks(call) == {
        "Applicant type": "passed",
        "Partner types": "passed",
        "Own contribution": "passed",
        "Project duration in months": "passed",
        "Call open": "passed",
    }
    assert "coock" not in found  # knowledge institutions only
    statuses = [i["status"] for i in body["instruments"]]
    assert statuses == sorted(statuses, key=["eligible", "possibly"].index)

    everything = (
        await c.get(
            "/funding/eligibility", params={"initiative": "slimme-binnenstad-leuven", "all": "true"}
        )
    ).json()
    coock = next(i for i in everything["instruments"] if i["object"]["id"] == "coock")
    assert coock["status"] == "not_eligible"
    failed = [x["reason"] for x in coock["checks"] if x["status"] == "failed"]
    assert failed[0] == "Applicant type: org_type municipality is none of knowledge_institution"
    # COOCK+ partners are companies: the knowledge centre among the partners fails the rule
    assert [x["label"] for x in coock["checks"] if x["status"] == "failed"] == [
        "Applicant type",
        "Partner types",
    ]

    # an organisation: what the hub does not know stays open ("possibly")
    uni = (await c.get("/funding/eligibility", params={"organisation": "uni"})).json()
    coock = next(i for i in uni["instruments"] if i["object"]["id"] == "coock")
    assert coock["status"] == "possibly"
    assert checks(coock)["Project duration in months"] == "unknown"

    # after the call's deadline the instrument is closed
    env.hub.clock = lambda: datetime(2027, 5, 1, 12, tzinfo=UTC)
    later = (
        await c.get(
            "/funding/eligibility", params={"initiative": "slimme-binnenstad-leuven", "all": "true"}
        )
    ).json()
    call = next(i for i in later["instruments"] if i["object"]["id"] == "smart-cities-call")
    assert call["status"] == "not_eligible" and call["next_deadline"] is None
    assert "Call open: last deadline 2027-04-30 has passed" in [x["reason"] for x in call["checks"]]

    assert (await c.get("/funding/eligibility")).status_code == 400
    r = await c.get(
        "/funding/eligibility",
        params={"initiative": "slimme-binnenstad-leuven", "organisation": "uni"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert (await c.get("/funding/eligibility", params={"usecase": "nope"})).status_code == 404
    assert (await c.get("/funding/eligibility", params={"organisation": "nope"})).status_code == 404
    # a use case applies through its owner
    uc = (await c.get("/funding/eligibility", params={"usecase": "hittekaart-genk"})).json()
    assert (
        uc["applicant"]["org_type"] == "municipality" and "nis:71016" in uc["applicant"]["regions"]
    )


async def test_the_deadline_calendar_is_icalendar(env: Env) -> None:
    await demo(env)
    r = await env.client.get("/funding/deadlines.ics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(r.content)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {
        f"{i}@testserver"
        for i in (
            "smart-cities-call-20270430",
            "efro-erdf-20270615",
            "interreg-20270331",
            "pio-20270531",
            "coock-20270301",
        )
    }
    assert events["pio-20270531@testserver"]["DTSTART"].dt.isoformat() == "2027-05-31"
    assert str(events["pio-20270531@testserver"]["SUMMARY"]).startswith("Deadline: PIO")
    # the list's filters select the instruments
    r = await env.client.get(
        "/funding/deadlines.ics", params={"term": "applicant:knowledge_institution", "lang": "en"}
    )
    uids = {str(e["UID"]) for e in icalendar.Calendar.from_ical(r.content).walk("VEVENT")}
    assert uids == {
        "efro-erdf-20270615@testserver",
        "interreg-20270331@testserver",
        "coock-20270301@testserver",
    }
    assert (
        await env.client.get("/funding/deadlines.ics", params={"term": "bad"})
    ).status_code == 400


async def test_without_embeddings_the_ranking_is_bm25_alone(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/bm25.db", hub_embeddings=False))
    async with app.router.lifespan_context(app):
        await load_hub_demo(app.state.hub, owner="smartregion")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            body = (await c.get("/challenges/zoekverkeer-leuven/matches")).json()
            assert body["method"] == "bm25"
            best = body["matches"][0]
            assert best["object"]["id"] == "parkwise-sensor"
            why = best["explanation"]
            assert why["semantic_similarity"] is None and why["fusion"] == "bm25"
            # the shares of the shared terms and word parts add up to the BM25 score
            total = sum(t["score"] for t in why["shared_terms"]) + why["word_part_score"]
            assert total == pytest.approx(why["text_score"])


async def test_the_snapshot_is_kept_until_the_hub_changes(env: Env) -> None:
    from smartregion.hub.matchmaking import Matchmaking

    matchmaking = Matchmaking(env.hub, embeddings=False)
    await post(env, "/challenges", challenge(id="c1"), "ghent")
    first = await matchmaking.snapshot()
    assert await matchmaking.snapshot() is first and set(first.records) == {"c1"}
    await post(env, "/solutions", solution(id="s1"), "acme")
    second = await matchmaking.snapshot()
    assert second is not first and set(second.records) == {"c1", "s1"}
    # a replaced object moves the chain too: never a stale answer
    await env.client.put(
        "/challenges/c1", json=challenge(status="closed"), headers=env.auth("ghent")
    )
    third = await matchmaking.snapshot()
    assert third.objects["c1"].status == "closed"
    _, result = await matchmaking.challenges_for(None, "s1")
    assert result.matches == ()  # closed challenges are no candidates
