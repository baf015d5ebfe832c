//! The results database: sweeps, trials with their lease state, and results.
//!
//! [`Store`] is the interface the scheduler, the API and the reports use; [`SqliteStore`] is the
//! embedded implementation (one coordinator owns the file, in WAL mode).

mod batch;
mod postgres;
mod read;
mod schema;
mod sqlite;
mod values;
mod view;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use serde::Serialize;
use vocabulary::catalog;

use crate::sweep::SweepPlan;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    #[error("cannot apply database migrations: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    #[error(
        "sweep `{name}` already exists with different contents; give the changed sweep a new `name` \
         (stored hash {stored_hash}, submitted {submitted_hash})"
    )]
    SweepChanged {
        name: String,
        stored_hash: String,
        submitted_hash: String,
    },

    #[error("unknown sweep `{0}`")]
    UnknownSweep(String),

    #[error("unknown trial `{0}`")]
    UnknownTrial(String),

    #[error(
        "trial `{trial_id}` is leased to worker `{worker_id}` under another lease: this report's \
         lease expired and the trial was leased again, so its result will come from that worker"
    )]
    LeasedElsewhere { trial_id: String, worker_id: String },

    #[error(transparent)]
    Plan(#[from] crate::sweep::SweepError),

    #[error("the result of trial `{trial_id}` does not fit its configuration: {mismatch}")]
    ResultMismatch { trial_id: String, mismatch: String },

    #[error("the coordinator is shutting down")]
    Stopped,

    /// A batch this call was part of failed as a whole; every call in it gets the cause.
    #[error("{0}")]
    Batch(std::sync::Arc<StoreError>),

    #[error(
        "unsupported database url `{0}`: expected sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
}

/// A trial claimed by a worker under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedTrial {
    pub trial_id: String,
    pub sweep: String,
    pub lease_id: String,
    pub lease_deadline_ms: i64,
    pub attempt: u32,
    pub config_json: String,
}

/// One lease call, as it waits in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    pub worker_id: String,
    pub max_trials: u32,
}

/// One result report, as it waits in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultReport {
    pub worker_id: String,
    pub lease: LeaseRef,
    pub result: proto::v1::TrialResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseRef {
    pub trial_id: String,
    pub lease_id: String,
}

/// One trial's scheduling state and who recorded its result, for inspection and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialRecord {
    pub id: String,
    pub sweep: String,
    pub state: String,
    pub attempts: u32,
    pub worker_id: Option<String>,
    pub last_error: Option<String>,
    /// The worker whose result was recorded, if any.
    pub recorded_by: Option<String>,
    /// How many times `coordinator retry` put it back after it failed.
    pub retries: u32,
}

/// Which failed trials `coordinator retry` puts back: all of them by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryFilter {
    /// Only trials of this width.
    pub width: Option<u64>,
    /// Only trials whose last error contains this text.
    pub error_contains: Option<String>,
}

