-- The Kaplan–Meier median exit step per probe radius (NULL while more than half the replicates
-- stay), and the trial_results view with it for the first two radii.
ALTER TABLE probe_radii ADD COLUMN median_exit_step DOUBLE PRECISION;
-- The trial_results view this migration once re-created is now made from the measurement
-- catalog at start-up (coordinator/src/store/view.rs).
