"""The nested-term engine of the ecosystem hub: schemes of terms with parents, nl/en labels and
retired terms pointing at their replacement (pure: no I/O).

A term id is `<prefix>:<code>` (`domain:mobility.parking`, `sdg:11.2`, `nis:44021`); the prefix
names its scheme. Tagging an object with a term also files it under every ancestor of that term
(`expand`), so a filter on `nis:40000` (East Flanders) finds what is tagged with Ghent, and one on
`sdg:11` what is tagged with target 11.2 — the nested facets of CKAN and Decidim.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from smartregion.errors import BadRequestData

__all__ = ["SCHEMES", "Taxonomy", "Term", "parse_terms"]

#: scheme name -> id prefix (the order is the order of facets)
SCHEMES: dict[str, str] = {
    "domain": "domain",
    "sdg": "sdg",
    "building_block": "block",
    "vloca": "vloca",
    "region": "nis",
}
_PREFIXES = {prefix: scheme for scheme, prefix in SCHEMES.items()}


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a scheme."""

    id: str
    scheme: str
    labels: dict[str, str]
    parent: str | None = None
    #: a retired term's successor (a merged municipality's new one)
    replaced_by: str | None = None

    @property
    def code(self) -> str:
        """The id without its prefix (a NIS code, an SDG number)."""
        return self.id.partition(":")[2]


def scheme_of(term_id: str) -> str | None:
    """The scheme a term id belongs to by its prefix, or None."""
    prefix, sep, code = term_id.partition(":")
    return _PREFIXES.get(prefix) if sep and code else None


def parse_terms(scheme: str, text: str) -> list[Term]:
    """Terms from a vocabulary file: CSV rows `id,parent,nl,en[,replaced_by]`, `#` comments."""
    lines = (line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    terms = []
    for row in csv.reader(lines):
        term_id, parent, nl, en, *rest = (*row, "")
        replaced = rest[0].strip() if rest else ""
        if scheme_of(term_id) != scheme:
            raise ValueError(f"term {term_id!r} is not in scheme {scheme!r}")
        terms.append(Term(term_id, scheme, {"nl": nl, "en": en}, parent or None, replaced or None))
    return terms


@dataclass(slots=True)
class Taxonomy:
    """Every scheme's terms, with the parent/child structure indexed both ways."""

    terms: dict[str, Term] = field(default_factory=dict)
    children: dict[str | None, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, terms: Iterable[Term]) -> Taxonomy:
        """A taxonomy of `terms`; ValueError on a duplicate id, an unknown parent or a cycle."""
        taxonomy = cls()
        for term in terms:
            if term.id in taxonomy.terms:
                raise ValueError(f"term {term.id!r} is defined twice")
            taxonomy.terms[term.id] = term
        for term in taxonomy.terms.values():
            if term.parent is not None and term.parent not in taxonomy.terms:
                raise ValueError(f"term {term.id!r} has an unknown parent {term.parent!r}")
            if term.replaced_by is not None and term.replaced_by not in taxonomy.terms:
                raise ValueError(f"term {term.id!r} is replaced by an unknown {term.replaced_by!r}")
            taxonomy.children.setdefault(term.parent, []).append(term.id)
            taxonomy.ancestors(term.id)  # raises on a cycle
        return taxonomy

    def get(self, term_id: str) -> Term | None:
        """The term, or None."""
        return self.terms.get(term_id)

    def ancestors(self, term_id: str) -> list[str]:
        """The term's parent, grandparent, … (nearest first)."""
        out: list[str] = []
        parent = self.terms[term_id].parent
        while parent is not None:
            if parent in out or parent == term_id:
                raise ValueError(f"term {term_id!r} is its own ancestor")
            out.append(parent)
            parent = self.terms[parent].parent
        return out

    def descendants(self, term_id: str) -> Iterator[str]:
        """Every term below `term_id`, depth first."""
        for child in self.children.get(term_id, ()):
            yield child
            yield from self.descendants(child)

    def roots(self, scheme: str) -> list[Term]:
        """The top terms of a scheme, in file order."""
        return [
            self.terms[t] for t in self.children.get(None, ()) if self.terms[t].scheme == scheme
        ]

    def in_scheme(self, scheme: str) -> list[Term]:
        """Every term of a scheme, in file order."""
        return [t for t in self.terms.values() if t.scheme == scheme]

    def check(self, term_ids: Iterable[str]) -> list[str]:
        """The given tags, unique and in order; BadRequestData naming unknown ones.

        A retired term is accepted as given (an old record stays true to its time); `expand`
        files it under its successor too.
        """
        seen: list[str] = []
        unknown = []
        for term_id in term_ids:
            if term_id not in self.terms:
                unknown.append(term_id)
            elif term_id not in seen:
                seen.append(term_id)
        if unknown:
            raise BadRequestData(f"unknown taxonomy terms: {', '.join(map(repr, unknown[:10]))}")
        return seen

    def expand(self, term_ids: Iterable[str]) -> set[str]:
        """The tags with their ancestors and, for retired terms, their successors' (the index)."""
        out: set[str] = set()
        for term_id in term_ids:
            pending = [term_id]
            while pending:
                current = pending.pop()
                if current in out or current not in self.terms:
                    continue
                out.add(current)
                out.update(self.ancestors(current))
                replaced = self.terms[current].replaced_by
                if replaced is not None:
                    pending.append(replaced)
        return out

    def label(self, term_id: str, lang: str = "nl") -> str:
        """A term's label in `lang` (falling back to the other language, then the id)."""
        term = self.terms.get(term_id)
        if term is None:
            return term_id
        return term.labels.get(lang) or next(iter(term.labels.values()), term_id)
