//! The worker's loop: lease trials from the coordinator up to the number of free slots, run each
//! on its own thread, heartbeat while they run, report results (retrying until acknowledged),
//! and on shutdown stop leasing, cancel what runs, and release it so another worker takes it.
//! [`run`] is the loop on a given client and shutdown token; [`run_until_signalled`] is what the
//! binaries call, with SIGTERM and Ctrl-C as the shutdown.

mod backoff;
mod convert;
mod running;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use proto::auth::Token;
use proto::channel::{Client, Connection};
use proto::v1 as wire;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use backoff::Backoff;
use running::{FinishedTrial, RunningTrial};

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// URL of the coordinator.
    #[arg(
        long,
        env = "WORKER_COORDINATOR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub coordinator: String,

    /// Trials run at once, one thread each; by default the number of cores.
    #[arg(long, env = "WORKER_SLOTS")]
    pub slots: Option<u32>,

    /// Threads each trial's matrix products may use (results do not depend on it). Slots ×
    /// threads per trial should not exceed the cores.
    #[arg(long, env = "WORKER_THREADS_PER_TRIAL", default_value_t = 1)]
    pub threads_per_trial: u32,

    /// This worker's name in leases and logs; by default host name and process id.
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,

    /// Longest wait between two lease requests when there is no work.
    #[arg(long, env = "WORKER_MAX_IDLE_POLL_MS", default_value_t = 2000)]
    pub max_idle_poll_ms: u64,

    /// File holding the coordinator's bearer token (or set WORKER_TOKEN).
    #[arg(long, env = "WORKER_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,

    /// CA certificate (PEM) to verify the coordinator's TLS certificate against (`https://` URL).
    #[arg(long, env = "WORKER_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Directory for the weight files of trials whose sweep sets `measure.checkpoints`; each
    /// trial writes into SWEEP/TRIAL_ID below it.
    #[arg(long, env = "WORKER_CHECKPOINT_DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,

    /// Stop (exit 0) once the coordinator has had no trial for this worker for this many seconds
    /// and none is running here: a batch job's worker gives its allocation back when the sweeps
    /// are done. By default a worker waits for work for as long as it runs.
    #[arg(long, env = "WORKER_EXIT_WHEN_IDLE", value_name = "SECONDS")]
    pub exit_when_idle: Option<u64>,
}

/// How long a result is retried after shutdown has begun before it is left to lease expiry.
const SHUTDOWN_REPORT_GRACE: Duration = Duration::from_secs(10);

/// How one worker runs: what the command line says, or what a test chooses.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This worker's name in leases and logs.
    pub worker_id: String,
    /// Trials run at once, one thread each.
    pub slots: u32,
    /// Threads each trial's matrix products may use.
    pub threads_per_trial: usize,
    /// Where trials that keep checkpoints write them (SWEEP/TRIAL_ID below it).
    pub checkpoint_root: Option<std::path::PathBuf>,
    /// Longest wait between two lease requests when there is no work.
    pub max_idle_poll: Duration,
    /// Stop once there has been nothing to run for this long.
    pub exit_when_idle: Option<Duration>,
}

impl WorkerArgs {
    /// The settings these arguments ask for, or an error naming the argument that is wrong.
    pub fn settings(&self) -> Result<WorkerSettings> {
        let slots = self.slots.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|cores| cores.get() as u32)
                .unwrap_or(1)
        });
        if slots == 0 {
            anyhow::bail!("--slots = 0 is invalid: a worker needs at least one slot");
        }
        if self.threads_per_trial == 0 {
            anyhow::bail!("--threads-per-trial = 0 is invalid: a trial needs at least one thread");
        }
        Ok(WorkerSettings {
            worker_id: self.worker_id.clone().unwrap_or_else(default_worker_id),
            slots,
            threads_per_trial: self.threads_per_trial as usize,
            checkpoint_root: self.checkpoint_dir.clone(),
            max_idle_poll: Duration::from_millis(self.max_idle_poll_ms.max(10)),
            exit_when_idle: self.exit_when_idle.map(Duration::from_secs),
        })
    }

    /// How to reach the coordinator these arguments name.
    pub fn connection(&self) -> Result<Connection> {
        Ok(Connection {
            url: self.coordinator.clone(),
            tls_ca: self.tls_ca.clone(),
            token: Token::load(self.token_file.as_deref(), "WORKER_TOKEN")?,
        })
    }
}

