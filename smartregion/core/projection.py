"""The projection language of `pick` and `omit` (ETSI GS CIM 009 V1.8 §4.21).

An expression is a comma-separated list of entity member names; a member that is a relationship
may carry a nested expression in braces that projects the entities it links to when linked
entities are retrieved (§4.5.23), e.g. ``id,locatedAt{id,name,isInCountry{description}}``.

`parse_pick` and `parse_omit` turn one expression into a `Projection` tree (BadRequestData with
the position of the first error); `Projection.merge` combines a pick with an omit;
`Projection.expand` resolves attribute names to IRIs with the request's @context. Rendering asks
a projection `keeps(member)` and `linked(member)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from smartregion.errors import BadRequestData

__all__ = ["CORE_MEMBERS", "Projection", "parse_omit", "parse_pick"]

#: entity members that are not attributes: never expanded with the @context (§4.21, §5.2.4)
CORE_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"})
_NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
# NGSI-LD 1.8 §4.6.2: characters forbidden in names, plus the language's own delimiters
_FORBIDDEN = frozenset("<>\"'=;()")
_DELIMITERS = frozenset(",{}")
#: nesting deeper than any joinLevel a client could sensibly ask for is refused, not recursed
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Projection:
    """One level of a pick/omit projection: what to keep, and how to project linked entities."""

    pick: frozenset[str] | None = None  # members to keep; None: every member
    omit: frozenset[str] = frozenset()  # members to drop
    links: tuple[tuple[str, Projection], ...] = field(default=())  # member -> linked projection

    def keeps(self, member: str) -> bool:
        """Whether an entity member (a core member name or an attribute IRI) is kept."""
        return (self.pick is None or member in self.pick) and member not in self.omit

    def linked(self, member: str) -> Projection | None:
        """The projection of the entities a relationship member links to (None: no projection)."""
        for name, nested in self.links:
            if name == member:
                return nested
        return None

    def members(self) -> frozenset[str]:
        """Every member name this level mentions."""
        return (self.pick or frozenset()) | self.omit | {name for name, _ in self.links}

    def picks_core(self) -> bool:
        """Whether every entity keeps a member whatever attributes it has (pick names a core member)."""
        return self.pick is None or bool(self.pick & {"id", "type"})

    def expand(self, expand_term: Callable[[str], str]) -> Projection:
        """Resolve attribute names to IRIs at every level; core member names stay as they are."""

        def name(member: str) -> str:
            if member in CORE_MEMBERS:
                return member
            iri = expand_term(member)
            # a core member written as its IRI is still that core member
            core = iri.removeprefix(_NGSI_LD)
            return core if iri.startswith(_NGSI_LD) and core in CORE_MEMBERS else iri

        return Projection(
            pick=None if self.pick is None else frozenset(name(m) for m in self.pick),
            omit=frozenset(name(m) for m in self.omit),
            links=tuple((name(m), p.expand(expand_term)) for m, p in self.links),
        )

    def merge(self, other: Projection) -> Projection:
        """Combine two projections (a pick with an omit); BadRequestData if a member is in both."""
        if self.pick is not None and other.pick is not None:
            pick: frozenset[str] | None = self.pick & other.pick
        else:
            pick = self.pick if other.pick is None else other.pick
        omit = self.omit | other.omit
        # NGSI-LD 1.8 §4.21: one member cannot be both picked and omitted
        both = sorted((pick or frozenset()) & omit)
        if both:
            raise BadRequestData(
                f"entity member(s) {', '.join(both)} cannot be both picked and omitted",
                title="Invalid pick/omit",
            )
        links = dict(self.links)
        for member, nested in other.links:
            links[member] = links[member].merge(nested) if member in links else nested
        return Projection(pick=pick, omit=omit, links=tuple(sorted(links.items())))


def parse_pick(text: str) -> Projection:
    """Parse a `pick` expression: members to keep, braces project linked entities (§4.21)."""
    return _build(_parse(text, "pick"), picking=True)


def parse_omit(text: str) -> Projection:
    """Parse an `omit` expression; a member with braces is kept and its linked entities projected."""
    return _build(_parse(text, "omit"), picking=False)


# --------------------------------------------------------------------------------------------
# parsing: an explicit stack rather than recursion, so hostile nesting costs a 400, not a crash

_Terms = list[tuple[str, "_Terms | None"]]


def _error(param: str, text: str, pos: int, why: str) -> BadRequestData:
    return BadRequestData(
        f"invalid {param} expression {text!r} at position {pos}: {why}",
        title=f"Invalid {param} expression",
    )


def _parse(text: str, param: str) -> _Terms:
    """Syntax: expr = term *("," term); term = name ["{" expr "}"]."""
    root: _Terms = []
    stack: list[_Terms] = [root]
    pos, end = 0, len(text)
    expect_term = True  # at the start, after "," or after "{"
    while True:
        if expect_term:
            start = pos
            while pos < end and text[pos] not in _DELIMITERS:
                char = text[pos]
                if char in _FORBIDDEN or char.isspace() or ord(char) < 0x20:
                    raise _error(param, text, pos, f"character {char!r} is not allowed in a name")
                pos += 1
            if pos == start:
                if pos == end:
                    what = "the expression is empty" if not text else "a name is missing at the end"
                else:
                    what = f"expected a name, found {text[pos]!r}"
                raise _error(param, text, pos, what)
            stack[-1].append((text[start:pos], None))
            expect_term = False
            continue
        if pos == end:
            if len(stack) > 1:
                raise _error(param, text, pos, "a '{' is not closed")
            return root
        char = text[pos]
        if char == ",":
            expect_term = True
        elif char == "{":
            name, nested = stack[-1][-1]
            if nested is not None:
                raise _error(param, text, pos, f"{name!r} already has a nested projection")
            if len(stack) > MAX_DEPTH:
                raise _error(param, text, pos, f"nesting deeper than {MAX_DEPTH} levels")
            inner: _Terms = []
            stack[-1][-1] = (name, inner)
            stack.append(inner)
            expect_term = True
        elif char == "}":
            if len(stack) == 1:
                raise _error(param, text, pos, "'}' without a matching '{'")
            stack.pop()
        else:  # a name right after "}"
            raise _error(param, text, pos, f"expected ',' or '}}' after '}}', found {char!r}")
        pos += 1


def _build(terms: _Terms, *, picking: bool) -> Projection:
    plain: set[str] = set()
    links: dict[str, Projection] = {}
    for name, nested in terms:
        if nested is None:
            plain.add(name)
            continue
        if name in links:
            raise BadRequestData(
                f"{name!r} has two nested projections; write them as one",
                title="Invalid pick/omit expression",
            )
        links[name] = _build(nested, picking=picking)
    ordered = tuple(sorted(links.items()))
    if picking:
        # a member with braces is picked too: its linked entities are what the braces project
        return Projection(pick=frozenset(plain | set(links)), links=ordered)
    # NGSI-LD 1.8 §4.21: omit "rel{...}" keeps rel and omits inside the linked entities
    return Projection(omit=frozenset(plain), links=ordered)
