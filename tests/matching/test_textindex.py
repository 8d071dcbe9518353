"""The pure text layer: folding, stemming, decompounding, BM25 with per-term scores, fusion."""

from __future__ import annotations

import math

import pytest

from smartregion.core.textindex import (
    Analyzer,
    Decompounder,
    TextIndex,
    char_ngrams,
    fold,
    min_max_normalise,
    reciprocal_rank_fusion,
    weighted_sum_fusion,
    words,
)


def test_fold_and_words_strip_accents_case_and_punctuation() -> None:
    assert fold("Geïsoleerde Ouderen in België") == "geisoleerde ouderen in belgie"
    assert words("Fijnstof- en NO2-sensoren, 's nachts!") == [
        "fijnstof",
        "en",
        "no2",
        "sensoren",
        "s",
        "nachts",
    ]


def test_dutch_and_english_stemming_and_stop_words() -> None:
    analyzer = Analyzer()
    nl = [t.term for t in analyzer.tokens("De fietsen en de fietspaden van de gemeente", "nl")]
    assert "de" not in nl and "en" not in nl
    assert analyzer.stem("woningen", "nl") == analyzer.stem("woning", "nl")
    assert analyzer.stem("straten", "nl") == analyzer.stem("straat", "nl")
    en = [t.term for t in analyzer.tokens("The parking sensors and parked cars", "en")]
    assert en.count(analyzer.stem("parking", "en")) == 2  # parking, parked -> park
    assert "the" not in en
    # a language without a stemmer keeps folded words
    assert analyzer.stem("voitures", "fr") == "voitures"


def test_decompounder_splits_on_known_parts_with_linking_s() -> None:
    d = Decompounder({"lucht", "kwaliteit", "meetnet", "parkeer", "beleid", "school", "straat"})
    assert d.split("luchtkwaliteitsmeetnet") == ("lucht", "kwaliteit", "meetnet")
    assert d.split("parkeerbeleid") == ("parkeer", "beleid")
    assert d.split("schoolstraat") == ("school", "straat")
    # unknown part: not split; a known word alone is no compound
    assert d.split("schoolstraten") == ()
    assert d.split("kwaliteit") == ()


def test_char_ngrams_mark_word_boundaries() -> None:
    assert char_ngrams("fiets") == ["#fie", "fiet", "iets", "ets#"]
    assert char_ngrams("ab") == ["#ab#"]


DOCS = {
    "park": {"en": "Smart parking sensors guide drivers to free parking spaces"},
    "air": {"nl": "Meetnet voor de luchtkwaliteit met goedkope sensoren aan scholen"},
    "policy": {"nl": "Parkeerbeleid en bewonersparkeren in de binnenstad"},
    "trees": {"en": "Tree register with watering plans for young street trees"},
}


def test_bm25_per_term_scores_add_up_to_the_score() -> None:
    index = TextIndex(DOCS, compounds="none")
    hits = index.search({"en": "free parking for drivers near sensors"})
    assert hits[0].doc_id == "park"
    for hit in hits:
        assert hit.terms
        assert math.isclose(sum(hit.terms.values()), hit.score, rel_tol=1e-6)
    assert index.surfaces("park", "park") == {"parking"}


def test_candidates_restrict_the_search() -> None:
    index = TextIndex(DOCS, compounds="none")
    assert [h.doc_id for h in index.search({"nl": "sensoren"}, candidates=["air"])] == ["air"]
    assert index.search({"nl": "sensoren"}, candidates=[]) == []
    assert index.search({"en": "the of"}) == []  # only stop words


def test_compound_handling_finds_what_plain_bm25_misses() -> None:
    query = {"nl": "Een luchtkwaliteitsmeetnet"}
    plain = TextIndex(DOCS, compounds="none").search(query)
    assert "air" not in [h.doc_id for h in plain]
    split = TextIndex(DOCS, compounds="split").search(query)
    assert split[0].doc_id == "air"
    assert {"meetnet"} <= set(split[0].terms)
    grams = TextIndex(DOCS, compounds="ngrams").search(query)
    assert grams[0].doc_id == "air" and grams[0].gram_score > 0


def test_tfidf_cosine_is_one_for_the_same_text_and_zero_for_nothing_shared() -> None:
    index = TextIndex(DOCS, compounds="none")
    same = index.cosine(DOCS["trees"])
    assert same["trees"] == pytest.approx(1.0)
    assert "air" not in same


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert max(fused, key=fused.__getitem__) == "b"


def test_weighted_sum_fusion_normalises_each_ranker() -> None:
    assert min_max_normalise({"a": 5.0, "b": 10.0}) == {"a": 0.0, "b": 1.0}
    assert min_max_normalise({"a": 2.0}) == {"a": 1.0}
    fused = weighted_sum_fusion([{"a": 10.0, "b": 0.0}, {"b": 0.9, "a": 0.1}], [0.3, 0.7])
    assert fused == {"a": pytest.approx(0.3), "b": pytest.approx(0.7)}
    with pytest.raises(ValueError):
        weighted_sum_fusion([{"a": 1.0}], [0.5, 0.5])


@pytest.mark.parametrize("compounds", ["none", "split", "ngrams"])
def test_an_index_without_any_term_answers_nothing(compounds: str) -> None:
    # bm25s divides by the mean document length; an all-empty corpus must not reach it
    for docs in ({}, {"a": {"nl": ""}, "b": {"en": "the of and"}}):
        index = TextIndex(docs, compounds=compounds)  # type: ignore[arg-type]
        assert index.search({"nl": "fietsen"}) == []
        assert index.cosine({"nl": "fietsen"}) == {}
