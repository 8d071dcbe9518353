"""The NGSI-LD scope query language (§4.19): parsing and matching entity scopes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.scopes import (
    ScopeAnd,
    ScopeOr,
    ScopePattern,
    parse_scope_q,
    scope_matches,
)
from smartregion.errors import BadRequestData, InvalidRequest

# the conformance suite's fixtures (building-minimal-with-{one,many}-scope(s).json)
ONE = ["/Madrid/Gardens/ParqueNorte"]
MANY = ["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"]


def test_parse_shapes() -> None:
    a = ScopePattern(("Madrid", "Districts"))
    b = ScopePattern(("CompanyA",))
    c = ScopePattern(("CompanyB",))
    assert parse_scope_q("/Madrid/Districts") == a
    assert parse_scope_q("/Madrid/Gardens/#") == ScopePattern(("Madrid", "Gardens"), True)
    assert parse_scope_q("/#") == ScopePattern((), True)
    assert parse_scope_q("/Madrid/+/ParqueNorte") == ScopePattern(("Madrid", "+", "ParqueNorte"))
    assert parse_scope_q("(/Madrid/Districts;/CompanyA)") == ScopeAnd((a, b))
    assert parse_scope_q("(/Madrid/Districts;/CompanyA)|/CompanyB") == ScopeOr(
        (ScopeAnd((a, b)), c)
    )
    # §4.19 EXAMPLE 5 as printed: the alternative comma form, without the leading "/"
    assert parse_scope_q("(/Madrid/Districts;/CompanyA),CompanyB") == ScopeOr((ScopeAnd((a, b)), c))
    assert parse_scope_q("/a;/b|/c") == ScopeOr(
        (ScopeAnd((ScopePattern(("a",)), ScopePattern(("b",)))), ScopePattern(("c",)))
    )
    assert parse_scope_q(" /Sint-Niklaas/Zone_1 ") == ScopePattern(("Sint-Niklaas", "Zone_1"))


@pytest.mark.parametrize(
    ("text", "one", "many"),
    [
        # 019_01_06
        ("/Madrid/Gardens/ParqueNorte", True, True),
        ("/Madrid/+/ParqueNorte", True, True),
        ("/CompanyA/#", False, True),
        ("/#", True, True),
        ("/Madrid/Gardens/ParqueNorte;/CompanyA/OrganizationB/UnitC", False, True),
        ("/Madrid/Gardens/ParqueNorte,/CompanyA/OrganizationB/UnitC", True, True),
        # 019_34
        ("(/Madrid/Gardens/ParqueNorte;/CompanyA/OrganizationB/UnitC)", False, True),
        (
            "(/Madrid/Gardens/ParqueNorte;/CompanyA/OrganizationB/UnitC)|/Madrid/Gardens/ParqueNorte",
            True,
            True,
        ),
        ("/CompanyA/OrganizationB/UnitC|/Nowhere/AtAll", False, True),
        ("(/Madrid/Gardens/ParqueNorte;/Nowhere/AtAll)", False, False),
        # exact match only, no implicit hierarchy
        ("/Madrid", False, False),
        ("/Madrid/Gardens", False, False),
        ("/Madrid/#", True, True),
        ("/Madrid/Gardens/ParqueNorte/#", True, True),
        ("/Madrid/Gardens/ParqueNorte/Parterre1", False, False),
        ("/Madrid/+", False, False),
        ("/+/+/+", True, True),
        ("/+/#", True, True),
        ("/+/Gardens/#", True, True),
        ("/madrid/gardens/parquenorte", False, False),  # case-sensitive
    ],
)
def test_suite_matches(text: str, one: bool, many: bool) -> None:
    expr = parse_scope_q(text)
    assert scope_matches(expr, ONE) is one
    assert scope_matches(expr, MANY) is many


def test_unscoped_and_odd_entities() -> None:
    anything = parse_scope_q("/#")
    assert not scope_matches(anything, None)
    assert not scope_matches(anything, [])
    assert not scope_matches(anything, ["urn:ngsi-ld:null"])
    assert scope_matches(parse_scope_q("/A/B"), "/A/B")  # a lone string is one scope
    assert scope_matches(parse_scope_q("/A/B"), ["A/B"])  # the leading "/" is optional
    assert scope_matches(parse_scope_q("/A/#"), ["/A"])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("/", "expected a scope level"),
        ("//A", "expected a scope level"),
        ("/A/", "expected a scope level"),
        ("/A//B", "expected a scope level"),
        ("/A#", "whole scope levels"),
        ("/A/#B", "whole scope levels"),
        ("/A/+B", "whole scope levels"),
        ("/A/#/B", "only allowed as the last level"),
        ("/A.B", "unexpected '.'"),
        ("/A B", "unexpected 'B'"),
        ("(/A;/B", "unbalanced '('"),
        ("/A)", "unbalanced ')'"),
        ("()", "expected a scope level"),
        ("/A;", "expected a scope level"),
        ("/A||/B", "expected a scope level"),
        (",/A", "expected a scope level"),
        ("(" * 40 + "/A" + ")" * 40, "nesting deeper"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_scope_q(text)
    assert fragment in info.value.detail


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.lists(st.sampled_from(list("/AB1_-+#;|,() .é")), max_size=25).map("".join),
    )
)
def test_parser_only_raises_domain_errors(text: str) -> None:
    try:
        expr = parse_scope_q(text)
    except (BadRequestData, InvalidRequest):
        return
    scope_matches(expr, MANY)
