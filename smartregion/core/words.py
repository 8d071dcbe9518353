"""Search words of a text, for the hub's full-text filter (pure).

Words are case-folded, accents removed (`café` → `cafe`, Dutch `ë` in `ideeën` → `e`), split on
anything that is not a letter or digit, and kept when at least two characters long. A query word
matches every stored word it is a prefix of, which also finds Dutch compounds by their first part
(`parkeer` finds `parkeersensoren`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["MAX_WORD", "words"]

#: longer words are cut (a URL or a hash is not what anyone searches for whole)
MAX_WORD = 40
_SPLIT = re.compile(r"[^0-9a-z]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(texts: Iterable[str]) -> list[str]:
    """The distinct search words of `texts`, in first-seen order."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _SPLIT.split(_fold(text)):
            if len(word) >= 2:
                seen.setdefault(word[:MAX_WORD], None)
    return list(seen)