impl RetryFilter {
    /// Whether a failed trial of this width and last error is to be retried.
    pub fn admits(&self, width: u64, last_error: Option<&str>) -> bool {
        self.width.is_none_or(|wanted| wanted == width)
            && self
                .error_contains
                .as_deref()
                .is_none_or(|text| last_error.is_some_and(|error| error.contains(text)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterOutcome {
    pub created: bool,
    pub trial_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Recorded,
    /// A result was already recorded for this trial; this one was ignored (and counted).
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// The trial went back to pending for another attempt.
    Retrying,
    /// The trial used its attempts and is now failed with this error.
    Failed,
    /// The report came from a lease that is no longer held; nothing changed.
    Stale,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub extended: Vec<LeaseRef>,
    pub lost: Vec<LeaseRef>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Expired leases whose trials went back to pending.
    pub requeued: u64,
    /// Expired leases whose trials had used their attempts and are now failed.
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepCounts {
    pub sweep: String,
    pub total: u64,
    pub pending: u64,
    pub leased: u64,
    pub done: u64,
    pub failed: u64,
    pub diverged: u64,
    pub duplicate_reports: u64,
}

impl SweepCounts {
    pub fn finished(&self) -> u64 {
        self.done + self.failed
    }

    pub fn is_complete(&self) -> bool {
        self.finished() == self.total
    }
}

/// The numeric columns of the `trial_results` view, in the order a [`TrialRow`] holds them.
pub fn trial_row_numbers() -> &'static [&'static str] {
    catalog::numeric_columns()
}

/// A trial's loss-landscape slice as stored (`landscape_slices`), with what locates it in the
/// sweep.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StoredSlice {
    pub trial_id: String,
    pub width: u64,
    pub seed: u64,
    /// "pca" or "random".
    pub plane: String,
    pub grid: u32,
    pub extent: f64,
    /// grid² losses, row-major, rows along the second direction.
    pub losses: Vec<f32>,
    /// (replicate, step, a, b) of each projected snapshot, in order.
    pub trajectory: Vec<(u32, u64, f64, f64)>,
    /// The probe's first radius (absolute), the stagnation ball drawn on the slice.
    pub radius: Option<f64>,
}

/// One trial of a sweep as the `trial_results` view shows it: the unit of export and of the
/// per-trial statistics (slopes, rank correlations).
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    pub trial_id: String,
    pub state: String,
    pub outcome: Option<String>,
    pub worker_id: Option<String>,
    pub last_error: Option<String>,
    /// The trial's resolved configuration, canonical JSON.
    pub params: String,
    /// The first probe radius's exit step per replicate, a JSON array (0: stayed).
    pub replicate_exit_steps_1: Option<String>,
    /// The probe's MSD curve, JSON (see the `results.msd_curve` column).
    pub msd_curve: Option<String>,
    /// In the order of [`trial_row_numbers`]; None where there is no value (no result yet, or a
    /// non-finite one), +∞ for a vacuous bound.
    pub numbers: Vec<Option<f64>>,
}

impl TrialRow {
    pub fn number(&self, name: &str) -> Option<f64> {
        trial_row_numbers()
            .iter()
            .position(|candidate| *candidate == name)
            .and_then(|index| self.numbers.get(index).copied().flatten())
    }

    /// A finished, converged trial with these view columns set and every other number empty:
    /// how tests build the rows a report reads.
    #[cfg(test)]
    pub fn converged(
        trial_id: impl Into<String>,
        params: impl Into<String>,
        numbers: &[(&str, f64)],
    ) -> Self {
        let mut row = Self {
            trial_id: trial_id.into(),
            state: "done".to_string(),
            outcome: Some("converged".to_string()),
            worker_id: None,
            last_error: None,
            params: params.into(),
            replicate_exit_steps_1: None,
            msd_curve: None,
            numbers: vec![None; trial_row_numbers().len()],
        };
        for (name, value) in numbers {
            let index = trial_row_numbers()
                .iter()
                .position(|candidate| candidate == name)
                .unwrap_or_else(|| panic!("{name} is not a column of trial_results"));
            row.numbers[index] = Some(*value);
        }
        row
    }

    /// A finished trial that did not diverge: the ones whose measurements are compared.
    pub fn is_measured(&self) -> bool {
        self.state == "done"
            && self
                .outcome
                .as_deref()
                .is_some_and(|outcome| outcome != "diverged")
    }
}

/// What the coordinator needs from a database.
#[async_trait]
pub trait Store: Send + Sync {
    /// Registers a sweep and its trials. Idempotent for the same contents; a sweep of the same
    /// name with other contents is refused with [`StoreError::SweepChanged`].
    async fn register_sweep(
        &self,
        plan: &SweepPlan,
        now_ms: i64,
    ) -> Result<RegisterOutcome, StoreError>;

    /// Claims pending trials (oldest sweep first, grid order) for several lease calls at once,
    /// each up to its `max_trials`, dealt in arrival order; expired leases are reclaimed first.
    async fn lease_batch(
        &self,
        requests: &[LeaseRequest],
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Vec<LeasedTrial>>, StoreError>;

    /// Claims up to `max_trials` pending trials (oldest sweep first, grid order) for a worker.
    async fn lease_trials(
        &self,
        worker_id: &str,
        max_trials: u32,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<LeasedTrial>, StoreError> {
        let request = LeaseRequest {
            worker_id: worker_id.to_string(),
            max_trials,
        };
        let mut leases = self.lease_batch(&[request], lease_ms, now_ms).await?;
        Ok(leases.pop().unwrap_or_default())
    }

    /// Extends the leases the worker still holds and names those it has lost.
    async fn heartbeat(
        &self,
        leases: &[LeaseRef],
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<HeartbeatOutcome, StoreError>;

    /// Records several results in one transaction, each exactly once: a report for a trial that
    /// already has a result (stored, or earlier in the batch) is a duplicate, one for an unknown
    /// trial is refused alone. The outer error is the batch failing as a whole.
    async fn record_results(
        &self,
        reports: &[ResultReport],
        now_ms: i64,
    ) -> Result<Vec<Result<RecordOutcome, StoreError>>, StoreError>;

    /// Records a result exactly once; a report for a trial that already has one is a duplicate.
    async fn record_result(
        &self,
        worker_id: &str,
        lease: &LeaseRef,
        result: &proto::v1::TrialResult,
        now_ms: i64,
    ) -> Result<RecordOutcome, StoreError> {
        let report = ResultReport {
            worker_id: worker_id.to_string(),
            lease: lease.clone(),
            result: result.clone(),
        };
        let mut outcomes = self.record_results(&[report], now_ms).await?;
        outcomes
            .pop()
            .unwrap_or(Err(StoreError::UnknownTrial(lease.trial_id.clone())))
    }

    /// How many batches may run against the database at once.
    fn concurrent_batches(&self) -> usize {
        1
    }

    /// A trial that failed on a worker: back to pending, or failed once out of attempts.
    async fn record_failure(
        &self,
        lease: &LeaseRef,
        error: &str,
        now_ms: i64,
    ) -> Result<FailureOutcome, StoreError>;

    /// Returns leased trials to pending without using an attempt (graceful worker shutdown).
    async fn release(&self, leases: &[LeaseRef], now_ms: i64) -> Result<u64, StoreError>;

    /// Expired leases: back to pending, or failed once out of attempts.
    async fn reclaim_expired(&self, now_ms: i64) -> Result<Reclaimed, StoreError>;

    /// Puts a sweep's failed trials that `filter` admits back to pending with a fresh attempt
    /// budget, each with a row in `trial_retries` (the attempts it had used and its last error).
    /// Returns how many it put back.
    async fn retry_failed(
        &self,
        sweep: &str,
        filter: &RetryFilter,
        now_ms: i64,
    ) -> Result<u64, StoreError>;

    /// Trial counts by state for one sweep, or for every sweep.
    async fn sweep_counts(&self, sweep: Option<&str>) -> Result<Vec<SweepCounts>, StoreError>;

    /// Every trial of a sweep in grid order, with its measurements where it has a result; a
    /// vacuous bound (infinite capacity, stored as NULL) reads as +∞.
    async fn trial_rows(&self, sweep: &str) -> Result<Vec<TrialRow>, StoreError>;

    /// The loss-landscape slices a sweep's trials stored, in grid order.
    async fn landscape_slices(&self, sweep: &str) -> Result<Vec<StoredSlice>, StoreError>;

    /// One trial's state, or None for an unknown id.
    async fn trial(&self, trial_id: &str) -> Result<Option<TrialRecord>, StoreError>;
}

/// Opens the store a database URL names, applying migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::UnsupportedUrl(redact_password(url)))
}

/// Hides a password in a database URL before it reaches a message or a log.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
