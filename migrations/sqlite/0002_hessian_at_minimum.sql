-- The Hessian of the training loss at the trained point (Lanczos and Hutchinson).
ALTER TABLE results ADD COLUMN hessian_lambda_max REAL;
ALTER TABLE results ADD COLUMN hessian_lambda_min REAL;
ALTER TABLE results ADD COLUMN hessian_trace REAL;
ALTER TABLE results ADD COLUMN stability_margin REAL;
-- All top-k eigenvalues, descending, as a JSON array.
ALTER TABLE results ADD COLUMN hessian_top_eigenvalues TEXT;
