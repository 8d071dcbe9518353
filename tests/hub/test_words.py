"""Search words (core.words)."""

from __future__ import annotations

from smartregion.core.words import MAX_WORD, words


def test_words_are_folded_split_and_distinct() -> None:
    assert words(["Slimme PARKEERsensoren, in Gent!", "ideeën café — Gent"]) == [
        "slimme",
        "parkeersensoren",
        "in",
        "gent",
        "ideeen",
        "cafe",
    ]


def test_single_letters_are_dropped_and_long_words_cut() -> None:
    assert words(["a b cd " + "x" * 100]) == ["cd", "x" * MAX_WORD]


def test_nothing_searchable_gives_no_words() -> None:
    assert words(["", "  -- !! ", "\x00"]) == []
