-- The Hessian of the training loss at the trained point (Lanczos and Hutchinson).
ALTER TABLE results ADD COLUMN hessian_lambda_max DOUBLE PRECISION;
ALTER TABLE results ADD COLUMN hessian_lambda_min DOUBLE PRECISION;
ALTER TABLE results ADD COLUMN hessian_trace DOUBLE PRECISION;
ALTER TABLE results ADD COLUMN stability_margin DOUBLE PRECISION;
-- All top-k eigenvalues, descending, as a JSON array.
ALTER TABLE results ADD COLUMN hessian_top_eigenvalues TEXT;
