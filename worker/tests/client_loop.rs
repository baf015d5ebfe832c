//! The worker's loop against a real coordinator served in this process on 127.0.0.1:0.
//!
//! Time runs for real, made short instead: a 3 s lease (so a heartbeat every second). Tokio's
//! paused clock does not fit a real coordinator: it jumps to the next timer whenever the runtime
//! waits, and the runtime waits on things outside it (SQLite's connection threads, the socket),
//! so sqlx's acquire timeout and the client's keep-alive and release timeouts fire at once (the
//! store's first open failed with PoolTimedOut under it). A lease's expiry is brought about by
//! passing a later time to `reclaim_expired` rather than by waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use coordinator::api::SchedulerSettings;
use coordinator::server::{Security, listen, serve};
use coordinator::store::{self, Store};
use coordinator::sweep::SweepPlan;
use proto::channel::{Client, Connection};
use proto::v1 as wire;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worker::client::{WorkerSettings, WorkerSummary, run};

const SWEEP: &str = "loop-test";
/// The coordinator's lease; workers heartbeat three times per lease.
const SHORT_LEASE: Duration = Duration::from_secs(3);

/// One small network per width and seed; `max_steps` sets how long a trial computes.
fn sweep_toml(widths: &[u32], max_steps: u32) -> String {
    let widths: Vec<String> = widths.iter().map(u32::to_string).collect();
    format!(
        "name = \"{SWEEP}\"\nmax_attempts = 3\n\
         [data]\ndataset = \"teacher_student\"\ninput_dim = 4\nclasses = 2\n\
         train_size = 32\ntest_size = 32\nteacher_width = 4\n\
         [model]\ndepth = 2\nwidth = 8\nactivation = \"relu\"\n\
         [training]\nloss = \"cross_entropy\"\nlearning_rate = 0.05\nbatch_size = 8\n\
         max_steps = {max_steps}\neval_every = 10\n\
         [probe]\nsteps = 5\nnoise_sigma = 0.01\nradii = [0.5]\nreplicates = 1\n\
         [grid]\nmodel.width = [{}]\n",
        widths.join(", ")
    )
}

/// A coordinator serving a SQLite file until stopped.
struct Served {
    address: SocketAddr,
    store: Arc<dyn Store>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Served {
    async fn start(db_url: &str, address: SocketAddr) -> Self {
        Self::start_with_lease(db_url, address, SHORT_LEASE).await
    }

    async fn start_with_lease(db_url: &str, address: SocketAddr, lease: Duration) -> Self {
        let store = store::open(db_url).await.expect("the store opens");
        let listener = listen(address).expect("the coordinator listens");
        let address = listener.local_addr().expect("a bound address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            store.clone(),
            SchedulerSettings {
                lease_duration: lease,
                ..SchedulerSettings::default()
            },
            Security::default(),
            None,
            stop.clone().cancelled_owned(),
        ));
        Self {
            address,
            store,
            stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the server task joins")
            .expect("the server stops cleanly");
    }

    fn client(&self) -> Client {
        Connection {
            url: format!("http://{}", self.address),
            tls_ca: None,
            token: None,
        }
        .connect_lazy()
        .expect("a client")
    }

    async fn submit(&self, widths: &[u32], max_steps: u32) {
        self.client()
            .submit_sweep(wire::SubmitSweepRequest {
                sweep_toml: sweep_toml(widths, max_steps),
                source_name: "client_loop.rs".to_string(),
            })
            .await
            .expect("the sweep is accepted");
    }

    async fn counts(&self) -> store::SweepCounts {
        let mut counts = self.store.sweep_counts(Some(SWEEP)).await.expect("counts");
        counts.pop().expect("the sweep is stored")
    }

    /// Waits up to a minute until `done(counts)`.
    async fn wait_for(&self, what: &str, done: impl Fn(&store::SweepCounts) -> bool) {
        for _ in 0..600 {
            if done(&self.counts().await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gave up waiting for {what}: {:?}", self.counts().await);
    }
}

fn settings(slots: u32) -> WorkerSettings {
    WorkerSettings {
        worker_id: "loop-test-worker".to_string(),
        slots,
        threads_per_trial: 1,
        checkpoint_root: None,
        max_idle_poll: Duration::from_millis(200),
        exit_when_idle: None,
    }
}

fn database() -> (tempfile::TempDir, String) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("sweeps.db").display());
    (directory, url)
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn start_worker(
    client: Client,
    slots: u32,
) -> (CancellationToken, JoinHandle<anyhow::Result<WorkerSummary>>) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(settings(slots), client, shutdown.clone()));
    (shutdown, task)
}

