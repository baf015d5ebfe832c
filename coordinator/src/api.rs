//! The gRPC service: the edge where wire messages are checked and turned into store calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::v1 as wire;
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn};

use crate::group_commit::GroupCommit;
use crate::metrics::{Metrics, Rpc};
use crate::store::{
    self, FailureOutcome, LeaseRef, LeaseRequest, LeasedTrial, RecordOutcome, ResultReport, Store,
    StoreError,
};
use crate::sweep::{SweepError, SweepPlan};

/// How leases behave; fixed per coordinator.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How long a lease lasts without a heartbeat.
    pub lease_duration: Duration,
    /// The largest grid a submitted sweep may expand to.
    pub max_trials_per_sweep: u64,
    /// The most trials one lease call may claim.
    pub max_lease_batch: u32,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(60),
            max_trials_per_sweep: crate::sweep::DEFAULT_MAX_TRIALS,
            max_lease_batch: 64,
        }
    }
}

impl SchedulerSettings {
    fn lease_ms(&self) -> i64 {
        self.lease_duration.as_millis() as i64
    }

    /// Workers heartbeat three times per lease, so one lost heartbeat does not lose the lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease_duration / 3
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        status_of(&error)
    }
}

fn status_of(error: &StoreError) -> Status {
    match error {
        StoreError::SweepChanged { .. } => Status::already_exists(error.to_string()),
        StoreError::UnknownSweep(_) | StoreError::UnknownTrial(_) => {
            Status::not_found(error.to_string())
        }
        StoreError::UnsupportedUrl(_) | StoreError::Plan(_) | StoreError::ResultMismatch { .. } => {
            Status::invalid_argument(error.to_string())
        }
        StoreError::LeasedElsewhere { .. } => Status::failed_precondition(error.to_string()),
        StoreError::Batch(cause) => status_of(cause),
        StoreError::Stopped => Status::unavailable(error.to_string()),
        StoreError::Database(cause) => {
            // The database's own text stays in the coordinator's log: it can name tables,
            // constraints and values that are no business of a client.
            warn!(cause = %cause, "store error");
            database_status(cause)
        }
        StoreError::Migration(_) => {
            warn!(cause = %error, "store error");
            Status::unavailable("the results database is not ready (see the coordinator's log)")
        }
    }
}

/// A database error by its cause: a broken constraint is the request's fault and retrying it
/// cannot help; a lost or busy connection is worth retrying; anything else is ours.
fn database_status(cause: &sqlx::Error) -> Status {
    match cause {
        sqlx::Error::Database(database) if is_constraint(database.kind()) => {
            Status::invalid_argument(format!(
                "the request breaks a constraint of the results database{}; nothing was stored",
                database
                    .table()
                    .map(|table| format!(" (table `{table}`)"))
                    .unwrap_or_default()
            ))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Database(_) => {
            Status::unavailable("the results database is unavailable; retry later")
        }
        _ => Status::internal("the results database failed (see the coordinator's log)"),
    }
}

fn is_constraint(kind: sqlx::error::ErrorKind) -> bool {
    use sqlx::error::ErrorKind;
    matches!(
        kind,
        ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation
    )
}

impl From<SweepError> for Status {
    fn from(error: SweepError) -> Self {
        Status::invalid_argument(error.to_string())
    }
}

pub struct CoordinatorService {
    store: Arc<dyn Store>,
    settings: SchedulerSettings,
    leases: GroupCommit<LeaseRequest, Vec<LeasedTrial>>,
    reports: GroupCommit<ResultReport, RecordOutcome>,
    metrics: Arc<Metrics>,
}

impl CoordinatorService {
    /// A worker's request, once its worker id is one a worker could send; the worker is seen.
    fn worker_request<T: FromWorker>(&self, request: Request<T>) -> Result<T, Status> {
        let request = request.into_inner();
        let worker_id = request.worker_id();
        if worker_id.is_empty() || worker_id.len() > 256 {
            return Err(Status::invalid_argument(
                "`worker_id` must be 1 to 256 characters",
            ));
        }
        self.metrics.worker_seen(worker_id);
        Ok(request)
    }

    /// Needs a Tokio runtime: it starts the group-commit queues for leases and reports.
    pub fn new(store: Arc<dyn Store>, settings: SchedulerSettings, metrics: Arc<Metrics>) -> Self {
        let lease_ms = settings.lease_ms();
        let concurrent = store.concurrent_batches();
        let leases = {
            let store = store.clone();
            GroupCommit::spawn(concurrent, move |requests: Vec<LeaseRequest>| {
                let store = store.clone();
                async move {
                    let leased = store
                        .lease_batch(&requests, lease_ms, store::now_ms())
                        .await?;
                    Ok(leased.into_iter().map(Ok).collect())
                }
            })
        };
        let reports = {
            let store = store.clone();
            GroupCommit::spawn(concurrent, move |reports: Vec<ResultReport>| {
                let store = store.clone();
                async move { store.record_results(&reports, store::now_ms()).await }
            })
        };
        Self {
            store,
            settings,
            leases,
            reports,
            metrics,
        }
    }
}

fn lease_ref(lease: Option<wire::LeaseRef>) -> Result<LeaseRef, Status> {
    let Some(lease) = lease else {
        return Err(Status::invalid_argument("missing `lease`"));
    };
    if lease.trial_id.is_empty() || lease.lease_id.is_empty() {
        return Err(Status::invalid_argument(
            "`lease` needs a trial_id and a lease_id",
        ));
    }
    Ok(LeaseRef {
        trial_id: lease.trial_id,
        lease_id: lease.lease_id,
    })
}

fn wire_lease(lease: LeaseRef) -> wire::LeaseRef {
    wire::LeaseRef {
        trial_id: lease.trial_id,
        lease_id: lease.lease_id,
    }
}

/// A request a worker sends, naming itself.
trait FromWorker {
    fn worker_id(&self) -> &str;
}

macro_rules! from_worker {
    ($($request:ty),*) => {$(
        impl FromWorker for $request {
            fn worker_id(&self) -> &str {
                &self.worker_id
            }
        }
    )*};
}

from_worker!(
    wire::LeaseTrialsRequest,
    wire::HeartbeatRequest,
    wire::ReportResultRequest,
    wire::ReportFailureRequest,
    wire::ReleaseTrialsRequest
);

/// More leases than this in one heartbeat or release is not a worker's honest request.
const MAX_LEASES_PER_CALL: usize = 10_000;

fn at_most_leases_per_call(call: &str, leases: usize) -> Result<(), Status> {
    if leases > MAX_LEASES_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "a {call} may carry at most {MAX_LEASES_PER_CALL} leases, got {leases}"
        )));
    }
    Ok(())
}

