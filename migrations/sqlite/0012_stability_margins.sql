-- The stability margins of the two dynamics that actually run at Θ̂: the probe's
-- (2/η_probe − λ_max, no momentum) and training's with heavy-ball momentum μ
-- (2(1 + μ)/η − λ_max). `stability_margin` (2/η − λ_max at the training rate) stays as it was.
ALTER TABLE results ADD COLUMN probe_stability_margin REAL;
ALTER TABLE results ADD COLUMN training_stability_margin REAL;
