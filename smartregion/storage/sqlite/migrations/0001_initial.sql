-- smartregion SQLite schema, version 1: current entity state, its query indexes, hosted @contexts.
-- Integer surrogate keys everywhere; IRIs, tenants and organisations are dictionary-encoded.

CREATE TABLE tenant (
    tenant_key  INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- the default tenant (NGSI-LD 1.8 §4.14) always exists
INSERT INTO tenant (tenant_key, name) VALUES (1, '');

CREATE TABLE organisation (
    org_key  INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE
);

-- entity types, attribute names and other IRIs
CREATE TABLE iri (
    iri_key  INTEGER PRIMARY KEY,
    iri      TEXT NOT NULL UNIQUE
);

CREATE TABLE entity (
    entity_key   INTEGER PRIMARY KEY,
    tenant_key   INTEGER NOT NULL,       -- tenant (no FOREIGN KEY: dictionaries never shrink)
    entity_id    TEXT NOT NULL,
    owner_key    INTEGER,                -- organisation
    created_at   TEXT NOT NULL,
    modified_at  TEXT NOT NULL,
    doc          TEXT NOT NULL          -- the internal entity document, JSON
);
CREATE UNIQUE INDEX entity_tenant_id ON entity (tenant_key, entity_id);
-- the rowid is implicitly the last column: a tenant's entities in key order
CREATE INDEX entity_tenant ON entity (tenant_key);

-- multi-typed entities, clustered by (tenant, type) so a type query reads entities in key order
CREATE TABLE entity_type (
    tenant_key  INTEGER NOT NULL,
    type_key    INTEGER NOT NULL,
    entity_key  INTEGER NOT NULL,
    PRIMARY KEY (tenant_key, type_key, entity_key)
) WITHOUT ROWID;
CREATE INDEX entity_type_entity ON entity_type (entity_key);

-- the distinct type sets of a tenant's entities: denormalised into attr_value so that a
-- `type=T&q=…` count is one index range scan, with no join (typeset_key IN the sets having T)
CREATE TABLE typeset (
    typeset_key  INTEGER PRIMARY KEY,
    tenant_key   INTEGER NOT NULL,
    type_keys    TEXT NOT NULL,           -- JSON array of the sorted type IRI keys
    UNIQUE (tenant_key, type_keys)
);

-- one row per target element of each top-level attribute instance (storage/indexing.py)
CREATE TABLE attr_value (
    entity_key  INTEGER NOT NULL,
    attr_key    INTEGER NOT NULL,
    typeset_key INTEGER NOT NULL,
    inst        INTEGER NOT NULL,
    elem        INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    num         REAL,
    txt         TEXT,
    opaque      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_key, attr_key, inst, elem)
) WITHOUT ROWID;
CREATE INDEX attr_value_num ON attr_value (attr_key, typeset_key, num) WHERE num IS NOT NULL;
CREATE INDEX attr_value_txt ON attr_value (attr_key, typeset_key, txt, kind)
    WHERE txt IS NOT NULL;
CREATE INDEX attr_value_opaque ON attr_value (attr_key) WHERE opaque = 1;
-- attributes with several rows per entity (datasetIds, arrays): their counts need DISTINCT
CREATE INDEX attr_value_multi ON attr_value (attr_key) WHERE inst > 0 OR elem > 0;

-- geometry index: the bounding box of each GeoProperty instance
CREATE TABLE geo_item (
    geo_key     INTEGER PRIMARY KEY,
    entity_key  INTEGER NOT NULL,
    attr_key    INTEGER NOT NULL,
    inst        INTEGER NOT NULL,
    x           REAL,                   -- a Point's exact longitude/latitude (NULL otherwise):
    y           REAL                    -- `near` is decided on them without the document
);
CREATE INDEX geo_item_entity ON geo_item (entity_key);
CREATE VIRTUAL TABLE geo_rtree USING rtree (geo_key, min_x, max_x, min_y, max_y);

-- attribute history: one series per (tenant, entity, attribute, datasetId); instances come later
CREATE TABLE series (
    series_key  INTEGER PRIMARY KEY,
    tenant_key  INTEGER NOT NULL,
    entity_id   TEXT NOT NULL,
    attr_key    INTEGER NOT NULL,
    dataset_id  TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_key, entity_id, attr_key, dataset_id)
);

-- hosted and cached @context documents (NGSI-LD 1.8 §5.13)
CREATE TABLE jsonld_context (
    context_id  TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
