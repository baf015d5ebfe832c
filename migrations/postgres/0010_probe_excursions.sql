-- Per layer, how far the stagnation probe moved the weights from the trained point Ŵ: max_t
-- ||W_t − Ŵ|| over every step of every replicate in the operator, Frobenius and (2,1) norms.
-- The operator norm is what the stagnation-localized bound takes (science.md §4); rows stored
-- before this migration have NULL.
ALTER TABLE layer_measurements ADD COLUMN probe_max_displacement_spectral DOUBLE PRECISION;
ALTER TABLE layer_measurements ADD COLUMN probe_max_displacement_frobenius DOUBLE PRECISION;
ALTER TABLE layer_measurements ADD COLUMN probe_max_displacement_two_one DOUBLE PRECISION;
