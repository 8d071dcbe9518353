"""Funding eligibility (rules passed/failed/unknown with reasons, next deadline) and the iCalendar feed."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import icalendar

from smartregion.hub.eligibility import (
    Applicant,
    FundingInstrument,
    FundingRule,
    check_eligibility,
    deadline_calendar,
    eligible_instruments,
)

NOW = dt.datetime(2026, 11, 27, 13, 0, tzinfo=dt.UTC)
FLANDERS = frozenset({"region:nis:44021", "region:nis:40000", "region:flanders"})

CITY = Applicant(
    id="org:gent",
    kind="organisation",
    name="Stad Gent",
    org_type="municipality",
    regions=FLANDERS,
    terms=frozenset({"domain:mobility", "sdg:11"}),
    budget=250_000,
    partners=3,
    facts={"inhabitants": 265_000},
)
SMART_CITIES = FundingInstrument(
    id="vlaio-smart-cities",
    name="Oproep Slimme Steden 2027",
    funder="Vlaams Agentschap Innoveren & Ondernemen",
    url="https://example.org/oproepen/slimme-steden",
    rules=(
        FundingRule(
            "org_type", "in", frozenset({"municipality", "intermunicipal"}), "Applicant type"
        ),
        FundingRule("regions", "intersects", frozenset({"region:flanders"}), "Located in Flanders"),
        FundingRule("partners", "ge", 2, "Consortium size"),
        FundingRule("budget", "le", 500_000, "Project budget ceiling"),
    ),
    deadlines=(dt.date(2026, 10, 1), dt.date(2027, 2, 15), dt.date(2027, 9, 30)),
    max_amount=300_000,
    description="Cofinancing of smart-city pilots; 50 % of the eligible costs",
)
SME_ONLY = FundingInstrument(
    id="kmo-portefeuille",
    name="KMO-portefeuille",
    funder="VLAIO",
    rules=(FundingRule("org_type", "in", frozenset({"sme"}), "Applicant type"),),
)
EUROPE = FundingInstrument(
    id="eu-mission-cities",
    name="EU Mission: climate-neutral and smart cities, pilot call",
    funder="European Commission",
    rules=(
        FundingRule("inhabitants", "ge", 50_000, "City size"),
        FundingRule("climate_city_contract", "true", True, "Signed Climate City Contract"),
    ),
    deadlines=(dt.datetime(2027, 1, 20, 17, 0, tzinfo=ZoneInfo("Europe/Brussels")),),
)
CLOSED = FundingInstrument(
    id="closed-call",
    name="Closed call",
    funder="Provincie Oost-Vlaanderen",
    rules=(FundingRule("org_type", "in", frozenset({"municipality"}), "Applicant type"),),
    deadlines=(dt.date(2026, 3, 1),),
)


def test_all_rules_pass_with_reasons_and_the_next_deadline() -> None:
    result = check_eligibility(CITY, SMART_CITIES, now=NOW)
    assert result.status == "eligible"
    reasons = [c.reason for c in result.checks]
    assert "Applicant type: org_type municipality is one of intermunicipal, municipality" in reasons
    assert "Consortium size: partners 3 ≥ 2" in reasons
    assert "Project budget ceiling: budget 250.000 ≤ 500.000" in reasons
    assert result.next_deadline == dt.date(2027, 2, 15)  # 1 October 2026 has passed
    assert reasons[-1] == "Call open: next deadline 2027-02-15"


def test_a_failed_rule_says_why() -> None:
    result = check_eligibility(CITY, SME_ONLY, now=NOW)
    assert result.status == "not_eligible"
    assert [c.reason for c in result.failed] == [
        "Applicant type: org_type municipality is none of sme"
    ]


def test_unknown_facts_make_it_possibly_eligible() -> None:
    result = check_eligibility(CITY, EUROPE, now=NOW)
    assert result.status == "possibly"
    statuses = {c.rule.label: c.status for c in result.checks}
    assert statuses == {
        "City size": "passed",
        "Signed Climate City Contract": "unknown",
        "Call open": "passed",
    }
    signed = Applicant(
        **{**CITY.__dict__, "facts": {"inhabitants": 265_000, "climate_city_contract": True}}
    )
    assert check_eligibility(signed, EUROPE, now=NOW).status == "eligible"


def test_a_call_whose_deadlines_have_passed_is_closed() -> None:
    result = check_eligibility(CITY, CLOSED, now=NOW)
    assert result.status == "not_eligible" and result.next_deadline is None
    assert result.failed[0].reason == "Call open: last deadline 2026-03-01 has passed"


def test_a_date_deadline_lasts_until_midnight_in_brussels() -> None:
    day = FundingInstrument(id="d", name="d", funder="f", deadlines=(dt.date(2026, 11, 27),))
    late_evening = dt.datetime(2026, 11, 27, 22, 30, tzinfo=dt.UTC)  # 23:30 in Brussels
    assert check_eligibility(CITY, day, now=late_evening).next_deadline == dt.date(2026, 11, 27)
    after = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)  # 00:30 the next day in Brussels
    assert check_eligibility(CITY, day, now=after).next_deadline is None


def test_eligible_instruments_are_sorted_and_filtered() -> None:
    results = eligible_instruments(CITY, [SME_ONLY, EUROPE, CLOSED, SMART_CITIES], now=NOW)
    assert [(r.instrument.id, r.status) for r in results] == [
        ("vlaio-smart-cities", "eligible"),
        ("eu-mission-cities", "possibly"),
    ]
    everything = eligible_instruments(CITY, [SME_ONLY, CLOSED], now=NOW, include_not_eligible=True)
    assert {r.instrument.id for r in everything} == {"kmo-portefeuille", "closed-call"}


def test_the_icalendar_feed_is_rfc_5545() -> None:
    feed = deadline_calendar([SMART_CITIES, EUROPE], now=NOW, uid_domain="hub.example.org")
    raw = feed.encode("utf-8")
    # CRLF line endings only, every physical line at most 75 octets, continuations start with a space
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines)  # the long description was folded
    unfolded = re.sub(r"\r\n ", "", feed)
    assert "SUMMARY:Deadline: Oproep Slimme Steden 2027" in unfolded
    assert (
        "DESCRIPTION:Vlaams Agentschap Innoveren & Ondernemen. Cofinancing of smart-city pilots\\; 50 % of the eligible costs\\nhttps://example.org/oproepen/slimme-steden"
        in unfolded
    )

    calendar = icalendar.Calendar.from_ical(feed)
    assert str(calendar["VERSION"]) == "2.0" and "PRODID" in calendar
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 4
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == 4
    assert "vlaio-smart-cities-20270215@hub.example.org" in uids
    for event in events:
        assert event["DTSTAMP"].dt == NOW
    starts = {str(e["UID"]): e["DTSTART"].dt for e in events}
    assert starts["vlaio-smart-cities-20270215@hub.example.org"] == dt.date(2027, 2, 15)
    eu = next(v for k, v in starts.items() if k.startswith("eu-mission-cities"))
    assert eu == dt.datetime(2027, 1, 20, 16, 0, tzinfo=dt.UTC)
    # text escaping survives the round trip
    smart = next(e for e in events if str(e["UID"]).startswith("vlaio-smart-cities-2027"))
    assert str(smart["DESCRIPTION"]).endswith(
        "50 % of the eligible costs\nhttps://example.org/oproepen/slimme-steden"
    )


def test_folding_never_cuts_a_utf8_character() -> None:
    long_name = "Oproep voor één slimme regio: " + "é" * 80
    instrument = FundingInstrument(
        id="u", name=long_name, funder="f", deadlines=(dt.date(2027, 1, 1),)
    )
    feed = deadline_calendar([instrument], now=NOW, uid_domain="x")
    for line in feed.encode("utf-8").split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # raises if a character was cut in two
    event = next(iter(icalendar.Calendar.from_ical(feed).walk("VEVENT")))
    assert str(event["SUMMARY"]) == "Deadline: " + long_name
