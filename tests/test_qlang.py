"""The NGSI-LD query language (§4.9): parsing, evaluation on internal documents, analysis."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.qlang import (
    NGSI_LD,
    And,
    AttrPath,
    Comparison,
    LinkedPath,
    Or,
    Range,
    ValueList,
    attr_names,
    expand_values,
    linked_depth,
    matches,
    parse_q,
)
from smartregion.errors import BadRequestData, InvalidRequest

V = "https://uri.etsi.org/ngsi-ld/default-context/"
CORE_TERMS = {"observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId", "location"}


def expand(term: str) -> str:
    """A stand-in for the request's term map: core terms, else the default vocabulary."""
    if ":" in term:
        return term
    return NGSI_LD + term if term in CORE_TERMS else V + term


def q(text: str) -> Any:
    return parse_q(text, expand)


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def rel(obj: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj, **extra}


def entity(eid: str, etype: str = "Building", **attrs: Any) -> dict[str, Any]:
    """An internal document; each attribute is one instance dict or a list of instances."""
    return {
        "id": eid,
        "type": [V + etype],
        "createdAt": "2026-01-01T00:00:00.000000Z",
        "modifiedAt": "2026-03-01T10:00:00.000000Z",
        "attrs": {V + k: (v if isinstance(v, list) else [v]) for k, v in attrs.items()},
    }


# the conformance suite's Building fixtures (building-simple-attributes*.jsonld)
EIFFEL = entity(
    "urn:ngsi-ld:Building:eiffel",
    name=prop("Eiffel Tower"),
    subCategory=prop("tourism"),
    airQualityLevel=prop(4, unitCode="C62", observedAt="2020-09-09T16:40:00.000Z"),
    almostFull=prop(False),
)
PISA = entity(
    "urn:ngsi-ld:Building:pisa",
    name=prop("Pisa Tower"),
    subCategory=prop("tourism"),
    airQualityLevel=prop(6, unitCode="C62", observedAt="2020-10-10T16:40:00.000Z"),
    almostFull=prop(True),
)
PISA2 = entity(
    "urn:ngsi-ld:Building:pisa2",
    name=prop("Pisa Tower"),
    subCategory=prop("sightseeing"),
    airQualityLevel=prop(7, unitCode="C62", observedAt="2023-10-10T16:40:00.000Z"),
    almostFull=prop(False),
    locatedIn=rel("urn:ngsi-ld:City:Pisa"),
)
BUILDINGS = [EIFFEL, PISA, PISA2]

# the query-language-features fixture (019_29) and a richer sensor
FEATURES = entity(
    "urn:ngsi-ld:Building:features",
    address=prop({"city": "Berlin", "street": "Ulrich Strasse", "geo": {"zip": "10115"}}),
    color={"type": "LanguageProperty", "languageMap": {"fr": "rouge", "en": "red", "de": "rot"}},
    category={"type": "VocabProperty", "vocab": V + "commercial"},
    managedBy=rel("urn:ngsi-ld:Building:target"),
)
TARGET = entity("urn:ngsi-ld:Building:target", name=prop("Pisa Tower"))
SENSOR = entity(
    "urn:ngsi-ld:Sensor:1",
    "Sensor",
    temperature=[
        prop(
            21.5,
            observedAt="2026-11-27T07:59:00.000Z",
            unitCode="CEL",
            **{V + "accuracy": prop(0.1, **{V + "method": prop("calibrated")})},
        ),
        prop(35, observedAt="2026-11-27T08:00:00.000Z", datasetId="urn:ngsi-ld:Dataset:b"),
    ],
    tags=prop(["a", "b"]),
    readings={"type": "ListProperty", "valueList": [1, 5, 9]},
    raw={"type": "JsonProperty", "json": {"id": "85a6cc52", "value": "Overstay 60 minutes"}},
    installed=prop({"@type": "DateTime", "@value": "2018-12-04T12:00:00Z"}),
    installedDay=prop("2018-12-04"),
    openAt=prop("08:30:00Z"),
    neighbours={
        "type": "ListRelationship",
        "objectList": [{"object": "urn:ngsi-ld:Sensor:2"}, {"object": "urn:ngsi-ld:Sensor:3"}],
    },
    isConnectedTo=rel("urn:ngsi-ld:Device:low"),
    label=prop("Dépôt"),
)
DEVICES = {
    "urn:ngsi-ld:Device:low": entity("urn:ngsi-ld:Device:low", "Device", batteryLevel=prop(0.3)),
    "urn:ngsi-ld:Building:target": TARGET,
}


