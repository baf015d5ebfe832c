-- The landscape slices of the sweep named $1 in grid order, each with its trial's width and
-- seed and the first probe radius.
SELECT l.trial_id, t.width, t.seed, l.plane, l.grid, l.extent, l.losses, l.trajectory,
       p.radius
FROM landscape_slices l
JOIN trials t ON t.id = l.trial_id
LEFT JOIN probe_radii p ON p.trial_id = l.trial_id AND p.radius_index = 0
WHERE t.sweep = $1
ORDER BY t.ordinal
