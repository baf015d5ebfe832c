//! Counters the coordinator keeps about its API, served in the Prometheus text format on the
//! dashboard's `/metrics` with the trial counts by state read from the database.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::store::SweepCounts;

/// Upper bounds of the RPC latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// A worker counts as active this long after its last call.
const ACTIVE_WORKER_WINDOW: Duration = Duration::from_secs(300);

/// The RPCs whose latency is measured, as they are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    LeaseTrials,
    Heartbeat,
    ReportResult,
    ReportFailure,
}

impl Rpc {
    const ALL: [Rpc; 4] = [
        Rpc::LeaseTrials,
        Rpc::Heartbeat,
        Rpc::ReportResult,
        Rpc::ReportFailure,
    ];

    fn label(self) -> &'static str {
        match self {
            Rpc::LeaseTrials => "LeaseTrials",
            Rpc::Heartbeat => "Heartbeat",
            Rpc::ReportResult => "ReportResult",
            Rpc::ReportFailure => "ReportFailure",
        }
    }
}

#[derive(Default)]
struct Histogram {
    /// Cumulative counts, one per bucket of [`LATENCY_BUCKETS`].
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    trials_leased: AtomicU64,
    heartbeats: AtomicU64,
    results_recorded: AtomicU64,
    duplicate_results: AtomicU64,
    failures_reported: AtomicU64,
    latency: [Histogram; Rpc::ALL.len()],
    workers_last_seen: Mutex<HashMap<String, Instant>>,
}

impl Metrics {
    pub fn rpc_finished(&self, rpc: Rpc, started: Instant) {
        let index = Rpc::ALL.iter().position(|candidate| *candidate == rpc);
        if let Some(histogram) = index.and_then(|index| self.latency.get(index)) {
            histogram.observe(started.elapsed());
        }
    }

    pub fn worker_seen(&self, worker_id: &str) {
        if let Ok(mut seen) = self.workers_last_seen.lock() {
            match seen.get_mut(worker_id) {
                Some(last) => *last = Instant::now(),
                None => {
                    seen.insert(worker_id.to_string(), Instant::now());
                }
            }
        }
    }

    pub fn trials_leased(&self, count: usize) {
        self.trials_leased
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    pub fn result(&self, duplicate: bool) {
        let counter = if duplicate {
            &self.duplicate_results
        } else {
            &self.results_recorded
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failure_reported(&self) {
        self.failures_reported.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these counters and of `counts` (trials by state).
    pub fn render(&self, counts: &[SweepCounts]) -> String {
        let mut text = String::new();
        describe(
            &mut text,
            "sweep_trials",
            "gauge",
            "Trials by sweep and state, from the database.",
        );
        for sweep in counts {
            for (state, value) in [
                ("pending", sweep.pending),
                ("leased", sweep.leased),
                ("done", sweep.done),
                ("failed", sweep.failed),
            ] {
                let _ = writeln!(
                    text,
                    "sweep_trials{{sweep=\"{}\",state=\"{state}\"}} {value}",
                    label_value(&sweep.sweep)
                );
            }
        }
        describe(
            &mut text,
            "sweep_trials_diverged",
            "gauge",
            "Finished trials whose training diverged, by sweep.",
        );
        for sweep in counts {
            let _ = writeln!(
                text,
                "sweep_trials_diverged{{sweep=\"{}\"}} {}",
                label_value(&sweep.sweep),
                sweep.diverged
            );
        }
        let counters = [
            (
                "coordinator_trials_leased_total",
                "Trials handed out under a lease by this coordinator.",
                &self.trials_leased,
            ),
            (
                "coordinator_heartbeats_total",
                "Heartbeat calls served.",
                &self.heartbeats,
            ),
            (
                "coordinator_results_recorded_total",
                "Results recorded.",
                &self.results_recorded,
            ),
            (
                "coordinator_duplicate_results_total",
                "Results ignored because the trial already had one.",
                &self.duplicate_results,
            ),
            (
                "coordinator_failures_reported_total",
                "Trial failures reported by workers.",
                &self.failures_reported,
            ),
        ];
        for (name, help, counter) in counters {
            describe(&mut text, name, "counter", help);
            let _ = writeln!(text, "{name} {}", counter.load(Ordering::Relaxed));
        }
        let (active, seen) = match self.workers_last_seen.lock() {
            Ok(seen) => (
                seen.values()
                    .filter(|last| last.elapsed() <= ACTIVE_WORKER_WINDOW)
                    .count(),
                seen.len(),
            ),
            Err(_) => (0, 0),
        };
        describe(
            &mut text,
            "coordinator_workers_active",
            "gauge",
            "Workers that called in the last five minutes.",
        );
        let _ = writeln!(text, "coordinator_workers_active {active}");
        describe(
            &mut text,
            "coordinator_workers_seen",
            "gauge",
            "Distinct workers that have called this coordinator since it started.",
        );
        let _ = writeln!(text, "coordinator_workers_seen {seen}");
        describe(
            &mut text,
            "coordinator_rpc_duration_seconds",
            "histogram",
            "Latency of worker RPCs, from request to response.",
        );
        for (rpc, histogram) in Rpc::ALL.iter().zip(&self.latency) {
            let label = rpc.label();
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
                let _ = writeln!(
                    text,
                    "coordinator_rpc_duration_seconds_bucket{{rpc=\"{label}\",le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let _ = writeln!(
                text,
                "coordinator_rpc_duration_seconds_bucket{{rpc=\"{label}\",le=\"+Inf\"}} {count}\n\
                 coordinator_rpc_duration_seconds_sum{{rpc=\"{label}\"}} {}\n\
                 coordinator_rpc_duration_seconds_count{{rpc=\"{label}\"}} {count}",
                histogram.sum_nanos.load(Ordering::Relaxed) as f64 * 1e-9
            );
        }
        text
    }
}

/// The HELP and TYPE lines that introduce a metric.
fn describe(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_buckets_cumulatively_and_escapes_labels() {
        let metrics = Metrics::default();
        metrics.worker_seen("w1");
        metrics.worker_seen("w2");
        metrics.worker_seen("w1");
        metrics.trials_leased(3);
        metrics.result(false);
        metrics.result(true);
        let started = Instant::now();
        metrics.rpc_finished(Rpc::LeaseTrials, started);
        let counts = [SweepCounts {
            sweep: "a\"b".to_string(),
            total: 5,
            pending: 2,
            done: 3,
            ..Default::default()
        }];
        let text = metrics.render(&counts);
        for line in [
            "sweep_trials{sweep=\"a\\\"b\",state=\"pending\"} 2",
            "sweep_trials{sweep=\"a\\\"b\",state=\"done\"} 3",
            "coordinator_trials_leased_total 3",
            "coordinator_results_recorded_total 1",
            "coordinator_duplicate_results_total 1",
            "coordinator_workers_seen 2",
            "coordinator_workers_active 2",
            "coordinator_rpc_duration_seconds_bucket{rpc=\"LeaseTrials\",le=\"1\"} 1",
            "coordinator_rpc_duration_seconds_bucket{rpc=\"LeaseTrials\",le=\"+Inf\"} 1",
            "coordinator_rpc_duration_seconds_count{rpc=\"Heartbeat\"} 0",
        ] {
            assert!(
                text.lines().any(|candidate| candidate == line),
                "{line} in\n{text}"
            );
        }
    }
}
