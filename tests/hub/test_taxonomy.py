"""The taxonomy engine (pure) and the vocabularies the hub ships."""

from __future__ import annotations

import pytest

from smartregion.core.taxonomy import Taxonomy, Term, parse_terms
from smartregion.errors import BadRequestData
from smartregion.hub import load_taxonomy


def test_the_shipped_vocabularies_have_the_real_counts() -> None:
    tax = load_taxonomy()
    assert [t.id for t in tax.roots("domain")] == [
        "domain:mobility",
        "domain:environment",
        "domain:living",
        "domain:people",
        "domain:government",
        "domain:economy",
    ]
    goals = tax.roots("sdg")
    assert [g.id for g in goals] == [f"sdg:{n}" for n in range(1, 18)]
    assert goals[10].labels == {
        "nl": "SDG 11 Duurzame steden en gemeenschappen",
        "en": "SDG 11 Sustainable cities and communities",
    }
    targets = [t for t in tax.in_scheme("sdg") if t.parent is not None]
    assert len(targets) == 169
    assert len(list(tax.descendants("sdg:17"))) == 19
    assert len(tax.roots("building_block")) == 5
    assert tax.roots("vloca")
    provinces = tax.children["nis:02000"]
    assert provinces == ["nis:10000", "nis:20001", "nis:30000", "nis:40000", "nis:70000"]
    municipalities = [t for t in tax.in_scheme("region") if t.parent in provinces]
    current = [t for t in municipalities if t.replaced_by is None]
    assert len(current) == 285  # since the mergers of 1 January 2025
    assert len(municipalities) == 312  # the 300 of 2019-2024 and the 12 new codes
    assert all(len(t.code) == 5 and t.code.isdigit() for t in municipalities)
    assert tax.terms["nis:44021"].labels == {"nl": "Gent", "en": "Ghent"}
    assert tax.terms["nis:44021"].parent == "nis:40000"


def test_expand_files_a_tag_under_its_ancestors_and_a_retired_term_under_its_successor() -> None:
    tax = load_taxonomy()
    assert tax.expand(["nis:44021"]) == {"nis:44021", "nis:40000", "nis:02000"}
    assert tax.expand(["sdg:11.2"]) == {"sdg:11.2", "sdg:11"}
    assert tax.expand(["domain:mobility.parking"]) == {"domain:mobility.parking", "domain:mobility"}
    # Kortessem (Limburg, Tongeren) merged into Hasselt in 2025
    assert tax.expand(["nis:73040"]) == {"nis:73040", "nis:71072", "nis:70000", "nis:02000"}
    assert tax.expand(["no:such"]) == set()


def test_check_keeps_order_drops_duplicates_and_names_unknown_terms() -> None:
    tax = load_taxonomy()
    assert tax.check(["sdg:3", "nis:24062", "sdg:3"]) == ["sdg:3", "nis:24062"]
    with pytest.raises(BadRequestData, match="'sdg:18'"):
        tax.check(["sdg:3", "sdg:18"])


def test_a_broken_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parent"):
        Taxonomy.of([Term("domain:a", "domain", {"nl": "a", "en": "a"}, parent="domain:b")])
    with pytest.raises(ValueError, match="twice"):
        Taxonomy.of([Term("domain:a", "domain", {}), Term("domain:a", "domain", {})])
    with pytest.raises(ValueError, match="own ancestor"):
        Taxonomy.of(
            [
                Term("domain:a", "domain", {}, parent="domain:b"),
                Term("domain:b", "domain", {}, parent="domain:a"),
            ]
        )
    with pytest.raises(ValueError, match="not in scheme"):
        parse_terms("domain", "sdg:1,,Geen armoede,No poverty\n")


def test_labels_fall_back_to_the_other_language() -> None:
    tax = Taxonomy.of([Term("domain:a", "domain", {"nl": "Alleen Nederlands"})])
    assert tax.label("domain:a", "en") == "Alleen Nederlands"
    assert tax.label("domain:zzz") == "domain:zzz"


def test_every_sdg_target_carries_its_official_text_in_dutch_and_english() -> None:
    tax = load_taxonomy()
    targets = [t for t in tax.in_scheme("sdg") if t.parent is not None]
    assert len(targets) == 169
    for target in targets:
        for lang in ("nl", "en"):
            label = target.labels[lang]
            number, _, text = label.partition(" ")
            assert number == target.code, (target.id, lang)
            # a real sentence, not the old "SDG target 1.1" placeholder
            assert len(text.split()) >= 5, (target.id, lang, label)
            assert "subdoel" not in label and "SDG target" not in label
        assert target.labels["nl"] != target.labels["en"], target.id
    assert len({t.labels["en"] for t in targets}) == 169
    assert len({t.labels["nl"] for t in targets}) == 169


def test_sdg_target_texts_spot_checks() -> None:
    labels = load_taxonomy().terms
    assert labels["sdg:11.2"].labels["en"] == (
        "11.2 By 2030, provide access to safe, affordable, accessible and sustainable transport"
        " systems for all, improving road safety, notably by expanding public transport, with"
        " special attention to the needs of those in vulnerable situations, women, children,"
        " persons with disabilities and older persons"
    )
    assert (
        labels["sdg:11.2"]
        .labels["nl"]
        .startswith(
            "11.2 Tegen 2030 toegang voorzien tot veilige, betaalbare, toegankelijke en duurzame"
            " vervoerssystemen voor iedereen"
        )
    )
    assert labels["sdg:3.6"].labels["en"] == (
        "3.6 By 2020, halve the number of global deaths and injuries from road traffic accidents"
    )
    assert labels["sdg:3.6"].labels["nl"] == (
        "3.6 Tegen 2020 het aantal doden en gewonden in het verkeer wereldwijd halveren"
    )
    assert labels["sdg:1.1"].labels["nl"] == (
        "1.1 Tegen 2030 extreme armoede uitroeien voor alle mensen wereldwijd, die met minder dan"
        " $1,25 per dag moeten rondkomen"
    )
    assert (
        labels["sdg:17.19"]
        .labels["en"]
        .startswith(
            "17.19 By 2030, build on existing initiatives to develop measurements of progress on"
            " sustainable development that complement gross domestic product"
        )
    )
    assert labels["sdg:7.2"].labels["en"] == (
        "7.2 By 2030, increase substantially the share of renewable energy in the global energy mix"
    )
