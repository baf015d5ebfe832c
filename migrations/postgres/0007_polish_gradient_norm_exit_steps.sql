-- The full-batch polish after SGD (its number of gradient-descent steps), the gradient norm
-- ||∇R̂_n|| at the point the probe starts from, each probe replicate's exit step per radius (a
-- JSON array, 0 for a replicate that stayed: what pooled Kaplan–Meier curves are built from), and
-- the trial_results view with them (exit steps for the first radius).
ALTER TABLE results ADD COLUMN polish_steps BIGINT;
ALTER TABLE probe_radii ADD COLUMN replicate_exit_steps TEXT;
ALTER TABLE results ADD COLUMN gradient_norm DOUBLE PRECISION;

DROP VIEW trial_results;
CREATE VIEW trial_results AS
SELECT t.sweep, t.id AS trial_id, t.ordinal, t.state, t.attempts, t.last_error,
       t.width, t.depth, t.learning_rate, t.noise_sigma, t.probe_noise_sigma, t.batch_size, t.seed,
       r.worker_id, r.outcome, r.diverged_phase,
       r.train_loss, r.test_loss, r.train_error, r.test_error, r.loss_gap, r.error_gap,
       r.steps, r.reached_target, r.polish_steps, r.gradient_norm,
       r.parameter_count, r.train_size,
       r.margin_gamma, r.mean_input_norm_squared,
       r.vc_capacity, r.spectral_capacity, r.vc_gap_estimate, r.spectral_gap_estimate,
       r.minimum_norm, r.stay_fraction, r.max_distance, r.final_distance,
       p1.radius AS radius_1, p1.stay_probability AS stay_probability_1,
       p1.mean_exit_step AS mean_exit_step_1, p1.occupancy AS occupancy_1,
       p1.median_exit_step AS median_exit_step_1,
       p1.replicate_exit_steps AS replicate_exit_steps_1,
       p2.radius AS radius_2, p2.stay_probability AS stay_probability_2,
       p2.mean_exit_step AS mean_exit_step_2, p2.occupancy AS occupancy_2,
       p2.median_exit_step AS median_exit_step_2,
       r.hessian_lambda_max, r.hessian_lambda_min, r.hessian_trace, r.stability_margin,
       r.hessian_top_eigenvalues,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'frobenius_2layer')
           AS frobenius_2layer_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'one_infinity_2layer')
           AS one_infinity_2layer_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'spectral_2layer')
           AS spectral_2layer_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'neyshabur_2019_2layer')
           AS neyshabur_2019_2layer_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'spectral_frobenius_pac_bayes')
           AS spectral_frobenius_pac_bayes_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'golowich_rakhlin_shamir')
           AS golowich_rakhlin_shamir_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'path_norm')
           AS path_norm_gap_estimate,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'mean_distance')
           AS mean_distance,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'rms_distance')
           AS rms_distance,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'msd_diffusion')
           AS msd_diffusion,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'loss_excursion_max_train')
           AS loss_excursion_max_train,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'loss_excursion_mean_train')
           AS loss_excursion_mean_train,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'loss_excursion_max_test')
           AS loss_excursion_max_test,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'loss_excursion_mean_test')
           AS loss_excursion_mean_test,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'participation_ratio')
           AS participation_ratio,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'components_for_90_percent')
           AS components_for_90_percent,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'top_two_share')
           AS top_two_share,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'convexity_min_train')
           AS convexity_min_train,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'convexity_min_test')
           AS convexity_min_test,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'convexity_positive_share_train')
           AS convexity_positive_share_train,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'convexity_positive_share_test')
           AS convexity_positive_share_test,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'basin_return_share')
           AS basin_return_share,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'linear_barrier')
           AS linear_barrier,
       r.train_seconds, r.probe_seconds, r.measure_seconds, r.recorded_at_ms,
       t.params
FROM trials t
LEFT JOIN results r ON r.trial_id = t.id
LEFT JOIN probe_radii p1 ON p1.trial_id = t.id AND p1.radius_index = 0
LEFT JOIN probe_radii p2 ON p2.trial_id = t.id AND p2.radius_index = 1;
