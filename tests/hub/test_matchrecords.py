"""Stored hub objects as matching records: texts, terms, regions, TRL, funding rules, applicants."""

from __future__ import annotations

from typing import Any

from smartregion.hub.matchrecords import (
    MATURITY_TRL,
    applicant_of_object,
    applicant_of_organisation,
    funding_instrument,
    match_doc,
    texts_of,
)
from smartregion.hub.taxonomy import load_taxonomy
from smartregion.storage.governance import Organisation
from smartregion.storage.hub import HubObject

TAXONOMY = load_taxonomy()
ORGS = {
    "ghent": Organisation("ghent", "Stad Gent", "municipality", nis="44021"),
    "limburg": Organisation("limburg", "Provincie Limburg", "province", nis="70000"),
    "acme": Organisation("acme", "Acme", "company"),
    "uni": Organisation("uni", "Universiteit", "knowledge_institution"),
}


def stored(kind: str, doc: dict[str, Any], owner: str = "ghent", status: str = "open") -> HubObject:
    at = "2026-01-01T00:00:00.000000Z"
    return HubObject(f"{kind}-1", kind, owner, ORGS[owner].kind, status, "", at, at, doc)


def test_texts_are_the_title_summary_and_the_kinds_own_texts_per_language() -> None:
    doc = {
        "title": {"nl": "Hitte", "en": "Heat"},
        "summary": {"nl": " "},
        "problem": {"nl": "Te warm in de klas."},
        "affected_groups": {"en": "Pupils"},
        "contact": {"name": "not matched"},
    }
    assert texts_of("challenge", doc) == {"nl": "Hitte\nTe warm in de klas.", "en": "Heat\nPupils"}


def test_a_challenge_lies_in_its_own_and_its_co_owners_regions_with_the_broader_ones() -> None:
    doc = match_doc(
        stored(
            "challenge",
            {
                "title": {"nl": "Hitte"},
                "terms": ["domain:environment.climate", "sdg:13.1"],
                "co_owners": ["limburg"],
                "budget_max": 80_000,
                "min_maturity": "pilot",
                "quantity": 12,
                "unit": "scholen",
            },
        ),
        TAXONOMY,
        ORGS,
    )
    # Ghent -> East Flanders -> Flemish Region; Limburg -> Flemish Region
    assert doc.regions == {"nis:44021", "nis:40000", "nis:02000", "nis:70000"}
    # topical terms with their broader terms; regions are kept apart
    assert doc.terms == {"domain:environment", "domain:environment.climate", "sdg:13", "sdg:13.1"}
    assert doc.domains == {"domain:environment", "domain:environment.climate"}
    assert (doc.budget_max, doc.maturity, doc.quantity, doc.unit) == (
        80_000,
        MATURITY_TRL["pilot"],
        12,
        "scholen",
    )
    assert doc.owner_name == "Stad Gent"


def test_a_solution_is_offered_where_tagged_and_a_merged_municipality_counts() -> None:
    doc = match_doc(
        stored(
            "solution",
            {
                "title": {"en": "Sensor"},
                "maturity": "scaled",
                "pricing_model": "one_off",
                "price_min": 100,
                "terms": ["nis:11007"],  # Borsbeek, merged into Antwerp in 2025
            },
            owner="acme",
        ),
        TAXONOMY,
        ORGS,
    )
    assert doc.regions == {"nis:11007", "nis:11002"}  # not the province: offered there only
    assert (doc.budget_min, doc.maturity) == (100, 9)
    untagged = match_doc(
        stored(
            "solution",
            {"title": {"en": "x"}, "maturity": "idea", "pricing_model": "free"},
            owner="acme",
        ),
        TAXONOMY,
        ORGS,
    )
    assert untagged.regions == frozenset()  # everywhere


def test_maturity_levels_follow_the_technology_readiness_scale() -> None:
    assert sorted(MATURITY_TRL, key=MATURITY_TRL.__getitem__) == [
        "idea",
        "proof_of_concept",
        "pilot",
        "implemented",
        "scaled",
    ]


def test_funding_rules_come_from_the_instruments_fields() -> None:
    instrument = funding_instrument(
        stored(
            "funding",
            {
                "title": {"nl": "Oproep", "en": "Call"},
                "summary": {"en": "For cities."},
                "funder": "Vlaamse overheid",
                "level": "flemish",
                "eligible_applicants": ["municipality"],
                "eligible_partners": ["company"],
                "min_own_contribution": 0.5,
                "duration_months": 24,
                "terms": ["nis:40000", "domain:mobility"],
                "calls": [{"deadline": "2027-04-30"}, {"deadline": "2026-04-30"}],
                "max_amount": 100_000,
            },
            owner="ghent",
        ),
        lang="en",
    )
    assert instrument.name == "Call" and instrument.description == "For cities."
    rules = {r.label: (r.fact, r.op, r.value) for r in instrument.rules}
    assert rules == {
        "Applicant type": ("org_type", "in", frozenset({"municipality"})),
        "Partner types": (
            "partner_kinds",
            "not_in",
            frozenset(
                {
                    "municipality",
                    "province",
                    "region",
                    "knowledge_institution",
                    "citizens_organisation",
                }
            ),
        ),
        "Region": ("regions", "intersects", frozenset({"nis:40000"})),  # the domain only describes
        "Own contribution": ("own_contribution", "ge", 0.5),
        "Project duration in months": ("duration_months", "le", 24),
    }
    assert [d.isoformat() for d in instrument.deadlines] == ["2026-04-30", "2027-04-30"]
    assert instrument.max_amount == 100_000


def test_applicants_carry_what_the_hub_knows() -> None:
    initiative = applicant_of_object(
        stored(
            "initiative",
            {
                "title": {"nl": "Project"},
                "status": "running",
                "partners": ["acme", "uni"],
                "budget": 400_000,
                "funding": [{"funder": "EU", "amount": 100_000}],
                "start": "2026-03-15",
                "end": "2027-03-14",
                "terms": ["domain:mobility.parking"],
            },
        ),
        TAXONOMY,
        ORGS,
    )
    assert initiative.org_type == "municipality" and initiative.partners == 2
    assert initiative.regions == {"nis:44021", "nis:40000", "nis:02000"}  # the lead's, untagged
    assert dict(initiative.facts) == {
        "partner_kinds": frozenset({"company", "knowledge_institution"}),
        "own_contribution": 0.75,
        "duration_months": 12,
    }
    org = applicant_of_organisation(ORGS["limburg"], TAXONOMY)
    assert org.kind == "organisation" and org.org_type == "province"
    assert org.regions == {"nis:70000", "nis:02000"} and org.budget is None
