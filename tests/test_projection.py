"""The pick/omit projection language (NGSI-LD 1.8 §4.21)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartregion.core.projection import MAX_DEPTH, Projection, parse_omit, parse_pick
from smartregion.errors import BadRequestData

D = "https://example.org/"


def test_pick_keeps_only_named_members() -> None:
    p = parse_pick("id,name")
    assert p.keeps("id") and p.keeps("name")
    assert not p.keeps("type") and not p.keeps("scope") and not p.keeps("other")
    assert p.linked("name") is None


def test_omit_drops_only_named_members() -> None:
    p = parse_omit("type,name")
    assert not p.keeps("type") and not p.keeps("name")
    assert p.keeps("id") and p.keeps("other")


def test_pick_with_braces_picks_the_relationship_and_projects_the_linked_entity() -> None:
    p = parse_pick("id,locatedAt{id,name,isInCountry{id,description}}")
    assert p.keeps("locatedAt") and not p.keeps("type")
    city = p.linked("locatedAt")
    assert city is not None
    assert city.keeps("name") and city.keeps("isInCountry") and not city.keeps("type")
    country = city.linked("isInCountry")
    assert country == Projection(pick=frozenset({"id", "description"}))


def test_omit_with_braces_keeps_the_relationship_and_omits_inside_the_linked_entity() -> None:
    # the suite's 018_21_03: type,locatedAt{name,isInCountry{description}}
    p = parse_omit("type,locatedAt{name,isInCountry{description}}")
    assert not p.keeps("type") and p.keeps("locatedAt")
    city = p.linked("locatedAt")
    assert city is not None and not city.keeps("name") and city.keeps("isInCountry")
    country = city.linked("isInCountry")
    assert country is not None and not country.keeps("description") and country.keeps("name")


def test_omit_named_plainly_and_with_braces_is_omitted() -> None:
    assert not parse_omit("rel,rel{name}").keeps("rel")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("id;name", "character ';'"),  # suite 018_18_04
        ("id,locatedAt{name", "not closed"),  # 018_18_05
        ("id,locatedAt{{name}", "expected a name, found '{'"),  # 018_18_06
        ("id,,name", "expected a name, found ','"),  # 018_18_07
        ("id,locatedAt{,name}", "expected a name, found ','"),  # 018_18_08
        ("id,locatedAt{}", "expected a name, found '}'"),  # 018_18_09
        ("", "empty"),
        ("id,", "missing at the end"),
        ("{name}", "expected a name, found '{'"),
        ("name}", "without a matching"),
        ("a{b}{c}", "already has a nested projection"),
        ("a{b}c", "expected ',' or '}' after '}', found 'c'"),
        ("a b", "character ' '"),
        ("a=b", "character '='"),
        ("a{b},a{c}", "two nested projections"),
    ],
)
def test_invalid_expressions_are_bad_request_data(text: str, fragment: str) -> None:
    for parse in (parse_pick, parse_omit):
        with pytest.raises(BadRequestData) as info:
            parse(text)
        assert fragment in info.value.detail
        assert info.value.title


def test_nesting_is_bounded() -> None:
    deep = "a{" * (MAX_DEPTH + 1) + "b" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(BadRequestData, match="nesting deeper"):
        parse_pick(deep)
    ok = "a{" * 3 + "b" + "}" * 3
    assert parse_pick(ok).linked("a") is not None


def test_merge_applies_pick_then_omit_and_refuses_overlap() -> None:
    merged = parse_pick("id,name,locatedAt").merge(parse_omit("locatedAt{name}"))
    assert merged.keeps("id") and merged.keeps("locatedAt") and not merged.keeps("type")
    linked = merged.linked("locatedAt")
    assert linked is not None and not linked.keeps("name")
    with pytest.raises(BadRequestData, match="both picked and omitted"):
        parse_pick("name").merge(parse_omit("name"))  # suite 018_18_01


def test_expand_resolves_attributes_but_not_core_members() -> None:
    p = parse_pick("id,type,scope,name,locatedAt{name}").expand(lambda t: D + t)
    assert p.pick == frozenset({"id", "type", "scope", D + "name", D + "locatedAt"})
    assert p.linked(D + "locatedAt") == Projection(pick=frozenset({D + "name"}))
    core = parse_omit("ngsi-ld:scope").expand(lambda t: "https://uri.etsi.org/ngsi-ld/scope")
    assert not core.keeps("scope")


def test_picks_core() -> None:
    assert parse_pick("id,name").picks_core()
    assert not parse_pick("name,other").picks_core()
    assert parse_omit("name").picks_core()


def test_full_iris_are_names() -> None:
    p = parse_pick("https://ngsi-ld-test-suite/context#name")
    assert p.keeps("https://ngsi-ld-test-suite/context#name")


def _names(p: Projection) -> set[str]:
    return set(p.members()).union(*(_names(nested) for _, nested in p.links))


@given(st.text(alphabet="ab{},;= ", max_size=24))
def test_any_text_parses_or_is_bad_request_data(text: str) -> None:
    for parse in (parse_pick, parse_omit):
        try:
            projection = parse(text)
        except BadRequestData as exc:
            assert exc.detail.startswith("invalid") or "nested projections" in exc.detail
            continue
        # what parses is made of non-empty names free of delimiters and forbidden characters
        names = _names(projection)
        assert names and all(n and not set(n) & set("{},;= ") for n in names)
