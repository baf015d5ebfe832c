-- Sweeps, their trials (one row per grid point, with its lease state), and results.
-- The same schema as migrations/sqlite, in PostgreSQL types. Times are milliseconds since the Unix epoch.

CREATE TABLE sweeps (
    name              TEXT PRIMARY KEY,
    spec_hash         TEXT NOT NULL,
    spec_toml         TEXT NOT NULL,
    max_attempts      INTEGER NOT NULL,
    trial_count       BIGINT NOT NULL,
    duplicate_reports BIGINT NOT NULL DEFAULT 0,
    created_at_ms     BIGINT NOT NULL
);

CREATE TABLE trials (
    id             TEXT PRIMARY KEY,
    -- Insertion order (sweep by sweep, grid order within one): the order trials are leased in.
    seq            BIGINT GENERATED ALWAYS AS IDENTITY,
    sweep          TEXT NOT NULL REFERENCES sweeps(name),
    ordinal        BIGINT NOT NULL,
    params         TEXT NOT NULL,      -- canonical JSON of the resolved trial configuration
    width          BIGINT NOT NULL,
    depth          BIGINT NOT NULL,
    learning_rate  DOUBLE PRECISION NOT NULL,
    noise_sigma    DOUBLE PRECISION NOT NULL,
    probe_noise_sigma DOUBLE PRECISION NOT NULL,
    batch_size     BIGINT NOT NULL,
    seed           BIGINT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_id       TEXT,
    worker_id      TEXT,
    lease_deadline_ms BIGINT,
    last_error     TEXT,
    updated_at_ms  BIGINT NOT NULL,
    UNIQUE (sweep, ordinal)
);

CREATE INDEX trials_pending ON trials (seq) WHERE state = 'pending';
CREATE INDEX trials_by_lease_deadline ON trials (lease_deadline_ms) WHERE state = 'leased';
CREATE INDEX trials_by_sweep_state ON trials (sweep, state);

CREATE TABLE results (
    trial_id          TEXT PRIMARY KEY REFERENCES trials(id),
    worker_id         TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('converged', 'budget_exhausted', 'diverged')),
    diverged_phase    TEXT,
    train_loss        DOUBLE PRECISION,
    test_loss         DOUBLE PRECISION,
    train_error       DOUBLE PRECISION,
    test_error        DOUBLE PRECISION,
    loss_gap          DOUBLE PRECISION,
    error_gap         DOUBLE PRECISION,
    steps             BIGINT NOT NULL,
    reached_target    BOOLEAN NOT NULL,
    parameter_count   BIGINT NOT NULL,
    train_size        BIGINT NOT NULL,
    margin_gamma      DOUBLE PRECISION,
    mean_input_norm_squared DOUBLE PRECISION,
    vc_capacity       DOUBLE PRECISION,
    spectral_capacity DOUBLE PRECISION,
    vc_gap_estimate   DOUBLE PRECISION,
    spectral_gap_estimate DOUBLE PRECISION,
    minimum_norm      DOUBLE PRECISION,
    stay_fraction     DOUBLE PRECISION,
    max_distance      DOUBLE PRECISION,
    final_distance    DOUBLE PRECISION,
    train_seconds     DOUBLE PRECISION NOT NULL,
    probe_seconds     DOUBLE PRECISION NOT NULL,
    measure_seconds   DOUBLE PRECISION NOT NULL,
    recorded_at_ms    BIGINT NOT NULL
);

CREATE TABLE layer_measurements (
    trial_id                     TEXT NOT NULL REFERENCES results(trial_id),
    layer                        INTEGER NOT NULL,
    fan_in                       BIGINT NOT NULL,
    fan_out                      BIGINT NOT NULL,
    spectral_norm                DOUBLE PRECISION,
    frobenius_norm               DOUBLE PRECISION,
    distance_from_init_spectral  DOUBLE PRECISION,
    distance_from_init_frobenius DOUBLE PRECISION,
    distance_from_init_two_one   DOUBLE PRECISION,
    PRIMARY KEY (trial_id, layer)
);

CREATE TABLE probe_radii (
    trial_id         TEXT NOT NULL REFERENCES results(trial_id),
    radius_index     INTEGER NOT NULL,
    radius           DOUBLE PRECISION NOT NULL,
    stay_probability DOUBLE PRECISION,
    mean_exit_step   DOUBLE PRECISION,
    occupancy        DOUBLE PRECISION,
    PRIMARY KEY (trial_id, radius_index)
);
