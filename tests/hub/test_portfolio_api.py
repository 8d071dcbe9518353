"""The initiative portfolio report and the taxonomy endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from hub_env import Env

pytestmark = pytest.mark.anyio


def initiative(
    object_id: str,
    status: str,
    budget: float,
    funding: list[dict[str, Any]],
    terms: list[str],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": object_id,
        "title": {"nl": object_id.capitalize(), "en": object_id},
        "status": status,
        "budget": budget,
        "funding": funding,
        "terms": terms,
        **extra,
    }


async def _portfolio(env: Env) -> None:
    items = [
        (
            "ghent",
            initiative(
                "alpha",
                "running",
                100_000,
                [{"funder": "EU", "amount": 40_000}, {"funder": "Vlaanderen", "amount": 10_000}],
                ["domain:mobility"],
                milestones=[
                    {"title": {"nl": "Later"}, "due": "2027-06-01"},
                    {"title": {"nl": "Eerst"}, "due": "2027-01-01"},
                    {"title": {"nl": "Gedaan"}, "due": "2026-01-01", "done": True},
                ],
            ),
        ),
        (
            "ghent",
            initiative(
                "beta",
                "planned",
                50_000,
                [{"funder": "EU", "amount": 25_000}],
                ["domain:environment"],
            ),
        ),
        ("leuven", initiative("gamma", "running", 10_000, [], ["domain:mobility.parking"])),
    ]
    for who, body in items:
        r = await env.client.post("/initiatives", json=body, headers=env.auth(who))
        assert r.status_code == 201, r.text


async def test_the_report_totals_the_selection(env: Env) -> None:
    await _portfolio(env)
    report = (await env.client.get("/initiatives/report")).json()
    assert report["count"] == 3 and report["budget"] == 160_000 and report["funded"] == 75_000
    assert report["by_status"] == {"running": 2, "planned": 1}
    assert report["by_funder"] == {"EU": 65_000, "Vlaanderen": 10_000}
    assert [line["id"] for line in report["lines"]] == ["alpha", "beta", "gamma"]
    assert report["lines"][0]["next_milestone"]["title"] == {"nl": "Eerst"}

    mobility = (await env.client.get("/initiatives/report?term=domain:mobility")).json()
    assert [line["id"] for line in mobility["lines"]] == ["alpha", "gamma"]
    assert mobility["budget"] == 110_000
    by_funder = (await env.client.get("/initiatives/report?term=funder:eu&status=planned")).json()
    assert [line["id"] for line in by_funder["lines"]] == ["beta"]


async def test_the_report_prints(env: Env) -> None:
    await _portfolio(env)
    await env.client.post(
        "/initiatives",
        headers=env.auth("ghent"),
        json=initiative("delta", "stopped", 1, [], [], title={"nl": "<script>alert(1)</script>"}),
    )
    r = await env.client.get("/initiatives/report.html?lang=en")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<h1>Portfolio: progress report</h1>" in page and "@page" in page
    assert "€ 160.001" in page and ">alpha<" in page and "EU: € 65.000" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    # its own policy allows its inline style sheet (by hash) and nothing else
    import base64
    import hashlib
    import re

    style = re.search(r"<style>(.*)</style>", page, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert r.headers["content-security-policy"].startswith(
        f"default-src 'none'; style-src 'sha256-{digest}'"
    )


async def test_taxonomy_endpoints(env: Env) -> None:
    c = env.client
    schemes = {s["scheme"]: s for s in (await c.get("/taxonomy")).json()}
    assert schemes["sdg"]["roots"][0] == "sdg:1" and schemes["sdg"]["terms"] == 17 + 169
    term = (await c.get("/taxonomy/terms/nis:40000")).json()
    assert term["label"]["en"] == "Province of East Flanders" and "nis:44021" in term["children"]
    assert (await c.get("/taxonomy/terms/nis:12345")).status_code == 404
    found = (await c.get("/taxonomy/region?q=gent&current=true")).json()
    assert {t["id"] for t in found} == {"nis:44021"}
    assert len((await c.get("/taxonomy/region?current=true")).json()) == 1 + 5 + 285
    assert (await c.get("/taxonomy/colours")).status_code == 400
