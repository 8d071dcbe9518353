"""Render internal entity documents in the NGSI-LD output representations.

Normalized, concise and simplified (keyValues) JSON (ETSI GS CIM 009 V1.8 §4.5), the GeoJSON
Feature / FeatureCollection (§4.5.16, §4.5.17), with the projections of §4.21 (attrs, pick,
omit, nested per linked entity), inline embedding of linked entities (§4.5.23), the `lang`
conversion of LanguageProperties (§4.15) and `options=sysAttrs` (§4.8).
The output is compacted with the request's `Vocabulary`; the caller adds `@context`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from smartregion.core.entities import NGSI_LD, Vocabulary
from smartregion.core.projection import Projection

__all__ = [
    "RenderOptions",
    "choose_language",
    "linked_targets",
    "render_attribute",
    "render_entity",
    "render_geojson_collection",
    "render_geojson_feature",
]

#: system attributes, returned only with sysAttrs (§4.8, §6.3.11)
_SYSTEM = ("createdAt", "modifiedAt", "deletedAt", "expiresAt")
_GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
_VALUE_MEMBERS = ("value", "object", "languageMap", "json", "vocab", "valueList", "objectList")
_LINKS = ("Relationship", "ListRelationship")

#: the rendered linked entity for an object URI, or None to leave the relationship as it is
Embed = Callable[[str], "dict[str, Any] | None"]


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What a consumer asked for: representation, projection, language, dataset."""

    format: str = "normalized"  # normalized | concise | keyValues (alias: simplified)
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None  # expanded attribute names to keep; None = all
    omit: frozenset[str] = frozenset()  # expanded attribute names to drop (and "scope")
    pick_id: bool = True
    pick_type: bool = True
    lang: str | None = None  # §4.15 language filter, e.g. "fr-CH,fr;q=0.9,*;q=0.5"
    dataset_id: str | None = None  # comma-separated datasetIds; "@none" = default instance
    geometry_property: str | None = None  # expanded IRI; default ngsi-ld location
    projection: Projection | None = None  # §4.21 pick/omit of this level (expanded names)
    join: str | None = None  # §4.5.23 linked entity retrieval: "inline" | "flat" | None
    join_level: int = 1  # how many relationship hops to follow

    @property
    def simplified(self) -> bool:
        """Whether the simplified (keyValues) representation was asked for."""
        return self.format in ("keyValues", "simplified")

    def keeps(self, member: str) -> bool:
        """Whether an entity member (core member name or attribute IRI) is rendered."""
        if self.projection is not None and not self.projection.keeps(member):
            return False
        if member in ("id", "type"):
            return self.pick_id if member == "id" else self.pick_type
        if member == "scope":
            return "scope" not in self.omit and NGSI_LD + "scope" not in self.omit
        if member in _SYSTEM:
            return True
        return (self.attrs is None or member in self.attrs) and member not in self.omit

    def for_linked(self, attribute: str) -> RenderOptions:
        """The options for the entities an attribute links to: same representation, own projection."""
        # NGSI-LD 1.8 §4.21: a nested {…} projects the linked entity; without one it is whole
        nested = self.projection.linked(attribute) if self.projection is not None else None
        return replace(
            self,
            attrs=None,
            omit=frozenset(),
            pick_id=True,
            pick_type=True,
            dataset_id=None,
            projection=nested,
        )


# --------------------------------------------------------------------------------------------
# language selection (§4.15)


