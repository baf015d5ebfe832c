-- What the Hessian at Θ̂ predicts of the probe beside what it measured (science.md §3.8), the
-- probe's crossings of each sphere, its MSD curve, the PAC-Bayes flatness and stagnation-localized
-- bounds, the new probe statistics as view columns, and the optional loss-landscape slice.
ALTER TABLE probe_radii ADD COLUMN mean_exits DOUBLE PRECISION;
ALTER TABLE probe_radii ADD COLUMN mean_reentries DOUBLE PRECISION;
ALTER TABLE probe_radii ADD COLUMN predicted_stay_probability DOUBLE PRECISION;
-- JSON: {"step": [...], "msd": [...], "msd_hessian_top": [...], "predicted_msd": [...]}, null
-- where a value is not finite.
ALTER TABLE results ADD COLUMN msd_curve TEXT;

-- The 2-D slice of science.md §3.11: the training loss on a grid × grid square of half-width
-- `extent` (parameter distance) in the plane through Θ̂ along two orthonormal directions, and the
-- probe's snapshots projected on that plane.
CREATE TABLE landscape_slices (
    trial_id    TEXT PRIMARY KEY REFERENCES results(trial_id),
    plane       TEXT NOT NULL,       -- 'pca' or 'random'
    grid        BIGINT NOT NULL,
    extent      DOUBLE PRECISION NOT NULL,
    losses      BYTEA NOT NULL,      -- grid² little-endian f32, row-major, rows along the second direction
    trajectory  TEXT NOT NULL        -- JSON [[replicate, step, a, b], ...], the snapshots in order
);
-- The trial_results view this migration once re-created is now made from the measurement
-- catalog at start-up (coordinator/src/store/view.rs).
