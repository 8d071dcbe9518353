"""The RDF namespaces the platform publishes and reads (LDES, TREE, SOSA, DCAT-AP, ...).

One place for the IRIs, so the event streams, the catalogue and the replication client
agree on every term. Values are namespace prefixes; a term is `NS + "localName"`.
"""

from __future__ import annotations

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
# LDES (SEMICeu/LinkedDataEventStreams) and TREE (TREEcg/specification)
LDES = "https://w3id.org/ldes#"
TREE = "https://w3id.org/tree#"
# W3C SOSA/SSN, QUDT, GeoSPARQL, PROV-O, Dublin Core terms
SOSA = "http://www.w3.org/ns/sosa/"
SSN = "http://www.w3.org/ns/ssn/"
QUDT = "http://qudt.org/schema/qudt/"
GEO = "http://www.opengis.net/ont/geosparql#"
PROV = "http://www.w3.org/ns/prov#"
DCT = "http://purl.org/dc/terms/"
# DCAT, DCAT-AP Vlaanderen, vCard, FOAF, ADMS, SHACL
DCAT = "http://www.w3.org/ns/dcat#"
DCATAPVL = "https://data.vlaanderen.be/ns/metadata-dcat#"
#: the metadata-dcat namespace as the DCAT-AP Vlaanderen 2.0 SHACL shapes spell it (http)
MDCAT = "http://data.vlaanderen.be/ns/metadata-dcat#"
SCHEMA = "http://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
VCARD = "http://www.w3.org/2006/vcard/ns#"
FOAF = "http://xmlns.com/foaf/0.1/"
ADMS = "http://www.w3.org/ns/adms#"
SH = "http://www.w3.org/ns/shacl#"
# NGSI-LD core vocabulary
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"

#: prefixes for Turtle/TriG output and JSON-LD contexts
PREFIXES: dict[str, str] = {
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "ldes": LDES,
    "tree": TREE,
    "sosa": SOSA,
    "ssn": SSN,
    "qudt": QUDT,
    "geo": GEO,
    "prov": PROV,
    "dct": DCT,
    "dcat": DCAT,
    "vcard": VCARD,
    "foaf": FOAF,
    "adms": ADMS,
    "sh": SH,
    "mdcat": MDCAT,
    "schema": SCHEMA,
    "skos": SKOS,
    "ngsi-ld": NGSI_LD,
}
