"""The DCAT-AP Vlaanderen 2.0 catalogue of the platform's data sets (`GET /catalog`).

The platform is one `dcat:Catalog`; each data set the caller may read is a `dcat:Dataset`
published by its owning organisation (`dct:publisher`, a `dct:Agent`), with its licence,
access rights, contact point, theme (the Belgian data-theme code list the profile names),
spatial coverage (its scope, and the bounding box of its entities' geometries as the reader
sees them: `dcat:bbox` and `dcat:centroid` as GeoSPARQL WKT, GeoDCAT-AP's encoding) and temporal
coverage (from its first published member, or its retention cutoff). Its event stream is both a `dcat:Distribution` (access URL) and the
`dcat:DataService` behind it (`dct:type ldes:EventStream`, endpoint = the stream IRI,
conforming to the LDES specification). The shapes the catalogue is tested against are the
official DCAT-AP Vlaanderen 2.0 SHACL shapes (tests/fixtures/dcat/).

`mdcat:statuut` ("on what basis it is available") takes a value of the GDI-Vlaanderen keyword
list: open data sets and their services are VLOPENDATA / VLOPENDATASERVICE; the list has no
value for data shared under conditions, so restricted and private ones carry none.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyoxigraph import BlankNode, Literal, NamedNode, Triple

from smartregion.core.vocabulary import (
    ADMS,
    DCAT,
    DCT,
    FOAF,
    GEO,
    LDES,
    MDCAT,
    RDF,
    SCHEMA,
    SKOS,
    VCARD,
    XSD,
)
from smartregion.storage.governance import Dataset, Organisation
from smartregion.storage.rollups import format_micros

__all__ = [
    "ACCESS_RIGHTS", "THEMES", "CatalogInfo", "DatasetEntry", "catalog_triples", "extent_wkt",
]  # fmt: skip

#: platform theme -> Belgian data-theme code (the code list DCAT-AP Vlaanderen 2.0 names)
THEMES = {
    "mobility": "TRAN", "environment": "ENVI", "living": "REGI", "people": "SOCI",
    "government": "GOVE", "economy": "ECON",
}  # fmt: skip
_THEME_BASE = "https://vocab.belgif.be/auth/datatheme/"
#: policy kind -> EU access-right authority
ACCESS_RIGHTS = {
    "open": "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
    "restricted": "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
    "private": "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC",
}
_STATUUT = "https://metadata.vlaanderen.be/id/GDI-Vlaanderen-Trefwoorden/"
_LDES_SPEC = "https://w3id.org/ldes/specification"

_A = NamedNode(RDF + "type")
_ANY_URI = NamedNode(XSD + "anyURI")
_DATE_TIME = NamedNode(XSD + "dateTime")
_WKT = NamedNode(GEO + "wktLiteral")


def extent_wkt(extent: tuple[float, float, float, float]) -> tuple[str, str]:
    """A bounding box (west, south, east, north) as GeoSPARQL WKT: its polygon (a point when
    it has no area) and its centre."""

    def num(value: float) -> str:
        return f"{value:.6f}".rstrip("0").rstrip(".")

    west, south, east, north = extent
    centre = f"POINT({num((west + east) / 2)} {num((south + north) / 2)})"
    if num(west) == num(east) and num(south) == num(north):
        return centre, centre
    ring = [(west, south), (east, south), (east, north), (west, north), (west, south)]
    return "POLYGON((" + ", ".join(f"{num(x)} {num(y)}" for x, y in ring) + "))", centre


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    """The catalogue's own description (settings `catalog_*`)."""

    base: str
    title: str
    description: str
    publisher: Organisation | None
    license: str
    contact_email: str = ""


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """A data set to list: the record, its owner, the start of its coverage (µs; None:
    nothing published yet) and its spatial extent."""

    dataset: Dataset
    owner: Organisation | None
    start: int | None = None
    #: bounding box of its geometries (west, south, east, north; None: it has none)
    extent: tuple[float, float, float, float] | None = None


def _lit(text: str, lang: str = "nl") -> Literal:
    return Literal(text, language=lang)


def _one_text(texts: dict[str, str], fallback: str) -> Literal:
    """One language-tagged text (the profile allows one title and one description): Dutch
    first, then English, then any."""
    for lang in ("nl", "en", *sorted(texts)):
        if texts.get(lang):
            return _lit(texts[lang], lang)
    return _lit(fallback)


