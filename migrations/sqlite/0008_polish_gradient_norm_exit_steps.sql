-- The full-batch polish after SGD (its number of gradient-descent steps), the gradient norm
-- ||∇R̂_n|| at the point the probe starts from, each probe replicate's exit step per radius (a
-- JSON array, 0 for a replicate that stayed: what pooled Kaplan–Meier curves are built from), and
-- the trial_results view with them (exit steps for the first radius).
ALTER TABLE results ADD COLUMN polish_steps INTEGER;
ALTER TABLE probe_radii ADD COLUMN replicate_exit_steps TEXT;
ALTER TABLE results ADD COLUMN gradient_norm REAL;
-- The trial_results view this migration once re-created is now made from the measurement
-- catalog at start-up (coordinator/src/store/view.rs).
