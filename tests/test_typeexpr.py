"""Tests for smartregion.core.typeexpr: the entity type selection language (NGSI-LD §4.17)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.typeexpr import (
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    parse_type_ast,
    parse_type_expr,
    to_dnf,
    type_matches,
)
from smartregion.errors import BadRequestData, InvalidRequest

DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


def expand(term: str) -> str:
    return term if ":" in term else DEFAULT + term


def dnf(*conjuncts: str) -> list[frozenset[str]]:
    """`dnf("A;B", "C")` -> [{A, B}, {C}] (unexpanded names)."""
    return [frozenset(c.split(";")) for c in conjuncts]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A", dnf("A")),
        ("A,B", dnf("A", "B")),
        ("A|B", dnf("A", "B")),
        ("A;B", dnf("A;B")),
        ("A,B|C", dnf("A", "B", "C")),
        ("A;B;C", dnf("A;B;C")),
        ("(A;B),C", dnf("A;B", "C")),  # ETSI 019_08_05
        ("(A;B)", dnf("A;B")),  # ETSI 019_08_02
        ("A;B,C", dnf("A;B", "C")),  # `;` binds tighter than `,`
        ("A,B;C", dnf("A", "B;C")),
        ("A|B;C", dnf("A", "B;C")),
        ("(A,B);C", dnf("A;C", "B;C")),
        ("(A|B);(C,D)", dnf("A;C", "A;D", "B;C", "B;D")),
        ("((A))", dnf("A")),
        ("(((A;B)),((C)))", dnf("A;B", "C")),
        ("A,A", dnf("A")),  # duplicates collapse
        ("A;A", dnf("A")),
        ("A,(A;B)", dnf("A")),  # absorption
        ("(A;B),A", dnf("A")),
        (" A , B ", dnf("A", "B")),  # whitespace around tokens is ignored
        ("A ;\tB", dnf("A;B")),
    ],
)
def test_parse_to_dnf(text: str, expected: list[frozenset[str]]) -> None:
    assert parse_type_expr(text) == expected


def test_names_are_expanded_and_iris_kept() -> None:
    assert parse_type_expr("Building;https://ngsi-ld-test-suite/context#Parking", expand) == [
        frozenset({DEFAULT + "Building", "https://ngsi-ld-test-suite/context#Parking"})
    ]
    assert parse_type_expr("urn:ngsi-ld:T:1,Vehicle", expand) == [
        frozenset({"urn:ngsi-ld:T:1"}),
        frozenset({DEFAULT + "Vehicle"}),
    ]


def test_syntax_tree() -> None:
    assert parse_type_ast("(A;B),C") == TypeOr(
        (TypeAnd((TypeName("A"), TypeName("B"))), TypeName("C"))
    )
    assert parse_type_ast("A") == TypeName("A")
    assert to_dnf(TypeAnd((TypeName("A"), TypeOr((TypeName("B"), TypeName("C")))))) == dnf(
        "A;B", "A;C"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("()", "missing before ')'"),
        ("(A", "unbalanced parenthesis opened at position 0"),
        ("((A)", "unbalanced parenthesis opened at position 0"),
        ("A)", "unexpected ')' at position 1"),
        ("(A))", "unexpected ')' at position 3"),
        (")A(", "missing before ')'"),
        ("A,", "missing at the end"),
        ("A;", "missing at the end"),
        (",A", "missing before ','"),
        ("|A", "missing before '|'"),
        ("A,,B", "missing before ',' at position 2"),
        ("A;;B", "missing before ';' at position 2"),
        ("A;|B", "missing before '|'"),
        ("A B", "unexpected 'B' at position 2"),
        ("(A)B", "unexpected 'B'"),
        ("A(B)", "unexpected '('"),
        ("A<B", "character '<'"),
        ('A"', "character '\"'"),
        ("A=B", "character '='"),
        ("A\x00", "character"),
        ("(" * 40 + "A" + ")" * 40, "nested deeper than 32"),
        (";".join(f"(A{i},B{i})" for i in range(12)), "more than 1024 alternatives"),
    ],
)
def test_syntax_errors_are_bad_request_data(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as excinfo:
        parse_type_expr(text)
    assert message in excinfo.value.detail


def test_non_string_input_is_bad_request_data() -> None:
    with pytest.raises(BadRequestData):
        parse_type_expr(None)  # type: ignore[arg-type]


# The ETSI 019_08 scenario: three entities, queried with the type selection language.
BUILDING = ["Building"]
PARKING = ["OffStreetParking"]
TOURIST_BUILDING = ["Building", "TouristDestination"]


@pytest.mark.parametrize(
    ("text", "matching"),
    [
        ("Building", [True, False, True]),  # 019_08_01
        ("(Building;TouristDestination)", [False, False, True]),  # 019_08_02
        ("Building,OffStreetParking", [True, True, True]),  # 019_08_03
        ("OffStreetParking,TouristDestination", [False, True, True]),  # 019_08_04
        ("(Building;OffStreetParking),TouristDestination", [False, False, True]),  # 019_08_05
        ("Building;OffStreetParking", [False, False, False]),
        ("Vehicle", [False, False, False]),
    ],
)
def test_type_matches_etsi_019_08(text: str, matching: list[bool]) -> None:
    selection = parse_type_expr(text, expand)
    entities = [[expand(t) for t in types] for types in (BUILDING, PARKING, TOURIST_BUILDING)]
    assert [type_matches(selection, types) for types in entities] == matching


def test_type_matches_requires_every_type_of_a_conjunct() -> None:
    selection = parse_type_expr("(A;B),C")
    assert type_matches(selection, ["A", "B"])
    assert type_matches(selection, ["B", "A", "Z"])
    assert type_matches(selection, ["C"])
    assert not type_matches(selection, ["A"])
    assert not type_matches(selection, [])
    assert not type_matches([], ["A"])


# --- properties -------------------------------------------------------------------------------

NAMES = ["A", "B", "C", "D"]


def expressions() -> st.SearchStrategy[TypeExpr]:
    leaves = st.sampled_from(NAMES).map(TypeName)
    return st.recursive(
        leaves,
        lambda children: st.lists(children, min_size=2, max_size=3).flatmap(
            lambda ops: st.sampled_from([TypeAnd(tuple(ops)), TypeOr(tuple(ops))])
        ),
        max_leaves=10,
    )


def render(expr: TypeExpr, data: Any) -> str:
    """Text for `expr`, parenthesising every compound operand; `,` or `|` drawn at random."""
    if isinstance(expr, TypeName):
        return expr.name
    parts = [
        f"({render(op, data)})" if not isinstance(op, TypeName) else op.name for op in expr.operands
    ]
    if isinstance(expr, TypeAnd):
        return ";".join(parts)
    text = parts[0]
    for part in parts[1:]:
        text += data.draw(st.sampled_from([",", "|"])) + part
    return text


def holds(expr: TypeExpr, types: frozenset[str]) -> bool:
    if isinstance(expr, TypeName):
        return expr.name in types
    if isinstance(expr, TypeAnd):
        return all(holds(op, types) for op in expr.operands)
    return any(holds(op, types) for op in expr.operands)


@settings(max_examples=300)
@given(expressions(), st.data(), st.sets(st.sampled_from(NAMES)))
def test_dnf_agrees_with_the_expression(expr: TypeExpr, data: Any, types: set[str]) -> None:
    selection = parse_type_expr(render(expr, data))
    assert type_matches(selection, sorted(types)) == holds(expr, frozenset(types))


@settings(max_examples=500)
@given(st.text(alphabet="AB,;|() x<\t", max_size=30) | st.text(max_size=30))
def test_parser_raises_only_domain_errors(text: str) -> None:
    try:
        selection = parse_type_expr(text)
    except (BadRequestData, InvalidRequest):
        return
    assert selection and all(selection)
    assert all(name and name.strip() == name for conjunct in selection for name in conjunct)
