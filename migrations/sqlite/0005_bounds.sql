-- The bounds of science.md §4 beyond the VC and spectral (BFT) capacities, one row per bound a
-- trial's network admits (the 2-layer forms only for one hidden layer), and the trial_results
-- view with each bound's gap estimate sqrt(C/m) as a column.
CREATE TABLE bounds (
    trial_id      TEXT NOT NULL REFERENCES results(trial_id),
    name          TEXT NOT NULL,
    capacity      REAL,          -- C; NULL when infinite (a margin γ ≤ 0)
    gap_estimate  REAL,          -- sqrt(C/m)
    PRIMARY KEY (trial_id, name)
);
-- The trial_results view this migration once re-created is now made from the measurement
-- catalog at start-up (coordinator/src/store/view.rs).
