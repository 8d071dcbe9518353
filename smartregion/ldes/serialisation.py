"""RDF out: content negotiation and serialisation of stream pages and the catalogue.

Pages are built as pyoxigraph triples and serialised by pyoxigraph (Rust) in the format the
client asks for: N-Quads, N-Triples, Turtle, TriG, JSON-LD (expanded form), and RDF/XML.
Blank-node labels are derived from the content, so one page always renders to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyoxigraph import BlankNode, Literal, NamedNode, RdfFormat, Triple, parse, serialize

from smartregion.core.vocabulary import DCT, LDES, PREFIXES, PROV, RDF, TREE, XSD
from smartregion.errors import NotAcceptable
from smartregion.ldes.fragments import Page
from smartregion.ldes.members import member_iri, member_lines, shape_triples, version_iri
from smartregion.storage.rollups import format_micros

__all__ = [
    "FORMATS",
    "STREAM_FORMATS",
    "StreamDescription",
    "negotiate",
    "page_triples",
    "render",
    "render_page",
    "render_text",
    "stream_triples",
]

#: media type -> pyoxigraph format, in the server's order of preference (the first is the
#: default for `*/*` or no Accept header)
FORMATS: dict[str, RdfFormat] = {
    "text/turtle": RdfFormat.TURTLE,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/n-quads": RdfFormat.N_QUADS,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "application/trig": RdfFormat.TRIG,
    "application/rdf+xml": RdfFormat.RDF_XML,
}
#: what event-stream pages are offered in (the five the LDES community's clients read)
STREAM_FORMATS = tuple(m for m in FORMATS if m != "application/rdf+xml")

_A = NamedNode(RDF + "type")
_TIMESTAMP = NamedNode(PROV + "generatedAtTime")
_DATETIME = NamedNode(XSD + "dateTime")
_VERSION_OF = NamedNode(DCT + "isVersionOf")


def negotiate(accept: str | None, offered: Sequence[str] = STREAM_FORMATS) -> str:
    """The media type to answer with (RFC 9110 §12.5.1: each offered type takes the q of the
    most specific range that matches it; the highest q wins, ties go to the server's order);
    NotAcceptable when the client accepts none of `offered`."""
    if not accept or not accept.strip():
        return offered[0]
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        fields = [f.strip() for f in item.split(";")]
        q = 1.0
        for param in fields[1:]:
            name, _, text = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(text)
                except ValueError:
                    q = 0.0
        ranges.append((fields[0].lower(), q))
    best: tuple[float, int] | None = None
    chosen = ""
    for rank, candidate in enumerate(offered):
        wildcard = candidate.split("/")[0] + "/*"
        specificity, q = -1, 0.0
        for media, value in ranges:
            level = (
                2 if media == candidate else 1 if media == wildcard else 0 if media == "*/*" else -1
            )
            if level > specificity:
                specificity, q = level, value
        if q > 0 and (best is None or (q, -rank) > best):
            best, chosen = (q, -rank), candidate
    if best is None:
        raise NotAcceptable(f"none of {accept!r} is offered; offered: {', '.join(offered)}")
    return chosen


def render_text(ntriples: bytes, media_type: str) -> bytes:
    """An N-Triples document in `media_type` (as is for N-Triples and N-Quads, whose lines
    it already is; parsed and re-serialised by pyoxigraph otherwise)."""
    fmt = FORMATS[media_type]
    if fmt in (RdfFormat.N_TRIPLES, RdfFormat.N_QUADS):
        return ntriples
    return render(parse(ntriples, format=RdfFormat.N_TRIPLES), media_type)


def render_page(
    stream: StreamDescription,
    page: Page,
    media_type: str,
    types: Mapping[str, Sequence[str]] | None = None,
) -> bytes:
    """A page (`page_triples` and its members' lines) in `media_type`; `types`: entity id ->
    its types, stated on each member's feature of interest."""
    head = serialize(page_triples(stream, page), format=RdfFormat.N_TRIPLES)
    assert head is not None
    member = f"<{stream.iri}> <{TREE}member> "
    parts = [head]
    known = types or {}
    for m in page.members:
        lines = member_lines(stream.iri, m, known.get(m.series.entity_id, ()))
        parts.append(f"{member}<{member_iri(stream.iri, m)}> .\n{lines}".encode())
    return render_text(b"".join(parts), media_type)


def render(triples: Iterable[Any], media_type: str) -> bytes:
    """The triples serialised as `media_type` (one of FORMATS)."""
    fmt = FORMATS[media_type]
    if fmt in (RdfFormat.TURTLE, RdfFormat.TRIG, RdfFormat.RDF_XML):
        out = serialize(triples, format=fmt, prefixes=PREFIXES)
    else:
        out = serialize(triples, format=fmt)
    assert out is not None  # no output file given: the bytes are returned
    return out


@dataclass(frozen=True, slots=True)
class StreamDescription:
    """What every page says about its stream: its IRI and the retention of its views."""

    #: the stream IRI (`{base}/ldes/{dataset}`)
    iri: str
    #: days of history kept (0: forever)
    retention_days: int = 0

    @property
    def shape(self) -> str:
        """The IRI of the members' SHACL shape (described on every page)."""
        return self.iri + "#shape"


def _head(stream: StreamDescription) -> list[Triple]:
    s = NamedNode(stream.iri)
    return [
        Triple(s, _A, NamedNode(LDES + "EventStream")),
        Triple(s, NamedNode(LDES + "timestampPath"), _TIMESTAMP),
        Triple(s, NamedNode(LDES + "versionOfPath"), NamedNode(DCT + "isVersionOf")),
        Triple(s, NamedNode(TREE + "shape"), NamedNode(stream.shape)),
        *shape_triples(stream.shape),
    ]


def _retention(stream: StreamDescription, view: NamedNode) -> list[Triple]:
    """`ldes:retentionPolicy` of a view root (LDES §retention): a duration-ago policy for a
    data set with limited history; the latest view keeps one version of each object."""
    out = []
    if view.value.endswith("/latest"):
        latest = NamedNode(view.value + "#latest")
        out += [
            Triple(view, NamedNode(LDES + "retentionPolicy"), latest),
            Triple(latest, _A, NamedNode(LDES + "LatestVersionSubset")),
            Triple(
                latest,
                NamedNode(LDES + "amount"),
                Literal("1", datatype=NamedNode(XSD + "integer")),
            ),
        ]
    if not stream.retention_days:
        return out
    policy = NamedNode(view.value + "#retention")
    return [
        *out,
        Triple(view, NamedNode(LDES + "retentionPolicy"), policy),
        Triple(policy, _A, NamedNode(LDES + "DurationAgoPolicy")),
        Triple(
            policy,
            NamedNode(TREE + "value"),
            Literal(f"P{stream.retention_days}D", datatype=NamedNode(XSD + "duration")),
        ),
    ]


def stream_triples(stream: StreamDescription, views: Sequence[str]) -> list[Triple]:
    """The stream's own description (`GET /ldes/{ds}`): its shape, paths and views. The first
    view is its one `tree:view`; the others are listed with `rdfs:seeAlso`."""
    s = NamedNode(stream.iri)
    out = _head(stream)
    for index, view in enumerate(views):
        node = NamedNode(f"{stream.iri}/{view}")
        if index == 0:
            out.append(Triple(s, NamedNode(TREE + "view"), node))
        else:
            out.append(Triple(s, NamedNode(PREFIXES["rdfs"] + "seeAlso"), node))
        out.append(Triple(node, _A, NamedNode(TREE + "Node")))
        out += _retention(stream, node)
    return out


def page_triples(stream: StreamDescription, page: Page) -> list[Triple]:
    """A page to the letter of TREE/LDES, but for its members (`render_page` adds them, with
    `tree:member` on the stream): the stream with exactly one `tree:view` (this page), each
    relation with exactly one node, path and value."""
    s = NamedNode(stream.iri)
    here = NamedNode(stream.iri + page.ref.path)
    out = _head(stream)
    out.append(Triple(s, NamedNode(TREE + "view"), here))
    out.append(Triple(here, _A, NamedNode(TREE + "Node")))
    if page.ref.after is None and page.ref.after_series is None and not page.ref.parts:
        out += _retention(stream, here)
    for index, relation in enumerate(page.relations):
        node = BlankNode(f"relation{index}")
        value: NamedNode | Literal
        if isinstance(relation.value, str):
            # TREE §sparqlComparators: IRIs compare as simple literals
            path, value = _VERSION_OF, NamedNode(version_iri(stream.iri, int(relation.value)))
        else:
            path, value = _TIMESTAMP, Literal(format_micros(relation.value), datatype=_DATETIME)
        out += [
            Triple(here, NamedNode(TREE + "relation"), node),
            Triple(node, _A, NamedNode(TREE + relation.kind)),
            Triple(node, NamedNode(TREE + "node"), NamedNode(stream.iri + relation.node.path)),
            Triple(node, NamedNode(TREE + "path"), path),
            Triple(node, NamedNode(TREE + "value"), value),
        ]
    return out
