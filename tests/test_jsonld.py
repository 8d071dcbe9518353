"""Term maps: expansion and compaction of NGSI-LD names (smartregion.core.jsonld)."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartregion.core.jsonld import (
    CORE_CONTEXT_URL,
    CORE_CONTEXT_URLS,
    DEFAULT_VOCAB,
    TermMap,
    core_context_document,
    core_term_map,
    term_map_for,
    validate_context,
)
from smartregion.errors import BadRequestData

FIXTURES = Path(__file__).parent / "fixtures" / "contexts"
NGSI = "https://uri.etsi.org/ngsi-ld/"
SUITE = "https://ngsi-ld-test-suite/context#"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


SUITE_CONTEXT = fixture("ngsi-ld-test-suite.jsonld")["@context"]
SCHEMA_CONTEXT = {
    "schema": "https://schema.org/",
    "fiware": "https://uri.fiware.org/ns/data-models#",
    "name": "schema:name",
    "category": {"@id": "fiware:category", "@type": "@vocab"},
    "owner": {"@id": "fiware:owner", "@type": "@id"},
    "madeAt": {"@id": "fiware:madeAt", "@type": "DateTime"},
}


def test_core_urls_cover_every_published_version() -> None:
    assert CORE_CONTEXT_URL == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
    assert CORE_CONTEXT_URL in CORE_CONTEXT_URLS
    for version in ("1.3", "1.4", "1.5", "1.6", "1.7", "1.8"):
        assert f"{NGSI}v1/ngsi-ld-core-context-v{version}.jsonld" in CORE_CONTEXT_URLS
    assert f"{NGSI}v1/ngsi-ld-core-context.jsonld" in CORE_CONTEXT_URLS
    # the suite's "unretrievable" URL must not be mistaken for the core context
    assert f"{NGSI}v1/ngsi-ld-core-context-non-existing.jsonld" not in CORE_CONTEXT_URLS


def test_core_terms_expand_and_compact() -> None:
    core = core_term_map()
    assert core.vocab == DEFAULT_VOCAB
    assert core.expand_term("location") == NGSI + "location"
    assert core.expand_term("observedAt") == NGSI + "observedAt"
    assert core.expand_term("Property") == NGSI + "Property"
    assert core.expand_term("Point") == "https://purl.org/geojson/vocab#Point"
    assert core.expand_term("id") == "@id"
    assert core.compact_iri(NGSI + "location") == "location"
    assert core.compact_iri(NGSI + "hasObject") == "object"
    assert core.compact_iri("@type") == "type"


def test_unknown_terms_use_the_default_vocabulary_and_compact_back() -> None:
    core = core_term_map()
    assert core.expand_term("temperature") == DEFAULT_VOCAB + "temperature"
    assert core.expand_term("Sensor") == DEFAULT_VOCAB + "Sensor"
    assert core.compact_iri(DEFAULT_VOCAB + "temperature") == "temperature"


def test_suite_context_terms() -> None:
    tm = term_map_for([SUITE_CONTEXT])
    assert tm.expand_term("Building") == SUITE + "Building"
    assert tm.expand_term("airQualityLevel") == SUITE + "airQualityLevel"
    assert tm.compact_iri(SUITE + "Vehicle") == "Vehicle"
    # core terms stay available next to the user context
    assert tm.expand_term("location") == NGSI + "location"
    # names the user context lacks still fall back to the default vocabulary
    assert tm.expand_term("A1") == DEFAULT_VOCAB + "A1"


def test_whole_documents_are_unwrapped() -> None:
    assert term_map_for([fixture("ngsi-ld-test-suite.jsonld")]).expand_term("speed") == (
        SUITE + "speed"
    )
    minimal = term_map_for([fixture("@context-minimal-valid.json")])
    assert minimal.expand_term("A2") == "urn:ngsi-ld:attributes:A2"
    assert minimal.compact_iri("urn:ngsi-ld:attributes:A2") == "A2"


def test_core_context_cannot_be_overridden() -> None:
    hostile = {
        "location": "https://evil.example/location",
        "type": "https://evil.example/type",
        "ngsi-ld": "https://evil.example/",
        "Property": "https://evil.example/Property",
        "mine": "ngsi-ld:mine",
    }
    tm = term_map_for([hostile])
    assert tm.expand_term("location") == NGSI + "location"
    assert tm.expand_term("type") == "@type"
    assert tm.expand_term("Property") == NGSI + "Property"
    # the core prefix is visible to user definitions and keeps its meaning
    assert tm.expand_term("mine") == NGSI + "mine"
    assert tm.compact_iri(NGSI + "location") == "location"


def test_core_url_inside_a_document_is_the_builtin_core() -> None:
    compound = fixture("ngsi-ld-test-suite-compound.jsonld")
    # once the non-core URL is dereferenced, only the core URL (v1.8) remains: built in
    resolved = {"@context": [SUITE_CONTEXT, compound["@context"][1]]}
    tm = term_map_for([resolved])
    assert tm.expand_term("brandName") == SUITE + "brandName"
    assert tm.expand_term("observedAt") == NGSI + "observedAt"
    with pytest.raises(ValueError, match="unresolved"):
        term_map_for([compound])


def test_user_vocab_applies_and_default_context_iris_still_round_trip() -> None:
    tm = term_map_for([{"@vocab": "https://example.org/vocab/"}])
    assert tm.vocab == "https://example.org/vocab/"
    assert tm.expand_term("speed") == "https://example.org/vocab/speed"
    assert tm.compact_iri("https://example.org/vocab/speed") == "speed"
    # an attribute created without a context: not "speed" (that now means something else)
    compacted = tm.compact_iri(DEFAULT_VOCAB + "speed")
    assert compacted == "ngsi-ld:default-context/speed"
    assert tm.expand_term(compacted) == DEFAULT_VOCAB + "speed"
    # core terms are unaffected by the user vocabulary
    assert tm.expand_term("location") == NGSI + "location"


def test_null_vocab_falls_back_to_the_default_vocabulary() -> None:
    tm = term_map_for([{"@vocab": "https://example.org/"}, {"@vocab": None}])
    assert tm.expand_term("speed") == DEFAULT_VOCAB + "speed"


def test_prefixes_and_compact_iris() -> None:
    tm = term_map_for([SCHEMA_CONTEXT])
    assert tm.expand_term("name") == "https://schema.org/name"
    assert tm.expand_term("schema:address") == "https://schema.org/address"
    assert tm.compact_iri("https://schema.org/address") == "schema:address"
    assert tm.compact_iri("https://schema.org/name") == "name"
    assert tm.expand_term("category") == "https://uri.fiware.org/ns/data-models#category"


def test_absolute_iris_pass_through() -> None:
    tm = term_map_for([SCHEMA_CONTEXT])
    for iri in ("https://example.org/a", "urn:ngsi-ld:attributes:X", "http://schema.org/x"):
        assert tm.expand_term(iri) == iri
        assert tm.compact_iri(iri) == iri
    assert tm.expand_term("_:b0") == "_:b0"


def test_expanded_definitions_are_prefixes_only_when_declared() -> None:
    tm = term_map_for(
        [
            {
                "ex": {"@id": "https://ex.org/"},
                "ex2": {"@id": "https://ex2.org/", "@prefix": True},
                "plain": "https://plain.org/things",
            }
        ]
    )
    assert tm.expand_term("ex:a") == "ex:a"  # JSON-LD 1.1: not a prefix, so an absolute IRI
    assert tm.expand_term("ex2:a") == "https://ex2.org/a"
    assert tm.compact_iri("https://ex2.org/a") == "ex2:a"
    # a mapping not ending in a gen-delim is no prefix either
    assert tm.expand_term("plain:x") == "plain:x"


def test_type_coercion() -> None:
    tm = term_map_for([SCHEMA_CONTEXT])
    assert tm.is_id_coerced("https://uri.fiware.org/ns/data-models#owner")
    assert tm.is_id_coerced("https://uri.fiware.org/ns/data-models#category")
    assert not tm.is_id_coerced("https://schema.org/name")
    assert tm.type_of("owner") == "@id"
    assert tm.type_of("madeAt") == NGSI + "DateTime"
    assert core_term_map().is_id_coerced(NGSI + "hasObject")


def test_vocab_property_values() -> None:
    tm = term_map_for([SCHEMA_CONTEXT])
    assert tm.expand_value("schema:Place") == "https://schema.org/Place"
    assert tm.compact_value("https://schema.org/Place") == "schema:Place"
    assert tm.expand_value("Urban") == DEFAULT_VOCAB + "Urban"
    assert tm.compact_value(DEFAULT_VOCAB + "Urban") == "Urban"


def test_definitions_may_refer_to_later_terms_and_to_the_vocabulary() -> None:
    tm = term_map_for(
        [{"speed": "ex:speed", "ex": "https://ex.org/", "@vocab": "https://v.org/", "rel": "Rel"}]
    )
    assert tm.expand_term("speed") == "https://ex.org/speed"
    assert tm.expand_term("rel") == "https://v.org/Rel"


def test_ignored_constructs() -> None:
    tm = term_map_for(
        [
            {
                "@base": "https://base.example/",
                "@version": 1.1,
                "@protected": True,
                "parentOf": {"@reverse": "https://ex.org/childOf"},
                "with": {"@id": "https://ex.org/with", "@context": {"inner": "https://ex.org/in"}},
                "@unknownKeyword": "ignored",
            }
        ]
    )
    assert tm.expand_term("parentOf") == DEFAULT_VOCAB + "parentOf"
    assert tm.expand_term("with") == "https://ex.org/with"
    assert tm.scoped_context("with") == {"inner": "https://ex.org/in"}
    assert tm.expand_term("inner") == DEFAULT_VOCAB + "inner"  # scoped: stored, not applied


def test_later_contexts_override_earlier_and_null_resets() -> None:
    first = {"speed": "https://one.org/speed"}
    second = {"speed": "https://two.org/speed"}
    assert term_map_for([first, second]).expand_term("speed") == "https://two.org/speed"
    reset = term_map_for([first, None])
    assert reset.expand_term("speed") == DEFAULT_VOCAB + "speed"
    assert reset.expand_term("location") == NGSI + "location"


def test_shortest_then_least_term_is_chosen_for_compaction() -> None:
    tm = term_map_for(
        [{"bb": "https://ex.org/x", "a": "https://ex.org/x", "c": "https://ex.org/x"}]
    )
    assert tm.compact_iri("https://ex.org/x") == "a"


def test_compaction_never_yields_a_term_that_means_something_else() -> None:
    tm = term_map_for([{"speed": "https://other.org/speed"}])
    compacted = tm.compact_iri(DEFAULT_VOCAB + "speed")
    assert compacted != "speed"
    assert tm.expand_term(compacted) == DEFAULT_VOCAB + "speed"


@pytest.mark.parametrize(
    "context",
    [
        {"speed": 42},
        {"speed": ["https://ex.org/"]},
        {"@vocab": 7},
        {"speed": {"@id": 3}},
        {"speed": {"@id": "https://ex.org/s", "@type": True}},
        {"speed": {"@id": "https://ex.org/s", "@prefix": "yes"}},
        {"speed": {"@id": "https://ex.org/s", "@bogus": 1}},
        {"": "https://ex.org/empty"},
    ],
)
def test_invalid_definitions_are_bad_request_data(context: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        TermMap([context])


@pytest.mark.parametrize("context", [42, True, ["https://ex.org/c", 7], [["x"]], {"a": 1}])
def test_validate_context_rejects_wrong_shapes(context: Any) -> None:
    with pytest.raises(BadRequestData):
        validate_context(context)


def test_suite_invalid_context_documents_are_rejected() -> None:
    for name in (
        "@context-invalid-number.json",
        "@context-invalid-boolean.json",
        "@context-invalid-array-item.json",
    ):
        with pytest.raises(BadRequestData):
            validate_context(fixture(name)["@context"])
    validate_context(fixture("@context-cached-valid.json")["@context"])
    validate_context(fixture("@context-minimal-valid.json")["@context"])


def test_term_maps_are_memoised_on_content() -> None:
    first = term_map_for([dict(SCHEMA_CONTEXT)])
    second = term_map_for([json.loads(json.dumps(SCHEMA_CONTEXT))])
    assert first is second
    assert term_map_for([]) is core_term_map()
    assert term_map_for([{"x": "https://x.org/"}]) is not first


def test_expansion_is_memoised() -> None:
    tm = term_map_for([SUITE_CONTEXT])
    first = tm.expand_term("somethingNew")
    assert tm.expand_term("somethingNew") is first
    iri = tm.compact_iri(first)
    assert tm.compact_iri(first) is iri


def test_core_document_is_the_packaged_v1_9() -> None:
    document = core_context_document()
    assert document["@context"]["@vocab"] == DEFAULT_VOCAB
    assert document["@context"]["ngsi-ld"] == NGSI


# ---------------------------------------------------------------------------- round trips

_NAME_START = string.ascii_letters
_NAME_REST = string.ascii_letters + string.digits + "_-."
names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(_NAME_START),
    st.text(alphabet=_NAME_REST, max_size=12),
)
CONTEXTS = [
    [],
    [SUITE_CONTEXT],
    [SCHEMA_CONTEXT],
    [SCHEMA_CONTEXT, {"@vocab": "https://example.org/v#"}],
    [{"speed": "https://other.org/speed", "ex": "https://ex.org/", "x": "ex:x"}],
]
iris = st.one_of(
    names.map(lambda n: DEFAULT_VOCAB + n),
    names.map(lambda n: NGSI + n),
    names.map(lambda n: SUITE + n),
    names.map(lambda n: "https://schema.org/" + n),
    names.map(lambda n: "https://ex.org/" + n),
    names.map(lambda n: "https://example.org/v#" + n),
    names.map(lambda n: "urn:ngsi-ld:attr:" + n),
    st.sampled_from(["@id", "@type", NGSI + "location", "https://other.org/speed"]),
)


@given(st.sampled_from(range(len(CONTEXTS))), iris)
def test_expand_after_compact_is_identity(index: int, iri: str) -> None:
    tm = term_map_for(CONTEXTS[index])
    assert tm.expand_term(tm.compact_iri(iri)) == iri


@given(st.sampled_from(range(len(CONTEXTS))), names)
def test_compact_after_expand_gives_the_name_back(index: int, name: str) -> None:
    tm = term_map_for(CONTEXTS[index])
    iri = tm.expand_term(name)
    if iri == tm.vocab + name:
        # an undefined name: vocabulary-relative, so it must come back verbatim
        assert tm.compact_iri(iri) == name
    else:
        # a defined term: it (or a shorter alias of the same IRI) comes back
        assert tm.expand_term(tm.compact_iri(iri)) == iri


@given(names)
def test_core_only_names_come_back_verbatim(name: str) -> None:
    core = core_term_map()
    iri = core.expand_term(name)
    if iri.startswith(DEFAULT_VOCAB):
        assert core.compact_iri(iri) == name
