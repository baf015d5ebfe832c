-- A lower bound on each radius's stay probability for the linearised probe, beside the
-- prediction (an estimate) already stored; NULL without a Hessian or where λ_max > 2/η_probe.
ALTER TABLE probe_radii ADD COLUMN stay_probability_bound REAL;