def _language_ranges(lang: str) -> list[str]:
    """Parse an Accept-Language-like filter into ranges ordered by quality (RFC 9110 §12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(lang.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(language_map: dict[str, Any], lang: str) -> tuple[str, Any]:
    """Pick (tag, text) from a languageMap for a `lang` filter (§4.15, RFC 4647 matching)."""
    tags = list(language_map)
    lowered = {t.lower(): t for t in tags}
    for wanted in _language_ranges(lang):
        if wanted == "*":
            preferred = [t for t in tags if t != "@none"] or tags
            return preferred[0], language_map[preferred[0]]
        want = wanted.lower()
        if want in lowered:
            tag = lowered[want]
            return tag, language_map[tag]
        # basic filtering (RFC 4647 §3.3.1): "en" matches "en-US"
        for tag in tags:
            if tag.lower().startswith(want + "-"):
                return tag, language_map[tag]
        # lookup (RFC 4647 §3.4): "nl-BE" falls back to "nl"
        parts = want.split("-")
        while len(parts) > 1:
            parts.pop()
            if "-".join(parts) in lowered:
                tag = lowered["-".join(parts)]
                return tag, language_map[tag]
    # §4.15: no match -> the @none value, else any supported language
    tag = "@none" if "@none" in language_map else tags[0]
    return tag, language_map[tag]


# --------------------------------------------------------------------------------------------
# instances


def _compact_values(vocab: Vocabulary, value: Any) -> Any:
    """Compact a @vocab-typed string or list of strings."""
    if isinstance(value, list):
        return [vocab.compact_value(v) for v in value]
    return vocab.compact_value(value)


def _normalized(
    inst: dict[str, Any], vocab: Vocabulary, opts: RenderOptions, embed: Embed | None = None
) -> dict[str, Any]:
    """Render one attribute instance in the normalized representation."""
    out: dict[str, Any] = {}
    kind = inst.get("type")
    converted = kind == "LanguageProperty" and opts.lang is not None and "languageMap" in inst
    if converted:
        # §4.15: a LanguageProperty becomes a Property with the chosen text and its "lang"
        tag, text = choose_language(inst["languageMap"], opts.lang or "*")
        out["type"] = "Property"
        out["value"] = text
        out["lang"] = tag
    elif kind is not None:
        out["type"] = kind
    for key, value in inst.items():
        if key == "type" or (converted and key in ("languageMap", "valueType")):
            continue
        if key in _SYSTEM:
            if opts.sys_attrs:
                out[key] = value
        elif key in ("vocab", "objectType", "valueType", "entityTypeSealed"):
            out[key] = _compact_values(vocab, value)
        elif key == "objectList":
            out[key] = [{"object": uri} for uri in value]
        elif ":" in key:  # sub-attribute: keys of the internal document are IRIs
            out[vocab.compact_iri(key)] = _render_sub(value, vocab, opts)
        else:
            out[key] = value
    if embed is not None:
        _embed_normalized(inst, out, embed)
    return out


def _embed_normalized(inst: dict[str, Any], out: dict[str, Any], embed: Embed) -> None:
    """NGSI-LD 1.8 §4.5.23.2: inline join adds `entity` / `entityList` beside the object(s)."""
    kind = inst.get("type")
    if kind == "Relationship":
        entity = embed(inst["object"])
        if entity is not None:
            out["entity"] = entity
    elif kind == "ListRelationship":
        found = [e for e in (embed(uri) for uri in inst.get("objectList", [])) if e is not None]
        if found:
            out["entityList"] = found


def _render_sub(inst: dict[str, Any], vocab: Vocabulary, opts: RenderOptions) -> Any:
    """Render a sub-attribute in the requested representation."""
    if opts.simplified:
        return _simple(inst, vocab, opts)
    body = _normalized(inst, vocab, opts)
    return _concise(body, bare_ok=True) if opts.format == "concise" else body


def _looks_like_instance(value: Any) -> bool:
    """Whether a concise value would be read back as an attribute instance, not a value."""
    return isinstance(value, dict) and (
        "type" in value or any(member in value for member in _VALUE_MEMBERS)
    )


def _concise(body: dict[str, Any], *, bare_ok: bool) -> Any:
    """Turn a normalized instance into its concise form (§4.5.x.3): drop what is inferable."""
    kind = body.get("type")
    out = dict(body)
    value = out.get("value")
    geometry = (
        isinstance(value, dict)
        and isinstance(value.get("type"), str)
        and value["type"] in _GEOMETRY_TYPES
    )
    if kind == "Property" and geometry:
        return out  # a geometry value would be read back as a GeoProperty: keep the type
    out.pop("type", None)
    if bare_ok and set(out) == {"value"}:
        if kind == "GeoProperty":
            return value  # §4.5.2.3: a bare geometry is a GeoProperty
        if not isinstance(value, dict | list):
            return value
        if isinstance(value, list) and value and not all(_looks_like_instance(v) for v in value):
            return value  # an empty or instance-like array would be read back differently
    return out


def _simple(
    inst: dict[str, Any], vocab: Vocabulary, opts: RenderOptions, embed: Embed | None = None
) -> Any:
    """The simplified (keyValues) value of one instance (§4.5.4)."""
    kind = inst.get("type")
    if kind == "LanguageProperty":
        if opts.lang is not None:
            return choose_language(inst["languageMap"], opts.lang)[1]
        return {"languageMap": inst["languageMap"]}
    if kind == "Relationship":
        # §4.5.23.2: simplified inline join replaces the object URI by the linked entity
        obj = inst.get("object")
        linked = embed(obj) if embed is not None and isinstance(obj, str) else None
        return obj if linked is None else linked
    if kind == "ListRelationship":
        uris = list(inst.get("objectList", []))
        if embed is None:
            return uris
        return [linked if (linked := embed(uri)) is not None else uri for uri in uris]
    if kind == "ListProperty":
        return inst.get("valueList")
    if kind == "JsonProperty":
        return {"json": inst.get("json")}
    if kind == "VocabProperty":
        return {"vocab": _compact_values(vocab, inst.get("vocab"))}
    return inst.get("value")


def _dataset_filter(
    instances: list[dict[str, Any]], dataset_id: str | None
) -> list[dict[str, Any]]:
    """Keep the instances whose datasetId was asked for ("@none" is the default instance)."""
    if dataset_id is None:
        return instances
    wanted = {d.strip() for d in dataset_id.split(",") if d.strip()}
    return [i for i in instances if i.get("datasetId", "@none") in wanted]


def render_attribute(
    name_iri: str,
    instances: list[dict[str, Any]],
    vocab: Vocabulary,
    opts: RenderOptions,
    embed: Embed | None = None,
) -> Any:
    """Render all instances of one attribute: an object, an array, or a simplified value.

    `embed` (inline join, §4.5.23) renders the entity a relationship instance links to.
    """
    del name_iri  # the representation does not depend on the name
    if opts.simplified:
        if len(instances) == 1 and "datasetId" not in instances[0]:
            return _simple(instances[0], vocab, opts, embed)
        # §4.5.4: several instances -> a dataset map keyed by datasetId ("@none" = default)
        return {
            "dataset": {
                inst.get("datasetId", "@none"): _simple(inst, vocab, opts, embed)
                for inst in instances
            }
        }
    bodies = [_normalized(inst, vocab, opts, embed) for inst in instances]
    if opts.format == "concise":
        single = len(bodies) == 1
        rendered: list[Any] = [_concise(b, bare_ok=single) for b in bodies]
    else:
        rendered = list(bodies)
    return rendered[0] if len(rendered) == 1 else rendered


# --------------------------------------------------------------------------------------------
# entities


def _compact_types(types: list[str], vocab: Vocabulary) -> str | list[str]:
    names = [vocab.compact_iri(t) for t in types]
    return names[0] if len(names) == 1 else names


def render_entity(
    doc: dict[str, Any],
    vocab: Vocabulary,
    opts: RenderOptions,
    linked: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render an internal document as compacted NGSI-LD JSON (without @context).

    With `opts.join == "inline"`, the documents in `linked` (by id) are embedded in the
    relationships that point at them, down to `opts.join_level` hops (§4.5.23.2).
    """
    if linked is None or opts.join != "inline":
        return _render(doc, vocab, opts, None)
    return _render_inline(doc, vocab, opts, linked, (doc["id"],))


