"""JSON-LD term maps: the NGSI-LD subset of context processing, without a JSON-LD processor.

A `TermMap` is built once from a resolved list of context definitions (the members of
`@context` objects, URLs already dereferenced by `smartregion.broker.contexts`) and then
answers term <-> IRI questions with dictionary look-ups. It implements what NGSI-LD payloads
need (ETSI GS CIM 009 V1.8 §5.5.7, JSON-LD 1.1 §4.1-4.3):

- term definitions as strings or objects with `@id` / `@type` (`@id`, `@vocab` coercion);
- `@vocab` (the NGSI-LD default vocabulary unless a user context sets one);
- prefixes and compact IRIs (`schema:name`), absolute IRIs passed through;
- the core context, processed first so its prefixes are visible to user definitions, and
  protected: user redefinitions of its terms are ignored (§5.5.7, the core is `@protected`).

Ignored on purpose: `@base` (terms are vocabulary-relative), `@reverse` terms, `@language`,
`@container` (irrelevant to naming), and scoped contexts, which are kept per term but not
applied (NGSI-LD names never nest contexts).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from smartregion.errors import BadRequestData

__all__ = [
    "CORE_CONTEXT_URL",
    "CORE_CONTEXT_URLS",
    "DEFAULT_VOCAB",
    "TermMap",
    "core_context_document",
    "core_term_map",
    "term_map_for",
    "validate_context",
]

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
#: every published core-context URL; all denote the built-in core (NGSI-LD 1.8 §5.5.7)
CORE_CONTEXT_URLS: frozenset[str] = frozenset(
    {"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"}
    | {f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{m}.jsonld" for m in range(3, 10)}
)
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"

# keys allowed in an expanded term definition (JSON-LD 1.1 §4.2.2 "Create Term Definition")
_TERM_KEYS = frozenset(
    {
        "@id", "@type", "@reverse", "@container", "@context", "@language", "@direction",
        "@nest", "@prefix", "@index", "@protected",
    }
)  # fmt: skip
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")
# memo sizes: bounded so that a client sending endless distinct names cannot grow memory
_MEMO_LIMIT = 100_000
_TERM_MAP_MEMO_LIMIT = 512


@dataclass(frozen=True, slots=True)
class _Term:
    iri: str
    type: str | None = None
    prefix: bool = False
    scoped: Any = None


def _is_absolute(value: str) -> bool:
    scheme, colon, _ = value.partition(":")
    return bool(colon) and _SCHEME.match(scheme) is not None


class _Builder:
    """Create-term-definition over one context object at a time (JSON-LD 1.1 §4.2)."""

    def __init__(self, terms: dict[str, _Term], vocab: str, protected: frozenset[str]) -> None:
        self.terms = terms
        self.vocab = vocab
        self.protected = protected

    def apply(self, local: Mapping[str, Any]) -> None:
        if "@vocab" in local:
            vocab = local["@vocab"]
            if vocab is None:
                # NGSI-LD always has a vocabulary: "unsetting" falls back to the default one
                self.vocab = DEFAULT_VOCAB
            elif isinstance(vocab, str):
                self.vocab = self._expand(vocab, local, {}) if vocab else self.vocab
            else:
                raise BadRequestData(f"invalid @context: @vocab must be a string, not {vocab!r}")
        defined: dict[str, bool] = {}
        for term in local:
            self._define(term, local, defined)

    def _define(self, term: str, local: Mapping[str, Any], defined: dict[str, bool]) -> None:
        state = defined.get(term)
        if state is True:
            return
        if state is False:
            raise BadRequestData(f"invalid @context: cyclic IRI mapping for term {term!r}")
        if term.startswith("@"):
            return  # keywords (@vocab, @base, @version, @protected, ...) and reserved names
        if term == "":
            raise BadRequestData("invalid @context: empty term")
        defined[term] = False
        value = local[term]
        if term in self.protected:
            # NGSI-LD 1.8 §5.5.7: core terms cannot be overridden; ignored, not an error,
            # because user contexts routinely embed copies of (older) core contexts
            defined[term] = True
            return
        if value is None:
            self.terms.pop(term, None)
        elif isinstance(value, str):
            iri = self._expand(value, local, defined)
            simple = ":" not in term and "/" not in term
            self.terms[term] = _Term(iri, prefix=simple and iri.endswith(_GEN_DELIMS))
        elif isinstance(value, Mapping):
            self._define_expanded(term, value, local, defined)
        else:
            raise BadRequestData(f"invalid @context: term {term!r} has an invalid definition")
        defined[term] = True

    def _define_expanded(
        self,
        term: str,
        value: Mapping[str, Any],
        local: Mapping[str, Any],
        defined: dict[str, bool],
    ) -> None:
        for key in value:
            if key not in _TERM_KEYS:
                raise BadRequestData(f"invalid @context: term {term!r} has member {key!r}")
        if "@reverse" in value:
            self.terms.pop(term, None)  # reverse properties have no NGSI-LD meaning
            return
        type_ = value.get("@type")
        if type_ is not None and not isinstance(type_, str):
            raise BadRequestData(f"invalid @context: @type of term {term!r} must be a string")
        if type_ is not None and type_ not in ("@id", "@vocab", "@json", "@none"):
            type_ = self._expand(type_, local, defined)
        prefix = value.get("@prefix", False)
        if not isinstance(prefix, bool):
            raise BadRequestData(f"invalid @context: @prefix of term {term!r} must be a boolean")
        if "@id" in value:
            target = value["@id"]
            if target is None:
                self.terms.pop(term, None)
                return
            if not isinstance(target, str):
                raise BadRequestData(f"invalid @context: @id of term {term!r} must be a string")
            iri = self._expand(target, local, defined)
        elif ":" in term:
            iri = self._expand(term, local, defined)
        else:
            iri = self.vocab + term
        self.terms[term] = _Term(iri, type_, prefix, value.get("@context"))

    def _expand(self, value: str, local: Mapping[str, Any], defined: dict[str, bool]) -> str:
        if value.startswith("@"):
            return value
        if value in local and value not in defined:
            self._define(value, local, defined)
        prefix, colon, suffix = value.partition(":")
        if colon:
            if prefix == "_" or suffix.startswith("//"):
                return value
            if prefix in local and prefix not in defined:
                self._define(prefix, local, defined)
            found = self.terms.get(prefix)
            if found is not None and found.prefix:
                return found.iri + suffix
            if _is_absolute(value):
                return value
        found = self.terms.get(value)
        if found is not None:
            return found.iri
        return self.vocab + value


class TermMap:
    """Cached term <-> IRI mappings of one resolved @context (core context always included)."""

    __slots__ = (
        "_base_compact",
        "_base_expand",
        "_coerced",
        "_compact",
        "_expand",
        "_prefixes",
        "_terms",
        "_vocab",
    )

    def __init__(self, context_docs: Sequence[Mapping[str, Any] | None] = ()) -> None:
        core = _core_terms()
        terms = dict(core.terms)
        builder = _Builder(terms, core.vocab, frozenset(core.terms))
        for doc in _flatten(context_docs):
            if doc is None:
                # a null entry resets the active context (JSON-LD 1.1 §4.1.2 step 5.1)
                builder.terms.clear()
                builder.terms.update(core.terms)
                builder.vocab = core.vocab
                continue
            builder.apply(doc)
        self._terms: dict[str, _Term] = builder.terms
        self._vocab: str = builder.vocab
        self._base_expand: dict[str, str] = {t: d.iri for t, d in self._terms.items()}
        # term selection for compaction: shortest, then lexicographically least (JSON-LD 1.1
        # §4.3 "Inverse Context Creation")
        inverse: dict[str, str] = {}
        for term in sorted(self._terms, key=lambda t: (len(t), t)):
            inverse.setdefault(self._terms[term].iri, term)
        self._base_compact: dict[str, str] = inverse
        self._coerced: frozenset[str] = frozenset(
            d.iri for d in self._terms.values() if d.type in ("@id", "@vocab")
        )
        self._prefixes: tuple[tuple[str, str], ...] = tuple(
            sorted(((d.iri, t) for t, d in self._terms.items() if d.prefix and ":" not in t))
        )
        self._expand: dict[str, str] = dict(self._base_expand)
        self._compact: dict[str, str] = dict(inverse)

    @property
    def vocab(self) -> str:
        """The effective `@vocab` IRI."""
        return self._vocab

    def expand_term(self, term: str) -> str:
        """Expand an attribute name or entity type to its IRI (vocabulary-relative)."""
        iri = self._expand.get(term)
        if iri is None:
            iri = self._expand_miss(term)
        return iri

    def _expand_miss(self, term: str) -> str:
        if term.startswith("@"):
            iri = term
        else:
            prefix, colon, suffix = term.partition(":")
            if not colon:
                iri = self._vocab + term
            elif prefix == "_" or suffix.startswith("//"):
                iri = term
            else:
                found = self._terms.get(prefix)
                if found is not None and found.prefix:
                    iri = found.iri + suffix
                elif _is_absolute(term):
                    iri = term
                else:
                    iri = self._vocab + term
        if len(self._expand) - len(self._base_expand) > _MEMO_LIMIT:
            self._expand = dict(self._base_expand)
        self._expand[term] = iri
        return iri

    def compact_iri(self, iri: str) -> str:
        """Compact an IRI: a term, else a vocabulary-relative name, else `prefix:suffix`, else itself."""
        term = self._compact.get(iri)
        if term is None:
            term = self._compact_miss(iri)
        return term

    def _compact_miss(self, iri: str) -> str:
        result: str | None = None
        vocab = self._vocab
        if iri.startswith(vocab) and len(iri) > len(vocab):
            suffix = iri[len(vocab) :]
            if self.expand_term(suffix) == iri:
                result = suffix
        if result is None:
            best: str | None = None
            for prefix_iri, prefix in self._prefixes:
                if iri.startswith(prefix_iri) and len(iri) > len(prefix_iri):
                    candidate = f"{prefix}:{iri[len(prefix_iri) :]}"
                    if self.expand_term(candidate) != iri:
                        continue
                    if best is None or (len(candidate), candidate) < (len(best), best):
                        best = candidate
            result = iri if best is None else best
        if len(self._compact) - len(self._base_compact) > _MEMO_LIMIT:
            self._compact = dict(self._base_compact)
        self._compact[iri] = result
        return result

    def expand_value(self, value: str) -> str:
        """Expand a VocabProperty value (`@vocab`-relative, same rules as terms)."""
        return self.expand_term(value)

    def compact_value(self, iri: str) -> str:
        """Compact a VocabProperty value (inverse of `expand_value`)."""
        return self.compact_iri(iri)

    def is_id_coerced(self, term_iri: str) -> bool:
        """Whether a term for this IRI declares `"@type": "@id"` or `"@vocab"`."""
        return term_iri in self._coerced

    def type_of(self, term: str) -> str | None:
        """The (expanded) `@type` declared for a term, if any."""
        found = self._terms.get(term)
        return None if found is None else found.type

    def scoped_context(self, term: str) -> Any:
        """The scoped `@context` declared on a term, unapplied (None if there is none)."""
        found = self._terms.get(term)
        return None if found is None else found.scoped

    def __repr__(self) -> str:
        return f"<TermMap {len(self._terms)} terms, @vocab {self._vocab}>"


@dataclass(frozen=True, slots=True)
class _Core:
    terms: dict[str, _Term]
    vocab: str
    document: Mapping[str, Any]


_core: _Core | None = None
_core_map: TermMap | None = None
_memo: dict[bytes, TermMap] = {}
_memo_lock = threading.Lock()


def core_context_document() -> Mapping[str, Any]:
    """The built-in core context document (`{"@context": {...}}`), v1.9."""
    return _core_terms().document


def _core_terms() -> _Core:
    global _core
    if _core is None:
        text = (
            resources.files("smartregion.core")
            .joinpath("contexts/ngsi-ld-core-context-v1.9.jsonld")
            .read_text(encoding="utf-8")
        )
        document = json.loads(text)
        terms: dict[str, _Term] = {}
        builder = _Builder(terms, DEFAULT_VOCAB, frozenset())
        builder.apply(document["@context"])
        _core = _Core(terms, builder.vocab, document)
    return _core


def core_term_map() -> TermMap:
    """The term map of the core context alone (requests without a user @context)."""
    global _core_map
    if _core_map is None:
        _core_map = TermMap(())
    return _core_map


def term_map_for(context_docs: Sequence[Mapping[str, Any] | None]) -> TermMap:
    """The (memoised) term map of resolved context definitions, in order."""
    flat = _flatten(context_docs)
    if not flat:
        return core_term_map()
    try:
        key = orjson.dumps(flat, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise BadRequestData(f"invalid @context: {exc}") from exc
    with _memo_lock:
        found = _memo.get(key)
    if found is not None:
        return found
    term_map = TermMap(flat)
    with _memo_lock:
        if len(_memo) >= _TERM_MAP_MEMO_LIMIT:
            _memo.pop(next(iter(_memo)))
        _memo[key] = term_map
    return term_map


def _flatten(docs: Sequence[Mapping[str, Any] | None]) -> list[Mapping[str, Any] | None]:
    flat: list[Mapping[str, Any] | None] = []
    for doc in docs:
        if doc is not None and "@context" in doc:
            # a whole context document: unwrap its @context (already dereferenced)
            inner = doc["@context"]
            items = inner if isinstance(inner, list) else [inner]
            for item in items:
                if isinstance(item, str):
                    if item in CORE_CONTEXT_URLS:
                        continue
                    raise ValueError(f"unresolved @context reference {item!r}")
                flat.extend(_flatten([item]))
            continue
        if doc is not None and not isinstance(doc, Mapping):
            raise BadRequestData(f"invalid @context entry {doc!r}")
        flat.append(doc)
    return flat


def validate_context(context: Any, *, _depth: int = 0) -> None:
    """Check the shape of an @context value (strings, objects, arrays of them) or raise BadRequestData."""
    # NGSI-LD 1.8 §5.5.6 / §5.13.2.4: an invalid @context is BadRequestData
    if context is None or isinstance(context, str):
        return
    if isinstance(context, Mapping):
        for term, value in context.items():
            if term == "@vocab" and value is not None and not isinstance(value, str):
                raise BadRequestData(f"invalid @context: @vocab must be a string, not {value!r}")
            if term.startswith("@"):
                continue
            if value is not None and not isinstance(value, str | Mapping):
                raise BadRequestData(f"invalid @context: term {term!r} has an invalid definition")
            if isinstance(value, Mapping):
                for key in value:
                    if key not in _TERM_KEYS:
                        raise BadRequestData(f"invalid @context: term {term!r} has member {key!r}")
                for key in ("@id", "@type"):
                    if key in value and value[key] is not None and not isinstance(value[key], str):
                        raise BadRequestData(
                            f"invalid @context: {key} of term {term!r} must be a string"
                        )
        return
    if isinstance(context, list) and _depth == 0:
        for item in context:
            if isinstance(item, list):
                raise BadRequestData("invalid @context: arrays cannot be nested")
            validate_context(item, _depth=1)
        return
    raise BadRequestData(
        f"invalid @context: expected a URL, an object or an array of them, not {context!r}"
    )
