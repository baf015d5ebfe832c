-- Trial counts by state per sweep, oldest sweep first: every sweep when $1 is NULL, else the
-- sweep named $1. The same text on SQLite and PostgreSQL.
SELECT s.name, s.trial_count, s.duplicate_reports,
       COUNT(t.id) FILTER (WHERE t.state = 'pending') AS pending,
       COUNT(t.id) FILTER (WHERE t.state = 'leased') AS leased,
       COUNT(t.id) FILTER (WHERE t.state = 'done') AS done,
       COUNT(t.id) FILTER (WHERE t.state = 'failed') AS failed,
       COUNT(r.trial_id) FILTER (WHERE r.outcome = 'diverged') AS diverged
FROM sweeps s
LEFT JOIN trials t ON t.sweep = s.name
LEFT JOIN results r ON r.trial_id = t.id
WHERE CAST($1 AS TEXT) IS NULL OR s.name = $1
GROUP BY s.name
ORDER BY MIN(s.created_at_ms), s.name
