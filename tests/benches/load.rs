//! Load harness for the coordinator: N simulated workers (cheap fake trials: lease one, report a
//! result at once) against one real coordinator process, on SQLite and on PostgreSQL, at 10^3 and
//! 10^5 trials. Prints trials per second, lease and report latency (p50/p99) and the
//! coordinator's peak memory, beside the target of 5,000 trials per second.
//!
//!   cargo bench -p e2e-tests --bench load                    # 1,000 workers, both backends, both sizes
//!   cargo bench -p e2e-tests --bench load -- --workers 200 --trials 1000 --backend sqlite

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use common::{Coordinator, PostgresDatabase, tiny_sweep};
use proto::channel::{Client, Connection};
use proto::v1 as wire;

const TARGET_TRIALS_PER_SECOND: f64 = 5000.0;

struct Options {
    workers: usize,
    sizes: Vec<u64>,
    backends: Vec<String>,
}

fn options() -> Options {
    let mut options = Options {
        workers: 1000,
        sizes: vec![1_000, 100_000],
        backends: vec!["sqlite".to_string(), "postgres".to_string()],
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < arguments.len() {
        let value = arguments.get(index + 1).cloned().unwrap_or_default();
        match arguments[index].as_str() {
            "--workers" => options.workers = value.parse().expect("--workers N"),
            "--trials" => options.sizes = vec![value.parse().expect("--trials N")],
            "--backend" => options.backends = vec![value],
            _ => {
                index += 1;
                continue;
            }
        }
        index += 2;
    }
    options
}

fn fake_result() -> wire::TrialResult {
    wire::TrialResult {
        outcome: "converged".to_string(),
        train_loss: 0.01,
        test_loss: 0.2,
        train_error: 0.0,
        test_error: 0.1,
        steps: 100,
        reached_target: true,
        parameter_count: 1000,
        train_size: 100,
        vc_capacity: 1000.0,
        spectral_capacity: 100.0,
        margin_gamma: 1.0,
        train_seconds: 0.01,
        // The shape of tiny_sweep's trials: two dense layers, two probe radii, two replicates.
        layers: (1..=2)
            .map(|layer| wire::LayerMeasurement {
                layer,
                fan_in: 4,
                fan_out: 4,
                spectral_norm: 1.0,
                frobenius_norm: 2.0,
                ..Default::default()
            })
            .collect(),
        radii: [0.1, 0.4]
            .into_iter()
            .map(|radius| wire::RadiusMeasurement {
                radius,
                stay_probability: 1.0,
                mean_exit_step: 10.0,
                occupancy: 1.0,
                median_exit_step: 12.0,
                replicate_exit_steps: vec![10, 0],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

/// What one simulated worker saw.
#[derive(Default)]
struct WorkerLog {
    leases: Vec<Duration>,
    reports: Vec<Duration>,
    /// Calls that failed in transport and were retried on a new connection, as a real worker does.
    retries: u64,
}

/// Calls the coordinator, reconnecting and retrying when the transport fails (a connection dropped
/// while a thousand workers connect at once); any other error ends the run.
async fn with_retries<T, F, Fut>(
    connection: &Connection,
    client: &mut Client,
    retries: &mut u64,
    mut call: F,
) -> T
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    loop {
        match call(client.clone()).await {
            Ok(response) => return response.into_inner(),
            Err(status) if *retries < 100 && status.code() != tonic::Code::NotFound => {
                *retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Ok(fresh) = connection.connect().await {
                    *client = fresh;
                }
            }
            Err(status) => panic!("coordinator call failed: {status}"),
        }
    }
}

/// One simulated worker: lease one trial, report it, until there is nothing left to lease.
async fn simulated_worker(url: String, index: usize, start: Arc<Barrier>) -> WorkerLog {
    let connection = Connection {
        url,
        tls_ca: None,
        token: None,
    };
    let mut client = connection.connect().await.expect("connect");
    // Every worker is connected before the clock starts: the figures are of leasing and reporting.
    start.wait().await;
    let worker_id = format!("load-{index}");
    let mut log = WorkerLog::default();
    loop {
        let started = Instant::now();
        let request = wire::LeaseTrialsRequest {
            worker_id: worker_id.clone(),
            max_trials: 1,
        };
        let response = with_retries(&connection, &mut client, &mut log.retries, |mut client| {
            let request = request.clone();
            async move { client.lease_trials(request).await }
        })
        .await;
        log.leases.push(started.elapsed());
        if response.trials.is_empty() {
            return log;
        }
        for trial in response.trials {
            let started = Instant::now();
            let request = wire::ReportResultRequest {
                worker_id: worker_id.clone(),
                lease: Some(wire::LeaseRef {
                    trial_id: trial.trial_id,
                    lease_id: trial.lease_id,
                }),
                result: Some(fake_result()),
            };
            with_retries(&connection, &mut client, &mut log.retries, |mut client| {
                let request = request.clone();
                async move { client.report_result(request).await }
            })
            .await;
            log.reports.push(started.elapsed());
        }
    }
}

fn peak_memory_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

fn run(backend: &str, trials: u64, workers: usize) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let postgres = (backend == "postgres").then(PostgresDatabase::create);
    let db_url = match &postgres {
        Some(database) => database.url.clone(),
        None => format!("sqlite://{}", directory.path().join("load.db").display()),
    };
    let coordinator = Coordinator::serve(&db_url, "127.0.0.1:0", 600.0, &[], "http");
    let sweep_file = directory.path().join("load.toml");
    let seeds = (trials / 2).max(1) as u32;
    std::fs::write(&sweep_file, tiny_sweep("load", &[4, 8], seeds, 10)).expect("write sweep");
    let submit_started = Instant::now();
    let submitted = coordinator.submit(&sweep_file);
    assert!(
        submitted.status.success(),
        "{}",
        common::stderr_of(&submitted)
    );
    let submit_seconds = submit_started.elapsed().as_secs_f64();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let coordinator_pid = coordinator.process.pid();
    let (mut leases, mut reports, retries, seconds, coordinator_cpu) = runtime.block_on(async {
        let start = Arc::new(Barrier::new(workers + 1));
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..workers {
            tasks.spawn(simulated_worker(
                coordinator.url.clone(),
                index,
                start.clone(),
            ));
        }
        start.wait().await;
        let cpu_before = cpu_seconds(coordinator_pid);
        let started = Instant::now();
        let (mut leases, mut reports, mut retries) = (Vec::new(), Vec::new(), 0);
        while let Some(joined) = tasks.join_next().await {
            let log = joined.expect("simulated worker");
            leases.extend(log.leases);
            reports.extend(log.reports);
            retries += log.retries;
        }
        let seconds = started.elapsed().as_secs_f64();
        let coordinator_cpu = cpu_seconds(coordinator_pid) - cpu_before;
        (leases, reports, retries, seconds, coordinator_cpu)
    });
    let recorded = reports.len() as u64;
    assert_eq!(
        recorded,
        2 * seeds as u64,
        "every trial leased once and reported"
    );
    leases.sort();
    reports.sort();
    let rate = recorded as f64 / seconds;
    println!(
        "{backend:>8} {recorded:>7} trials {workers:>5} workers  {rate:>8.0} trials/s ({:>4.0}% of target {TARGET_TRIALS_PER_SECOND:.0})  \
         {:>7.1} µs/trial (coordinator CPU {:>5.1} µs/trial)  lease p50 {:>6.1} ms p99 {:>6.1} ms  report p50 {:>6.1} ms p99 {:>6.1} ms  submit {submit_seconds:.1} s  coordinator peak {:.0} MiB  retried calls {retries}",
        100.0 * rate / TARGET_TRIALS_PER_SECOND,
        1e6 * seconds / recorded as f64,
        1e6 * coordinator_cpu / recorded as f64,
        percentile(&leases, 0.5).as_secs_f64() * 1e3,
        percentile(&leases, 0.99).as_secs_f64() * 1e3,
        percentile(&reports, 0.5).as_secs_f64() * 1e3,
        percentile(&reports, 0.99).as_secs_f64() * 1e3,
        peak_memory_mib(coordinator.process.pid()),
    );
    drop(coordinator);
    drop(postgres);
}

fn main() {
    let options = options();
    println!(
        "coordinator load: simulated workers lease one trial and report a fake result at once; \
         they share this machine's cores with the coordinator"
    );
    for backend in &options.backends {
        for &trials in &options.sizes {
            run(backend, trials, options.workers);
        }
    }
}