pub fn counts_to_wire(counts: store::SweepCounts) -> wire::SweepCounts {
    wire::SweepCounts {
        sweep: counts.sweep,
        total: counts.total,
        pending: counts.pending,
        leased: counts.leased,
        done: counts.done,
        failed: counts.failed,
        diverged: counts.diverged,
        duplicate_reports: counts.duplicate_reports,
    }
}

/// The inverse of [`counts_to_wire`], for clients that ask a coordinator.
pub fn counts_from_wire(counts: wire::SweepCounts) -> store::SweepCounts {
    store::SweepCounts {
        sweep: counts.sweep,
        total: counts.total,
        pending: counts.pending,
        leased: counts.leased,
        done: counts.done,
        failed: counts.failed,
        diverged: counts.diverged,
        duplicate_reports: counts.duplicate_reports,
    }
}

#[tonic::async_trait]
impl wire::coordinator_server::Coordinator for CoordinatorService {
    async fn submit_sweep(
        &self,
        request: Request<wire::SubmitSweepRequest>,
    ) -> Result<Response<wire::SubmitSweepResponse>, Status> {
        let request = request.into_inner();
        let source_name = if request.source_name.is_empty() {
            "sweep file".to_string()
        } else {
            request.source_name
        };
        let max_trials = self.settings.max_trials_per_sweep;
        let plan = tokio::task::spawn_blocking(move || {
            SweepPlan::from_toml(&source_name, &request.sweep_toml, max_trials)
        })
        .await
        .map_err(|error| Status::internal(format!("grid expansion stopped: {error}")))??;
        let outcome = self.store.register_sweep(&plan, store::now_ms()).await?;
        info!(sweep = %plan.sweep.name, trials = outcome.trial_count, created = outcome.created, "sweep submitted");
        Ok(Response::new(wire::SubmitSweepResponse {
            sweep: plan.sweep.name,
            trial_count: outcome.trial_count,
            created: outcome.created,
        }))
    }

