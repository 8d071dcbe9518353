-- smartregion SQLite schema, version 11: "not relevant" feedback on hub matches
-- (storage/matchfeedback.py). One row per (organisation, challenge, solution): the pair is hidden
-- from that organisation's members in both directions, and kept as feedback for the matching.

CREATE TABLE hub_match_dismissal (
    org_id       TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    solution_id  TEXT NOT NULL,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    PRIMARY KEY (org_id, challenge_id, solution_id)
);
CREATE INDEX hub_match_dismissal_challenge ON hub_match_dismissal (challenge_id);
CREATE INDEX hub_match_dismissal_solution ON hub_match_dismissal (solution_id);
