"""Near-duplicate warning: a new challenge, solution or use case that resembles an existing one.

Shown to the author before saving ("a similar challenge already exists: join it?"), never a
refusal. Two signals, either enough: the TF-IDF cosine of the stemmed words (bounded 0..1, so one
threshold means the same for every text) and, when the embeddings extra is installed, the cosine
of the sentence embeddings — which also catches the same need written in the other language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smartregion.core.textindex import TextIndex
from smartregion.hub.embeddings import Embedder, cosine_similarities, document_text
from smartregion.hub.matching import MatchDoc

__all__ = ["DuplicateWarning", "find_near_duplicates"]

# Chosen on hand cases against the evaluation set's challenges (tests/test_duplicates.py): a Dutch
# rewording of a challenge scored 0.80 on words and 0.90 on meaning, its English translation 0.00
# and 0.78; different needs of the same domain stayed below 0.3 on words and 0.5 on meaning.
TEXT_THRESHOLD = 0.45
SEMANTIC_THRESHOLD = 0.75


@dataclass(frozen=True)
class DuplicateWarning:
    """An existing record the new one resembles, how much, and the words they share."""

    existing: MatchDoc
    similarity: float
    text_similarity: float
    semantic_similarity: float | None
    shared_words: tuple[str, ...]


def find_near_duplicates(
    new: MatchDoc,
    existing: Iterable[MatchDoc],
    *,
    embedder: Embedder | None = None,
    text_threshold: float = TEXT_THRESHOLD,
    semantic_threshold: float = SEMANTIC_THRESHOLD,
    limit: int = 5,
) -> list[DuplicateWarning]:
    """Existing records of the same kind that the new one resembles, most similar first."""
    same_kind = {d.id: d for d in existing if d.kind == new.kind and d.id != new.id}
    if not same_kind:
        return []
    index = TextIndex({i: d.texts for i, d in same_kind.items()}, compounds="none")
    text = index.cosine(new.texts)
    semantic: dict[str, float] = {}
    if embedder is not None:
        order = list(same_kind)
        vectors = embedder.embed([document_text(same_kind[i].texts) for i in order])
        query = embedder.embed([document_text(new.texts)])[0]
        semantic = dict(
            zip(order, (float(s) for s in cosine_similarities(query, vectors)), strict=True)
        )
    query_terms = index.query_terms(new.texts)
    warnings: list[DuplicateWarning] = []
    for doc_id, doc in same_kind.items():
        t = text.get(doc_id, 0.0)
        s = semantic.get(doc_id)
        if t < text_threshold and (s is None or s < semantic_threshold):
            continue
        shared = sorted({w for term in query_terms for w in index.surfaces(doc_id, term)})
        # one figure to sort and show: each signal relative to its threshold, the stronger wins
        score = max(t / max(text_threshold, 1e-9), (s or 0.0) / max(semantic_threshold, 1e-9))
        warnings.append(DuplicateWarning(doc, score, t, s, tuple(shared)))
    warnings.sort(key=lambda w: (-w.similarity, w.existing.id))
    return warnings[:limit]
