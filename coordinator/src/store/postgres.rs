//! The PostgreSQL store: the system of record for cluster sweeps. Several coordinators can serve
//! one database: leases claim rows with `FOR UPDATE SKIP LOCKED`, so concurrent lease calls never
//! wait on each other or claim the same trial, and every state change is a single conditional
//! UPDATE, so an expired lease is reclaimed by exactly one coordinator.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};

use super::values::{
    decode_width_summary, eigenvalues_json, finite, gap_estimate, new_lease_id, width_summaries_sql,
};
use super::{
    FailureOutcome, HeartbeatOutcome, LeaseRef, LeasedTrial, Reclaimed, RecordOutcome,
    RegisterOutcome, Store, StoreError, SweepCounts, TrialRecord, WidthSummary,
};
use crate::sweep::SweepPlan;

/// Rows per multi-row INSERT when a sweep's trials are stored (12 bound values each).
const TRIAL_INSERT_CHUNK: usize = 1000;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and applies migrations (sqlx holds an advisory lock while migrating, so several
    /// coordinators may start at once).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn register_sweep(
        &self,
        plan: &SweepPlan,
        now_ms: i64,
    ) -> Result<RegisterOutcome, StoreError> {
        let sweep = &plan.sweep;
        let mut transaction = self.pool.begin().await?;
        // Two coordinators registering the same new sweep: the loser of the insert sees the winner's row.
        let inserted = sqlx::query(
            "INSERT INTO sweeps (name, spec_hash, spec_toml, max_attempts, trial_count, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&sweep.name)
        .bind(&sweep.spec_hash)
        .bind(&sweep.source_text)
        .bind(sweep.max_attempts as i32)
        .bind(plan.trials.len() as i64)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            let (stored_hash, trial_count): (String, i64) =
                sqlx::query_as("SELECT spec_hash, trial_count FROM sweeps WHERE name = $1")
                    .bind(&sweep.name)
                    .fetch_one(&mut *transaction)
                    .await?;
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

        for chunk in plan.trials.chunks(TRIAL_INSERT_CHUNK) {
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
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
            "WITH claimed AS (
                 SELECT id FROM trials WHERE state = 'pending'
                 ORDER BY seq LIMIT $5
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE trials t
             SET state = 'leased', attempts = t.attempts + 1, lease_id = $1, worker_id = $2,
                 lease_deadline_ms = $3, updated_at_ms = $4
             FROM claimed WHERE t.id = claimed.id
             RETURNING t.id, t.sweep, t.attempts, t.params, t.seq",
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
                row.try_get::<i64, _>("seq")?,
                LeasedTrial {
                    trial_id: row.try_get("id")?,
                    sweep: row.try_get("sweep")?,
                    lease_id: lease_id.clone(),
                    lease_deadline_ms: deadline,
                    attempt: row.try_get::<i32, _>("attempts")? as u32,
                    config_json: row.try_get("params")?,
                },
            ));
        }
        leased.sort_by_key(|(seq, _)| *seq);
        Ok(leased.into_iter().map(|(_, trial)| trial).collect())
    }

    async fn heartbeat(
        &self,
        leases: &[LeaseRef],
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<HeartbeatOutcome, StoreError> {
        let trial_ids: Vec<&str> = leases.iter().map(|lease| lease.trial_id.as_str()).collect();
        let lease_ids: Vec<&str> = leases.iter().map(|lease| lease.lease_id.as_str()).collect();
        let extended: Vec<(String, String)> = sqlx::query_as(
            "UPDATE trials t SET lease_deadline_ms = $1, updated_at_ms = $2
             FROM UNNEST($3::text[], $4::text[]) AS held(trial_id, lease_id)
             WHERE t.id = held.trial_id AND t.lease_id = held.lease_id AND t.state = 'leased'
             RETURNING t.id, t.lease_id",
        )
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(&trial_ids)
        .bind(&lease_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut outcome = HeartbeatOutcome::default();
        for lease in leases {
            let held = extended.iter().any(|(trial_id, lease_id)| {
                *trial_id == lease.trial_id && *lease_id == lease.lease_id
            });
            if held {
                outcome.extended.push(lease.clone());
            } else {
                outcome.lost.push(lease.clone());
            }
        }
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
        let sweep: Option<String> = sqlx::query_scalar("SELECT sweep FROM trials WHERE id = $1")
            .bind(&lease.trial_id)
            .fetch_optional(&mut *transaction)
            .await?;
        let Some(sweep) = sweep else {
            return Err(StoreError::UnknownTrial(lease.trial_id.clone()));
        };

        let train_size = result.train_size;
        // The primary key makes this exactly once, also between coordinators racing on one trial.
        let inserted = sqlx::query(
            "INSERT INTO results (trial_id, worker_id, outcome, diverged_phase, train_loss, test_loss,
                 train_error, test_error, loss_gap, error_gap, steps, reached_target, parameter_count,
                 train_size, margin_gamma, mean_input_norm_squared, vc_capacity, spectral_capacity,
                 vc_gap_estimate, spectral_gap_estimate, minimum_norm, stay_fraction, max_distance,
                 final_distance, train_seconds, probe_seconds, measure_seconds, recorded_at_ms,
                 hessian_lambda_max, hessian_lambda_min, hessian_trace, stability_margin,
                 hessian_top_eigenvalues)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                     $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)
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
                "UPDATE sweeps SET duplicate_reports = duplicate_reports + 1 WHERE name = $1",
            )
            .bind(&sweep)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
            return Ok(RecordOutcome::Duplicate);
        }

        if !result.layers.is_empty() {
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO layer_measurements (trial_id, layer, fan_in, fan_out, spectral_norm, frobenius_norm, \
                 distance_from_init_spectral, distance_from_init_frobenius, distance_from_init_two_one) ",
            );
            insert.push_values(&result.layers, |mut row, layer| {
                row.push_bind(&lease.trial_id)
                    .push_bind(layer.layer as i32)
                    .push_bind(layer.fan_in as i64)
                    .push_bind(layer.fan_out as i64)
                    .push_bind(finite(layer.spectral_norm))
                    .push_bind(finite(layer.frobenius_norm))
                    .push_bind(finite(layer.distance_from_init_spectral))
                    .push_bind(finite(layer.distance_from_init_frobenius))
                    .push_bind(finite(layer.distance_from_init_two_one));
            });
            insert.build().execute(&mut *transaction).await?;
        }
        if !result.radii.is_empty() {
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO probe_radii (trial_id, radius_index, radius, stay_probability, mean_exit_step, occupancy) ",
            );
            insert.push_values(
                result.radii.iter().enumerate(),
                |mut row, (index, radius)| {
                    row.push_bind(&lease.trial_id)
                        .push_bind(index as i32)
                        .push_bind(radius.radius)
                        .push_bind(finite(radius.stay_probability))
                        .push_bind(finite(radius.mean_exit_step))
                        .push_bind(finite(radius.occupancy));
                },
            );
            insert.build().execute(&mut *transaction).await?;
        }
        sqlx::query(
            "UPDATE trials SET state = 'done', lease_id = NULL, lease_deadline_ms = NULL, last_error = NULL,
                 worker_id = $1, updated_at_ms = $2
             WHERE id = $3",
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
            "UPDATE trials t
             SET state = CASE WHEN t.attempts >= s.max_attempts THEN 'failed' ELSE 'pending' END,
                 last_error = $1, lease_id = NULL, lease_deadline_ms = NULL, updated_at_ms = $2
             FROM sweeps s
             WHERE s.name = t.sweep AND t.id = $3 AND t.lease_id = $4 AND t.state = 'leased'
             RETURNING t.state",
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
        let trial_ids: Vec<&str> = leases.iter().map(|lease| lease.trial_id.as_str()).collect();
        let lease_ids: Vec<&str> = leases.iter().map(|lease| lease.lease_id.as_str()).collect();
        let released = sqlx::query(
            "UPDATE trials t SET state = 'pending', attempts = GREATEST(t.attempts - 1, 0), lease_id = NULL,
                 lease_deadline_ms = NULL, updated_at_ms = $1
             FROM UNNEST($2::text[], $3::text[]) AS held(trial_id, lease_id)
             WHERE t.id = held.trial_id AND t.lease_id = held.lease_id AND t.state = 'leased'",
        )
        .bind(now_ms)
        .bind(&trial_ids)
        .bind(&lease_ids)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(released)
    }

    async fn reclaim_expired(&self, now_ms: i64) -> Result<Reclaimed, StoreError> {
        let states: Vec<String> = sqlx::query_scalar(
            "UPDATE trials t
             SET state = CASE WHEN t.attempts >= s.max_attempts THEN 'failed' ELSE 'pending' END,
                 last_error = 'lease expired on worker ' || COALESCE(t.worker_id, '?') || ' (attempt ' || t.attempts || ')',
                 lease_id = NULL, lease_deadline_ms = NULL, updated_at_ms = $1
             FROM sweeps s
             WHERE s.name = t.sweep AND t.state = 'leased' AND t.lease_deadline_ms < $1
             RETURNING t.state",
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
                    COUNT(t.id) FILTER (WHERE t.state = 'pending') AS pending,
                    COUNT(t.id) FILTER (WHERE t.state = 'leased') AS leased,
                    COUNT(t.id) FILTER (WHERE t.state = 'done') AS done,
                    COUNT(t.id) FILTER (WHERE t.state = 'failed') AS failed,
                    COUNT(r.trial_id) FILTER (WHERE r.outcome = 'diverged') AS diverged
             FROM sweeps s
             LEFT JOIN trials t ON t.sweep = s.name
             LEFT JOIN results r ON r.trial_id = t.id
             WHERE $1::text IS NULL OR s.name = $1
             GROUP BY s.name
             ORDER BY MIN(s.created_at_ms), s.name",
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
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sweeps WHERE name = $1")
            .bind(sweep)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownSweep(sweep.to_string()));
        }
        let rows = sqlx::query(&width_summaries_sql("$1"))
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
             WHERE t.id = $1",
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
            attempts: row.try_get::<i32, _>("attempts")? as u32,
            worker_id: row.try_get("worker_id")?,
            last_error: row.try_get("last_error")?,
            recorded_by: row.try_get("recorded_by")?,
        }))
    }
}