/// What one run of the loop did; logged when the worker stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Trials leased and started.
    pub started: u64,
    /// Heartbeats the coordinator answered.
    pub heartbeats: u64,
    /// Results the coordinator acknowledged (first or duplicate).
    pub results_reported: u64,
    /// Failures the coordinator acknowledged.
    pub failures_reported: u64,
    /// Reports the coordinator refused for good (a malformed result, a lease it no longer knows).
    pub reports_refused: u64,
    /// Reports that failed and were tried again after a back-off.
    pub report_retries: u64,
    /// Trials stopped because the coordinator said their lease was lost.
    pub lost_leases: u64,
    /// Trials stopped because their lease ran out with no heartbeat getting through.
    pub expired_leases: u64,
    /// Trials given back to the coordinator at shutdown.
    pub released: u64,
    /// Finished trials whose report never got through before the shutdown grace ended.
    pub unreported: u64,
}

/// The worker binary's loop (and `coordinator local-worker`'s): the first SIGTERM or Ctrl-C
/// drains, a lazily connected client rides out coordinator restarts.
pub async fn run_until_signalled(args: WorkerArgs) -> Result<()> {
    let settings = args.settings()?;
    let shutdown = crate::shutdown::on_termination_signal()?;
    let client = args.connection()?.connect_lazy()?;
    info!(worker_id = %settings.worker_id, slots = settings.slots, coordinator = %args.coordinator, "worker started");
    run(settings, client, shutdown).await.map(|_| ())
}

/// Leases, runs, heartbeats and reports trials through `client` until `shutdown` is cancelled
/// (or, with `exit_when_idle`, until there has been nothing to do for that long); then releases
/// what still runs and waits a grace period for the reports in flight.
pub async fn run(
    settings: WorkerSettings,
    client: Client,
    shutdown: CancellationToken,
) -> Result<WorkerSummary> {
    Worker {
        client,
        worker_id: settings.worker_id,
        slots: settings.slots,
        threads_per_trial: settings.threads_per_trial,
        checkpoint_root: settings.checkpoint_root,
        max_idle_poll: settings.max_idle_poll,
        exit_when_idle: settings.exit_when_idle,
        running: HashMap::new(),
        heartbeat_interval: Duration::from_secs(5),
        lease_duration: Duration::from_secs(15),
        summary: WorkerSummary::default(),
    }
    .run(shutdown)
    .await
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "worker".to_string());
    format!("{host}-{}", std::process::id())
}

struct Worker {
    client: Client,
    worker_id: String,
    slots: u32,
    threads_per_trial: usize,
    checkpoint_root: Option<std::path::PathBuf>,
    max_idle_poll: Duration,
    exit_when_idle: Option<Duration>,
    running: HashMap<String, RunningTrial>,
    heartbeat_interval: Duration,
    lease_duration: Duration,
    summary: WorkerSummary,
}

impl Worker {
    async fn run(mut self, shutdown: CancellationToken) -> Result<WorkerSummary> {
        let (finished_sender, mut finished_receiver) = mpsc::unbounded_channel::<FinishedTrial>();
        let mut reports = tokio::task::JoinSet::new();
        let mut lease_backoff = Backoff::new(Duration::from_millis(50), self.max_idle_poll);
        let mut next_lease = tokio::time::Instant::now();
        let mut next_heartbeat = tokio::time::Instant::now() + self.heartbeat_interval;
        let mut idle_since = Instant::now();

        loop {
            if !self.running.is_empty() || !reports.is_empty() {
                idle_since = Instant::now();
            }
            let free_slots = self.slots as usize - self.running.len().min(self.slots as usize);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(finished) = finished_receiver.recv() => {
                    if let Some(trial) = self.running.remove(&finished.trial_id) {
                        reports.spawn(report_finished(self.client.clone(), self.worker_id.clone(), trial, finished, shutdown.clone()));
                    }
                    next_lease = tokio::time::Instant::now();
                }
                Some(joined) = reports.join_next(), if !reports.is_empty() => {
                    self.count_report(joined);
                }
                _ = tokio::time::sleep_until(next_heartbeat) => {
                    self.heartbeat().await;
                    self.abandon_expired_leases();
                    next_heartbeat = tokio::time::Instant::now() + self.heartbeat_interval;
                }
                _ = tokio::time::sleep_until(next_lease), if free_slots > 0 => {
                    match self.lease(free_slots as u32, &finished_sender).await {
                        Ok(0) => {
                            if self.exit_when_idle.is_some_and(|limit| idle_since.elapsed() >= limit) {
                                info!(worker_id = %self.worker_id, idle_seconds = idle_since.elapsed().as_secs(), "no trial to run; stopping");
                                break;
                            }
                            next_lease = tokio::time::Instant::now() + lease_backoff.next_delay();
                        }
                        Ok(_) => {
                            lease_backoff.reset();
                            next_lease = tokio::time::Instant::now();
                            // The coordinator's interval may be shorter than the one armed.
                            next_heartbeat = next_heartbeat.min(Instant::now() + self.heartbeat_interval);
                        }
                        Err(status) => {
                            let delay = lease_backoff.next_delay();
                            warn!(worker_id = %self.worker_id, code = ?status.code(), error = %status.message(), retry_in_ms = delay.as_millis() as u64, "cannot lease trials");
                            next_lease = tokio::time::Instant::now() + delay;
                        }
                    }
                }
            }
        }

