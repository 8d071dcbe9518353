"""Render internal entity documents in the NGSI-LD output representations.

Normalized, concise and simplified (keyValues) JSON (ETSI GS CIM 009 V1.8 §4.5), the GeoJSON
Feature / FeatureCollection (§4.5.16, §4.5.17), with the projections of §4.21 (attrs, pick,
omit), the `lang` conversion of LanguageProperties (§4.15) and `options=sysAttrs` (§4.8).
The output is compacted with the request's `Vocabulary`; the caller adds `@context`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartregion.core.entities import NGSI_LD, Vocabulary

__all__ = [
    "RenderOptions",
    "choose_language",
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

    @property
    def simplified(self) -> bool:
        """Whether the simplified (keyValues) representation was asked for."""
        return self.format in ("keyValues", "simplified")


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


def _normalized(inst: dict[str, Any], vocab: Vocabulary, opts: RenderOptions) -> dict[str, Any]:
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
    return out


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


def _simple(inst: dict[str, Any], vocab: Vocabulary, opts: RenderOptions) -> Any:
    """The simplified (keyValues) value of one instance (§4.5.4)."""
    kind = inst.get("type")
    if kind == "LanguageProperty":
        if opts.lang is not None:
            return choose_language(inst["languageMap"], opts.lang)[1]
        return {"languageMap": inst["languageMap"]}
    if kind == "Relationship":
        return inst.get("object")
    if kind == "ListRelationship":
        return list(inst.get("objectList", []))
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
    name_iri: str, instances: list[dict[str, Any]], vocab: Vocabulary, opts: RenderOptions
) -> Any:
    """Render all instances of one attribute: an object, an array, or a simplified value."""
    del name_iri  # the representation does not depend on the name
    if opts.simplified:
        if len(instances) == 1 and "datasetId" not in instances[0]:
            return _simple(instances[0], vocab, opts)
        # §4.5.4: several instances -> a dataset map keyed by datasetId ("@none" = default)
        return {
            "dataset": {
                inst.get("datasetId", "@none"): _simple(inst, vocab, opts) for inst in instances
            }
        }
    bodies = [_normalized(inst, vocab, opts) for inst in instances]
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


def render_entity(doc: dict[str, Any], vocab: Vocabulary, opts: RenderOptions) -> dict[str, Any]:
    """Render an internal document as compacted NGSI-LD JSON (without @context)."""
    out: dict[str, Any] = {}
    if opts.pick_id:
        out["id"] = doc["id"]
    if opts.pick_type:
        out["type"] = _compact_types(doc["type"], vocab)
    scope = doc.get("scope")
    if scope and "scope" not in opts.omit and NGSI_LD + "scope" not in opts.omit:
        out["scope"] = scope[0] if len(scope) == 1 else list(scope)
    if opts.sys_attrs:
        for key in _SYSTEM:
            if key in doc:
                out[key] = doc[key]
    for iri, instances in doc.get("attrs", {}).items():
        if (opts.attrs is not None and iri not in opts.attrs) or iri in opts.omit:
            continue
        kept = _dataset_filter(instances, opts.dataset_id)
        if kept:
            out[vocab.compact_iri(iri)] = render_attribute(iri, kept, vocab, opts)
    return out


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
    doc: dict[str, Any], vocab: Vocabulary, opts: RenderOptions
) -> dict[str, Any]:
    """Render an internal document as a GeoJSON Feature (§4.5.16, §4.5.17)."""
    body = render_entity(doc, vocab, opts)
    feature: dict[str, Any] = {}
    if "id" in body:
        feature["id"] = body.pop("id")
    feature["type"] = "Feature"
    feature["geometry"] = _geometry(doc, opts)
    feature["properties"] = body  # entity type stays inside properties; id never does
    return feature


def render_geojson_collection(
    docs: list[dict[str, Any]], vocab: Vocabulary, opts: RenderOptions
) -> dict[str, Any]:
    """Render internal documents as a GeoJSON FeatureCollection (§4.5.16.3)."""
    return {
        "type": "FeatureCollection",
        "features": [render_geojson_feature(doc, vocab, opts) for doc in docs],
    }
