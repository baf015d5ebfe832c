//! The embedded SQLite store. One coordinator process owns the file (WAL mode, so reports and
//! `status --db` can read while it writes); all writes go through one connection, so each
//! statement and transaction sees a consistent database without lock upgrades.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{
    FailureOutcome, HeartbeatOutcome, LeaseRef, LeaseRequest, LeasedTrial, Reclaimed,
    RecordOutcome, RegisterOutcome, ResultReport, RetryFilter, Store, StoreError, StoredSlice,
    SweepCounts, TrialRecord, TrialRow,
};
use super::{batch, read, schema, view};
use crate::sweep::SweepPlan;

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
            .busy_timeout(Duration::from_secs(10))
            // Pages of the trials and results tables stay in memory rather than being read back
            // from the file through a system call for every lease and report (negative: KiB).
            .pragma("cache_size", "-32768");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let migrator = sqlx::migrate!("../migrations/sqlite");
        let applied: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&pool)
        .await?;
        if applied.is_some() {
            for restamp in schema::restamps(&migrator, schema::SQLITE_EDITED) {
                sqlx::query(
                    "UPDATE _sqlx_migrations SET checksum = ? WHERE version = ? AND checksum = ?",
                )
                .bind(restamp.current)
                .bind(restamp.version)
                .bind(restamp.released)
                .execute(&pool)
                .await?;
            }
        }
        migrator.run(&pool).await?;
        let mut transaction = pool.begin().await?;
        for statement in view::statements() {
            sqlx::query(&statement).execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(Self { pool })
    }

    /// Refuses a sweep name the database does not hold.
    async fn require_sweep(&self, sweep: &str) -> Result<(), StoreError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sweeps WHERE name = ?")
            .bind(sweep)
            .fetch_optional(&self.pool)
            .await?;
        match exists {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownSweep(sweep.to_string())),
        }
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
        .bind(plan.trial_count() as i64)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;

        // Expanded chunk by chunk as it is stored: a large grid never sits in memory at once.
        for chunk in batch::trial_chunks(plan) {
            let chunk = chunk?;
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(batch::TRIAL_COLUMNS);
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
        // One connection serves every write, so choosing and claiming in one transaction is atomic.
        let mut transaction = self.pool.begin().await?;
        let pending: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM trials WHERE state = 'pending' ORDER BY rowid LIMIT ?",
        )
        .bind(batch::wanted(requests))
        .fetch_all(&mut *transaction)
        .await?;
        let assignments = batch::assign(pending, requests);
        let mut claimed = Vec::with_capacity(assignments.len());
        for chunk in assignments.chunks(batch::ROWS_PER_INSERT) {
            let mut update: QueryBuilder<Sqlite> = QueryBuilder::new(
                "UPDATE trials SET state = 'leased', attempts = trials.attempts + 1, \
                 lease_id = claim.column2, worker_id = claim.column3, lease_deadline_ms = ",
            );
            update.push_bind(deadline);
            update.push(", updated_at_ms = ");
            update.push_bind(now_ms);
            update.push(" FROM (");
            update.push_values(chunk, |mut row, assignment| {
                row.push_bind(&assignment.trial_id)
                    .push_bind(&assignment.lease_id)
                    .push_bind(&assignment.worker_id);
            });
            update.push(
                ") AS claim WHERE trials.id = claim.column1 \
                 RETURNING id, sweep, attempts, params, ordinal, lease_id",
            );
            for row in update
                .build()
                .persistent(false)
                .fetch_all(&mut *transaction)
                .await?
            {
                claimed.push(batch::ClaimedRow {
                    order: row.try_get("ordinal")?,
                    trial: LeasedTrial {
                        trial_id: row.try_get("id")?,
                        sweep: row.try_get("sweep")?,
                        lease_id: row.try_get("lease_id")?,
                        lease_deadline_ms: deadline,
                        attempt: row.try_get::<i64, _>("attempts")? as u32,
                        config_json: row.try_get("params")?,
                    },
                });
            }
        }
        transaction.commit().await?;
        Ok(batch::leases_per_request(
            claimed,
            &assignments,
            requests.len(),
        ))
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

    async fn record_results(
        &self,
        reports: &[ResultReport],
        now_ms: i64,
    ) -> Result<Vec<Result<RecordOutcome, StoreError>>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut holders = HashMap::new();
        for chunk in reports.chunks(batch::ROWS_PER_INSERT) {
            let mut select: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT id, sweep, CASE WHEN state = 'leased' THEN lease_id END, worker_id, params \
                 FROM trials WHERE id IN (",
            );
            let mut ids = select.separated(", ");
            for report in chunk {
                ids.push_bind(&report.lease.trial_id);
            }
            select.push(")");
            let rows: Vec<batch::HolderRow> = select
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *transaction)
                .await?;
            holders.extend(rows.into_iter().map(batch::TrialHolder::from_row));
        }
        let triage = batch::triage(reports, holders);

        // The primary key makes each result exactly once; RETURNING names those stored now.
        let mut inserted = HashSet::new();
        for mut insert in batch::result_inserts::<Sqlite>(&triage.candidates, now_ms) {
            let stored: Vec<String> = insert
                .build_query_scalar()
                .persistent(false)
                .fetch_all(&mut *transaction)
                .await?;
            inserted.extend(stored);
        }
        let recorded = triage.recorded(&inserted);

        for mut insert in batch::measurement_inserts::<Sqlite>(&recorded) {
            insert
                .build()
                .persistent(false)
                .execute(&mut *transaction)
                .await?;
        }
        // A late report from an expired lease still completes the trial: no result existed yet.
        for chunk in recorded.chunks(batch::ROWS_PER_INSERT) {
            let mut update: QueryBuilder<Sqlite> = QueryBuilder::new(
                "UPDATE trials SET state = 'done', lease_id = NULL, lease_deadline_ms = NULL, \
                 last_error = NULL, updated_at_ms = ",
            );
            update.push_bind(now_ms);
            update.push(
                ", worker_id = (SELECT r.worker_id FROM results r WHERE r.trial_id = trials.id) \
                 WHERE id IN (",
            );
            let mut ids = update.separated(", ");
            for report in chunk {
                ids.push_bind(&report.lease.trial_id);
            }
            update.push(")");
            update
                .build()
                .persistent(false)
                .execute(&mut *transaction)
                .await?;
        }

        let (outcomes, duplicates) = triage.finish(reports, &inserted);
        for (sweep, count) in duplicates {
            sqlx::query(
                "UPDATE sweeps SET duplicate_reports = duplicate_reports + ? WHERE name = ?",
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

    async fn retry_failed(
        &self,
        sweep: &str,
        filter: &RetryFilter,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.require_sweep(sweep).await?;
        let mut transaction = self.pool.begin().await?;
        let failed: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, width, last_error FROM trials WHERE sweep = ? AND state = 'failed' ORDER BY ordinal",
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
                 SELECT id, ?, attempts, last_error FROM trials WHERE id = ?",
            )
            .bind(now_ms)
            .bind(&trial_id)
            .execute(&mut *transaction)
            .await?;
            retried += sqlx::query(
                "UPDATE trials SET state = 'pending', attempts = 0, worker_id = NULL, updated_at_ms = ?
                 WHERE id = ? AND state = 'failed'",
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
