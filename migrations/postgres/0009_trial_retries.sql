-- Failed trials put back to pending by `coordinator retry`: one row per trial and retry, with
-- the attempts it had used and the error it had failed with.
CREATE TABLE trial_retries (
    trial_id      TEXT NOT NULL REFERENCES trials(id),
    retried_at_ms BIGINT NOT NULL,
    attempts      INTEGER NOT NULL,
    last_error    TEXT
);

CREATE INDEX trial_retries_by_trial ON trial_retries (trial_id);