#[tokio::test]
async fn leases_every_trial_reports_each_once_and_stops_when_idle() {
    let (_directory, db_url) = database();
    let served = Served::start(&db_url, any_port()).await;
    served.submit(&[4, 8, 12], 30).await;
    let mut settings = settings(2);
    settings.exit_when_idle = Some(Duration::from_secs(1));

    let summary = run(settings, served.client(), CancellationToken::new())
        .await
        .expect("the worker stops by itself once idle");

    let counts = served.counts().await;
    assert_eq!((counts.done, counts.total), (3, 3), "{counts:?}");
    assert_eq!(counts.duplicate_reports, 0);
    assert_eq!(summary.started, 3, "{summary:?}");
    assert_eq!(summary.results_reported, 3, "{summary:?}");
    assert_eq!(summary.released + summary.unreported, 0, "{summary:?}");
    served.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_a_long_trial_and_shutdown_releases_it() {
    let (_directory, db_url) = database();
    let served = Served::start(&db_url, any_port()).await;
    served.submit(&[64], 1_000_000).await;
    let (shutdown, worker) = start_worker(served.client(), 1);
    served
        .wait_for("the trial's lease", |c| c.leased == 1)
        .await;
    // Past a whole lease: only heartbeats keep it.
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(500)).await;
    assert_eq!(served.counts().await.leased, 1, "the lease was kept");

    shutdown.cancel();
    let summary = worker.await.expect("joins").expect("stops cleanly");

    assert!(summary.heartbeats >= 3, "{summary:?}");
    assert_eq!((summary.started, summary.released), (1, 1), "{summary:?}");
    let counts = served.counts().await;
    assert_eq!((counts.pending, counts.leased, counts.done), (1, 0, 0));
    served.stop().await;
}

#[tokio::test]
async fn a_lost_lease_stops_the_trial_and_the_worker_leases_it_again() {
    let (_directory, db_url) = database();
    let served = Served::start(&db_url, any_port()).await;
    served.submit(&[64], 1_000_000).await;
    let trial_id = only_trial_id(&[64], 1_000_000);
    let (shutdown, worker) = start_worker(served.client(), 1);
    served.wait_for("the first lease", |c| c.leased == 1).await;

    // As if the lease had run out: the coordinator requeues the trial, and the worker's next
    // heartbeat hears that it was lost, stops the trial, and has a free slot to lease it again.
    let later = store::now_ms() + 10 * 60 * 1000;
    let reclaimed = served.store.reclaim_expired(later).await.expect("reclaims");
    assert_eq!(reclaimed.requeued, 1);
    served.wait_for("the second lease", |c| c.leased == 1).await;
    let record = served.store.trial(&trial_id).await.expect("record");
    assert_eq!(record.map(|record| record.attempts), Some(2));
    shutdown.cancel();
    let summary = worker.await.expect("joins").expect("stops cleanly");

    assert_eq!(summary.lost_leases, 1, "{summary:?}");
    assert_eq!((summary.started, summary.released), (2, 1), "{summary:?}");
    assert_eq!(summary.results_reported, 0, "{summary:?}");
    // The expired lease counts as an attempt; the one released at shutdown is given back.
    let record = served.store.trial(&trial_id).await.expect("record");
    let record = record.expect("the trial exists");
    assert_eq!((record.state.as_str(), record.attempts), ("pending", 1));
    served.stop().await;
}

#[tokio::test]
async fn a_report_the_coordinator_cannot_take_is_retried_until_it_is_back() {
    // A lease long enough to outlast the coordinator's absence, so the result is still wanted.
    let lease = Duration::from_secs(20);
    let (_directory, db_url) = database();
    let served = Served::start_with_lease(&db_url, any_port(), lease).await;
    let address = served.address;
    // About half a second of arithmetic here: longer than stopping the coordinator takes, well
    // short of its absence.
    served.submit(&[64], 60_000).await;
    let (shutdown, worker) = start_worker(served.client(), 1);
    served.wait_for("the lease", |c| c.leased == 1).await;
    // The coordinator goes away while the trial runs; the report fails and backs off (0.1, 0.2,
    // 0.4, 0.8 s, …) until the coordinator is back.
    served.stop().await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    let served = Served::start_with_lease(&db_url, address, lease).await;
    served.wait_for("the result", |c| c.done == 1).await;
    shutdown.cancel();
    let summary = worker.await.expect("joins").expect("stops cleanly");

    assert!(summary.report_retries >= 3, "{summary:?}");
    assert_eq!(summary.results_reported, 1, "{summary:?}");
    assert_eq!(summary.expired_leases, 0, "{summary:?}");
    assert_eq!(served.counts().await.duplicate_reports, 0);
    served.stop().await;
}

/// The id the coordinator gives the one trial of [`sweep_toml`] with one width.
fn only_trial_id(widths: &[u32], max_steps: u32) -> String {
    let plan = SweepPlan::from_toml("client_loop.rs", &sweep_toml(widths, max_steps), 10)
        .expect("the test sweep is valid");
    plan.trial_at(0).expect("one trial").id
}
