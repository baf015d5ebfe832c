-- What the Hessian at Θ̂ predicts of the probe beside what it measured (science.md §3.8), the
-- probe's crossings of each sphere, its MSD curve, the PAC-Bayes flatness and stagnation-localized
-- bounds, the new probe statistics as view columns, and the optional loss-landscape slice.
ALTER TABLE probe_radii ADD COLUMN mean_exits REAL;
ALTER TABLE probe_radii ADD COLUMN mean_reentries REAL;
ALTER TABLE probe_radii ADD COLUMN predicted_stay_probability REAL;
-- JSON: {"step": [...], "msd": [...], "msd_hessian_top": [...], "predicted_msd": [...]}, null
-- where a value is not finite.
ALTER TABLE results ADD COLUMN msd_curve TEXT;

-- The 2-D slice of science.md §3.11: the training loss on a grid × grid square of half-width
-- `extent` (parameter distance) in the plane through Θ̂ along two orthonormal directions, and the
-- probe's snapshots projected on that plane.
CREATE TABLE landscape_slices (
    trial_id    TEXT PRIMARY KEY REFERENCES results(trial_id),
    plane       TEXT NOT NULL,       -- 'pca' or 'random'
    grid        INTEGER NOT NULL,
    extent      REAL NOT NULL,
    losses      BLOB NOT NULL,      -- grid² little-endian f32, row-major, rows along the second direction
    trajectory  TEXT NOT NULL        -- JSON [[replicate, step, a, b], ...], the snapshots in order
);

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
       p1.mean_exits AS mean_exits_1, p1.mean_reentries AS mean_reentries_1,
       p1.predicted_stay_probability AS predicted_stay_probability_1,
       p2.radius AS radius_2, p2.stay_probability AS stay_probability_2,
       p2.mean_exit_step AS mean_exit_step_2, p2.occupancy AS occupancy_2,
       p2.median_exit_step AS median_exit_step_2,
       p2.predicted_stay_probability AS predicted_stay_probability_2,
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
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'pac_bayes_flatness')
           AS pac_bayes_flatness_gap_estimate,
       (SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = 'stagnation_localized_spectral')
           AS stagnation_localized_spectral_gap_estimate,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'mean_distance')
           AS mean_distance,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'rms_distance')
           AS rms_distance,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'msd_diffusion')
           AS msd_diffusion,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'final_rms_distance')
           AS final_rms_distance,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'predicted_rms_distance')
           AS predicted_rms_distance,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'msd_diffusion_hessian_top')
           AS msd_diffusion_hessian_top,
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'msd_diffusion_hessian_rest')
           AS msd_diffusion_hessian_rest,
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
       (SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = 'hessian_aligned_share')
           AS hessian_aligned_share,
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
       r.msd_curve,
       r.train_seconds, r.probe_seconds, r.measure_seconds, r.recorded_at_ms,
       t.params
FROM trials t
LEFT JOIN results r ON r.trial_id = t.id
LEFT JOIN probe_radii p1 ON p1.trial_id = t.id AND p1.radius_index = 0
LEFT JOIN probe_radii p2 ON p2.trial_id = t.id AND p2.radius_index = 1;
