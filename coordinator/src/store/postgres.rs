//! The PostgreSQL store: the system of record for cluster sweeps. Several coordinators can serve
//! one database: leases claim rows with `FOR UPDATE SKIP LOCKED`, so concurrent lease calls never
//! wait on each other or claim the same trial, and every state change is a single conditional
//! UPDATE, so an expired lease is reclaimed by exactly one coordinator.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};

use super::{
    FailureOutcome, HeartbeatOutcome, LeaseRef, LeaseRequest, LeasedTrial, Reclaimed,
    RecordOutcome, RegisterOutcome, ResultReport, RetryFilter, Store, StoreError, StoredSlice,
    SweepCounts, TrialRecord, TrialRow,
};
use super::{batch, read, schema, view};
use crate::sweep::SweepPlan;

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
        let migrator = sqlx::migrate!("../migrations/postgres");
        let applied: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&pool)
                .await?;
        if applied.is_some() {
            for restamp in schema::restamps(&migrator, schema::POSTGRES_EDITED) {
                sqlx::query(
                    "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
                )
                .bind(restamp.current)
                .bind(restamp.version)
                .bind(restamp.released)
                .execute(&pool)
                .await?;
            }
        }
        migrator.run(&pool).await?;
        // Coordinators starting together re-create the view one after the other.
        let mut transaction = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('trial_results view'))")
            .execute(&mut *transaction)
            .await?;
        for statement in view::statements() {
            sqlx::query(&statement).execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(Self { pool })
    }

    /// Refuses a sweep name the database does not hold.
    async fn require_sweep(&self, sweep: &str) -> Result<(), StoreError> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sweeps WHERE name = $1")
            .bind(sweep)
            .fetch_optional(&self.pool)
            .await?;
        match exists {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownSweep(sweep.to_string())),
        }
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
        .bind(plan.trial_count() as i64)
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

        // Expanded chunk by chunk as it is stored: a large grid never sits in memory at once.
        for chunk in batch::trial_chunks(plan) {
            let chunk = chunk?;
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(batch::TRIAL_COLUMNS);
            insert.push_values(&chunk, |mut row, trial| {
                batch::push_trial_row(&mut row, &sweep.name, trial, now_ms)
            });
            insert
                .build()
                .persistent(false)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(RegisterOutcome {
            created: true,
            trial_count: plan.trial_count(),
        })
    }

    async fn lease_batch(
        &self,
        requests: &[LeaseRequest],
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Vec<LeasedTrial>>, StoreError> {
        self.reclaim_expired(now_ms).await?;
        let deadline = now_ms + lease_ms;
        let mut transaction = self.pool.begin().await?;
        // The row locks hold until commit; other coordinators skip these rows meanwhile.
        let pending: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM trials WHERE state = 'pending' ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(batch::wanted(requests))
        .fetch_all(&mut *transaction)
        .await?;
        let assignments = batch::assign(pending, requests);
        let column = |field: fn(&batch::Assignment) -> &str| -> Vec<&str> {
            assignments.iter().map(field).collect()
        };
        let rows = sqlx::query(
            "UPDATE trials t
             SET state = 'leased', attempts = t.attempts + 1, lease_id = claim.lease_id,
                 worker_id = claim.worker_id, lease_deadline_ms = $4, updated_at_ms = $5
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS claim(trial_id, lease_id, worker_id)
             WHERE t.id = claim.trial_id
             RETURNING t.id, t.sweep, t.attempts, t.params, t.seq, t.lease_id",
        )
        .bind(column(|assignment| &assignment.trial_id))
        .bind(column(|assignment| &assignment.lease_id))
        .bind(column(|assignment| &assignment.worker_id))
        .bind(deadline)
        .bind(now_ms)
        .fetch_all(&mut *transaction)
        .await?;
        transaction.commit().await?;

        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            claimed.push(batch::ClaimedRow {
                order: row.try_get("seq")?,
                trial: LeasedTrial {
                    trial_id: row.try_get("id")?,
                    sweep: row.try_get("sweep")?,
                    lease_id: row.try_get("lease_id")?,
                    lease_deadline_ms: deadline,
                    attempt: row.try_get::<i32, _>("attempts")? as u32,
                    config_json: row.try_get("params")?,
                },
            });
        }
        Ok(batch::leases_per_request(
            claimed,
            &assignments,
            requests.len(),
        ))
    }

    fn concurrent_batches(&self) -> usize {
        // Leave connections of the pool for heartbeats, status and reports.
        4
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

    async fn record_results(
        &self,
        reports: &[ResultReport],
        now_ms: i64,
    ) -> Result<Vec<Result<RecordOutcome, StoreError>>, StoreError> {
        let trial_ids: Vec<&str> = reports
            .iter()
            .map(|report| report.lease.trial_id.as_str())
            .collect();
        let mut transaction = self.pool.begin().await?;
        let rows: Vec<batch::HolderRow> = sqlx::query_as(
            "SELECT id, sweep, CASE WHEN state = 'leased' THEN lease_id END, worker_id, params
             FROM trials WHERE id = ANY($1)",
        )
        .bind(&trial_ids)
        .fetch_all(&mut *transaction)
        .await?;
        let holders = rows.into_iter().map(batch::TrialHolder::from_row).collect();
        let triage = batch::triage(reports, holders);

        // The primary key makes each result exactly once, also between coordinators racing on one
        // trial; RETURNING names those stored now.
        let mut inserted = HashSet::new();
        for mut insert in batch::result_inserts::<Postgres>(&triage.candidates, now_ms) {
            let stored: Vec<String> = insert
                .build_query_scalar()
                .persistent(false)
                .fetch_all(&mut *transaction)
                .await?;
            inserted.extend(stored);
        }
        let recorded = triage.recorded(&inserted);

        for mut insert in batch::measurement_inserts::<Postgres>(&recorded) {
            insert
                .build()
                .persistent(false)
                .execute(&mut *transaction)
                .await?;
        }
        // A late report from an expired lease still completes the trial: no result existed yet.
        let recorded_ids: Vec<&str> = recorded
            .iter()
            .map(|report| report.lease.trial_id.as_str())
            .collect();
        sqlx::query(
            "UPDATE trials t SET state = 'done', lease_id = NULL, lease_deadline_ms = NULL,
                 last_error = NULL, updated_at_ms = $1, worker_id = r.worker_id
             FROM results r
             WHERE r.trial_id = t.id AND t.id = ANY($2)",
        )
        .bind(now_ms)
        .bind(&recorded_ids)
        .execute(&mut *transaction)
        .await?;

        let (outcomes, duplicates) = triage.finish(reports, &inserted);
        for (sweep, count) in duplicates {
            sqlx::query(
                "UPDATE sweeps SET duplicate_reports = duplicate_reports + $1 WHERE name = $2",
            )
            .bind(count)
            .bind(sweep)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(outcomes)
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

    async fn retry_failed(
        &self,
        sweep: &str,
        filter: &RetryFilter,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.require_sweep(sweep).await?;
        let mut transaction = self.pool.begin().await?;
        let failed: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, width, last_error FROM trials WHERE sweep = $1 AND state = 'failed' ORDER BY ordinal",
        )
        .bind(sweep)
        .fetch_all(&mut *transaction)
        .await?;
        let mut retried = 0;
        for (trial_id, width, last_error) in failed {
            if !filter.admits(width.max(0) as u64, last_error.as_deref()) {
                continue;
            }
            sqlx::query(
                "INSERT INTO trial_retries (trial_id, retried_at_ms, attempts, last_error)
                 SELECT id, $1, attempts, last_error FROM trials WHERE id = $2",
            )
            .bind(now_ms)
            .bind(&trial_id)
            .execute(&mut *transaction)
            .await?;
            retried += sqlx::query(
                "UPDATE trials SET state = 'pending', attempts = 0, worker_id = NULL, updated_at_ms = $1
                 WHERE id = $2 AND state = 'failed'",
            )
            .bind(now_ms)
            .bind(&trial_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        }
        transaction.commit().await?;
        Ok(retried)
    }

    async fn sweep_counts(&self, sweep: Option<&str>) -> Result<Vec<SweepCounts>, StoreError> {
        let rows = sqlx::query(read::SWEEP_COUNTS)
            .bind(sweep)
            .fetch_all(&self.pool)
            .await?;
        let counts = rows
            .iter()
            .map(read::decode_sweep_counts)
            .collect::<Result<Vec<_>, _>>()?;
        match sweep {
            Some(name) if counts.is_empty() => Err(StoreError::UnknownSweep(name.to_string())),
            _ => Ok(counts),
        }
    }

    async fn trial_rows(&self, sweep: &str) -> Result<Vec<TrialRow>, StoreError> {
        self.require_sweep(sweep).await?;
        read::trial_rows(&self.pool, sweep).await
    }

    async fn landscape_slices(&self, sweep: &str) -> Result<Vec<StoredSlice>, StoreError> {
        self.require_sweep(sweep).await?;
        read::fetch_decoded(&self.pool, read::LANDSCAPE_SLICES, sweep, |row| {
            read::decode_stored_slice(row)
        })
        .await
    }

    async fn trial(&self, trial_id: &str) -> Result<Option<TrialRecord>, StoreError> {
        let row = sqlx::query(read::TRIAL_RECORD)
            .bind(trial_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(read::decode_trial_record).transpose()?)
    }
}
