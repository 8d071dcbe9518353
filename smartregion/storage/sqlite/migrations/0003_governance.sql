-- smartregion SQLite schema, version 3: governance (organisations, people, keys, mandates,
-- data sets, access requests, agreements, grants) and the hash-chained audit log.
-- Each governance table: creation order (seq), the id, the columns looked up by, and the
-- record as JSON text (small tables; the same SQL runs on both backends).

-- organisations (their id is the owner name of entities)
CREATE TABLE gov_organisation (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    kbo TEXT UNIQUE,
    nis TEXT UNIQUE,
    doc  TEXT NOT NULL
);

-- people; password_hash (argon2id) inside doc
CREATE TABLE gov_person (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    doc  TEXT NOT NULL
);

-- a person's role in an organisation; id = person \x1f org
CREATE TABLE gov_membership (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    person_id TEXT,
    org_id TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_membership_person_id ON gov_membership (person_id);
CREATE INDEX gov_membership_org_id ON gov_membership (org_id);

-- service-account keys: SHA-256 of the key, never the key
CREATE TABLE gov_api_key (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    org_id TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_api_key_org_id ON gov_api_key (org_id);

-- owner lets another organisation write into its data sets
CREATE TABLE gov_mandate (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    owner_org TEXT,
    mandated_org TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_mandate_owner_org ON gov_mandate (owner_org);
CREATE INDEX gov_mandate_mandated_org ON gov_mandate (mandated_org);

-- data sets with their ODRL policy
CREATE TABLE gov_dataset (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    owner_org TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_dataset_owner_org ON gov_dataset (owner_org);

-- requests for access
CREATE TABLE gov_access_request (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    dataset_id TEXT,
    owner_org TEXT,
    requester_org TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_access_request_dataset_id ON gov_access_request (dataset_id);
CREATE INDEX gov_access_request_owner_org ON gov_access_request (owner_org);
CREATE INDEX gov_access_request_requester_org ON gov_access_request (requester_org);

-- agreements: frozen policy copies
CREATE TABLE gov_agreement (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    dataset_id TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_agreement_dataset_id ON gov_agreement (dataset_id);

-- grants (expiry, revocation)
CREATE TABLE gov_grant (
    seq  INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    dataset_id TEXT,
    owner_org TEXT,
    org_id TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX gov_grant_dataset_id ON gov_grant (dataset_id);
CREATE INDEX gov_grant_owner_org ON gov_grant (owner_org);
CREATE INDEX gov_grant_org_id ON gov_grant (org_id);

-- the audit chain (smartregion.core.audit): rows are only ever appended
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,          -- contiguous from 1
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL,             -- JSON, sorted keys
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

-- the chain's head: last seq and hash; its row lock serialises appenders
CREATE TABLE audit_head (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
