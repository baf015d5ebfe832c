-- How many test examples a trial's test error is measured on: the resolution of its gap, which
-- the robust sign-error's noise filter needs (Dziugaite et al. 2020). NULL for results recorded
-- before it was stored.
ALTER TABLE results ADD COLUMN test_size INTEGER;
