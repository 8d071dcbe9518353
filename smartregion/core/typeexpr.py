"""The NGSI-LD entity type selection language (NGSI-LD 1.8 §4.17).

`A,B` and `A|B` select entities of type A or B, `A;B` entities that have both types, and
parentheses group: `(Building;Parking),Vehicle`. `;` binds tighter than `,`/`|`, as conjunction
binds tighter than disjunction in the query language (§4.9). An expression is turned into
disjunctive normal form: a list of conjuncts (sets of expanded type IRIs), of which an entity
must satisfy at least one by having every type in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from smartregion.errors import BadRequestData

__all__ = [
    "TypeAnd",
    "TypeExpr",
    "TypeName",
    "TypeOr",
    "parse_type_ast",
    "parse_type_expr",
    "to_dnf",
    "type_matches",
]

_OPERATORS = frozenset(",|;()")
# Characters that can never appear in an entity type name or IRI here (NGSI-LD 1.8 §4.6.4
# forbids them in names; `;(),|` are this language's operators).
_FORBIDDEN = frozenset("<>\"'=")
_MAX_NESTING = 32
_MAX_CONJUNCTS = 1024


@dataclass(frozen=True, slots=True)
class TypeName:
    """One entity type, already expanded."""

    name: str


@dataclass(frozen=True, slots=True)
class TypeAnd:
    """All operands must hold (`;`)."""

    operands: tuple[TypeExpr, ...]


@dataclass(frozen=True, slots=True)
class TypeOr:
    """At least one operand must hold (`,` or `|`)."""

    operands: tuple[TypeExpr, ...]


TypeExpr = TypeName | TypeAnd | TypeOr


def parse_type_expr(text: str, expand: Callable[[str], str] = lambda s: s) -> list[frozenset[str]]:
    """Parse a type selection into disjunctive normal form (a list of type-IRI conjuncts)."""
    return to_dnf(parse_type_ast(text, expand))


def parse_type_ast(text: str, expand: Callable[[str], str] = lambda s: s) -> TypeExpr:
    """Parse a type selection into its syntax tree, expanding every type name."""
    if not isinstance(text, str):
        raise BadRequestData(
            f"invalid type selection: expected a string, got {type(text).__name__}"
        )
    parser = _Parser(text, expand)
    return parser.parse()


def to_dnf(expr: TypeExpr) -> list[frozenset[str]]:
    """Disjunctive normal form of `expr`, without duplicate or subsumed conjuncts."""
    conjuncts = _dnf(expr)
    # Absorption: `A,(A;B)` is just `A`; keeps the SQL the storage layer builds small.
    unique = list(dict.fromkeys(conjuncts))
    return [c for c in unique if not any(other < c for other in unique)]


def type_matches(dnf: list[frozenset[str]], entity_types: Sequence[str]) -> bool:
    """Whether an entity with `entity_types` satisfies the type selection `dnf`."""
    have = frozenset(entity_types)
    return any(conjunct <= have for conjunct in dnf)


def _dnf(expr: TypeExpr) -> list[frozenset[str]]:
    if isinstance(expr, TypeName):
        return [frozenset((expr.name,))]
    if isinstance(expr, TypeOr):
        return [c for operand in expr.operands for c in _dnf(operand)]
    result: list[frozenset[str]] = [frozenset()]
    for operand in expr.operands:
        result = list(dict.fromkeys(a | b for a in result for b in _dnf(operand)))
        if len(result) > _MAX_CONJUNCTS:
            raise BadRequestData(
                f"invalid type selection: more than {_MAX_CONJUNCTS} alternatives once expanded"
            )
    return result


class _Parser:
    """Recursive descent over: or = and *(("," / "|") and); and = atom *(";" atom);
    atom = name / "(" or ")"."""

    def __init__(self, text: str, expand: Callable[[str], str]) -> None:
        self.text = text
        self.expand = expand
        self.tokens = list(_tokens(text))
        self.pos = 0
        self.depth = 0

    def parse(self) -> TypeExpr:
        if not self.tokens:
            raise BadRequestData("invalid type selection: empty")
        expr = self._or()
        if self.pos < len(self.tokens):
            token, at = self.tokens[self.pos]
            raise self._error(f"unexpected {token!r} at position {at}")
        return expr

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _or(self) -> TypeExpr:
        operands = [self._and()]
        while self._peek() in (",", "|"):
            self.pos += 1
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else TypeOr(tuple(operands))

    def _and(self) -> TypeExpr:
        operands = [self._atom()]
        while self._peek() == ";":
            self.pos += 1
            operands.append(self._atom())
        return operands[0] if len(operands) == 1 else TypeAnd(tuple(operands))

    def _atom(self) -> TypeExpr:
        if self.pos >= len(self.tokens):
            raise self._error("a type name is missing at the end")
        token, at = self.tokens[self.pos]
        if token == "(":
            self.depth += 1
            if self.depth > _MAX_NESTING:
                raise self._error(f"parentheses nested deeper than {_MAX_NESTING}")
            self.pos += 1
            expr = self._or()
            if self._peek() != ")":
                raise self._error(f"unbalanced parenthesis opened at position {at}")
            self.pos += 1
            self.depth -= 1
            return expr
        if token in _OPERATORS:
            raise self._error(f"a type name is missing before {token!r} at position {at}")
        self.pos += 1
        return TypeName(self.expand(token))

    def _error(self, why: str) -> BadRequestData:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return BadRequestData(f"invalid type selection {shown!r}: {why}")


def _tokens(text: str) -> Iterator[tuple[str, int]]:
    """Operators and names with their offsets; whitespace separates but is otherwise ignored."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _OPERATORS:
            yield c, i
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _OPERATORS:
                if text[i] in _FORBIDDEN or not text[i].isprintable():
                    raise BadRequestData(
                        f"invalid type selection: character {text[i]!r} at position {i} "
                        "is not allowed in a type name"
                    )
                i += 1
            yield text[start:i], start
