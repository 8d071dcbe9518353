"""The funding finder (hub/finder.py): answers in, the eligibility matcher's verdicts out."""

from __future__ import annotations

import datetime as dt

import pytest
from hub_env import Env

from smartregion.errors import BadRequestData
from smartregion.hub.finder import FinderAnswers, find_funding

pytestmark = pytest.mark.anyio

NEXT_YEAR = dt.date.today().year + 1


def instrument(
    object_id: str,
    applicants: list[str],
    terms: list[str],
    deadline: str,
    max_amount: float | None = None,
) -> dict[str, object]:
    body: dict[str, object] = {
        "id": object_id,
        "title": {"nl": object_id},
        "funder": "Vlaamse overheid",
        "level": "flemish",
        "eligible_applicants": applicants,
        "terms": terms,
        "calls": [{"deadline": deadline}],
    }
    if max_amount is not None:
        body["max_amount"] = max_amount
    return body


async def test_finder_verdicts_amount_domain_and_date(env: Env) -> None:
    for body in (
        instrument("steden", ["municipality"], ["domain:mobility"], f"{NEXT_YEAR}-04-30", 200_000),
        instrument("bedrijven", ["company"], ["domain:economy"], f"{NEXT_YEAR}-02-01"),
        instrument("iedereen", [], ["domain:environment"], f"{NEXT_YEAR}-06-01", 50_000),
    ):
        r = await env.client.post("/funding", json=body, headers=env.auth("platform"))
        assert r.status_code == 201, r.text
    found = await find_funding(
        env.hub, FinderAnswers("municipality", "domain:mobility.parking", 100_000)
    )
    by_id = {f.instrument.id: f for f in found}
    assert [f.instrument.id for f in found][:2] == [
        "steden",
        "iedereen",
    ]  # eligible; own domain first
    assert by_id["steden"].result.status == "eligible"
    assert by_id["steden"].covers is True and by_id["iedereen"].covers is False
    assert by_id["steden"].in_domain is True and by_id["iedereen"].in_domain is False
    assert by_id["bedrijven"].result.status == "not_eligible"
    assert [c.status for c in by_id["bedrijven"].result.checks if c.rule.fact == "org_type"] == [
        "failed"
    ]
    # ready only after a call closes: that call no longer fits
    later = await find_funding(
        env.hub, FinderAnswers("municipality", when=dt.date(NEXT_YEAR, 5, 1))
    )
    assert {f.instrument.id: f.result.status for f in later}["steden"] == "not_eligible"
    assert {f.instrument.id: f.result.status for f in later}["iedereen"] == "eligible"
    assert all(f.covers is None and f.in_domain is None for f in later)


@pytest.mark.parametrize(
    "answers",
    [
        FinderAnswers("alien"),
        FinderAnswers("company", domain="nis:44021"),
        FinderAnswers("company", domain="domain:no-such"),
        FinderAnswers("company", amount=-1),
    ],
)
async def test_finder_refuses_bad_answers(env: Env, answers: FinderAnswers) -> None:
    with pytest.raises(BadRequestData):
        await find_funding(env.hub, answers)
