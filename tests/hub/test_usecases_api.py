"""Endorsements (one per local government, ranking) and adoptions (scale-up over time)."""

from __future__ import annotations

import pytest
from hub_env import Env

pytestmark = pytest.mark.anyio


async def _usecase(env: Env, object_id: str, who: str = "acme") -> None:
    body = {"id": object_id, "title": {"nl": object_id}, "maturity": "pilot"}
    r = await env.client.post("/use-cases", json=body, headers=env.auth(who))
    assert r.status_code == 201, r.text


async def test_local_governments_endorse_once_and_endorsements_rank(env: Env) -> None:
    c = env.client
    await _usecase(env, "uc-a")
    await _usecase(env, "uc-b")
    r = await c.post("/use-cases/uc-b/endorsements", headers=env.auth("ghent"))
    assert r.status_code == 201 and r.json()["org_id"] == "ghent"
    again = await c.post("/use-cases/uc-b/endorsements", headers=env.auth("ghent"))
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert (
        await c.post("/use-cases/uc-b/endorsements", headers=env.auth("leuven"))
    ).status_code == 201
    assert (
        await c.post("/use-cases/uc-a/endorsements", headers=env.auth("leuven"))
    ).status_code == 201
    # companies, knowledge institutions, readers and anonymous callers do not endorse
    assert (
        await c.post("/use-cases/uc-a/endorsements", headers=env.auth("acme"))
    ).status_code == 403
    assert (
        await c.post("/use-cases/uc-a/endorsements", headers=env.auth("uni"))
    ).status_code == 403
    assert (
        await c.post("/use-cases/uc-a/endorsements", headers=env.auth("ghent-reader"))
    ).status_code == 403
    assert (await c.post("/use-cases/uc-a/endorsements")).status_code == 401
    assert (
        await c.post("/use-cases/nope/endorsements", headers=env.auth("ghent"))
    ).status_code == 404

    ranked = (await c.get("/use-cases?sort=-endorsements")).json()["items"]
    assert [(u["id"], u["endorsements"]) for u in ranked] == [("uc-b", 2), ("uc-a", 1)]
    listed = (await c.get("/use-cases/uc-b/endorsements")).json()
    assert [e["org_id"] for e in listed] == ["ghent", "leuven"]

    # only the endorsing organisation (or a platform admin) withdraws
    assert (
        await c.delete("/use-cases/uc-b/endorsements/ghent", headers=env.auth("leuven"))
    ).status_code == 403
    assert (
        await c.delete("/use-cases/uc-b/endorsements/ghent", headers=env.auth("ghent"))
    ).status_code == 204
    assert (
        await c.delete("/use-cases/uc-b/endorsements/ghent", headers=env.auth("ghent"))
    ).status_code == 404
    assert (
        await c.delete("/use-cases/uc-b/endorsements/leuven", headers=env.auth("platform"))
    ).status_code == 204
    assert (await c.get("/use-cases/uc-b")).json()["endorsements"] == 0


async def test_adoptions_are_tracked_over_time(env: Env) -> None:
    c = env.client
    await _usecase(env, "uc")
    # the owner records Leuven's interest, Leuven itself its pilot
    r = await c.put(
        "/use-cases/uc/adoptions/nis:24062", json={"stage": "interested"}, headers=env.auth("acme")
    )
    assert r.status_code == 200, r.text
    r = await c.put(
        "/use-cases/uc/adoptions/nis:24062",
        json={"stage": "piloting", "note": "Pilot in Kessel-Lo"},
        headers=env.auth("leuven"),
    )
    assert r.status_code == 200
    # Ghent may record only its own adoption
    r = await c.put(
        "/use-cases/uc/adoptions/nis:24062", json={"stage": "rolled_out"}, headers=env.auth("ghent")
    )
    assert r.status_code == 403
    r = await c.put(
        "/use-cases/uc/adoptions/nis:44021", json={"stage": "rolled_out"}, headers=env.auth("ghent")
    )
    assert r.status_code == 200
    body = (await c.get("/use-cases/uc/adoptions")).json()
    assert [(a["municipality"], a["stage"], a["label"]["en"]) for a in body["current"]] == [
        ("nis:24062", "piloting", "Leuven"),
        ("nis:44021", "rolled_out", "Ghent"),
    ]
    assert [(h["municipality"], h["stage"]) for h in body["history"]] == [
        ("nis:24062", "interested"),
        ("nis:24062", "piloting"),
        ("nis:44021", "rolled_out"),
    ]
    assert body["history"][1]["note"] == "Pilot in Kessel-Lo"

    assert (
        await c.delete("/use-cases/uc/adoptions/nis:44021", headers=env.auth("ghent"))
    ).status_code == 204
    assert (
        await c.delete("/use-cases/uc/adoptions/nis:44021", headers=env.auth("ghent"))
    ).status_code == 404
    body = (await c.get("/use-cases/uc/adoptions")).json()
    assert [a["municipality"] for a in body["current"]] == ["nis:24062"]
    assert body["history"][-1]["stage"] is None


@pytest.mark.parametrize(
    "municipality, stage, status",
    [
        ("nis:40000", "piloting", 400),  # a province is no municipality
        ("nis:99999", "piloting", 400),  # no such code
        ("nis:73040", "piloting", 400),  # Kortessem merged into Hasselt in 2025
        ("nis:24062", "finished", 400),
        ("leuven", "piloting", 400),
    ],
)
async def test_bad_adoptions_are_refused(
    env: Env, municipality: str, stage: str, status: int
) -> None:
    await _usecase(env, "uc")
    r = await env.client.put(
        f"/use-cases/uc/adoptions/{municipality}", json={"stage": stage}, headers=env.auth("acme")
    )
    assert r.status_code == status, r.text
    assert (await env.client.get("/use-cases/uc/adoptions")).json()["history"] == []


async def test_deleting_a_use_case_takes_its_endorsements_and_adoptions(env: Env) -> None:
    await _usecase(env, "uc")
    await env.client.post("/use-cases/uc/endorsements", headers=env.auth("ghent"))
    await env.client.put(
        "/use-cases/uc/adoptions/nis:44021", json={"stage": "piloting"}, headers=env.auth("ghent")
    )
    assert (await env.client.delete("/use-cases/uc", headers=env.auth("acme"))).status_code == 204
    await _usecase(env, "uc")
    assert (await env.client.get("/use-cases/uc/endorsements")).json() == []
    assert (await env.client.get("/use-cases/uc/adoptions")).json() == {
        "current": [],
        "history": [],
    }
