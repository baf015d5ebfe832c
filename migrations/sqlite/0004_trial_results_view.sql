-- One wide row per trial: its sweep, grid parameters and state, and every scalar measurement once
-- it has a result, with the stagnation statistics of the first two probe radii. Reports and
-- exports read it; it is also the table to query by hand (see the README).
CREATE VIEW trial_results AS
SELECT t.sweep, t.id AS trial_id, t.ordinal, t.state, t.attempts, t.last_error,
       t.width, t.depth, t.learning_rate, t.noise_sigma, t.probe_noise_sigma, t.batch_size, t.seed,
       r.worker_id, r.outcome, r.diverged_phase,
       r.train_loss, r.test_loss, r.train_error, r.test_error, r.loss_gap, r.error_gap,
       r.steps, r.reached_target, r.parameter_count, r.train_size,
       r.margin_gamma, r.mean_input_norm_squared,
       r.vc_capacity, r.spectral_capacity, r.vc_gap_estimate, r.spectral_gap_estimate,
       r.minimum_norm, r.stay_fraction, r.max_distance, r.final_distance,
       p1.radius AS radius_1, p1.stay_probability AS stay_probability_1,
       p1.mean_exit_step AS mean_exit_step_1, p1.occupancy AS occupancy_1,
       p2.radius AS radius_2, p2.stay_probability AS stay_probability_2,
       p2.mean_exit_step AS mean_exit_step_2, p2.occupancy AS occupancy_2,
       r.hessian_lambda_max, r.hessian_lambda_min, r.hessian_trace, r.stability_margin,
       r.hessian_top_eigenvalues,
       r.train_seconds, r.probe_seconds, r.measure_seconds, r.recorded_at_ms,
       t.params
FROM trials t
LEFT JOIN results r ON r.trial_id = t.id
LEFT JOIN probe_radii p1 ON p1.trial_id = t.id AND p1.radius_index = 0
LEFT JOIN probe_radii p2 ON p2.trial_id = t.id AND p2.radius_index = 1;
