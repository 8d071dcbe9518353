"""Official identifiers of Belgian organisations: KBO/BCE enterprise numbers and NIS codes."""

from __future__ import annotations

import re

from smartregion.errors import BadRequestData

__all__ = ["normalise_kbo", "normalise_nis"]

_KBO_SEPARATORS = re.compile(r"[\s.\-/]")


def normalise_kbo(text: str) -> str:
    """The 10-digit enterprise number, or BadRequestData when it is malformed or fails its check.

    An enterprise number is 10 digits starting with 0 or 1 (e.g. `0123.456.749`, optionally
    written `BE0123456749`); its last two digits are 97 minus the first eight modulo 97.
    """
    digits = _KBO_SEPARATORS.sub("", text.strip())
    if digits[:2].upper() == "BE":
        digits = digits[2:]
    if len(digits) == 9 and digits.isdigit():
        digits = "0" + digits  # the old 9-digit form: a leading 0 was added in 2005
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit() or digits[0] not in "01":
        raise BadRequestData(f"{text!r} is not a KBO enterprise number (10 digits, 0… or 1…)")
    if 97 - int(digits[:8]) % 97 != int(digits[8:]):
        raise BadRequestData(f"{text!r} fails the KBO check digits (mod 97)")
    return digits


def normalise_nis(text: str) -> str:
    """A 5-digit NIS/INS code (Statbel's code of a municipality or province), or BadRequestData."""
    code = text.strip()
    if len(code) != 5 or not code.isascii() or not code.isdigit() or code[0] == "0":
        raise BadRequestData(f"{text!r} is not a NIS code (5 digits, e.g. 44021 for Ghent)")
    return code
