"""The NGSI-LD Query Language (`q`, ETSI GS CIM 009 §4.9): parser, evaluator and AST.

`parse_q(text, expand)` turns an already URL-decoded `q` string into an immutable AST;
`matches(expr, doc)` evaluates it on an internal entity document (docs/architecture.md).
Malformed queries raise `BadRequestData` (§5.7.2.4: "the query … not syntactically valid";
the conformance suite's 5722_01_05 / 019_28_06 expect 400 BadRequestData).

Grammar (§4.9 ABNF, with the extensions noted):

* `;` is AND, `|` is OR, AND binds tighter; parentheses nest to any depth (EXAMPLE 6 nests
  them, although the ABNF's `QueryTermAssoc` would not). Blanks between tokens are ignored.
* Attribute paths: `a`, `a.b.c` (sub-attributes), `a[b.c]` (members of the JSON value),
  `a.observedAt` (a meta member, see `META_MEMBERS`), `a{b}` / `a{T1,T2:b{c}}` (Linked Entity
  sub-queries, EXAMPLE 13/14). Names may be terms, compact IRIs or absolute IRIs; every
  attribute, sub-attribute and type-hint name goes through `expand`; JSON member keys do not.
  In an absolute IRI, dots after its last `/` or `#` still separate sub-attributes (which
  are then terms again, expanded as usual). Inside `{…}`, `X:name` is a type hint unless `X`
  expands to an IRI ending in `/`, `#` or `:` (a JSON-LD prefix), then it is a compact IRI.
* `!path` (extension, as Stellio/Orion-LD and the suite's 5744_01_08 use it) is "the target
  element does not exist". It is represented as `Comparison(path, op="!exists", value=None)`
  rather than a `Not` node, so `QExpr` stays `Comparison | And | Or`.
* `a` alone is an existence test: `Comparison(path, op=None, value=None)`.
* `createdAt`, `modifiedAt`, `deletedAt` as the first name address the entity's own system
  members (`AttrPath.attr` is then their NGSI-LD core IRI, see `ENTITY_MEMBERS`; `attr_names`
  leaves them out, so a q naming only them names no attribute, as §5.7.2.4 needs).

Values (`QValue`):

* quoted strings -> `str` (JSON string escapes); `true`/`false` -> `bool`;
  JSON numbers -> `int` / `float`;
* unquoted ISO 8601 `DateTime` -> aware UTC `datetime`, `Date` -> `date`, `Time` -> naive
  `time` (a trailing `Z` is dropped) (§4.6.3);
* any other unquoted token (URIs, and bare words such as `commercial`, which the suite's
  019_29_13 expects to be accepted) -> `str`;
* `lo..hi` -> `Range` (only with `==`/`!=`, bounds of one type; matched between min and max,
  both included); `v1,v2,…` -> `ValueList` (only with `==`/`!=`);
* `~=` / `!~=` take a regular expression, quoted (only `\\"` is unescaped) or bare; it is a
  Python `re` pattern applied with `re.search` (unanchored: the suite's 019_28_05 expects
  `name!~="^Eiffel"` to keep "Pisa Tower" only). `Comparison.value` holds the pattern text.

Evaluation (§4.9 semantics): the target value is, by attribute type, `value` (Property,
GeoProperty), `object` (Relationship), `objectList` (ListRelationship), `languageMap` values
(LanguageProperty; `a[en]` picks one language, `a[*]` any), `vocab` (VocabProperty, already
expanded, so compare with expanded values: see `expand_values`), `valueList` (ListProperty),
`json` (JsonProperty). An entity matches when any instance (any datasetId) matches. Array
targets: `==` matches if any element matches, `!=` if none does, ordering and `~=` if any
element satisfies it, `!~=` if there are string elements and none matches. Values of different
data types are never equal (so `!=` holds) and never ordered. Quoted strings that are both ISO
date-times, and date-time query values against strings or `{"@type": "DateTime", "@value": …}`,
compare chronologically. Relationships only take `==`/`!=` (any other operator: no match).
Strings compare by code point (UCA is only a "should"). Linked Entity sub-queries need a
`resolve(entity_id) -> doc | None` callable; without one they never match.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Final

from smartregion.errors import BadRequestData

__all__ = [
    "ENTITY_MEMBERS",
    "META_MEMBERS",
    "NGSI_LD",
    "And",
    "AttrPath",
    "Comparison",
    "LinkedPath",
    "Or",
    "QExpr",
    "QValue",
    "Range",
    "ValueList",
    "attr_names",
    "expand_values",
    "linked_depth",
    "matches",
    "parse_q",
    "references",
]

NGSI_LD: Final = "https://uri.etsi.org/ngsi-ld/"
#: members of an attribute instance a dotted path may end in (`temperature.observedAt`)
META_MEMBERS: Final = frozenset(
    {"observedAt", "createdAt", "modifiedAt", "deletedAt", "unitCode", "datasetId", "lang"}
)
#: entity-level system members a path may start with, as their NGSI-LD core IRIs
ENTITY_MEMBERS: Final = frozenset(NGSI_LD + n for n in ("createdAt", "modifiedAt", "deletedAt"))

MAX_DEPTH: Final = 32  # parentheses / linked-entity nesting; deeper is refused, not recursed
MAX_PATTERN: Final = 1000  # characters of a regular expression

QValue = str | int | float | bool | datetime | date | time


@dataclass(frozen=True, slots=True)
class LinkedPath:
    """`rel{T1,T2:path}`: `path` evaluated on the entities the Relationship targets."""

    types: tuple[str, ...]  # expanded entity-type hints; () = any type
    path: AttrPath


@dataclass(frozen=True, slots=True)
class AttrPath:
    """An attribute path: top-level attribute, sub-attributes, JSON members or meta member."""

    attr: str  # expanded attribute IRI (top level), or an `ENTITY_MEMBERS` IRI
    sub: tuple[str, ...] = ()  # sub-attribute chain for `a.b.c` (expanded IRIs)
    json_path: tuple[
        str, ...
    ] = ()  # `a[b.c]` members inside the value (raw keys; `*` = any language)
    meta: str | None = None  # `a.observedAt`: a `META_MEMBERS` name
    linked: LinkedPath | None = None  # `a{…}`: the path continues on the linked entity


@dataclass(frozen=True, slots=True)
class Range:
    """`lo..hi`, matched between min(lo, hi) and max(lo, hi), both included."""

    lo: QValue
    hi: QValue


@dataclass(frozen=True, slots=True)
class ValueList:
    """`v1,v2,…`: equal to any of the items."""

    items: tuple[QValue, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A Query Term: `path op value`, existence (`op=None`) or absence (`op="!exists"`)."""

    path: AttrPath
    op: str | None  # == != > >= < <= ~= !~= | None (exists) | "!exists"
    value: QValue | Range | ValueList | None


