-- The stagnation probe's statistics beyond the per-radius ones (science.md §3: distance
-- moments, MSD diffusion, loss excursions, the snapshot cloud's effective dimension, local
-- convexity, the same-basin test and the linear barrier), one row per statistic a trial measured,
-- and the trial_results view with each as a column.
CREATE TABLE probe_statistics (
    trial_id  TEXT NOT NULL REFERENCES results(trial_id),
    name      TEXT NOT NULL,
    value     REAL,          -- NULL when not finite
    PRIMARY KEY (trial_id, name)
);
-- The trial_results view this migration once re-created is now made from the measurement
-- catalog at start-up (coordinator/src/store/view.rs).
