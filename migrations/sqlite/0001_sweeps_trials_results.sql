-- Sweeps, their trials (one row per grid point, with its lease state), and results.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE sweeps (
    name              TEXT PRIMARY KEY,
    spec_hash         TEXT NOT NULL,
    spec_toml         TEXT NOT NULL,
    max_attempts      INTEGER NOT NULL,
    trial_count       INTEGER NOT NULL,
    duplicate_reports INTEGER NOT NULL DEFAULT 0,
    created_at_ms     INTEGER NOT NULL
);

CREATE TABLE trials (
    id             TEXT PRIMARY KEY,
    sweep          TEXT NOT NULL REFERENCES sweeps(name),
    ordinal        INTEGER NOT NULL,
    params         TEXT NOT NULL,      -- canonical JSON of the resolved trial configuration
    -- The usual grid axes, copied out of `params` so SQL can group by them directly.
    width          INTEGER NOT NULL,
    depth          INTEGER NOT NULL,
    learning_rate  REAL NOT NULL,
    noise_sigma    REAL NOT NULL,
    probe_noise_sigma REAL NOT NULL,
    batch_size     INTEGER NOT NULL,
    seed           INTEGER NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,   -- times leased, counting the current lease
    lease_id       TEXT,
    worker_id      TEXT,
    lease_deadline_ms INTEGER,
    last_error     TEXT,
    updated_at_ms  INTEGER NOT NULL,
    UNIQUE (sweep, ordinal)
);

CREATE INDEX trials_by_state ON trials (state, sweep, ordinal);
CREATE INDEX trials_by_lease_deadline ON trials (lease_deadline_ms) WHERE state = 'leased';

-- One row per trial at most: the primary key is what makes recording exactly once.
-- Non-finite numbers (a diverged run's loss) are stored as NULL.
CREATE TABLE results (
    trial_id          TEXT PRIMARY KEY REFERENCES trials(id),
    worker_id         TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('converged', 'budget_exhausted', 'diverged')),
    diverged_phase    TEXT,
    train_loss        REAL,
    test_loss         REAL,
    train_error       REAL,
    test_error        REAL,
    loss_gap          REAL,
    error_gap         REAL,
    steps             INTEGER NOT NULL,
    reached_target    INTEGER NOT NULL,
    parameter_count   INTEGER NOT NULL,
    train_size        INTEGER NOT NULL,
    margin_gamma      REAL,
    mean_input_norm_squared REAL,
    vc_capacity       REAL,               -- parameter-count (VC) capacity C; gap estimate sqrt(C/m)
    spectral_capacity REAL,               -- Bartlett-Foster-Telgarsky spectral capacity C
    vc_gap_estimate   REAL,
    spectral_gap_estimate REAL,
    minimum_norm      REAL,               -- ||Θ̂||
    stay_fraction     REAL,               -- share of probe steps inside the first radius
    max_distance      REAL,
    final_distance    REAL,
    train_seconds     REAL NOT NULL,
    probe_seconds     REAL NOT NULL,
    measure_seconds   REAL NOT NULL,
    recorded_at_ms    INTEGER NOT NULL
);

CREATE TABLE layer_measurements (
    trial_id                     TEXT NOT NULL REFERENCES results(trial_id),
    layer                        INTEGER NOT NULL,
    fan_in                       INTEGER NOT NULL,
    fan_out                      INTEGER NOT NULL,
    spectral_norm                REAL,
    frobenius_norm               REAL,
    distance_from_init_spectral  REAL,
    distance_from_init_frobenius REAL,
    distance_from_init_two_one   REAL,
    PRIMARY KEY (trial_id, layer)
);

CREATE TABLE probe_radii (
    trial_id         TEXT NOT NULL REFERENCES results(trial_id),
    radius_index     INTEGER NOT NULL,
    radius           REAL NOT NULL,
    stay_probability REAL,
    mean_exit_step   REAL,
    occupancy        REAL,
    PRIMARY KEY (trial_id, radius_index)
);
