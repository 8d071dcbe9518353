"""Atom feeds of stories, challenges and funding deadlines."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from hub_env import Env

pytestmark = pytest.mark.anyio
A = "{http://www.w3.org/2005/Atom}"


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


async def test_stories_feed(env: Env) -> None:
    for object_id, status in (("fatima", "published"), ("oud", "archived")):
        body = {
            "id": object_id,
            "title": {"nl": f"Verhaal {object_id}", "en": f"Story {object_id}"},
            "body": {"nl": "Tekst"},
            "summary": {"nl": "Kort <b>en</b> goed"},
            "status": status,
        }
        assert (
            await env.client.post("/stories", json=body, headers=env.auth("ghent"))
        ).status_code == 201
    r = await env.client.get("/feeds/stories.atom?lang=en")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = parse(r.text)
    assert feed.findtext(f"{A}title") == "Stories"
    entries = feed.findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == ["Story fatima"]
    entry = entries[0]
    assert entry.findtext(f"{A}id") == "urn:smartregion:hub:story:fatima"
    assert entry.findtext(f"{A}summary") == "Kort <b>en</b> goed"  # escaped, round-trips as text
    assert entry.find(f"{A}link").get("href").endswith("/api/v1/stories/fatima")  # type: ignore[union-attr]


async def test_challenges_feed_filters_open_ones_by_term(env: Env) -> None:
    for object_id, status, terms in (
        ("a1", "open", ["domain:mobility"]),
        ("a2", "closed", ["domain:mobility"]),
        ("a3", "open", ["domain:environment"]),
    ):
        body = {
            "id": object_id,
            "title": {"nl": object_id},
            "problem": {"nl": f"Probleem {object_id}"},
            "status": status,
            "terms": terms,
        }
        assert (
            await env.client.post("/challenges", json=body, headers=env.auth("ghent"))
        ).status_code == 201
    feed = parse((await env.client.get("/feeds/challenges.atom?term=domain:mobility")).text)
    entries = feed.findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == ["a1"]
    assert entries[0].findtext(f"{A}summary") == "Probleem a1"


async def test_funding_deadlines_feed_lists_calls_ahead_nearest_first(env: Env) -> None:
    today = datetime.now(UTC).date()
    soon, later, past = (
        today + timedelta(days=10),
        today + timedelta(days=40),
        today - timedelta(days=1),
    )
    body = {
        "id": "oproep",
        "title": {"nl": "Oproep"},
        "funder": "Vlaanderen",
        "level": "flemish",
        "calls": [
            {"deadline": later.isoformat()},
            {"deadline": past.isoformat()},
            {"deadline": soon.isoformat(), "note": {"nl": "Eerste ronde"}},
        ],
    }
    assert (
        await env.client.post("/funding", json=body, headers=env.auth("platform"))
    ).status_code == 201
    feed = parse((await env.client.get("/feeds/funding-deadlines.atom")).text)
    entries = feed.findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == [f"{soon}: Oproep", f"{later}: Oproep"]
    assert entries[0].findtext(f"{A}id") == f"urn:smartregion:hub:funding:oproep:deadline:{soon}"
    assert entries[0].findtext(f"{A}summary") == "Eerste ronde"
    assert date.fromisoformat(entries[1].findtext(f"{A}title", "")[:10]) == later
