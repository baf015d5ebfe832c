//! A trial running on its own thread, with the progress and cancellation it shares with the loop.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use proto::v1 as wire;
use tokio::sync::mpsc;
use tracing::warn;

use crate::science::{self, Phase, TrialMeasurements, TrialObserver};

/// Progress of one trial, written by its thread and read by heartbeats.
#[derive(Debug)]
pub struct SharedProgress {
    phase: Mutex<&'static str>,
    step: AtomicU64,
    cancelled: AtomicBool,
}

impl SharedProgress {
    fn new() -> Self {
        Self {
            phase: Mutex::new("starting"),
            step: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
        }
    }

    pub fn snapshot(&self) -> (&'static str, u64) {
        let phase = self.phase.lock().map(|phase| *phase).unwrap_or("unknown");
        (phase, self.step.load(Ordering::Relaxed))
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl TrialObserver for SharedProgress {
    fn progress(&self, phase: Phase, step: u64) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase.as_str();
        }
        self.step.store(step, Ordering::Relaxed);
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

pub enum TrialOutcome {
    Measured(Box<TrialMeasurements>),
    /// An error the trial cannot recover from (bad configuration, a panic); retried elsewhere
    /// until the sweep's maximum attempts.
    Failed(String),
    Cancelled,
}

pub struct FinishedTrial {
    pub trial_id: String,
    pub outcome: TrialOutcome,
}

pub struct RunningTrial {
    pub lease: wire::LeaseRef,
    pub progress: Arc<SharedProgress>,
    /// When the lease runs out by this worker's clock, unless a heartbeat extends it.
    pub lease_deadline: tokio::time::Instant,
}

impl RunningTrial {
    /// Starts the trial on a thread of its own; its outcome arrives on `finished`.
    pub fn start(
        leased: wire::LeasedTrial,
        threads: usize,
        checkpoint_root: Option<&std::path::Path>,
        lease_deadline: tokio::time::Instant,
        finished: mpsc::UnboundedSender<FinishedTrial>,
    ) -> Self {
        let progress = Arc::new(SharedProgress::new());
        let lease = wire::LeaseRef {
            trial_id: leased.trial_id.clone(),
            lease_id: leased.lease_id.clone(),
        };
        let observer = progress.clone();
        let trial_id = leased.trial_id.clone();
        // Sweep names are letters, digits, '-', '_' and '.'; the trial id is hex: both are safe
        // path components.
        let options = science::TrialOptions {
            threads,
            checkpoint_directory: checkpoint_root
                .map(|root| root.join(&leased.sweep).join(&leased.trial_id)),
            checkpoint_metadata: std::collections::HashMap::from([
                ("sweep".to_string(), leased.sweep.clone()),
                ("trial_id".to_string(), leased.trial_id.clone()),
            ]),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("trial-{}", &trial_id[..trial_id.len().min(8)]))
            .spawn({
                let finished = finished.clone();
                move || {
                    let outcome = run_one(&leased.config_json, &options, observer.as_ref());
                    let _ = finished.send(FinishedTrial {
                        trial_id: leased.trial_id,
                        outcome,
                    });
                }
            });
        if let Err(error) = spawned {
            warn!(trial_id = %trial_id, cause = %error, "cannot start a trial thread");
            let _ = finished.send(FinishedTrial {
                trial_id,
                outcome: TrialOutcome::Failed(format!("cannot start a trial thread: {error}")),
            });
        }
        Self {
            lease,
            progress,
            lease_deadline,
        }
    }
}

fn run_one(
    config_json: &str,
    options: &science::TrialOptions,
    observer: &SharedProgress,
) -> TrialOutcome {
    let config: proto::TrialConfig = match serde_json::from_str(config_json) {
        Ok(config) => config,
        Err(error) => {
            return TrialOutcome::Failed(format!("malformed trial configuration: {error}"));
        }
    };
    // A panic in the numeric code must fail this trial, not take the worker's other trials down.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        science::run_trial_with_options(&config, observer, options)
    }));
    match result {
        Ok(Ok(measurements)) => TrialOutcome::Measured(Box::new(measurements)),
        Ok(Err(science::TrialError::Cancelled)) => TrialOutcome::Cancelled,
        Ok(Err(error)) => TrialOutcome::Failed(error.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            TrialOutcome::Failed(format!("trial panicked: {message}"))
        }
    }
}