        self.release_running().await;
        let grace = tokio::time::sleep(SHUTDOWN_REPORT_GRACE);
        tokio::pin!(grace);
        while !reports.is_empty() {
            tokio::select! {
                _ = &mut grace => {
                    warn!(worker_id = %self.worker_id, unreported = reports.len(), "results left unreported; their leases will expire and the trials run again");
                    self.summary.unreported += reports.len() as u64;
                    break;
                }
                Some(joined) = reports.join_next() => self.count_report(joined),
            }
        }
        info!(worker_id = %self.worker_id, summary = ?self.summary, "worker stopped");
        Ok(self.summary)
    }

    fn count_report(&mut self, joined: Result<ReportOutcome, tokio::task::JoinError>) {
        match joined {
            Ok(outcome) => {
                let summary = &mut self.summary;
                summary.report_retries += outcome.retries;
                match outcome.acknowledged {
                    Some(Acknowledged::Result) => summary.results_reported += 1,
                    Some(Acknowledged::Failure) => summary.failures_reported += 1,
                    Some(Acknowledged::Refused) => summary.reports_refused += 1,
                    Some(Acknowledged::NothingToReport) | None => {}
                }
            }
            Err(error) => warn!(cause = %error, "result report task failed"),
        }
    }

    async fn lease(
        &mut self,
        free_slots: u32,
        finished: &mpsc::UnboundedSender<FinishedTrial>,
    ) -> Result<usize, tonic::Status> {
        let requested_at = Instant::now();
        let response = self
            .client
            .lease_trials(wire::LeaseTrialsRequest {
                worker_id: self.worker_id.clone(),
                max_trials: free_slots,
            })
            .await?
            .into_inner();
        if response.heartbeat_interval_ms > 0 {
            self.heartbeat_interval = Duration::from_millis(response.heartbeat_interval_ms);
        }
        if response.lease_duration_ms > 0 {
            self.lease_duration = Duration::from_millis(response.lease_duration_ms);
        }
        let lease_deadline = requested_at + self.lease_duration;
        let count = response.trials.len();
        self.summary.started += count as u64;
        for leased in response.trials {
            info!(trial_id = %leased.trial_id, worker_id = %self.worker_id, sweep = %leased.sweep, attempt = leased.attempt, "trial started");
            let trial = RunningTrial::start(
                leased,
                self.threads_per_trial,
                self.checkpoint_root.as_deref(),
                lease_deadline,
                finished.clone(),
            );
            self.running.insert(trial.lease.trial_id.clone(), trial);
        }
        Ok(count)
    }

    async fn heartbeat(&mut self) {
        if self.running.is_empty() {
            return;
        }
        let running = self
            .running
            .values()
            .map(|trial| {
                let (phase, step) = trial.progress.snapshot();
                wire::TrialProgress {
                    lease: Some(trial.lease.clone()),
                    phase: phase.to_string(),
                    step,
                }
            })
            .collect();
        let request = wire::HeartbeatRequest {
            worker_id: self.worker_id.clone(),
            running,
        };
        let requested_at = Instant::now();
        match self.client.heartbeat(request).await {
            Ok(response) => {
                self.summary.heartbeats += 1;
                let response = response.into_inner();
                if response.lease_duration_ms > 0 {
                    self.lease_duration = Duration::from_millis(response.lease_duration_ms);
                }
                for extended in &response.extended {
                    if let Some(trial) = self.running.get_mut(&extended.trial_id) {
                        trial.lease_deadline = requested_at + self.lease_duration;
                    }
                }
                for lost in response.lost {
                    if let Some(trial) = self.running.get(&lost.trial_id) {
                        // The coordinator gave this trial to someone else; finishing it is wasted work.
                        warn!(trial_id = %lost.trial_id, worker_id = %self.worker_id, "lease lost, stopping the trial");
                        trial.progress.cancel();
                        self.summary.lost_leases += 1;
                    }
                }
            }
            Err(status) => {
                warn!(worker_id = %self.worker_id, code = ?status.code(), error = %status.message(), "heartbeat failed");
            }
        }
    }

    /// A trial whose lease has run out (the coordinator unreachable for a whole lease) belongs to
    /// someone else by now: stop it rather than compute a result nobody waits for.
    fn abandon_expired_leases(&mut self) {
        let now = Instant::now();
        for trial in self.running.values() {
            if now >= trial.lease_deadline && !trial.progress.is_cancelled() {
                warn!(trial_id = %trial.lease.trial_id, worker_id = %self.worker_id, "lease expired without a heartbeat getting through, stopping the trial");
                trial.progress.cancel();
                self.summary.expired_leases += 1;
            }
        }
    }

    /// Cancels every running trial and gives its lease back, so another worker can take it now
    /// rather than after the lease expires.
    async fn release_running(&mut self) {
        if self.running.is_empty() {
            return;
        }
        let leases: Vec<wire::LeaseRef> = self
            .running
            .values()
            .map(|trial| {
                trial.progress.cancel();
                trial.lease.clone()
            })
            .collect();
        let request = wire::ReleaseTrialsRequest {
            worker_id: self.worker_id.clone(),
            leases,
        };
        match tokio::time::timeout(Duration::from_secs(5), self.client.release_trials(request))
            .await
        {
            Ok(Ok(response)) => {
                let released = response.into_inner().released;
                self.summary.released += u64::from(released);
                info!(worker_id = %self.worker_id, released, "running trials released")
            }
            Ok(Err(status)) => {
                warn!(worker_id = %self.worker_id, error = %status.message(), "cannot release trials; their leases will expire")
            }
            Err(_) => {
                warn!(worker_id = %self.worker_id, "release timed out; the leases will expire")
            }
        }
    }
}

