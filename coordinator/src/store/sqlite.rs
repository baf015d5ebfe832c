//! The embedded SQLite store. One coordinator process owns the file (WAL mode, so reports and
//! `status --db` can read while it writes); all writes go through one connection, so each
//! statement and transaction sees a consistent database without lock upgrades.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::values::{
    decode_width_summary, eigenvalues_json, finite, gap_estimate, new_lease_id, width_summaries_sql,
};
use super::{
    FailureOutcome, HeartbeatOutcome, LeaseRef, LeasedTrial, Reclaimed, RecordOutcome,
    RegisterOutcome, Store, StoreError, SweepCounts, TrialRecord, WidthSummary,
};
use crate::sweep::SweepPlan;

/// Rows per multi-row INSERT when a sweep's trials are stored (11 bound values each, well under
/// SQLite's limit on bound parameters).
const TRIAL_INSERT_CHUNK: usize = 500;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn register_sweep(
        &self,
        plan: &SweepPlan,
        now_ms: i64,
    ) -> Result<RegisterOutcome, StoreError> {
        let sweep = &plan.sweep;
        let mut transaction = self.pool.begin().await?;
        let stored: Option<(String, i64)> =
            sqlx::query_as("SELECT spec_hash, trial_count FROM sweeps WHERE name = ?")
                .bind(&sweep.name)
                .fetch_optional(&mut *transaction)
                .await?;
        if let Some((stored_hash, trial_count)) = stored {
            if stored_hash == sweep.spec_hash {
                return Ok(RegisterOutcome {
                    created: false,
                    trial_count: trial_count as u64,
                });
            }
            return Err(StoreError::SweepChanged {
                name: sweep.name.clone(),
                stored_hash,
                submitted_hash: sweep.spec_hash.clone(),
            });
        }

        sqlx::query(
            "INSERT INTO sweeps (name, spec_hash, spec_toml, max_attempts, trial_count, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&sweep.name)
        .bind(&sweep.spec_hash)
        .bind(&sweep.source_text)
        .bind(sweep.max_attempts as i64)
        .bind(plan.trials.len() as i64)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;

        for chunk in plan.trials.chunks(TRIAL_INSERT_CHUNK) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO trials (id, sweep, ordinal, params, width, depth, learning_rate, noise_sigma, \
                 probe_noise_sigma, batch_size, seed, updated_at_ms) ",
            );
            insert.push_values(chunk, |mut row, trial| {
                let config = &trial.config;
                row.push_bind(&trial.id)
                    .push_bind(&sweep.name)
                    .push_bind(trial.ordinal as i64)
                    .push_bind(&trial.config_json)
                    .push_bind(config.model.width as i64)
                    .push_bind(config.model.depth as i64)
                    .push_bind(config.training.learning_rate)
                    .push_bind(config.training.noise_sigma)
                    .push_bind(config.probe.noise_sigma)
                    .push_bind(config.training.batch_size as i64)
                    .push_bind(config.seed as i64)
                    .push_bind(now_ms);
            });
            insert.build().execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(RegisterOutcome {
            created: true,
            trial_count: plan.trials.len() as u64,
        })
    }

    async fn lease_trials(
        &self,
        worker_id: &str,
        max_trials: u32,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<LeasedTrial>, StoreError> {
        self.reclaim_expired(now_ms).await?;
        let lease_id = new_lease_id();
        let deadline = now_ms + lease_ms;
        let rows = sqlx::query(
            "UPDATE trials
             SET state = 'leased', attempts = attempts + 1, lease_id = ?1, worker_id = ?2,
                 lease_deadline_ms = ?3, updated_at_ms = ?4
             WHERE id IN (SELECT id FROM trials WHERE state = 'pending' ORDER BY rowid LIMIT ?5)
             RETURNING id, sweep, attempts, params, ordinal",
        )
        .bind(&lease_id)
        .bind(worker_id)
        .bind(deadline)
        .bind(now_ms)
        .bind(max_trials as i64)
        .fetch_all(&self.pool)
        .await?;

        let mut leased = Vec::with_capacity(rows.len());
        for row in rows {
            leased.push((
                row.try_get::<i64, _>("ordinal")?,
                LeasedTrial {
                    trial_id: row.try_get("id")?,
                    sweep: row.try_get("sweep")?,
                    lease_id: lease_id.clone(),
                    lease_deadline_ms: deadline,
                    attempt: row.try_get::<i64, _>("attempts")? as u32,
                    config_json: row.try_get("params")?,
                },
            ));
        }
        // RETURNING gives rows in no promised order; hand them out in grid order.
        leased.sort_by(|a, b| (&a.1.sweep, a.0).cmp(&(&b.1.sweep, b.0)));
        Ok(leased.into_iter().map(|(_, trial)| trial).collect())
    }

    async fn heartbeat(
        &self,
        leases: &[LeaseRef],
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<HeartbeatOutcome, StoreError> {
        let mut outcome = HeartbeatOutcome::default();
        let mut transaction = self.pool.begin().await?;
        for lease in leases {
            let updated = sqlx::query(
                "UPDATE trials SET lease_deadline_ms = ?, updated_at_ms = ?
                 WHERE id = ? AND lease_id = ? AND state = 'leased'",
            )
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .bind(&lease.trial_id)
            .bind(&lease.lease_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if updated == 1 {
                outcome.extended.push(lease.clone());
            } else {
                outcome.lost.push(lease.clone());
            }
        }
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn record_result(
        &self,
        worker_id: &str,
        lease: &LeaseRef,
        result: &proto::v1::TrialResult,
        now_ms: i64,
    ) -> Result<RecordOutcome, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let sweep: Option<String> = sqlx::query_scalar("SELECT sweep FROM trials WHERE id = ?")
            .bind(&lease.trial_id)
            .fetch_optional(&mut *transaction)
            .await?;
        let Some(sweep) = sweep else {
            return Err(StoreError::UnknownTrial(lease.trial_id.clone()));
        };

        let train_size = result.train_size;
        let inserted = sqlx::query(
            "INSERT INTO results (trial_id, worker_id, outcome, diverged_phase, train_loss, test_loss,
                 train_error, test_error, loss_gap, error_gap, steps, reached_target, parameter_count,
                 train_size, margin_gamma, mean_input_norm_squared, vc_capacity, spectral_capacity,
                 vc_gap_estimate, spectral_gap_estimate, minimum_norm, stay_fraction, max_distance,
                 final_distance, train_seconds, probe_seconds, measure_seconds, recorded_at_ms,
                 hessian_lambda_max, hessian_lambda_min, hessian_trace, stability_margin,
                 hessian_top_eigenvalues)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                     ?, ?, ?, ?, ?)
             ON CONFLICT (trial_id) DO NOTHING",
        )
        .bind(&lease.trial_id)
        .bind(worker_id)
        .bind(&result.outcome)
        .bind((!result.diverged_phase.is_empty()).then_some(&result.diverged_phase))
        .bind(finite(result.train_loss))
        .bind(finite(result.test_loss))
        .bind(finite(result.train_error))
        .bind(finite(result.test_error))
        .bind(finite(result.test_loss - result.train_loss))
        .bind(finite(result.test_error - result.train_error))
        .bind(result.steps as i64)
        .bind(result.reached_target)
        .bind(result.parameter_count as i64)
        .bind(train_size as i64)
        .bind(finite(result.margin_gamma))
        .bind(finite(result.mean_input_norm_squared))
        .bind(finite(result.vc_capacity))
        .bind(finite(result.spectral_capacity))
        .bind(gap_estimate(result.vc_capacity, train_size))
        .bind(gap_estimate(result.spectral_capacity, train_size))
        .bind(finite(result.minimum_norm))
        .bind(finite(result.stay_fraction))
        .bind(finite(result.max_distance))
        .bind(finite(result.final_distance))
        .bind(result.train_seconds)
        .bind(result.probe_seconds)
        .bind(result.measure_seconds)
        .bind(now_ms)
        .bind(result.hessian_top_eigenvalues.first().copied().and_then(finite))
        .bind(finite(result.hessian_lambda_min))
        .bind(finite(result.hessian_trace))
        .bind(finite(result.stability_margin))
        .bind(eigenvalues_json(&result.hessian_top_eigenvalues))
        .execute(&mut *transaction)
        .await?
        .rows_affected();

        if inserted == 0 {
            sqlx::query(
                "UPDATE sweeps SET duplicate_reports = duplicate_reports + 1 WHERE name = ?",
            )
            .bind(&sweep)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
            return Ok(RecordOutcome::Duplicate);
        }

        for layer in &result.layers {
            sqlx::query(
                "INSERT INTO layer_measurements (trial_id, layer, fan_in, fan_out, spectral_norm, frobenius_norm,
                     distance_from_init_spectral, distance_from_init_frobenius, distance_from_init_two_one)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&lease.trial_id)
            .bind(layer.layer as i64)
            .bind(layer.fan_in as i64)
            .bind(layer.fan_out as i64)
            .bind(finite(layer.spectral_norm))
            .bind(finite(layer.frobenius_norm))
            .bind(finite(layer.distance_from_init_spectral))
            .bind(finite(layer.distance_from_init_frobenius))
            .bind(finite(layer.distance_from_init_two_one))
            .execute(&mut *transaction)
            .await?;
        }
        for (index, radius) in result.radii.iter().enumerate() {
            sqlx::query(
                "INSERT INTO probe_radii (trial_id, radius_index, radius, stay_probability, mean_exit_step, occupancy)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&lease.trial_id)
            .bind(index as i64)
            .bind(radius.radius)
            .bind(finite(radius.stay_probability))
            .bind(finite(radius.mean_exit_step))
            .bind(finite(radius.occupancy))
            .execute(&mut *transaction)
            .await?;
        }
        // A late report from an expired lease still completes the trial: no result existed yet.
        sqlx::query(
            "UPDATE trials SET state = 'done', lease_id = NULL, lease_deadline_ms = NULL, last_error = NULL,
                 worker_id = ?, updated_at_ms = ?
             WHERE id = ?",
        )
        .bind(worker_id)
        .bind(now_ms)
        .bind(&lease.trial_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(RecordOutcome::Recorded)
    }

    async fn record_failure(
        &self,
        lease: &LeaseRef,
        error: &str,
        now_ms: i64,
    ) -> Result<FailureOutcome, StoreError> {
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE trials
             SET state = CASE WHEN attempts >= (SELECT max_attempts FROM sweeps WHERE name = trials.sweep)
                              THEN 'failed' ELSE 'pending' END,
                 last_error = ?, lease_id = NULL, lease_deadline_ms = NULL, updated_at_ms = ?
             WHERE id = ? AND lease_id = ? AND state = 'leased'
             RETURNING state",
        )
        .bind(error)
        .bind(now_ms)
        .bind(&lease.trial_id)
        .bind(&lease.lease_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match state.as_deref() {
            None => FailureOutcome::Stale,
            Some("failed") => FailureOutcome::Failed,
            Some(_) => FailureOutcome::Retrying,
        })
    }

    async fn release(&self, leases: &[LeaseRef], now_ms: i64) -> Result<u64, StoreError> {
        let mut released = 0;
        let mut transaction = self.pool.begin().await?;
        for lease in leases {
            released += sqlx::query(
                "UPDATE trials SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_id = NULL,
                     lease_deadline_ms = NULL, updated_at_ms = ?
                 WHERE id = ? AND lease_id = ? AND state = 'leased'",
            )
            .bind(now_ms)
            .bind(&lease.trial_id)
            .bind(&lease.lease_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        }
        transaction.commit().await?;
        Ok(released)
    }

    async fn reclaim_expired(&self, now_ms: i64) -> Result<Reclaimed, StoreError> {
        let states: Vec<String> = sqlx::query_scalar(
            "UPDATE trials
             SET state = CASE WHEN attempts >= (SELECT max_attempts FROM sweeps WHERE name = trials.sweep)
                              THEN 'failed' ELSE 'pending' END,
                 last_error = 'lease expired on worker ' || COALESCE(worker_id, '?') || ' (attempt ' || attempts || ')',
                 lease_id = NULL, lease_deadline_ms = NULL, updated_at_ms = ?1
             WHERE state = 'leased' AND lease_deadline_ms < ?1
             RETURNING state",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let failed = states.iter().filter(|state| *state == "failed").count() as u64;
        Ok(Reclaimed {
            requeued: states.len() as u64 - failed,
            failed,
        })
    }

    async fn sweep_counts(&self, sweep: Option<&str>) -> Result<Vec<SweepCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, s.trial_count, s.duplicate_reports,
                    COALESCE(SUM(t.state = 'pending'), 0) AS pending,
                    COALESCE(SUM(t.state = 'leased'), 0) AS leased,
                    COALESCE(SUM(t.state = 'done'), 0) AS done,
                    COALESCE(SUM(t.state = 'failed'), 0) AS failed,
                    COALESCE(SUM(r.outcome = 'diverged'), 0) AS diverged
             FROM sweeps s
             LEFT JOIN trials t ON t.sweep = s.name
             LEFT JOIN results r ON r.trial_id = t.id
             WHERE ?1 IS NULL OR s.name = ?1
             GROUP BY s.name
             ORDER BY s.created_at_ms, s.name",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            counts.push(SweepCounts {
                sweep: row.try_get("name")?,
                total: row.try_get::<i64, _>("trial_count")? as u64,
                pending: row.try_get::<i64, _>("pending")? as u64,
                leased: row.try_get::<i64, _>("leased")? as u64,
                done: row.try_get::<i64, _>("done")? as u64,
                failed: row.try_get::<i64, _>("failed")? as u64,
                diverged: row.try_get::<i64, _>("diverged")? as u64,
                duplicate_reports: row.try_get::<i64, _>("duplicate_reports")? as u64,
            });
        }
        if let Some(name) = sweep
            && counts.is_empty()
        {
            return Err(StoreError::UnknownSweep(name.to_string()));
        }
        Ok(counts)
    }

    async fn width_summaries(&self, sweep: &str) -> Result<Vec<WidthSummary>, StoreError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sweeps WHERE name = ?")
            .bind(sweep)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownSweep(sweep.to_string()));
        }

        let rows = sqlx::query(&width_summaries_sql("?"))
            .bind(sweep)
            .fetch_all(&self.pool)
            .await?;
        let mut summaries = Vec::with_capacity(rows.len());
        for row in &rows {
            summaries.push(decode_width_summary(row)?);
        }
        Ok(summaries)
    }

    async fn trial(&self, trial_id: &str) -> Result<Option<TrialRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.sweep, t.state, t.attempts, t.worker_id, t.last_error, r.worker_id AS recorded_by
             FROM trials t LEFT JOIN results r ON r.trial_id = t.id
             WHERE t.id = ?",
        )
        .bind(trial_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(TrialRecord {
            id: row.try_get("id")?,
            sweep: row.try_get("sweep")?,
            state: row.try_get("state")?,
            attempts: row.try_get::<i64, _>("attempts")? as u32,
            worker_id: row.try_get("worker_id")?,
            last_error: row.try_get("last_error")?,
            recorded_by: row.try_get("recorded_by")?,
        }))
    }
}
