-- One trial's state, attempts, holder, last error, recorder and retry count, by its id ($1).
SELECT t.id, t.sweep, t.state, CAST(t.attempts AS BIGINT) AS attempts, t.worker_id,
       t.last_error, r.worker_id AS recorded_by,
       (SELECT COUNT(*) FROM trial_retries h WHERE h.trial_id = t.id) AS retries
FROM trials t LEFT JOIN results r ON r.trial_id = t.id
WHERE t.id = $1
