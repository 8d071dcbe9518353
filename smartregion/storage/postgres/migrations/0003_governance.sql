-- smartregion PostgreSQL schema, version 3: governance (organisations, people, keys, mandates,
-- data sets, access requests, agreements, grants) and the hash-chained audit log.
-- Each governance table: creation order (seq), the id, the columns looked up by, and the
-- record as JSON text (small tables; the same SQL runs on both backends).

-- organisations (their id is the owner name of entities)
CREATE TABLE gov_organisation (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    kbo text UNIQUE,
    nis text UNIQUE,
    doc  text NOT NULL
);

-- people; password_hash (argon2id) inside doc
CREATE TABLE gov_person (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    email text UNIQUE,
    doc  text NOT NULL
);

-- a person's role in an organisation; id = person \x1f org
CREATE TABLE gov_membership (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    person_id text,
    org_id text,
    doc  text NOT NULL
);
CREATE INDEX gov_membership_person_id ON gov_membership (person_id);
CREATE INDEX gov_membership_org_id ON gov_membership (org_id);

-- service-account keys: SHA-256 of the key, never the key
CREATE TABLE gov_api_key (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    org_id text,
    doc  text NOT NULL
);
CREATE INDEX gov_api_key_org_id ON gov_api_key (org_id);

-- owner lets another organisation write into its data sets
CREATE TABLE gov_mandate (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    owner_org text,
    mandated_org text,
    doc  text NOT NULL
);
CREATE INDEX gov_mandate_owner_org ON gov_mandate (owner_org);
CREATE INDEX gov_mandate_mandated_org ON gov_mandate (mandated_org);

-- data sets with their ODRL policy
CREATE TABLE gov_dataset (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    owner_org text,
    doc  text NOT NULL
);
CREATE INDEX gov_dataset_owner_org ON gov_dataset (owner_org);

-- requests for access
CREATE TABLE gov_access_request (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    dataset_id text,
    owner_org text,
    requester_org text,
    doc  text NOT NULL
);
CREATE INDEX gov_access_request_dataset_id ON gov_access_request (dataset_id);
CREATE INDEX gov_access_request_owner_org ON gov_access_request (owner_org);
CREATE INDEX gov_access_request_requester_org ON gov_access_request (requester_org);

-- agreements: frozen policy copies
CREATE TABLE gov_agreement (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    dataset_id text,
    doc  text NOT NULL
);
CREATE INDEX gov_agreement_dataset_id ON gov_agreement (dataset_id);

-- grants (expiry, revocation)
CREATE TABLE gov_grant (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    dataset_id text,
    owner_org text,
    org_id text,
    doc  text NOT NULL
);
CREATE INDEX gov_grant_dataset_id ON gov_grant (dataset_id);
CREATE INDEX gov_grant_owner_org ON gov_grant (owner_org);
CREATE INDEX gov_grant_org_id ON gov_grant (org_id);

-- the audit chain (smartregion.core.audit): rows are only ever appended
CREATE TABLE audit_log (
    seq        bigint PRIMARY KEY,          -- contiguous from 1
    at         text NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    subject    text NOT NULL,
    detail     text NOT NULL,             -- JSON, sorted keys
    prev_hash  text NOT NULL,
    hash       text NOT NULL
);

-- the chain's head: last seq and hash; its row lock serialises appenders
CREATE TABLE audit_head (
    one   integer PRIMARY KEY CHECK (one = 1),
    seq   bigint NOT NULL,
    hash  text NOT NULL
);
