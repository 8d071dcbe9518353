-- smartregion SQLite schema, version 10: the ecosystem hub (storage/hub.py).
-- Objects as JSON text with their indexed columns; filter keys (taxonomy terms with ancestors)
-- and search words beside them; endorsements; adoptions now and their history.

CREATE TABLE hub_object (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    owner        TEXT NOT NULL,
    owner_kind   TEXT NOT NULL,
    status       TEXT NOT NULL,
    title        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    endorsements INTEGER NOT NULL DEFAULT 0,
    doc          TEXT NOT NULL
);
CREATE INDEX hub_object_kind_updated ON hub_object (kind, updated_at);
CREATE INDEX hub_object_owner ON hub_object (owner);

-- filter keys, clustered by key: a facet filter reads one contiguous range
CREATE TABLE hub_key (
    term       TEXT NOT NULL,
    object_seq INTEGER NOT NULL,
    PRIMARY KEY (term, object_seq)
) WITHOUT ROWID;
CREATE INDEX hub_key_object ON hub_key (object_seq);

-- search words ([0-9a-z]); a prefix search is a range of the primary key (byte order)
CREATE TABLE hub_word (
    word       TEXT NOT NULL,
    object_seq INTEGER NOT NULL,
    PRIMARY KEY (word, object_seq)
) WITHOUT ROWID;
CREATE INDEX hub_word_object ON hub_word (object_seq);

-- one endorsement per (object, organisation)
CREATE TABLE hub_endorsement (
    object_id TEXT NOT NULL,
    org_id    TEXT NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    PRIMARY KEY (object_id, org_id)
);

-- a municipality's current adoption stage of a use case
CREATE TABLE hub_adoption (
    object_id    TEXT NOT NULL,
    municipality TEXT NOT NULL,
    stage        TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (object_id, municipality)
);

-- every change of an adoption (scale-up over time); stage NULL: withdrawn
CREATE TABLE hub_adoption_event (
    seq          INTEGER PRIMARY KEY,
    object_id    TEXT NOT NULL,
    municipality TEXT NOT NULL,
    stage        TEXT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX hub_adoption_event_object ON hub_adoption_event (object_id, seq);

-- follows: an organisation's member asks for a digest of what is new about a term or object
CREATE TABLE hub_follow (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    org_id       TEXT NOT NULL,
    doc          TEXT NOT NULL,
    -- the last digest's time ('' before the first): claimed with compare-and-set
    last_sent_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX hub_follow_org ON hub_follow (org_id);

-- "not relevant": a follow never shows this object again
CREATE TABLE hub_dismissal (
    follow_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    PRIMARY KEY (follow_id, object_id)
);
