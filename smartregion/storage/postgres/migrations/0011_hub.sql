-- smartregion PostgreSQL schema, version 11: the ecosystem hub (storage/hub.py).
-- Objects as JSON text with their indexed columns; filter keys (taxonomy terms with ancestors)
-- and search words beside them; endorsements; adoptions now and their history.

CREATE TABLE hub_object (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    kind         text NOT NULL,
    owner        text NOT NULL,
    owner_kind   text NOT NULL,
    status       text NOT NULL,
    title        text NOT NULL,
    created_at   text NOT NULL,
    updated_at   text NOT NULL,
    endorsements bigint NOT NULL DEFAULT 0,
    doc          text NOT NULL
);
CREATE INDEX hub_object_kind_updated ON hub_object (kind, updated_at);
CREATE INDEX hub_object_owner ON hub_object (owner);

-- filter keys, clustered by key: a facet filter reads one contiguous range
CREATE TABLE hub_key (
    term       text NOT NULL,
    object_seq bigint NOT NULL,
    PRIMARY KEY (term, object_seq)
);
CREATE INDEX hub_key_object ON hub_key (object_seq);

-- search words ([0-9a-z]); a prefix search is a range of the primary key, in byte order (C)
CREATE TABLE hub_word (
    word       text COLLATE "C" NOT NULL,
    object_seq bigint NOT NULL,
    PRIMARY KEY (word, object_seq)
);
CREATE INDEX hub_word_object ON hub_word (object_seq);

-- one endorsement per (object, organisation)
CREATE TABLE hub_endorsement (
    object_id text NOT NULL,
    org_id    text NOT NULL,
    at        text NOT NULL,
    actor     text NOT NULL,
    PRIMARY KEY (object_id, org_id)
);

-- a municipality's current adoption stage of a use case
CREATE TABLE hub_adoption (
    object_id    text NOT NULL,
    municipality text NOT NULL,
    stage        text NOT NULL,
    updated_at   text NOT NULL,
    PRIMARY KEY (object_id, municipality)
);

-- every change of an adoption (scale-up over time); stage NULL: withdrawn
CREATE TABLE hub_adoption_event (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_id    text NOT NULL,
    municipality text NOT NULL,
    stage        text,
    at           text NOT NULL,
    actor        text NOT NULL,
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX hub_adoption_event_object ON hub_adoption_event (object_id, seq);

-- follows: an organisation's member asks for a digest of what is new about a term or object
CREATE TABLE hub_follow (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    org_id       text NOT NULL,
    doc          text NOT NULL,
    -- the last digest's time ('' before the first): claimed with compare-and-set
    last_sent_at text NOT NULL DEFAULT ''
);
CREATE INDEX hub_follow_org ON hub_follow (org_id);

-- "not relevant": a follow never shows this object again
CREATE TABLE hub_dismissal (
    follow_id text NOT NULL,
    object_id text NOT NULL,
    at        text NOT NULL,
    actor     text NOT NULL,
    PRIMARY KEY (follow_id, object_id)
);
