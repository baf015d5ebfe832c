//! `coordinator run`: a whole sweep on this machine. A coordinator on embedded SQLite serves an
//! ephemeral loopback port, local worker processes connect to it over gRPC, progress is shown
//! until every trial is done or failed, and the report is printed and written to files.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::RunArgs;
use crate::progress::ProgressDisplay;
use crate::report::{SweepReport, to_table};
use crate::store::{self, SweepCounts};
use crate::sweep::SweepPlan;

const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
const WORKER_STOP_GRACE: Duration = Duration::from_secs(10);

pub async fn run(args: RunArgs) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers = 0 is invalid: start at least one worker");
    }
    let settings = args.scheduler.settings()?;
    let source_name = args.sweep_file.display().to_string();
    let text = std::fs::read_to_string(&args.sweep_file)
        .with_context(|| format!("cannot read sweep file {source_name}"))?;
    let max_trials = settings.max_trials_per_sweep;
    let plan =
        tokio::task::spawn_blocking(move || SweepPlan::from_toml(&source_name, &text, max_trials))
            .await??;
    let sweep_name = plan.sweep.name.clone();

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&sweep_name));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let db_url = args
        .db
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", out.join("sweeps.db").display()));
    let store = store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", store::redact_password(&db_url)))?;
    let registered = store.register_sweep(&plan, store::now_ms()).await?;
    eprintln!(
        "sweep {sweep_name}: {} trials ({}), database {}",
        registered.trial_count,
        if registered.created {
            "new"
        } else {
            "resuming"
        },
        store::redact_password(&db_url)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let stop_server = CancellationToken::new();
    let server = tokio::spawn(crate::server::serve(
        listener,
        store.clone(),
        settings,
        crate::server::Security::default(),
        None,
        stop_server.clone().cancelled_owned(),
    ));

    let cores = std::thread::available_parallelism()
        .map(|cores| cores.get() as u32)
        .unwrap_or(1);
    let slots = args.slots.unwrap_or_else(|| (cores / args.workers).max(1));
    let mut workers = Vec::with_capacity(args.workers as usize);
    for index in 0..args.workers {
        workers.push(start_worker(
            &format!("http://{address}"),
            index,
            slots,
            &out.join("checkpoints"),
        )?);
    }
    eprintln!(
        "coordinator on {address}; {} worker processes with {slots} slot(s) each",
        args.workers
    );

    let interrupted = worker::shutdown::on_termination_signal()?;
    let started = Instant::now();
    let outcome =
        watch_until_complete(store.as_ref(), &sweep_name, &interrupted, &mut workers).await;

    stop_workers(&mut workers).await;
    stop_server.cancel();
    if let Ok(Err(error)) = server.await {
        warn!(cause = %error, "coordinator server ended with an error");
    }
    let counts = outcome?;

    let report = SweepReport::load(store.as_ref(), &sweep_name, false).await?;
    println!();
    print!("{}", to_table(&report));
    let files = report.write_files(&out)?;
    println!(
        "\n{} trials done, {} failed in {:.1} s; wrote {}",
        counts.done,
        counts.failed,
        started.elapsed().as_secs_f64(),
        files
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "query it: coordinator report {sweep_name} --db {} (or sqlite3 {})",
        store::redact_password(&db_url),
        out.join("sweeps.db").display()
    );
    Ok(())
}

/// Starts one worker as a separate process of this same executable, so `cargo run --bin
/// coordinator` needs no other binary built; weight files (when the sweep asks) go to
/// `checkpoints`, next to the database.
fn start_worker(
    coordinator_url: &str,
    index: u32,
    slots: u32,
    checkpoints: &std::path::Path,
) -> Result<Child> {
    let executable =
        std::env::current_exe().context("cannot locate this executable to start workers")?;
    let child = Command::new(executable)
        .arg("local-worker")
        .arg("--coordinator")
        .arg(coordinator_url)
        .arg("--slots")
        .arg(slots.to_string())
        .arg("--worker-id")
        .arg(format!("local-{}-{index}", std::process::id()))
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start a worker process")?;
    Ok(child)
}

async fn watch_until_complete(
    store: &dyn store::Store,
    sweep: &str,
    interrupted: &CancellationToken,
    workers: &mut [Child],
) -> Result<SweepCounts> {
    let mut progress = ProgressDisplay::new(sweep);
    loop {
        let counts = store
            .sweep_counts(Some(sweep))
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        progress.update(&counts);
        if counts.is_complete() {
            progress.finish();
            return Ok(counts);
        }
        for worker in workers.iter_mut() {
            if let Ok(Some(status)) = worker.try_wait() {
                bail!(
                    "a worker process exited ({status}) before the sweep finished; rerun the same command to resume"
                );
            }
        }
        tokio::select! {
            _ = interrupted.cancelled() => bail!("interrupted; rerun the same command to resume the sweep"),
            _ = tokio::time::sleep(PROGRESS_INTERVAL) => {}
        }
    }
}

/// SIGTERM first (a worker releases what it holds), then SIGKILL after a grace period.
async fn stop_workers(workers: &mut [Child]) {
    for worker in workers.iter() {
        if let Some(pid) = worker.id() {
            // SAFETY: kill(2) with a pid of a child we started and have not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    for worker in workers.iter_mut() {
        match tokio::time::timeout(WORKER_STOP_GRACE, worker.wait()).await {
            Ok(_) => info!("worker stopped"),
            Err(_) => {
                warn!("worker did not stop in time, killing it");
                let _ = worker.kill().await;
            }
        }
    }
}
