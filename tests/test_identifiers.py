"""KBO enterprise numbers (mod-97 check) and NIS codes."""

from __future__ import annotations

import pytest

from smartregion.errors import BadRequestData
from smartregion.governance.identifiers import normalise_kbo, normalise_nis


def kbo_with_check(first8: str) -> str:
    return first8 + f"{97 - int(first8) % 97:02d}"


@pytest.mark.parametrize(
    "text", ["0207451227", "0207.451.227", "BE 0207.451.227", "be0207451227", "207451227"]
)
def test_valid_kbo_numbers_normalise_to_ten_digits(text: str) -> None:
    assert normalise_kbo(text) == "0207451227"


def test_the_check_digits_are_97_minus_the_remainder() -> None:
    for first8 in ["02074512", "04120617", "10000000", "08888888"]:
        number = kbo_with_check(first8)
        assert normalise_kbo(number) == number


@pytest.mark.parametrize(
    "text",
    [
        "0207451228",
        "0207.451.226",
        "2207451227",
        "02074512",
        "abc",
        "",
        "０２０７４５１２２７",
        "02074512271",
    ],
)
def test_invalid_kbo_numbers_are_refused(text: str) -> None:
    with pytest.raises(BadRequestData):
        normalise_kbo(text)


@pytest.mark.parametrize("text", ["44021", "11002", "21004", " 24062 "])
def test_valid_nis_codes(text: str) -> None:
    assert normalise_nis(text) == text.strip()


@pytest.mark.parametrize("text", ["4402", "440210", "04021", "4402a", "４４０２１"])
def test_invalid_nis_codes(text: str) -> None:
    with pytest.raises(BadRequestData):
        normalise_nis(text)
