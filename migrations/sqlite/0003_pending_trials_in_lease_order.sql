-- Leasing takes pending trials in insertion order (`ORDER BY rowid`). Every SQLite index ends in
-- the rowid, so an index on `state` alone serves that order directly; through `trials_by_state`
-- the lease query sorted every pending trial on each call, and its cost grew with the sweep.
CREATE INDEX trials_pending_in_lease_order ON trials (state);