/// What the coordinator said to a finished trial's report.
enum Acknowledged {
    Result,
    Failure,
    Refused,
    NothingToReport,
}

/// How one report ended: acknowledged (None when shutdown's grace ran out first), after how many
/// failed tries.
struct ReportOutcome {
    acknowledged: Option<Acknowledged>,
    retries: u64,
}

/// Reports one finished trial, retrying with capped exponential back-off and jitter until the
/// coordinator acknowledges it (or, after shutdown has begun, until the grace period ends).
async fn report_finished(
    mut client: Client,
    worker_id: String,
    trial: RunningTrial,
    finished: FinishedTrial,
    shutdown: CancellationToken,
) -> ReportOutcome {
    let trial_id = trial.lease.trial_id.clone();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let mut retries = 0;
    let acknowledged = |acknowledged, retries| ReportOutcome {
        acknowledged: Some(acknowledged),
        retries,
    };
    loop {
        let outcome = match &finished.outcome {
            running::TrialOutcome::Measured(measurements) => client
                .report_result(wire::ReportResultRequest {
                    worker_id: worker_id.clone(),
                    lease: Some(trial.lease.clone()),
                    result: Some(convert::to_wire(measurements)),
                })
                .await
                .map(|response| {
                    let duplicate = response.into_inner().duplicate;
                    info!(trial_id = %trial_id, worker_id = %worker_id, duplicate, "result reported");
                    Acknowledged::Result
                }),
            running::TrialOutcome::Failed(error) => client
                .report_failure(wire::ReportFailureRequest {
                    worker_id: worker_id.clone(),
                    lease: Some(trial.lease.clone()),
                    error: error.clone(),
                })
                .await
                .map(|response| {
                    let failed = response.into_inner().failed_permanently;
                    warn!(trial_id = %trial_id, worker_id = %worker_id, error = %error, failed_permanently = failed, "trial failure reported");
                    Acknowledged::Failure
                }),
            running::TrialOutcome::Cancelled => {
                debug!(trial_id = %trial_id, worker_id = %worker_id, "trial cancelled; nothing to report");
                return acknowledged(Acknowledged::NothingToReport, retries);
            }
        };
        match outcome {
            Ok(outcome) => return acknowledged(outcome, retries),
            Err(status) if is_permanent(&status) => {
                warn!(trial_id = %trial_id, worker_id = %worker_id, code = ?status.code(), error = %status.message(), "report refused");
                return acknowledged(Acknowledged::Refused, retries);
            }
            Err(status) => {
                let delay = backoff.next_delay();
                retries += 1;
                warn!(trial_id = %trial_id, worker_id = %worker_id, code = ?status.code(), error = %status.message(), retry_in_ms = delay.as_millis() as u64, "report failed, retrying");
                if shutdown.is_cancelled() {
                    tokio::time::sleep(delay).await;
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // Keep retrying after shutdown starts; the caller bounds the wait.
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }
}

/// Errors that retrying cannot fix.
fn is_permanent(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::NotFound
            | tonic::Code::PermissionDenied
            | tonic::Code::Unauthenticated
    )
}
