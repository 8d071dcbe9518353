"""The hub's taxonomy, built once from the vocabulary files shipped in `hub/vocabularies/`."""

from __future__ import annotations

from functools import cache
from importlib import resources

from smartregion.core.taxonomy import Taxonomy, parse_terms

__all__ = ["VOCABULARIES", "load_taxonomy"]

#: scheme -> vocabulary file (each file notes its source)
VOCABULARIES = {
    "domain": "domains.csv",
    "sdg": "sdgs.csv",
    "building_block": "building_blocks.csv",
    "vloca": "vloca.csv",
    "region": "regions.csv",
}


@cache
def load_taxonomy() -> Taxonomy:
    """Every scheme's terms (read once per process; the files never change at run time)."""
    folder = resources.files("smartregion.hub") / "vocabularies"
    terms = []
    for scheme, name in VOCABULARIES.items():
        terms.extend(parse_terms(scheme, (folder / name).read_text(encoding="utf-8")))
    return Taxonomy.of(terms)