def resolve(eid: str) -> dict[str, Any] | None:
    return DEVICES.get(eid)


# ----------------------------------------------------------------------------------- parse


def test_parse_shapes() -> None:
    assert q("a==1") == Comparison(AttrPath(V + "a"), "==", 1)
    assert q("a") == Comparison(AttrPath(V + "a"), None, None)
    assert q("!a") == Comparison(AttrPath(V + "a"), "!exists", None)
    assert q("a.b.c!=2.5") == Comparison(AttrPath(V + "a", (V + "b", V + "c")), "!=", 2.5)
    assert q("a[b.c]==1") == Comparison(AttrPath(V + "a", json_path=("b", "c")), "==", 1)
    assert q("a.b[c]==1").path == AttrPath(V + "a", (V + "b",), ("c",))
    assert q("temperature.observedAt>=2020-01-01T00:00:00Z") == Comparison(
        AttrPath(V + "temperature", meta="observedAt"),
        ">=",
        datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert q('a.b.unitCode=="CEL"').path == AttrPath(V + "a", (V + "b",), meta="unitCode")
    assert q('modifiedAt>"2020-01-01T00:00:00Z"').path == AttrPath(NGSI_LD + "modifiedAt")


def test_logical_structure_and_precedence() -> None:
    a, b, c = (Comparison(AttrPath(V + n), None, None) for n in "abc")
    assert q("a;b|c") == Or((And((a, b)), c))
    assert q("a|b;c") == Or((a, And((b, c))))
    assert q("a;(b|c)") == And((a, Or((b, c))))
    assert q("((a|b);c)") == And((Or((a, b)), c))
    assert q(" a ; b ") == And((a, b))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a==1", 1),
        ("a==-1.5e3", -1500.0),
        ("a==0.25", 0.25),
        ("a==true", True),
        ("a==false", False),
        ('a=="x"', "x"),
        ('a=="say \\"hi\\"; a|b"', 'say "hi"; a|b'),
        ('a=="caf\\u00e9"', "café"),
        ('a=="2020-01-01T00:00:00Z"', "2020-01-01T00:00:00Z"),
        ("a==2020-01-01T00:00:00Z", datetime(2020, 1, 1, tzinfo=UTC)),
        ("a==2020-01-01T02:00:00.5+02:00", datetime(2020, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("a==2020-01-01", date(2020, 1, 1)),
        ("a==12:30:00Z", time(12, 30)),
        ("a==urn:ngsi-ld:City:Pisa", "urn:ngsi-ld:City:Pisa"),
        ("a==https://example.org/x?y=1", "https://example.org/x?y=1"),
        ("a==commercial", "commercial"),
        ("a==urn:x..y", "urn:x..y"),
        ("a==1..5", Range(1, 5)),
        ("a==1.5..2.5", Range(1.5, 2.5)),
        ('a=="a".."z"', Range("a", "z")),
        (
            "a==2020-01-01T00:00:00Z..2021-01-01T00:00:00Z",
            Range(datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)),
        ),
        ("a==1,2,3", ValueList((1, 2, 3))),
        ('a=="x","y"', ValueList(("x", "y"))),
        ("a==urn:a,urn:b", ValueList(("urn:a", "urn:b"))),
        ("a==true,false", ValueList((True, False))),
    ],
)
def test_values(text: str, value: Any) -> None:
    assert q(text).value == value


@pytest.mark.parametrize(
    ("text", "op"),
    [("a==1", "=="), ("a!=1", "!="), ("a>1", ">"), ("a>=1", ">="), ("a<1", "<"), ("a<=1", "<=")],
)
def test_operators(text: str, op: str) -> None:
    assert q(text).op == op


