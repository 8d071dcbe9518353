-- smartregion PostgreSQL schema, version 12: "not relevant" feedback on hub matches
-- (storage/matchfeedback.py). One row per (organisation, challenge, solution): the pair is hidden
-- from that organisation's members in both directions, and kept as feedback for the matching.

CREATE TABLE hub_match_dismissal (
    org_id       text NOT NULL,
    challenge_id text NOT NULL,
    solution_id  text NOT NULL,
    at           text NOT NULL,
    actor        text NOT NULL,
    PRIMARY KEY (org_id, challenge_id, solution_id)
);
CREATE INDEX hub_match_dismissal_challenge ON hub_match_dismissal (challenge_id);
CREATE INDEX hub_match_dismissal_solution ON hub_match_dismissal (solution_id);