def _agent(base: str, org_id: str, org: Organisation | None) -> tuple[NamedNode, list[Triple]]:
    node = NamedNode(f"{base}/organisations/{org_id}")
    return node, [
        Triple(node, _A, NamedNode(DCT + "Agent")),
        Triple(node, _A, NamedNode(FOAF + "Agent")),
        Triple(node, NamedNode(FOAF + "name"), _lit(org.name if org else org_id)),
    ]


def _contact(
    base: str, org_id: str, org: Organisation | None, email: str
) -> tuple[NamedNode, list[Triple]]:
    node = NamedNode(f"{base}/organisations/{org_id}#contact")
    out = [
        Triple(node, _A, NamedNode(VCARD + "Organization")),
        Triple(node, _A, NamedNode(VCARD + "Kind")),
        Triple(node, _A, NamedNode(SCHEMA + "ContactPoint")),
        Triple(node, NamedNode(VCARD + "fn"), Literal(org.name if org else org_id)),
    ]
    if email:
        out.append(Triple(node, NamedNode(VCARD + "hasEmail"), NamedNode("mailto:" + email)))
    return node, out


def _concept(iri: str) -> tuple[NamedNode, list[Triple]]:
    node = NamedNode(iri)
    return node, [Triple(node, _A, NamedNode(SKOS + "Concept"))]


def _license(iri: str) -> tuple[NamedNode, list[Triple]]:
    node = NamedNode(iri)
    return node, [Triple(node, _A, NamedNode(DCT + "LicenseDocument"))]


def catalog_triples(info: CatalogInfo, entries: list[DatasetEntry]) -> list[Triple]:
    """The catalogue (see the module docstring)."""
    base = info.base
    cat = NamedNode(f"{base}/catalog")
    publisher_id = info.publisher.id if info.publisher else "platform"
    agent, out = _agent(base, publisher_id, info.publisher)
    contact, more = _contact(base, publisher_id, info.publisher, info.contact_email)
    out += more
    lic, more = _license(info.license)
    out += more
    out += [
        Triple(cat, _A, NamedNode(DCAT + "Catalog")),
        Triple(cat, NamedNode(DCT + "title"), _lit(info.title)),
        Triple(cat, NamedNode(DCT + "description"), _lit(info.description)),
        Triple(cat, NamedNode(DCT + "identifier"), Literal(f"{base}/catalog")),
        Triple(cat, NamedNode(DCT + "publisher"), agent),
        Triple(cat, NamedNode(DCAT + "contactPoint"), contact),
        Triple(cat, NamedNode(DCT + "license"), lic),
    ]
    for entry in entries:
        out += _dataset_triples(info, cat, entry)
    return out