def _render_inline(
    doc: dict[str, Any],
    vocab: Vocabulary,
    opts: RenderOptions,
    linked: Mapping[str, dict[str, Any]],
    path: tuple[str, ...],
) -> dict[str, Any]:
    """Render with linked entities embedded; `path` holds the ids above, so cycles stop."""
    if len(path) > opts.join_level:
        return _render(doc, vocab, opts, None)

    def embedder(attribute: str) -> Embed:
        child = opts.for_linked(attribute)

        def embed(uri: str) -> dict[str, Any] | None:
            target = linked.get(uri)
            if target is None or uri in path:
                return None
            body = _render_inline(target, vocab, child, linked, (*path, uri))
            return body or None

        return embed

    return _render(doc, vocab, opts, embedder)


def _render(
    doc: dict[str, Any],
    vocab: Vocabulary,
    opts: RenderOptions,
    embedder: Callable[[str], Embed] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    projection = opts.projection  # None on the hot path: no pick/omit asked
    if opts.pick_id and (projection is None or projection.keeps("id")):
        out["id"] = doc["id"]
    if opts.pick_type and (projection is None or projection.keeps("type")):
        out["type"] = _compact_types(doc["type"], vocab)
    scope = doc.get("scope")
    if scope and opts.keeps("scope"):
        out["scope"] = scope[0] if len(scope) == 1 else list(scope)
    if opts.sys_attrs:
        for key in _SYSTEM:
            if key in doc and (projection is None or projection.keeps(key)):
                out[key] = doc[key]
    for iri, instances in doc.get("attrs", {}).items():
        if (opts.attrs is not None and iri not in opts.attrs) or iri in opts.omit:
            continue
        if projection is not None and not projection.keeps(iri):
            continue
        kept = _dataset_filter(instances, opts.dataset_id)
        if kept:
            links = embedder is not None and any(i.get("type") in _LINKS for i in kept)
            embed = embedder(iri) if embedder is not None and links else None
            out[vocab.compact_iri(iri)] = render_attribute(iri, kept, vocab, opts, embed)
    return out


def linked_targets(doc: dict[str, Any], opts: RenderOptions) -> Iterator[tuple[str, str]]:
    """(attribute IRI, object URI) of the relationships the rendering of `doc` shows (§4.5.23)."""
    for iri, instances in doc.get("attrs", {}).items():
        if not opts.keeps(iri):
            continue
        for inst in _dataset_filter(instances, opts.dataset_id):
            kind = inst.get("type")
            if kind not in _LINKS:
                continue
            if kind == "Relationship":
                obj = inst.get("object")
                if isinstance(obj, str):
                    yield iri, obj
            else:
                for obj in inst.get("objectList", []):
                    if isinstance(obj, str):
                        yield iri, obj


def _geometry(doc: dict[str, Any], opts: RenderOptions) -> Any:
    """The Feature geometry: the default instance of the geometry property, else null."""
    iri = opts.geometry_property or NGSI_LD + "location"
    for inst in doc.get("attrs", {}).get(iri, []):
        value = inst.get("value")
        if (
            "datasetId" not in inst
            and inst.get("type") == "GeoProperty"
            and isinstance(value, dict)
            and isinstance(value.get("type"), str)
        ):
            return value
    return None  # §4.5.16.1: no (valid) GeoProperty -> geometry null


def render_geojson_feature(
    doc: dict[str, Any],
    vocab: Vocabulary,
    opts: RenderOptions,
    linked: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render an internal document as a GeoJSON Feature (§4.5.16, §4.5.17)."""
    body = render_entity(doc, vocab, opts, linked)
    feature: dict[str, Any] = {}
    if "id" in body:
        feature["id"] = body.pop("id")
    feature["type"] = "Feature"
    feature["geometry"] = _geometry(doc, opts)
    feature["properties"] = body  # entity type stays inside properties; id never does
    return feature


def render_geojson_collection(
    docs: list[dict[str, Any]],
    vocab: Vocabulary,
    opts: RenderOptions,
    linked: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render internal documents as a GeoJSON FeatureCollection (§4.5.16.3)."""
    return {
        "type": "FeatureCollection",
        "features": [render_geojson_feature(doc, vocab, opts, linked) for doc in docs],
    }