def test_patterns() -> None:
    assert q('a~="^Eif"') == Comparison(AttrPath(V + "a"), "~=", "^Eif")
    assert q('a!~="say \\"x\\""').value == 'say "x"'
    assert q('a~="\\d+"').value == "\\d+"  # regex escapes are kept, not JSON-decoded
    assert q("a~=^x(a|b)$;b").terms[0].value == "^x(a|b)$"
    assert q("(a~=x.*)").value == "x.*"


def test_names_iris_and_linked_paths() -> None:
    assert q("schema:name==1").path.attr == "schema:name"
    iri = q("https://example.org/ns/temp.sub.observedAt>1")
    # names after an absolute IRI are terms again, expanded with the context
    assert iri.path == AttrPath("https://example.org/ns/temp", (V + "sub",), meta="observedAt")
    assert q("https://example.org/ns#temp==1").path.attr == "https://example.org/ns#temp"
    assert q("sensor{humidity}==40").path == AttrPath(
        V + "sensor", linked=LinkedPath((), AttrPath(V + "humidity"))
    )
    assert q("sensor{Device,Hub:humidity}").path.linked == LinkedPath(
        (V + "Device", V + "Hub"), AttrPath(V + "humidity")
    )
    # inside {…}, `x:name` is a compact IRI only when `x` is a prefix (IRI ends in / or #)
    prefixes = {"ex": "https://example.org/ns/", "Device": V + "Device"}

    def with_prefix(term: str) -> str:
        head, colon, rest = term.partition(":")
        if colon and head in prefixes and not rest.startswith("//"):
            return prefixes[head] + rest
        return prefixes.get(term) or expand(term)

    compact = parse_q("sensor{ex:humidity}", with_prefix).path.linked
    assert compact == LinkedPath((), AttrPath("https://example.org/ns/humidity"))
    hinted = parse_q("sensor{Device:humidity}", with_prefix).path.linked
    assert hinted == LinkedPath((V + "Device",), AttrPath(V + "humidity"))
    deep = q("owner{works{name}}")
    assert deep.path.linked.path.linked == LinkedPath((), AttrPath(V + "name"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("(a==1", "unbalanced '('"),
        ("((a==1)", "unbalanced '('"),
        ("a==1)", "unbalanced ')'"),
        ("()", "expected a query term"),
        ("a==1;", "expected a query term"),
        ("a==1|", "expected a query term"),
        (";a==1", "expected a query term"),
        ("a==1;;b", "expected a query term"),
        ("a==1||b", "expected a query term"),
        ("a=1", "unknown operator '='"),
        ("a===1", "invalid value"),
        ("a==", "expected a value"),
        ("a>", "expected a value"),
        ("a>4..5", "only allowed with '==' and '!='"),
        ("a<1,2", "only allowed with '==' and '!='"),
        ('a>="a".."b"', "only allowed with '==' and '!='"),
        ("a==1..", "no upper bound"),
        ("a==..5", "no lower bound"),
        ("a==1..2..3", "more than two bounds"),
        ('a==1.."z"', "same type"),
        ("a==true..5", "compared only with"),
        ("a==abc..def", "expected a number"),
        ("a==1,2..3", "range is not allowed"),
        ("a==1..3,4", "range cannot be part of a value list"),
        ("a>true", "compared only with"),
        ("a>abc", "expected a number"),
        ("a==2020-13-01", "invalid Date"),
        ("a==2020-02-30T00:00:00Z", "invalid DateTime"),
        ("a==25:00:00", "invalid Time"),
        ("a==12abc", "invalid value"),
        ("a==1e999", "out of range"),
        ('a=="unterminated', "unterminated string"),
        ('a=="bad \\x escape"', "invalid string"),
        ('a~="("', "invalid regular expression"),
        ('a~=""', "empty pattern"),
        ("a~=", "empty pattern"),
        ("!a==1", "takes no operator"),
        ("!==1", "needs an attribute path"),
        ("1a==2", "expected an attribute name"),
        (".a==1", "expected an attribute name"),
        ("a.==1", "expected an attribute name"),
        ("a[==1", "unbalanced '['"),
        ("a[b==1", "unbalanced '['"),
        ("a[]==1", "invalid member path"),
        ("a[b..c]==1", "invalid member path"),
        ("a[b][c]==1", "nothing may follow"),
        ("a[*.b]==1", "'*' only stands alone"),
        ("a{b==1", "unbalanced '{'"),
        ("a.b{c}==1", "single attribute name"),
        ("a b", "expected an operator"),
        ("modifiedAt.x>1", "system member"),
        ("a.observedAt[x]==1", "meta member"),
        ("https://example.org/==1", "must end in a name"),
        ("(" * 40 + "a" + ")" * 40, "nesting deeper"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text, expand)
    assert fragment in info.value.detail


def test_parse_error_reports_position() -> None:
    with pytest.raises(BadRequestData, match="position 5"):
        parse_q("a==1;;b")


_ALPHABET = st.sampled_from(
    [*'abc.;|()[]{}!=<>~",:*/#+-0123456789 .TZ\\eé\x00', "..", "==", "urn:x"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_ALPHABET, max_size=30).map("".join)))
def test_parser_only_raises_domain_errors(text: str) -> None:
    try:
        expr = parse_q(text, expand)
    except (BadRequestData, InvalidRequest):
        return
    # whatever parses can be evaluated and analysed without crashing
    matches(expr, SENSOR, resolve=resolve)
    attr_names(expr)
    linked_depth(expr)


# -------------------------------------------------------------------------------- evaluate


def count(text: str, docs: list[dict[str, Any]] = BUILDINGS) -> int:
    expr = q(text)
    return sum(matches(expr, d) for d in docs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 019_09
        ('name=="Eiffel Tower"', 1),
        ('name=="Pisa Tower";almostFull==false', 1),
        ('name=="Pisa Tower"|almostFull==false', 3),
        ('(name=="Pisa Tower"|name=="Eiffel Tower");almostFull==false', 2),
        ("airQualityLevel==4", 1),
        ("airQualityLevel>=4;airQualityLevel<7", 2),
        ("locatedIn==urn:ngsi-ld:City:Pisa", 1),
        ("locatedIn==urn:ngsi-ld:City:Paris", 0),
        ("locatedIn==urn:ngsi-ld:City:Pisa|locatedIn==urn:ngsi-ld:City:Paris", 1),
        # 019_28 (ranges, lists, !~=)
        ("airQualityLevel==4..5", 1),
        ("airQualityLevel!=4..5", 2),
        ("airQualityLevel==5..4", 1),
        ('name=="Eiffel Tower","Pisa Tower"', 3),
        ('name!="Eiffel Tower","Big Ben"', 2),
        ('name!~="^Eiffel"', 2),
        ('name~="Tow"', 3),
        ('name~="^Tow"', 0),
        # existence and absence
        ("locatedIn", 1),
        ("!locatedIn", 2),
        ("nothing", 0),
        ("!nothing", 3),
        # meta members and entity system members
        ("airQualityLevel.observedAt>=2020-10-01T00:00:00Z", 2),
        ('airQualityLevel.observedAt>"2020-10-10T16:40:00Z"', 1),
        ('airQualityLevel.observedAt=="2020-10-10T16:40:00Z"', 1),
        ('airQualityLevel.unitCode=="C62"', 3),
        ("airQualityLevel.observedAt", 3),
        ("name.observedAt", 0),
        ("modifiedAt>2026-01-01T00:00:00Z", 3),
        ('createdAt<"2025-01-01T00:00:00Z"', 0),
        # type mismatches: never equal, never ordered; != holds
        ('airQualityLevel=="4"', 0),
        ('airQualityLevel!="4"', 3),
        ("almostFull==0", 0),
        ("name>5", 0),
        ("almostFull!=true", 2),
        ('name>"P"', 2),
        ('name<="Eiffel Tower"', 1),
    ],
)
def test_suite_buildings(text: str, expected: int) -> None:
    assert count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 019_29: compound members, language maps, vocab, relationships
        ('address[city]=="Berlin"', True),
        ('address[postcode]=="Berlin"', False),
        ("address[city]", True),
        ("address[postcode]", False),
        ('address[geo.zip]=="10115"', True),
        ('address[city.x]=="Berlin"', False),
        ("!address[postcode]", True),
        ('color[en]=="red"', True),
        ('color[en]=="rouge"', False),
        ('color[*]=="rouge"', True),
        ('color=="rot"', True),
        ('color[*]!="red"', False),
        ('color[en]!="black"', True),
        ('color[nl]!="black"', False),
        ("color[nl]", False),
        ('managedBy>"urn:a"', False),
        ('managedBy~="urn"', False),
        ('managedBy=="urn:ngsi-ld:Building:target"', True),
        ("managedBy!=urn:ngsi-ld:Building:other", True),
        ("category==commercial", False),
        (f"category=={V}commercial", True),
        ('category=="' + V + 'commercial"', True),
    ],
)
def test_suite_features(text: str, expected: bool) -> None:
    assert matches(q(text), FEATURES) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # multi-instance (datasetId): any instance matches
        ("temperature>30", True),
        ("temperature<22", True),
        ("temperature==21.5", True),
        ("temperature!=21.5", True),
        ("temperature>40", False),
        ("temperature==20..22", True),
        ('temperature.datasetId=="urn:ngsi-ld:Dataset:b"', True),
        ("temperature.observedAt>2026-11-27T07:59:30Z", True),
        ("temperature.observedAt>2026-11-27T08:00:00Z", False),
        ('temperature.unitCode=="CEL"', True),
        # sub-attributes, nested
        ("temperature.accuracy<0.5", True),
        ("temperature.accuracy>0.5", False),
        ('temperature.accuracy.method=="calibrated"', True),
        ("temperature.accuracy.method", True),
        ("temperature.precision", False),
        # arrays: == any element, != no element
        ('tags=="a"', True),
        ('tags=="c"', False),
        ('tags!="a"', False),
        ('tags!="c"', True),
        ('tags=="c","b"', True),
        ('tags~="^b$"', True),
        ('tags!~="^[ab]$"', False),
        ('tags!~="^z"', True),
        # ListProperty valueList
        ("readings==5", True),
        ("readings>8", True),
        ("readings!=5", False),
        ("readings==6..8", False),
        # JsonProperty members
        ('raw[value]=="Overstay 60 minutes"', True),
        ('raw[id]~="^85a6"', True),
        ("raw[missing]", False),
        # typed and plain date/time values compare chronologically
        ("installed==2018-12-04T12:00:00Z", True),
        ("installed==2018-12-04T13:00:00+01:00", True),
        ("installed>2018-12-01T00:00:00Z", True),
        ('installed>"2018-12-01T00:00:00Z"', True),
        ("installed<2018-12-01T00:00:00Z", False),
        ("installedDay==2018-12-04", True),
        ("installedDay>2018-12-05", False),
        ("installedDay==2018-12-04T00:00:00Z", False),
        ("openAt<09:00:00Z", True),
        ("openAt>=09:00:00Z", False),
        # ListRelationship objects
        ("neighbours==urn:ngsi-ld:Sensor:3", True),
        ("neighbours!=urn:ngsi-ld:Sensor:3", False),
        ("neighbours>urn:a", None),  # grammar: a bare URI cannot be ordered
        ('neighbours>"urn:a"', False),
        # non-string targets never match patterns
        ('temperature~="2"', False),
        ('temperature!~="2"', False),
        # unicode strings
        ('label=="Dépôt"', True),
        ('label~="^D.p"', True),
    ],
)
def test_sensor(text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(BadRequestData):
            q(text)
        return
    assert matches(q(text), SENSOR) is expected


def test_linked_entity_subqueries() -> None:
    features = q('managedBy{name}=="Pisa Tower"')
    assert matches(features, FEATURES, resolve=resolve)
    assert not matches(features, FEATURES)  # no resolver: linked terms never match
    assert matches(q('managedBy{Building:name}=="Pisa Tower"'), FEATURES, resolve=resolve)
    assert not matches(q('managedBy{Vehicle:name}=="Pisa Tower"'), FEATURES, resolve=resolve)
    assert matches(q("managedBy{name}"), FEATURES, resolve=resolve)
    assert not matches(q("managedBy{height}"), FEATURES, resolve=resolve)
    assert matches(q("!managedBy{height}"), FEATURES, resolve=resolve)
    # 49_01: isConnectedTo{batteryLevel}<0.5
    assert matches(q("isConnectedTo{batteryLevel}<0.5"), SENSOR, resolve=resolve)
    assert not matches(q("isConnectedTo{batteryLevel}>0.5"), SENSOR, resolve=resolve)
    assert not matches(q("neighbours{batteryLevel}<0.5"), SENSOR, resolve=resolve)  # unresolvable


def test_temporal_instances_5744_01() -> None:
    """Values filters over the instances of a temporal window (suite 5744_01)."""
    fast = entity("urn:v:fast", "Vehicle", speed=prop(30), heading=prop(45), route=prop("550"))
    slow = entity("urn:v:slow", "Vehicle", speed=prop(10), heading=prop(170))
    shapes = entity(
        "urn:v:shapes", "Vehicle", name=prop("m"), ref=rel("urn:dest:qp1"), tags=prop(["a", "b"])
    )
    multi = entity("urn:v:multi", "Vehicle", speed=[prop(5), prop(60, datasetId="urn:ds:qp1")])
    docs = [fast, slow, shapes, multi]

    def ids(text: str) -> set[str]:
        expr = q(text)
        return {d["id"].rsplit(":", 1)[-1] for d in docs if matches(expr, d)}

    assert ids("speed>25") == {"fast", "multi"}
    assert ids("speed>=5;heading<90") == {"fast"}
    assert ids("speed>25|heading>100") == {"fast", "slow", "multi"}
    assert ids('speed>25|name~="^m"') == {"fast", "shapes", "multi"}
    assert ids("speed!=10") == {"fast", "multi"}
    assert ids("!heading;speed>25") == {"multi"}
    assert ids("speed==10..40") == {"fast", "slow"}
    assert ids('route=="550","551"') == {"fast"}
    assert ids('ref=="urn:dest:qp1"') == {"shapes"}
    assert ids('tags=="a"') == {"shapes"}
    assert ids("speed>50") == {"multi"}


def test_missing_or_odd_documents_do_not_crash() -> None:
    assert not matches(q("a==1"), {"id": "urn:x", "type": ["T"]})
    assert matches(q("!a"), {"id": "urn:x", "type": ["T"], "attrs": {}})
    odd = {"id": "urn:x", "attrs": {V + "a": {"type": "Property", "value": 1}, V + "b": ["junk"]}}
    assert matches(q("a==1"), odd)  # a single instance dict is tolerated
    assert not matches(q("b==1"), odd)
    assert matches(q('a!="x"'), {"attrs": {V + "a": [prop(None)]}})
    assert not matches(q("a==1"), {"attrs": {V + "a": [prop({"x": 1})]}})


# -------------------------------------------------------------------------------- analysis


def test_attr_names() -> None:
    expr = q('(a.b>1|c[d]=="x");!e;f{g}==1;modifiedAt>2020-01-01T00:00:00Z;h.observedAt')
    assert attr_names(expr) == {V + n for n in "acefh"}
    assert attr_names(q("modifiedAt>2020-01-01T00:00:00Z")) == set()


def test_linked_depth() -> None:
    assert linked_depth(q("a==1;b")) == 0
    assert linked_depth(q("a{b}==1")) == 1
    assert linked_depth(q("x|a{T:b{c}}==1")) == 2


def test_expand_values() -> None:
    expr = q('category==commercial|category=="shop","office";other==commercial')
    expanded = expand_values(expr, {V + "category"}, lambda s: V + s)
    assert matches(expanded, FEATURES)
    assert expanded == q(
        f'category=={V}commercial|category=="{V}shop","{V}office";other==commercial'
    )
    assert not matches(expr, FEATURES)