    async fn lease_trials(
        &self,
        request: Request<wire::LeaseTrialsRequest>,
    ) -> Result<Response<wire::LeaseTrialsResponse>, Status> {
        let started = Instant::now();
        let request = self.worker_request(request)?;
        let max_trials = request.max_trials.clamp(1, self.settings.max_lease_batch);
        let leased = self
            .leases
            .call(LeaseRequest {
                worker_id: request.worker_id.clone(),
                max_trials,
            })
            .await?;
        for trial in &leased {
            debug!(trial_id = %trial.trial_id, worker_id = %request.worker_id, sweep = %trial.sweep, attempt = trial.attempt, "trial leased");
        }
        self.metrics.trials_leased(leased.len());
        self.metrics.rpc_finished(Rpc::LeaseTrials, started);
        Ok(Response::new(wire::LeaseTrialsResponse {
            trials: leased
                .into_iter()
                .map(|trial| wire::LeasedTrial {
                    trial_id: trial.trial_id,
                    sweep: trial.sweep,
                    lease_id: trial.lease_id,
                    lease_deadline_unix_ms: trial.lease_deadline_ms,
                    attempt: trial.attempt,
                    config_json: trial.config_json,
                })
                .collect(),
            heartbeat_interval_ms: self.settings.heartbeat_interval().as_millis() as u64,
            lease_duration_ms: self.settings.lease_ms() as u64,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<wire::HeartbeatRequest>,
    ) -> Result<Response<wire::HeartbeatResponse>, Status> {
        let started = Instant::now();
        let request = self.worker_request(request)?;
        at_most_leases_per_call("heartbeat", request.running.len())?;
        let mut leases = Vec::with_capacity(request.running.len());
        for progress in request.running {
            let lease = lease_ref(progress.lease)?;
            debug!(trial_id = %lease.trial_id, worker_id = %request.worker_id, phase = %progress.phase, step = progress.step, "heartbeat");
            leases.push(lease);
        }
        let now = store::now_ms();
        let outcome = self
            .store
            .heartbeat(&leases, self.settings.lease_ms(), now)
            .await?;
        for lost in &outcome.lost {
            info!(trial_id = %lost.trial_id, worker_id = %request.worker_id, "heartbeat for a lease no longer held");
        }
        self.metrics.heartbeat();
        self.metrics.rpc_finished(Rpc::Heartbeat, started);
        Ok(Response::new(wire::HeartbeatResponse {
            extended: outcome.extended.into_iter().map(wire_lease).collect(),
            lost: outcome.lost.into_iter().map(wire_lease).collect(),
            lease_deadline_unix_ms: now + self.settings.lease_ms(),
            lease_duration_ms: self.settings.lease_ms() as u64,
        }))
    }

    async fn report_result(
        &self,
        request: Request<wire::ReportResultRequest>,
    ) -> Result<Response<wire::ReportResultResponse>, Status> {
        let started = Instant::now();
        let request = self.worker_request(request)?;
        let lease = lease_ref(request.lease)?;
        let Some(result) = request.result else {
            return Err(Status::invalid_argument("missing `result`"));
        };
        crate::result_validation::validate_result(&result)?;
        let result_outcome = result.outcome.clone();
        let outcome = self
            .reports
            .call(ResultReport {
                worker_id: request.worker_id.clone(),
                lease: lease.clone(),
                result,
            })
            .await?;
        match outcome {
            RecordOutcome::Recorded => {
                info!(trial_id = %lease.trial_id, worker_id = %request.worker_id, outcome = %result_outcome, "result recorded")
            }
            RecordOutcome::Duplicate => {
                info!(trial_id = %lease.trial_id, worker_id = %request.worker_id, "duplicate result ignored")
            }
        }
        self.metrics.result(outcome == RecordOutcome::Duplicate);
        self.metrics.rpc_finished(Rpc::ReportResult, started);
        Ok(Response::new(wire::ReportResultResponse {
            duplicate: outcome == RecordOutcome::Duplicate,
        }))
    }

    async fn report_failure(
        &self,
        request: Request<wire::ReportFailureRequest>,
    ) -> Result<Response<wire::ReportFailureResponse>, Status> {
        let started = Instant::now();
        let request = self.worker_request(request)?;
        let lease = lease_ref(request.lease)?;
        let outcome = self
            .store
            .record_failure(&lease, &request.error, store::now_ms())
            .await?;
        warn!(trial_id = %lease.trial_id, worker_id = %request.worker_id, error = %request.error, outcome = ?outcome, "trial failed on worker");
        self.metrics.failure_reported();
        self.metrics.rpc_finished(Rpc::ReportFailure, started);
        Ok(Response::new(wire::ReportFailureResponse {
            failed_permanently: outcome == FailureOutcome::Failed,
        }))
    }

    async fn release_trials(
        &self,
        request: Request<wire::ReleaseTrialsRequest>,
    ) -> Result<Response<wire::ReleaseTrialsResponse>, Status> {
        let request = self.worker_request(request)?;
        at_most_leases_per_call("release", request.leases.len())?;
        let mut leases = Vec::with_capacity(request.leases.len());
        for lease in request.leases {
            leases.push(lease_ref(Some(lease))?);
        }
        let released = self.store.release(&leases, store::now_ms()).await?;
        info!(worker_id = %request.worker_id, released, "trials released");
        Ok(Response::new(wire::ReleaseTrialsResponse {
            released: released as u32,
        }))
    }

    async fn sweep_status(
        &self,
        request: Request<wire::SweepStatusRequest>,
    ) -> Result<Response<wire::SweepStatusResponse>, Status> {
        let sweep = request.into_inner().sweep;
        let counts = self
            .store
            .sweep_counts((!sweep.is_empty()).then_some(sweep.as_str()))
            .await?;
        Ok(Response::new(wire::SweepStatusResponse {
            sweeps: counts.into_iter().map(counts_to_wire).collect(),
        }))
    }

    async fn sweep_report(
        &self,
        request: Request<wire::SweepReportRequest>,
    ) -> Result<Response<wire::SweepReportResponse>, Status> {
        let request = request.into_inner();
        let report = crate::report::SweepReport::load(
            self.store.as_ref(),
            &request.sweep,
            request.include_unconverged,
        )
        .await?;
        let report_json =
            serde_json::to_string(&report).map_err(|error| Status::internal(error.to_string()))?;
        Ok(Response::new(wire::SweepReportResponse { report_json }))
    }
}
