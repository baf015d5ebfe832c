-- The bounds of a sweep's trials whose capacity is infinite (a margin γ ≤ 0), stored as NULL:
-- each catalog bound by its name, and the spectral (BFT) capacity of the results row as
-- 'spectral'. $1 is the sweep's name.
SELECT b.trial_id, b.name
FROM bounds b
JOIN trials t ON t.id = b.trial_id
WHERE t.sweep = $1 AND b.capacity IS NULL
UNION ALL
SELECT r.trial_id, 'spectral' AS name
FROM results r
JOIN trials t ON t.id = r.trial_id
WHERE t.sweep = $1 AND r.spectral_capacity IS NULL AND r.margin_gamma <= 0