@dataclass(frozen=True, slots=True)
class And:
    """All terms hold."""

    terms: tuple[QExpr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one term holds."""

    terms: tuple[QExpr, ...]


QExpr = Comparison | And | Or

# ---------------------------------------------------------------------------------- lexing

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z?", re.ASCII)
_SCHEME_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_TYPE_HINT = re.compile(r"([^\W\d][\w-]*(?:,[^\W\d][\w-]*)*):([^\W\d][\w-]*)")
_OPERATORS = ("==", "!~=", "!=", "~=", ">=", "<=", ">", "<")
_ORDERING = frozenset({">", ">=", "<", "<="})
_IRI_STOP = frozenset('=!<>~[]{}();|,"')
_BARE_FORBIDDEN = frozenset("<>{}\\^`")
_SYSTEM_NAMES = {"createdAt", "modifiedAt", "deletedAt"}


def _uri_like(token: str) -> bool:
    # `urn:a..b` is one URI, not a range: ranges have numeric/temporal bounds
    return token[:1].isalpha() and ":" in token


def _fraction(text: str | None) -> int:
    return int((text or "0")[:6].ljust(6, "0"))


def _parse_datetime(text: str) -> datetime | None:
    # ISO 8601 date-time as an aware UTC datetime, or None; naive values are UTC (§4.6.3)
    m = _DATETIME.fullmatch(text)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _fraction(frac))
        if tz is None or tz in "Zz":
            return value.replace(tzinfo=UTC)
        sign = -1 if tz[0] == "-" else 1
        hours, minutes = int(tz[1:3]), int(tz[-2:])
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return value.replace(tzinfo=offset).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _parse_date(text: str) -> date | None:
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _parse_time(text: str) -> time | None:
    m = _TIME.fullmatch(text)
    if m is None:
        return None
    try:
        return time(int(m[1]), int(m[2]), int(m[3]), _fraction(m[4]))
    except ValueError:
        return None


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    # re warns (FutureWarning) about some set syntax; that is not the client's error.
    with warnings.catch_warnings(action="ignore"):
        return re.compile(pattern)


# --------------------------------------------------------------------------------- parsing


class _Parser:
    """Recursive-descent parser over one q string."""

    def __init__(self, text: str, expand: Callable[[str], str]) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.expand = expand
        self.depth = 0

    # -- helpers
    def fail(self, message: str, at: int | None = None) -> BadRequestData:
        where = self.pos if at is None else at
        return BadRequestData(
            f"Invalid q at position {where}: {message} (in {self.text!r})",
            title="Invalid NGSI-LD query",
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def skip_ws(self) -> None:
        while self.pos < self.n and self.text[self.pos].isspace():
            self.pos += 1

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")

    # -- expressions
    def parse(self) -> QExpr:
        self.skip_ws()
        if self.pos >= self.n:
            raise self.fail("the query is empty")
        expr = self.or_expr()
        self.skip_ws()
        if self.pos < self.n:
            c = self.peek()
            if c == ")":
                raise self.fail("unbalanced ')'")
            raise self.fail(f"unexpected {c!r}; expected ';', '|' or the end of the query")
        return expr

    def or_expr(self) -> QExpr:
        terms = [self.and_expr()]
        self.skip_ws()
        while self.peek() == "|":
            self.pos += 1
            terms.append(self.and_expr())
            self.skip_ws()
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> QExpr:
        terms = [self.primary()]
        self.skip_ws()
        while self.peek() == ";":
            self.pos += 1
            terms.append(self.primary())
            self.skip_ws()
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def primary(self) -> QExpr:
        self.skip_ws()
        c = self.peek()
        if c == "(":
            opened = self.pos
            self.pos += 1
            self.enter()
            expr = self.or_expr()
            self.skip_ws()
            if self.peek() != ")":
                raise self.fail("unbalanced '(' opened here", opened)
            self.pos += 1
            self.depth -= 1
            return expr
        if c in ("", ";", "|", ")"):
            what = "the end of the query" if c == "" else repr(c)
            raise self.fail(f"expected a query term but found {what}")
        return self.term()

    def term(self) -> Comparison:
        if self.peek() == "!":
            self.pos += 1
            if self.peek() in ("=", "~"):
                raise self.fail("an operator needs an attribute path before it", self.pos - 1)
            path = self.path()
            self.skip_ws()
            if self.peek() and self.peek() not in ";|)":
                raise self.fail("'!attribute' (absence test) takes no operator or value")
            return Comparison(path, "!exists", None)
        path = self.path()
        self.skip_ws()
        op = self.operator()
        if op is None:
            return Comparison(path, None, None)
        self.skip_ws()
        if op in ("~=", "!~="):
            return Comparison(path, op, self.regex())
        if op in _ORDERING:
            return Comparison(path, op, self.ordering_value(op))
        return Comparison(path, op, self.equality_value())

    def operator(self) -> str | None:
        rest = self.text[self.pos : self.pos + 3]
        for op in _OPERATORS:
            if rest.startswith(op):
                self.pos += len(op)
                return op
        c = self.peek()
        if c in ("", ";", "|", ")"):
            return None
        if c == "=":
            raise self.fail("unknown operator '='; use '=='")
        if c in "!~":
            raise self.fail(f"unknown operator starting with {c!r}")
        raise self.fail(f"unexpected {c!r} after the attribute path; expected an operator")

    # -- attribute paths
    def name_run(self) -> list[str]:
        """One name (term or compact IRI), or an absolute IRI plus the dotted names after it."""
        start = self.pos
        if _SCHEME_IRI.match(self.text, self.pos):
            while self.pos < self.n:
                c = self.text[self.pos]
                if c in _IRI_STOP or c.isspace():
                    break
                self.pos += 1
            run = self.text[start : self.pos]
            cut = max(run.rfind("/"), run.rfind("#")) + 1
            tail = run[cut:].split(".")
            if any(not part for part in tail):
                raise self.fail("an IRI attribute name must end in a name", start)
            return [run[:cut] + tail[0], *tail[1:]]
        c = self.peek()
        if not (c.isalpha() or c == "_"):
            found = "the end of the query" if c == "" else repr(c)
            raise self.fail(f"expected an attribute name but found {found}")
        while self.pos < self.n and (self.text[self.pos].isalnum() or self.text[self.pos] in "_:-"):
            self.pos += 1
        return [self.text[start : self.pos]]

    def dotted(self) -> list[str]:
        names = self.name_run()
        while self.peek() == ".":
            self.pos += 1
            names.extend(self.name_run())
        return names

    def path(self) -> AttrPath:
        start = self.pos
        names = self.dotted()
        if self.peek() == "{":
            if len(names) != 1:
                raise self.fail("a linked-entity path '{…}' follows a single attribute name")
            return AttrPath(self.expand(names[0]), linked=self.linked())
        json_path: tuple[str, ...] = ()
        if self.peek() == "[":
            json_path = self.member_path()
        head = names[0]
        top = self.expand(head)
        system = next((n for n in _SYSTEM_NAMES if head == n or top == NGSI_LD + n), None)
        if system is not None:
            if len(names) > 1 or json_path:
                raise self.fail(f"the system member {system!r} has no sub-paths", start)
            return AttrPath(NGSI_LD + system)
        meta: str | None = None
        subs = names[1:]
        if subs:
            last = subs[-1]
            expanded_last = self.expand(last)
            meta = next(
                (m for m in META_MEMBERS if last == m or expanded_last == NGSI_LD + m), None
            )
            if meta is not None:
                subs = subs[:-1]
                if json_path:
                    raise self.fail(f"the meta member {meta!r} takes no '[…]' path", start)
        return AttrPath(top, tuple(self.expand(s) for s in subs), json_path, meta)

    def member_path(self) -> tuple[str, ...]:
        opened = self.pos
        self.pos += 1
        end = self.text.find("]", self.pos)
        if end < 0:
            raise self.fail("unbalanced '['", opened)
        inner = self.text[self.pos : end]
        self.pos = end + 1
        keys = tuple(inner.split("."))
        if any(not k or "[" in k or k.isspace() for k in keys):
            raise self.fail(f"invalid member path [{inner}]", opened)
        if "*" in keys and keys != ("*",):
            raise self.fail("'*' only stands alone, as in 'attr[*]' (any language)", opened)
        if self.peek() in (".", "[", "{"):
            raise self.fail("nothing may follow a '[…]' member path but an operator")
        return keys

    def linked(self) -> LinkedPath:
        opened = self.pos
        self.pos += 1
        self.enter()
        types: tuple[str, ...] = ()
        m = _TYPE_HINT.match(self.text, self.pos)
        if m is not None:
            hint = m[1]
            # `Device:humidity` is a type hint unless `Device` is a prefix: a term whose IRI
            # ends in a gen-delim (JSON-LD 1.1 §4.4), as `schema` -> `https://schema.org/`
            if "," in hint or not self.expand(hint).endswith(("/", "#", ":")):
                types = tuple(self.expand(t) for t in hint.split(","))
                self.pos = m.end(1) + 1
        inner = self.path()
        if self.peek() != "}":
            raise self.fail("unbalanced '{' opened here", opened)
        self.pos += 1
        self.depth -= 1
        return LinkedPath(types, inner)

    # -- values
    def quoted(self) -> str:
        start = self.pos
        i = self.pos + 1
        while i < self.n:
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                break
            i += 1
        if i >= self.n:
            raise self.fail("unterminated string", start)
        raw = self.text[start : i + 1]
        self.pos = i + 1
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise self.fail(f"invalid string {raw} ({exc.args[0]})", start) from None
        if not isinstance(value, str):  # pragma: no cover - json.loads of "…" is a str
            raise self.fail("invalid string", start)
        return value

    def bare(self) -> str:
        start = self.pos
        depth = 0
        while self.pos < self.n:
            c = self.text[self.pos]
            if c in ';|,"' or c.isspace():
                break
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            self.pos += 1
        return self.text[start : self.pos]

    def classify(self, token: str, at: int, *, comparable: bool) -> QValue:
        """The value of an unquoted token (never a range); `comparable` refuses bools and words."""
        if token in ("true", "false"):
            if comparable:
                raise self.fail(f"{token!r} can be compared only with '==' or '!='", at)
            return token == "true"
        if _NUMBER.fullmatch(token):
            try:
                if any(c in token for c in ".eE"):
                    number = float(token)
                    if number in (float("inf"), float("-inf")):
                        raise ValueError(token)
                    return number
                return int(token)
            except ValueError:
                raise self.fail(f"number {token!r} out of range", at) from None
        if "T" in token and _DATETIME.fullmatch(token):
            dt = _parse_datetime(token)
            if dt is None:
                raise self.fail(f"invalid DateTime {token!r}", at)
            return dt
        if _DATE.fullmatch(token):
            d = _parse_date(token)
            if d is None:
                raise self.fail(f"invalid Date {token!r}", at)
            return d
        if _TIME.fullmatch(token):
            t = _parse_time(token)
            if t is None:
                raise self.fail(f"invalid Time {token!r}", at)
            return t
        if not token:
            raise self.fail("expected a value", at)
        if not (token[0].isalpha() or token[0] == "_") or any(c in _BARE_FORBIDDEN for c in token):
            raise self.fail(f"invalid value {token!r}", at)
        if comparable:
            raise self.fail(
                f"expected a number, a quoted string, a DateTime, a Date or a Time, not {token!r}",
                at,
            )
        return token  # a URI or bare word

    def single(self, *, comparable: bool) -> QValue:
        """One value: a quoted string or an unquoted token, not a range."""
        self.skip_ws()
        if self.peek() == '"':
            return self.quoted()
        at = self.pos
        token = self.bare()
        if ".." in token and not _uri_like(token):
            raise self.fail(f"a range is not allowed here: {token!r}", at)
        return self.classify(token, at, comparable=comparable)

    def range_or_single(self) -> QValue | Range:
        self.skip_ws()
        at = self.pos
        if self.peek() == '"':
            lo: QValue = self.quoted()
            if not self.text.startswith("..", self.pos):
                return lo
            self.pos += 2
            return self.checked_range(lo, self.single(comparable=True), at)
        token = self.bare()
        if ".." not in token or _uri_like(token):
            return self.classify(token, at, comparable=False)
        left, _, right = token.partition("..")
        if ".." in right:
            raise self.fail(f"range {token!r} has more than two bounds", at)
        if not left:
            raise self.fail(f"range {token!r} has no lower bound", at)
        lo = self.classify(left, at, comparable=True)
        if right:
            hi = self.classify(right, at + len(left) + 2, comparable=True)
        elif self.peek() == '"':
            hi = self.quoted()
        else:
            raise self.fail(f"range {token!r} has no upper bound", at)
        return self.checked_range(lo, hi, at)

    def checked_range(self, lo: QValue, hi: QValue, at: int) -> Range:
        if _kind(lo) != _kind(hi):
            raise self.fail("range bounds must be of the same type", at)
        return Range(lo, hi)

    def equality_value(self) -> QValue | Range | ValueList:
        first = self.range_or_single()
        self.skip_ws()
        if self.peek() != ",":
            return first
        if isinstance(first, Range):
            raise self.fail("a range cannot be part of a value list")
        items = [first]
        while self.peek() == ",":
            self.pos += 1
            items.append(self.single(comparable=False))
            self.skip_ws()
        return ValueList(tuple(items))

    def ordering_value(self, op: str) -> QValue:
        at = self.pos
        if self.peek() == '"':
            value: QValue = self.quoted()
        else:
            token = self.bare()
            if ".." in token:
                raise self.fail(f"a range is only allowed with '==' and '!=', not {op!r}", at)
            value = self.classify(token, at, comparable=True)
        self.skip_ws()
        if self.text.startswith("..", self.pos) or self.peek() == ",":
            raise self.fail(
                f"ranges and value lists are only allowed with '==' and '!=', not {op!r}"
            )
        return value

    def regex(self) -> str:
        at = self.pos
        if self.peek() == '"':
            end = self.pos + 1
            while end < self.n and self.text[end] != '"':
                end += 2 if self.text[end] == "\\" else 1
            if end >= self.n:
                raise self.fail("unterminated pattern", at)
            pattern = self.text[self.pos + 1 : end].replace('\\"', '"')
            self.pos = end + 1
        else:
            depth = 0
            while self.pos < self.n:
                c = self.text[self.pos]
                if c == "\\":
                    self.pos += 2
                    continue
                if c in ";|" and depth == 0:
                    break
                if c == "(":
                    depth += 1
                elif c == ")":
                    if depth == 0:
                        break
                    depth -= 1
                self.pos += 1
            self.pos = min(self.pos, self.n)
            pattern = self.text[at : self.pos]
        if not pattern:
            raise self.fail("empty pattern", at)
        if len(pattern) > MAX_PATTERN:
            raise self.fail(f"pattern longer than {MAX_PATTERN} characters", at)
        try:
            _compile(pattern)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise self.fail(f"invalid regular expression {pattern!r}: {exc}", at) from None
        return pattern


def parse_q(text: str, expand: Callable[[str], str] = lambda s: s) -> QExpr:
    """Parse an NGSI-LD `q` (already URL-decoded); raise BadRequestData if malformed."""
    if not isinstance(text, str):
        raise BadRequestData("q must be a string", title="Invalid NGSI-LD query")
    try:
        return _Parser(text, expand).parse()
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps the stack shallow
        raise BadRequestData("q is nested too deeply", title="Invalid NGSI-LD query") from None


# ------------------------------------------------------------------------------ evaluation

_UNDEFINED: Final = object()

Resolver = Callable[[str], Mapping[str, Any] | None]


def _kind(v: object) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, datetime):
        return "datetime"
    if isinstance(v, date):
        return "date"
    if isinstance(v, time):
        return "time"
    return None


def _typed_literal(target: Mapping[str, Any]) -> tuple[str, str] | None:
    """`{"@type": "DateTime", "@value": "…"}` (type possibly expanded) as (type, text)."""
    value, typ = target.get("@value"), target.get("@type")
    if not isinstance(value, str) or not isinstance(typ, str):
        return None
    short = typ.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return (short, value) if short in ("DateTime", "Date", "Time") else None


def _pair(target: Any, q: QValue) -> tuple[Any, Any] | None:
    """Target and query value made comparable, or None when their data types differ."""
    kind = _kind(q)
    if isinstance(target, Mapping):
        literal = _typed_literal(target)
        if literal is None:
            return None
        target = literal[1]
        if kind == "str":  # a quoted DateTime against a typed DateTime
            assert isinstance(q, str)
            t, qd = _parse_datetime(target), _parse_datetime(q)
            return (t, qd) if t is not None and qd is not None else None
    if kind == "number":
        ok = isinstance(target, int | float) and not isinstance(target, bool)
        return (target, q) if ok else None
    if kind == "bool":
        return (target, q) if isinstance(target, bool) else None
    if not isinstance(target, str):
        return None
    if kind == "str":
        assert isinstance(q, str)
        if "T" in q and "T" in target and _DATETIME.fullmatch(q) and _DATETIME.fullmatch(target):
            t, qd = _parse_datetime(target), _parse_datetime(q)
            if t is not None and qd is not None:
                return t, qd  # equivalent instants written differently
        return target, q
    parsed: object
    if kind == "datetime":
        parsed = _parse_datetime(target)
    elif kind == "date":
        parsed = _parse_date(target)
    else:
        parsed = _parse_time(target)
    return (parsed, q) if parsed is not None else None


def _equal(target: Any, q: QValue | Range | ValueList | None) -> bool:
    if isinstance(q, ValueList):
        return any(_equal(target, item) for item in q.items)
    if isinstance(q, Range):
        lo, hi = _pair(target, q.lo), _pair(target, q.hi)
        if lo is None or hi is None:
            return False
        low, high = sorted((lo[1], hi[1]))
        return bool(low <= lo[0] <= high)
    if q is None:
        return False
    pair = _pair(target, q)
    return pair is not None and bool(pair[0] == pair[1])


def _ordered(target: Any, op: str, q: QValue) -> bool:
    pair = _pair(target, q)
    if pair is None:
        return False
    t, v = pair
    try:
        if op == ">":
            return bool(t > v)
        if op == ">=":
            return bool(t >= v)
        if op == "<":
            return bool(t < v)
        return bool(t <= v)
    except TypeError:
        return False


def _compare(op: str, q: QValue | Range | ValueList | None, value: Any) -> bool:
    elements = value if isinstance(value, list) else [value]
    if op == "==":
        return any(_equal(e, q) for e in elements)
    if op == "!=":
        return not any(_equal(e, q) for e in elements)
    if op in ("~=", "!~="):
        assert isinstance(q, str)
        pattern = _compile(q)
        strings = [e for e in elements if isinstance(e, str)]
        found = any(pattern.search(s) for s in strings)
        return found if op == "~=" else bool(strings) and not found
    assert q is not None and not isinstance(q, Range | ValueList)
    return any(_ordered(e, op, q) for e in elements)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _flatten(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


def _member(value: Any, keys: tuple[str, ...]) -> Any:
    # §4.9: the trailing path is an ECMA 262 MemberExpression; undefined = non-existent
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return _UNDEFINED
        value = value[key]
    return value


def _targets(path: AttrPath, doc: Mapping[str, Any]) -> list[tuple[bool, Any]]:
    """(is-relationship, target value) for every existing target element of a plain path."""
    if path.attr in ENTITY_MEMBERS:
        member = doc.get(path.attr[len(NGSI_LD) :])
        return [] if member is None else [(False, member)]
    attrs = doc.get("attrs")
    if not isinstance(attrs, Mapping):
        return []
    instances = [i for i in _as_list(attrs.get(path.attr)) if isinstance(i, Mapping)]
    for sub in path.sub:
        instances = [s for i in instances for s in _as_list(i.get(sub)) if isinstance(s, Mapping)]
    out: list[tuple[bool, Any]] = []
    for inst in instances:
        if path.meta is not None:
            if path.meta in inst:
                out.append((False, inst[path.meta]))
            continue
        kind = inst.get("type")
        if path.json_path and kind in ("Relationship", "ListRelationship"):
            continue  # an object URI has no members
        if kind == "Relationship":
            out.append((True, inst.get("object")))
            continue
        if kind == "ListRelationship":
            objects = [
                o.get("object") if isinstance(o, Mapping) else o
                for o in _as_list(inst.get("objectList"))
            ]
            out.append((True, objects))
            continue
        if kind == "LanguageProperty":
            lmap = inst.get("languageMap")
            if not isinstance(lmap, Mapping):
                continue
            if not path.json_path or path.json_path == ("*",):
                out.append((False, _flatten(lmap.values())))
            elif len(path.json_path) == 1 and path.json_path[0] in lmap:
                out.append((False, lmap[path.json_path[0]]))
            continue
        member = {"JsonProperty": "json", "VocabProperty": "vocab", "ListProperty": "valueList"}
        value = inst.get(member.get(kind, "value") if isinstance(kind, str) else "value")
        if path.json_path:
            value = _member(value, path.json_path)
            if value is _UNDEFINED:
                continue
        out.append((False, value))
    return out


def _linked_docs(
    path: AttrPath, doc: Mapping[str, Any], resolve: Resolver | None
) -> Iterable[Mapping[str, Any]]:
    assert path.linked is not None
    if resolve is None:
        return
    for is_rel, objects in _targets(AttrPath(path.attr), doc):
        if not is_rel:
            continue
        for object_id in _as_list(objects):
            if not isinstance(object_id, str):
                continue
            target = resolve(object_id)
            if target is None:
                continue
            if path.linked.types and not set(_as_list(target.get("type"))) & set(path.linked.types):
                continue
            yield target


def _exists(path: AttrPath, doc: Mapping[str, Any], resolve: Resolver | None) -> bool:
    if path.linked is not None:
        inner = path.linked.path
        return any(_exists(inner, d, resolve) for d in _linked_docs(path, doc, resolve))
    return bool(_targets(path, doc))


def _holds(term: Comparison, doc: Mapping[str, Any], resolve: Resolver | None) -> bool:
    if term.op is None:
        return _exists(term.path, doc, resolve)
    if term.op == "!exists":
        return not _exists(term.path, doc, resolve)
    if term.path.linked is not None:
        inner = replace(term, path=term.path.linked.path)
        return any(_holds(inner, d, resolve) for d in _linked_docs(term.path, doc, resolve))
    for is_rel, value in _targets(term.path, doc):
        # §4.9: a Relationship with any operator but equal/unequal does not match
        if is_rel and term.op not in ("==", "!="):
            continue
        if _compare(term.op, term.value, value):
            return True
    return False


def matches(expr: QExpr, doc: Mapping[str, Any], *, resolve: Resolver | None = None) -> bool:
    """Whether the internal entity document satisfies the query (`resolve` serves `a{b}`)."""
    if isinstance(expr, And):
        return all(matches(t, doc, resolve=resolve) for t in expr.terms)
    if isinstance(expr, Or):
        return any(matches(t, doc, resolve=resolve) for t in expr.terms)
    return _holds(expr, doc, resolve)


# ------------------------------------------------------------------------------- analysis


def _comparisons(expr: QExpr) -> Iterable[Comparison]:
    if isinstance(expr, Comparison):
        yield expr
    else:
        for term in expr.terms:
            yield from _comparisons(term)


def attr_names(expr: QExpr) -> set[str]:
    """Expanded top-level attribute IRIs the query references (entity system members excluded)."""
    return {c.path.attr for c in _comparisons(expr) if c.path.attr not in ENTITY_MEMBERS}


_TIME_META: Final = frozenset({"observedAt", "createdAt", "modifiedAt", "deletedAt"})


def references(expr: QExpr) -> tuple[frozenset[str], bool]:
    """Every attribute IRI the query tests (sub-attributes and linked entities' included), and
    whether it tests a time (an instance's or the entity's system or observation time)."""
    attrs: set[str] = set()
    times = False
    for comparison in _comparisons(expr):
        path: AttrPath | None = comparison.path
        while path is not None:
            if path.attr in ENTITY_MEMBERS:
                times = True
            else:
                attrs.add(path.attr)
            attrs.update(path.sub)
            times = times or path.meta in _TIME_META
            path = path.linked.path if path.linked is not None else None
    return frozenset(attrs), times


def linked_depth(expr: QExpr) -> int:
    """The deepest Linked Entity nesting in the query (0 = none; `a{b{c}}` = 2)."""

    def depth(path: AttrPath) -> int:
        return 0 if path.linked is None else 1 + depth(path.linked.path)

    return max((depth(c.path) for c in _comparisons(expr)), default=0)


def expand_values(expr: QExpr, attrs: Collection[str], expand_value: Callable[[str], str]) -> QExpr:
    """Expand string query values of terms on `attrs` (expanded IRIs) — `expandValues`, §4.9 EX. 12."""

    def value(v: QValue | Range | ValueList | None) -> QValue | Range | ValueList | None:
        if isinstance(v, str):
            return expand_value(v)
        if isinstance(v, ValueList):
            return ValueList(tuple(expand_value(i) if isinstance(i, str) else i for i in v.items))
        return v

    def walk(e: QExpr) -> QExpr:
        if isinstance(e, And):
            return And(tuple(walk(t) for t in e.terms))
        if isinstance(e, Or):
            return Or(tuple(walk(t) for t in e.terms))
        if e.path.attr in attrs and e.op in ("==", "!="):
            return replace(e, value=value(e.value))
        return e

    return walk(expr)
