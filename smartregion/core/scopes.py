"""The NGSI-LD Scope Query Language (`scopeQ`, ETSI GS CIM 009 §4.19): parser and matcher.

* A scope pattern is `/level/level…`; it matches an entity scope with exactly those levels
  (§4.19 EXAMPLE 1: `/Madrid` is `/Madrid` only, not its children).
* `+` as a level matches any single level (EXAMPLE 3).
* A trailing `/#` matches the scope itself and the whole hierarchy below it (EXAMPLE 2);
  `/#` alone matches any non-empty scope, so an entity without scopes never matches.
* `;` is AND (each pattern may be met by a different scope of the entity), `|` and `,` are OR;
  AND binds tighter, parentheses group and nest. The ABNF only allows `;` inside parentheses,
  but the conformance suite (019_01_06) sends `/A/B;/C/D` bare, so both are accepted.
* A leading `/` is optional on both sides: the entity Scope grammar makes it optional, and
  §4.19 EXAMPLE 5 writes `|CompanyB`.
* Levels are runs of letters, digits, `_` and `-` (the spec allows letters, digits and `_`;
  `-` is tolerated because real place names such as "Sint-Niklaas" have it, and a pattern for
  a level no entity can have simply matches nothing). Anything else is BadRequestData.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from smartregion.errors import BadRequestData

__all__ = [
    "DATASET_SCOPE",
    "ScopeAnd",
    "ScopeExpr",
    "ScopeOr",
    "ScopePattern",
    "parse_scope_q",
    "scope_matches",
    "scopes_within",
]

MAX_DEPTH: Final = 32
NULL_SCOPE: Final = "urn:ngsi-ld:null"  # NGSI-LD Null: a deleted scope, never matched
#: a data set's scope: an NGSI-LD scope (§4.18, as entities' are validated) with its leading `/`
DATASET_SCOPE: Final = re.compile(r"/[^\W\d_]\w*(?:/[^\W\d_]\w*)*")


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """One scope pattern; `+` in `levels` is a one-level wildcard, `subtree` a trailing `/#`."""

    levels: tuple[str, ...]
    subtree: bool = False


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    """Every term is matched by some scope of the entity."""

    terms: tuple[ScopeExpr, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    """At least one term is matched."""

    terms: tuple[ScopeExpr, ...]


ScopeExpr = ScopePattern | ScopeAnd | ScopeOr


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, at: int | None = None) -> BadRequestData:
        where = self.pos if at is None else at
        return BadRequestData(
            f"Invalid scopeQ at position {where}: {message} (in {self.text!r})",
            title="Invalid scope query",
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def skip_ws(self) -> None:
        while self.pos < self.n and self.text[self.pos].isspace():
            self.pos += 1

    def parse(self) -> ScopeExpr:
        self.skip_ws()
        if self.pos >= self.n:
            raise self.fail("the scope query is empty")
        expr = self.or_expr()
        self.skip_ws()
        if self.pos < self.n:
            c = self.peek()
            if c == ")":
                raise self.fail("unbalanced ')'")
            raise self.fail(f"unexpected {c!r}; expected ';', '|', ',' or the end")
        return expr

    def or_expr(self) -> ScopeExpr:
        terms = [self.and_expr()]
        self.skip_ws()
        while self.peek() in ("|", ","):
            self.pos += 1
            terms.append(self.and_expr())
            self.skip_ws()
        return terms[0] if len(terms) == 1 else ScopeOr(tuple(terms))

    def and_expr(self) -> ScopeExpr:
        terms = [self.primary()]
        self.skip_ws()
        while self.peek() == ";":
            self.pos += 1
            terms.append(self.primary())
            self.skip_ws()
        return terms[0] if len(terms) == 1 else ScopeAnd(tuple(terms))

    def primary(self) -> ScopeExpr:
        self.skip_ws()
        if self.peek() == "(":
            opened = self.pos
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")
            expr = self.or_expr()
            self.skip_ws()
            if self.peek() != ")":
                raise self.fail("unbalanced '(' opened here", opened)
            self.pos += 1
            self.depth -= 1
            return expr
        return self.pattern()

    def level(self) -> str:
        start = self.pos
        if self.peek() in ("+", "#"):
            self.pos += 1
            return self.text[start : self.pos]
        while self.pos < self.n and (self.text[self.pos].isalnum() or self.text[self.pos] in "_-"):
            self.pos += 1
        if self.pos == start:
            c = self.peek()
            found = "the end" if c == "" else repr(c)
            raise self.fail(f"expected a scope level but found {found}")
        return self.text[start : self.pos]

    def pattern(self) -> ScopePattern:
        start = self.pos
        if self.peek() == "/":
            self.pos += 1
        levels = [self.level()]
        while self.peek() == "/":
            self.pos += 1
            levels.append(self.level())
        if self.peek() in ("+", "#") or (self.peek().isalnum() and levels[-1] in ("+", "#")):
            raise self.fail("'+' and '#' must be whole scope levels")
        subtree = levels[-1] == "#"
        if subtree:
            levels.pop()
        if "#" in levels:
            raise self.fail("'#' is only allowed as the last level", start)
        return ScopePattern(tuple(levels), subtree)


def parse_scope_q(text: str) -> ScopeExpr:
    """Parse a `scopeQ` (already URL-decoded); raise BadRequestData if malformed."""
    if not isinstance(text, str):
        raise BadRequestData("scopeQ must be a string", title="Invalid scope query")
    return _Parser(text).parse()


def _levels(scope: str) -> tuple[str, ...]:
    return tuple(scope[1:].split("/") if scope.startswith("/") else scope.split("/"))


def _pattern_matches(pattern: ScopePattern, scope: tuple[str, ...]) -> bool:
    size = len(pattern.levels)
    if len(scope) < size or (len(scope) != size and not pattern.subtree):
        return False
    return all(p in ("+", s) for p, s in zip(pattern.levels, scope, strict=False))


def _matches(expr: ScopeExpr, scopes: list[tuple[str, ...]]) -> bool:
    if isinstance(expr, ScopeAnd):
        return all(_matches(t, scopes) for t in expr.terms)
    if isinstance(expr, ScopeOr):
        return any(_matches(t, scopes) for t in expr.terms)
    return any(_pattern_matches(expr, s) for s in scopes)


def scope_matches(expr: ScopeExpr, scopes: Iterable[str] | str | None) -> bool:
    """Whether an entity with these scopes is selected by the scope query (§4.19)."""
    if scopes is None:
        return False
    if isinstance(scopes, str):
        scopes = [scopes]
    levels = [_levels(s) for s in scopes if isinstance(s, str) and s and s != NULL_SCOPE]
    return bool(levels) and _matches(expr, levels)


def scopes_within(scope: str, scopes: Iterable[str] | str | None) -> bool:
    """Whether an entity with these scopes lies within a data set's `scope`: one of them is the
    scope itself or below it — the `scopeQ` `{scope}/#` (§4.19 EXAMPLE 2), which the read
    filter's SQL (`storage.planning.Dialect.scope_within`) implements exactly."""
    return scope_matches(ScopePattern(_levels(scope), subtree=True), scopes)