def _dataset_triples(info: CatalogInfo, cat: NamedNode, entry: DatasetEntry) -> list[Triple]:
    base, ds = info.base, entry.dataset
    node = NamedNode(f"{base}/catalog/datasets/{ds.id}")
    stream = f"{base}/ldes/{ds.id}"
    service = NamedNode(f"{stream}#service")
    distribution = NamedNode(f"{base}/catalog/datasets/{ds.id}#ldes")
    agent, out = _agent(base, ds.owner_org, entry.owner)
    contact, more = _contact(base, ds.owner_org, entry.owner, "")
    out += more
    access, more = _concept(ACCESS_RIGHTS.get(ds.policy_kind, ACCESS_RIGHTS["private"]))
    out += more
    lic, more = _license(ds.license or info.license)
    out += more
    ident = BlankNode(f"id_{ds.id}".replace(":", "_").replace(".", "_").replace("-", "_"))
    title = _one_text(ds.title, ds.id)
    description = _one_text(ds.description, title.value)
    out += [
        Triple(cat, NamedNode(DCAT + "dataset"), node),
        Triple(cat, NamedNode(DCAT + "service"), service),
        Triple(node, _A, NamedNode(DCAT + "Dataset")),
        Triple(node, _A, NamedNode(DCAT + "Resource")),
        Triple(node, NamedNode(DCT + "identifier"), ident),
        Triple(ident, _A, NamedNode(ADMS + "Identifier")),
        Triple(ident, NamedNode(SKOS + "notation"), Literal(ds.id)),
        Triple(node, NamedNode(DCT + "title"), title),
        Triple(node, NamedNode(DCT + "description"), description),
        Triple(node, NamedNode(DCT + "publisher"), agent),
        Triple(node, NamedNode(DCAT + "contactPoint"), contact),
        Triple(node, NamedNode(DCT + "accessRights"), access),
        Triple(node, NamedNode(DCT + "license"), lic),
        Triple(node, NamedNode(DCAT + "distribution"), distribution),
    ]
    if ds.created_at:
        out.append(
            Triple(node, NamedNode(DCT + "issued"), Literal(ds.created_at, datatype=_DATE_TIME))
        )
    if ds.modified_at:
        out.append(
            Triple(node, NamedNode(DCT + "modified"), Literal(ds.modified_at, datatype=_DATE_TIME))
        )
    if ds.theme in THEMES:
        theme, more = _concept(_THEME_BASE + THEMES[ds.theme])
        out += [Triple(node, NamedNode(DCAT + "theme"), theme), *more]
        out.append(Triple(node, NamedNode(DCAT + "keyword"), _lit(ds.theme, "en")))
    if ds.scope or entry.extent is not None:
        place = BlankNode(f"{ident.value}_spatial")
        out += [
            Triple(node, NamedNode(DCT + "spatial"), place),
            Triple(place, _A, NamedNode(DCT + "Location")),
        ]
        if ds.scope:
            out.append(Triple(place, NamedNode(SKOS + "prefLabel"), _lit(ds.scope, "nl")))
        if entry.extent is not None:
            bbox, centroid = extent_wkt(entry.extent)
            out += [
                Triple(place, NamedNode(DCAT + "bbox"), Literal(bbox, datatype=_WKT)),
                Triple(place, NamedNode(DCAT + "centroid"), Literal(centroid, datatype=_WKT)),
            ]
    if entry.start is not None:
        period = BlankNode(f"{ident.value}_temporal")
        out += [
            Triple(node, NamedNode(DCT + "temporal"), period),
            Triple(period, _A, NamedNode(DCT + "PeriodOfTime")),
            Triple(period, NamedNode(DCAT + "startDate"),
                   Literal(format_micros(entry.start), datatype=_DATE_TIME)),
        ]  # fmt: skip
    spec = NamedNode(_LDES_SPEC)
    out += [
        Triple(spec, _A, NamedNode(DCT + "Standard")),
        # the stream as a distribution of the data set ...
        Triple(distribution, _A, NamedNode(DCAT + "Distribution")),
        Triple(distribution, NamedNode(DCT + "identifier"), Literal(stream)),
        Triple(distribution, NamedNode(DCT + "title"), _lit(f"{title.value} (LDES)", title.language or "nl")),
        Triple(distribution, NamedNode(DCAT + "accessURL"), Literal(stream, datatype=_ANY_URI)),
        Triple(distribution, NamedNode(DCAT + "accessService"), service),
        Triple(distribution, NamedNode(DCT + "license"), lic),
        Triple(distribution, NamedNode(DCT + "conformsTo"), spec),
        Triple(distribution, NamedNode(DCT + "type"), NamedNode(LDES + "EventStream")),
        # ... served by a data service: the event stream's endpoint
        Triple(service, _A, NamedNode(DCAT + "DataService")),
        Triple(service, _A, NamedNode(DCAT + "Resource")),
        Triple(service, NamedNode(DCT + "type"), NamedNode(LDES + "EventStream")),
        Triple(service, NamedNode(DCT + "identifier"), Literal(stream)),
        Triple(service, NamedNode(DCT + "title"), _lit(f"{title.value} (LDES)", title.language or "nl")),
        Triple(service, NamedNode(DCAT + "endpointURL"), Literal(stream, datatype=_ANY_URI)),
        Triple(service, NamedNode(DCAT + "endpointDescription"), Literal(stream, datatype=_ANY_URI)),
        Triple(service, NamedNode(DCAT + "servesDataset"), node),
        Triple(service, NamedNode(DCT + "conformsTo"), spec),
        Triple(service, NamedNode(DCT + "publisher"), agent),
        Triple(service, NamedNode(DCAT + "contactPoint"), contact),
        Triple(service, NamedNode(DCT + "accessRights"), access),
        Triple(service, NamedNode(DCT + "license"), lic),
    ]  # fmt: skip
    if ds.policy_kind == "open":
        for subject, code in ((node, "VLOPENDATA"), (service, "VLOPENDATASERVICE")):
            statuut, more = _concept(_STATUUT + code)
            out += [Triple(subject, NamedNode(MDCAT + "statuut"), statuut), *more]
    return out
