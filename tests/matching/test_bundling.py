"""Bundling similar challenges of different municipalities into a joint-purchase proposal."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from benchmarks.matching import EvalSet
from smartregion.hub.bundling import propose_bundles, release_package
from smartregion.hub.embeddings import Embedder
from smartregion.hub.matching import MatchDoc, Matcher
from tests.ocds import package_errors, release_errors


def challenge(
    id: str, org: str, name: str, lang: str, text: str, domain: str, **kw: Any
) -> MatchDoc:
    return MatchDoc(
        id=id,
        kind="challenge",
        title=text.split(".")[0],
        texts={lang: text},
        owner_org=org,
        owner_name=name,
        terms=frozenset({f"domain:{domain}"}),
        **kw,
    )


PARKING = "mobility"
CHALLENGES = [
    challenge(
        "gent-parking",
        "org:gent",
        "Stad Gent",
        "nl",
        "Parkeersensoren voor de binnenstad. Automobilisten zoeken lang naar een vrije parkeerplaats; "
        "we willen vrije parkeerplaatsen in realtime tonen.",
        PARKING,
        budget_max=120_000,
        quantity=400,
        unit="sensor",
    ),
    challenge(
        "leuven-parking",
        "org:leuven",
        "Stad Leuven",
        "nl",
        "Vrije parkeerplaatsen tonen. Bezoekers zoeken in de binnenstad lang naar een vrije "
        "parkeerplaats; parkeersensoren moeten de bezetting in realtime tonen.",
        PARKING,
        budget_max=80_000,
        quantity=250,
        unit="sensor",
    ),
    challenge(
        "aalst-parking",
        "org:aalst",
        "Stad Aalst",
        "en",
        "Real-time free parking spaces. Drivers search a long time for a free parking space in the "
        "city centre; parking sensors should show occupancy in real time.",
        PARKING,
        budget_max=60_000,
        quantity=150,
        unit="sensor",
    ),
    # Ghent again, same need: a bundle never holds two challenges of one municipality
    challenge(
        "gent-parking-2",
        "org:gent",
        "Stad Gent",
        "nl",
        "Parkeersensoren aan het station. Automobilisten zoeken lang naar een vrije parkeerplaats "
        "aan het station; we willen vrije parkeerplaatsen in realtime tonen.",
        PARKING,
        budget_max=40_000,
        quantity=100,
        unit="sensor",
    ),
    challenge(
        "leuven-air",
        "org:leuven",
        "Stad Leuven",
        "nl",
        "Luchtkwaliteit aan scholen. We willen fijnstof en stikstofdioxide meten aan scholen met "
        "goedkope sensoren en de luchtkwaliteit delen met ouders.",
        "environment",
        budget_max=30_000,
        quantity=20,
        unit="sensor",
    ),
    challenge(
        "mechelen-air",
        "org:mechelen",
        "Stad Mechelen",
        "nl",
        "Fijnstof meten aan scholen. Met goedkope sensoren willen we de luchtkwaliteit, fijnstof en "
        "stikstofdioxide, aan scholen meten voor ouders.",
        "environment",
        budget_max=25_000,
        quantity=15,
        unit="sensor",
    ),
    challenge(
        "kortrijk-homes",
        "org:kortrijk",
        "Stad Kortrijk",
        "nl",
        "Leegstaande woningen opsporen. We vermoeden dat veel woningen leegstaan en willen ze "
        "opsporen voor de leegstandsheffing.",
        "living",
        budget_max=20_000,
    ),
]


def bundle_of(bundles: list[Any], member: str) -> Any:
    return next(b for b in bundles if member in {c.id for c in b.challenges})


def test_similar_challenges_of_different_municipalities_are_bundled(embedder: Embedder) -> None:
    bundles = propose_bundles(CHALLENGES, embedder=embedder)
    for bundle in bundles:
        orgs = [c.owner_org for c in bundle.challenges]
        assert len(orgs) == len(set(orgs)) >= 2  # different municipalities only
    parking = {c.id for c in bundle_of(bundles, "leuven-parking").challenges}
    # the English challenge of Aalst joins through meaning; one of Ghent's two parking challenges
    assert {"leuven-parking", "aalst-parking"} < parking
    assert len(parking & {"gent-parking", "gent-parking-2"}) == 1 and len(parking) == 3
    air = bundle_of(bundles, "leuven-air")
    assert {c.id for c in air.challenges} == {"leuven-air", "mechelen-air"}
    assert all("kortrijk-homes" not in {c.id for c in b.challenges} for b in bundles)
    # the two Ghent parking challenges never meet in one bundle
    assert not any(
        {"gent-parking", "gent-parking-2"} <= {c.id for c in b.challenges} for b in bundles
    )


def test_without_embeddings_words_alone_bundle_the_dutch_challenges() -> None:
    bundles = propose_bundles(CHALLENGES)
    air = bundle_of(bundles, "leuven-air")
    assert {c.id for c in air.challenges} == {"leuven-air", "mechelen-air"}
    assert {"fijnstof", "scholen", "sensoren"} <= set(air.shared_words)
    assert air.shared_taxonomy == ("domain:environment",)


def test_one_municipality_alone_is_no_bundle() -> None:
    same_org = [c for c in CHALLENGES if c.owner_org == "org:gent"]
    assert propose_bundles(same_org) == []


def test_combined_demand_budget_and_matching_solutions(
    eval_set: EvalSet, embedder: Embedder
) -> None:
    matcher = Matcher(eval_set.challenges, eval_set.solutions, embedder=embedder)
    air = bundle_of(propose_bundles(CHALLENGES, matcher=matcher, embedder=embedder), "leuven-air")
    assert air.combined_budget == 55_000
    assert air.demand == {"sensor": 35}
    assert [name for _, name in air.municipalities] == ["Stad Leuven", "Stad Mechelen"] or [
        name for _, name in air.municipalities
    ] == ["Stad Mechelen", "Stad Leuven"]
    top = air.solutions[0]
    assert top.doc.id in {"S13", "S14"}  # the air quality sensor network and the sensor kits
    assert top.members_matched == 2


def test_the_validator_catches_a_wrong_field_a_wrong_code_and_a_missing_one() -> None:
    errors = release_errors(
        {
            "ocid": "x",
            "date": "yesterday",
            "tag": ["planning"],
            "initiationType": "tender",
            "parties": [{"id": "a", "roles": ["aankoopcentrale"]}],
            "tender": {
                "id": "t",
                "lotz": [],
                "procurementMethod": "framework",
                "techniques": {"hasFrameworkAgreement": "yes"},
            },
        }
    )
    assert '/: "id" is a required property' in errors
    assert "/tender/lotz: not a field of OCDS 1.1 or its extensions" in errors
    assert any(e.startswith("/tender/procurementMethod:") for e in errors)
    assert any(e.startswith("/tender/techniques/hasFrameworkAgreement:") for e in errors)
    assert any(e.startswith("/date:") for e in errors)
    assert "/parties/0/roles: 'aankoopcentrale' is not in the partyRole codelist" in errors


def test_the_tender_outline_is_an_ocds_release_with_lots(embedder: Embedder) -> None:
    air = bundle_of(propose_bundles(CHALLENGES, embedder=embedder), "leuven-air")
    when = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    release = air.tender_outline(
        ocid_prefix="ocds-abc123",
        procuring_entity=("org:vlaanderen-aankoop", "Aankoopcentrale"),
        date=when,
    )
    assert release_errors(release) == []
    assert release["ocid"] == f"ocds-abc123-{air.id}"
    assert release["date"] == "2026-11-27T12:00:00Z"
    tender = release["tender"]
    lots = tender["lots"]
    assert len(lots) == 2
    assert {lot["value"]["amount"] for lot in lots} == {30_000, 25_000}
    assert tender["value"] == {"amount": 55_000, "currency": "EUR"}
    lot_ids = {lot["id"] for lot in lots}
    assert {item["relatedLot"] for item in tender["items"]} == lot_ids
    assert sum(item["quantity"] for item in tender["items"]) == 35
    assert set(tender["lotGroups"][0]["relatedLots"]) == lot_ids
    roles = {p["id"]: p["roles"] for p in release["parties"]}
    assert roles == {
        "org:vlaanderen-aankoop": ["procuringEntity"],
        "org:leuven": ["buyer"],
        "org:mechelen": ["buyer"],
    }
    assert tender["procuringEntity"]["id"] == "org:vlaanderen-aankoop"
    # a group purchase through a central purchasing body: the first stage of a framework
    # agreement procedure (OCDS guidance "Framework agreements", Techniques extension)
    assert "buyer" not in release  # several buyers: none is "the" buyer
    assert tender["procurementMethod"] == "open"
    assert tender["techniques"]["hasFrameworkAgreement"] is True
    framework = tender["techniques"]["frameworkAgreement"]
    assert framework["method"] == "withoutReopeningCompetition"
    assert framework["value"] == {"amount": 55_000, "currency": "EUR"}
    assert framework["period"] == tender["contractPeriod"] == {"durationInDays": 1461}
    assert release["planning"]["budget"]["amount"] == {"amount": 55_000, "currency": "EUR"}
    assert "35 sensor" in release["planning"]["budget"]["description"]


def test_a_bundle_without_budgets_still_gives_a_valid_framework_release(embedder: Embedder) -> None:
    air = bundle_of(propose_bundles(CHALLENGES, embedder=embedder), "leuven-air")
    no_money = replace(
        air, challenges=tuple(replace(c, budget_max=None, quantity=None) for c in air.challenges)
    )
    release = no_money.tender_outline(
        ocid_prefix="ocds-abc123",
        procuring_entity=("org:vlaanderen-aankoop", "Aankoopcentrale"),
        date=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
        procurement_method="selective",
        framework_days=730,
    )
    assert release_errors(release) == []
    tender = release["tender"]
    assert "value" not in tender and "value" not in tender["techniques"]["frameworkAgreement"]
    assert "amount" not in release["planning"]["budget"]
    assert tender["procurementMethod"] == "selective"
    assert tender["contractPeriod"] == {"durationInDays": 730}
    with pytest.raises(ValueError, match="procurement method"):
        no_money.tender_outline(
            ocid_prefix="ocds-abc123",
            procuring_entity=("org:x", "X"),
            date=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
            procurement_method="framework",
        )


def test_the_release_package_declares_the_extensions_and_validates(embedder: Embedder) -> None:
    air = bundle_of(propose_bundles(CHALLENGES, embedder=embedder), "leuven-air")
    release = air.tender_outline(
        ocid_prefix="ocds-abc123",
        procuring_entity=("org:vlaanderen-aankoop", "Aankoopcentrale"),
        date=dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC),
    )
    package = release_package([release], uri="https://hub.test/p.json", publisher="Aankoopcentrale")
    assert package_errors(package) == []
    assert package["version"] == "1.1" and package["publishedDate"] == release["date"]
    assert [u.split("/")[4] for u in package["extensions"]] == [
        "ocds_lots_extension",
        "ocds_techniques_extension",
    ]
    broken = package | {"version": "1", "releases": []}
    errors = package_errors(broken)
    assert any(e.startswith("/version:") for e in errors)
    assert any(e.startswith("/releases:") for e in errors)
    assert package_errors(package | {"releases": [release | {"tag": "planning"}]}) != []
    with pytest.raises(ValueError):
        release_package([], uri="https://hub.test/p.json", publisher="x")
