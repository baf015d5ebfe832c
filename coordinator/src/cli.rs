//! The `coordinator` command line: `serve`, `submit`, `status`, `report` and `run`.
//! Every flag can also come from a `COORDINATOR_*` environment variable (compose, Kubernetes).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use proto::auth::Token;
use proto::channel::{Client, Connection};

use crate::api::SchedulerSettings;
use crate::report::export::{self, ExportFormat};
use crate::report::{ReportFormat, SweepReport};
use crate::server::Security;
use crate::store::{self, SweepCounts};

#[derive(Debug, Parser)]
#[command(
    name = "coordinator",
    version,
    about = "Shards sweeps of neural-network trials to workers and stores their results"
)]
pub struct Cli {
    /// Log filter (for example `info` or `coordinator=debug`); quiet (warnings only) by default.
    #[arg(long, global = true, env = "COORDINATOR_LOG", default_value = "warn")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API on a database until SIGTERM.
    Serve(ServeArgs),
    /// Submit a sweep file to a running coordinator (idempotent for an unchanged file).
    Submit(SubmitArgs),
    /// Trial counts by state, per sweep.
    Status(StatusArgs),
    /// The per-width table of a sweep.
    Report(ReportArgs),
    /// Follow a sweep until it finishes: a live progress bar on a terminal, log lines otherwise.
    Watch(WatchArgs),
    /// One row per trial with every parameter and measurement, as CSV, JSON Lines or Parquet.
    Export(ExportArgs),
    /// Put a sweep's failed trials (all, or those a filter names) back to pending with a fresh
    /// attempt budget; a running coordinator, or the next `run`, runs them again.
    Retry(RetryArgs),
    /// Exit 0 if the coordinator's health service says it is serving (for health checks).
    Health(CoordinatorUrl),
    /// Run a sweep on this machine: a coordinator on embedded SQLite, local worker processes,
    /// progress, then the report.
    Run(RunArgs),
    /// Run a worker in this process (used by `run` to start its local workers).
    #[command(hide = true)]
    LocalWorker(worker::client::WorkerArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Seconds a lease lasts without a heartbeat before its trial goes back to pending.
    #[arg(long, env = "COORDINATOR_LEASE_SECONDS", default_value_t = 60.0)]
    pub lease_seconds: f64,

    /// The largest grid a sweep may expand to; larger ones are refused.
    #[arg(long, env = "COORDINATOR_MAX_TRIALS_PER_SWEEP", default_value_t = crate::sweep::DEFAULT_MAX_TRIALS)]
    pub max_trials_per_sweep: u64,
}

impl SchedulerArgs {
    pub fn settings(&self) -> Result<SchedulerSettings> {
        if !(self.lease_seconds.is_finite() && self.lease_seconds >= 0.1) {
            bail!(
                "--lease-seconds = {} is invalid: must be at least 0.1",
                self.lease_seconds
            );
        }
        Ok(SchedulerSettings {
            lease_duration: Duration::from_secs_f64(self.lease_seconds),
            max_trials_per_sweep: self.max_trials_per_sweep,
            ..SchedulerSettings::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Database URL: `sqlite://PATH` (created if missing).
    #[arg(long, env = "COORDINATOR_DB", default_value = "sqlite://sweeps.db")]
    pub db: String,

    /// Address to listen on; loopback unless told otherwise. Port 0 picks a free port.
    #[arg(long, env = "COORDINATOR_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub scheduler: SchedulerArgs,

    /// File holding the bearer token every call must carry (or set COORDINATOR_TOKEN); without
    /// either, calls are not authenticated.
    #[arg(long, env = "COORDINATOR_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// TLS certificate chain (PEM); serves TLS together with --tls-key.
    #[arg(long, env = "COORDINATOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "COORDINATOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve the web dashboard and Prometheus `/metrics` on this address (off unless given).
    #[arg(long, env = "COORDINATOR_DASHBOARD_LISTEN")]
    pub dashboard_listen: Option<SocketAddr>,

    /// Allow the dashboard on an address other than loopback. It has no authentication: put it
    /// behind a proxy that has, or keep it on a private network.
    #[arg(long, env = "COORDINATOR_DASHBOARD_PUBLIC")]
    pub dashboard_public: bool,
}

impl ServeArgs {
    fn security(&self) -> Result<Security> {
        let token = Token::load(self.token_file.as_deref(), "COORDINATOR_TOKEN")?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(certificate), Some(key)) => Some((
                std::fs::read(certificate)
                    .with_context(|| format!("cannot read --tls-cert {}", certificate.display()))?,
                std::fs::read(key)
                    .with_context(|| format!("cannot read --tls-key {}", key.display()))?,
            )),
            _ => None,
        };
        Ok(Security { token, tls })
    }
}

/// How a client reaches a coordinator.
#[derive(Debug, Args)]
pub struct CoordinatorUrl {
    /// URL of a running coordinator (`https://` with --tls-ca).
    #[arg(
        long = "coordinator",
        env = "COORDINATOR_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub url: String,

    /// File holding the coordinator's bearer token (or set COORDINATOR_TOKEN).
    #[arg(long, env = "COORDINATOR_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// CA certificate (PEM) to verify the coordinator's TLS certificate against.
    #[arg(long, env = "COORDINATOR_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl CoordinatorUrl {
    pub fn connection(&self) -> Result<Connection> {
        Ok(Connection {
            url: self.url.clone(),
            tls_ca: self.tls_ca.clone(),
            token: Token::load(self.token_file.as_deref(), "COORDINATOR_TOKEN")?,
        })
    }

    pub async fn connect(&self) -> Result<Client> {
        Ok(self.connection()?.connect().await?)
    }
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The sweep file (TOML).
    pub sweep_file: PathBuf,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

/// Where `status` and `report` read from: a running coordinator, or the database directly.
#[derive(Debug, Args)]
pub struct ReadSource {
    /// Read the database directly instead of asking a coordinator.
    #[arg(long, conflicts_with = "url")]
    pub db: Option<String>,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this sweep.
    pub sweep: Option<String>,
    #[command(flatten)]
    pub source: ReadSource,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    pub sweep: String,
    /// The database holding the sweep (the one its coordinator serves).
    #[arg(long, env = "COORDINATOR_DB", default_value = "sqlite://sweeps.db")]
    pub db: String,
    /// Only trials of this width.
    #[arg(long)]
    pub width: Option<u64>,
    /// Only trials whose last error contains this text.
    #[arg(long)]
    pub error_contains: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    pub sweep: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Also write report.csv, report.json and every figure (SVG and PNG) into this directory.
    #[arg(long)]
    pub figures: Option<std::path::PathBuf>,
    /// Also analyse trials that ran out of steps before their target loss (by default the
    /// slopes and rank statistics read only trials trained to the target, as Jiang et al. 2020).
    #[arg(long)]
    pub include_unconverged: bool,
    #[command(flatten)]
    pub source: ReadSource,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub sweep: String,
    /// Seconds between looks at the sweep.
    #[arg(long, default_value_t = 2.0)]
    pub interval_seconds: f64,
    #[command(flatten)]
    pub source: ReadSource,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    pub sweep: String,
    /// Parquet is binary, so it goes to `--output` or a redirected standard output, never a
    /// terminal.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write here instead of to standard output.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    /// The database to read (`sqlite://PATH` or `postgres://...`).
    #[arg(long, env = "COORDINATOR_DB", default_value = "sqlite://sweeps.db")]
    pub db: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep file (TOML).
    pub sweep_file: PathBuf,
    /// Local worker processes to start.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Trials each worker runs at once; by default the cores shared evenly among the workers.
    #[arg(long)]
    pub slots: Option<u32>,
    /// Database URL; by default `sqlite://OUT/sweeps.db`.
    #[arg(long)]
    pub db: Option<String>,
    /// Folder for the database and the report files; by default `out/SWEEP-NAME`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
}

pub fn main(cli: Cli) -> ExitCode {
    // The PNG rasteriser warns about each degenerate (zero-length) stroke a figure may contain,
    // which is no concern of a user's: only its errors are shown.
    worker::process::main(
        &format!("{},tiny_skia=error", cli.log),
        "warn,tiny_skia=error",
        async move {
            match cli.command {
                Command::Serve(args) => serve(args).await,
                Command::Submit(args) => submit(args).await,
                Command::Status(args) => status(args).await,
                Command::Report(args) => report(args).await,
                Command::Export(args) => export(args).await,
                Command::Retry(args) => retry(args).await,
                Command::Watch(args) => watch(args).await,
                Command::Health(args) => health(args).await,
                Command::Run(args) => crate::local_run::run(args).await,
                Command::LocalWorker(args) => worker::client::run_until_signalled(args).await,
            }
        },
    )
}

async fn serve(args: ServeArgs) -> Result<()> {
    let settings = args.scheduler.settings()?;
    let store = store::open(&args.db)
        .await
        .with_context(|| format!("cannot open database {}", store::redact_password(&args.db)))?;
    let listener = crate::server::listen(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let dashboard = match args.dashboard_listen {
        None => None,
        Some(dashboard) => {
            if !dashboard.ip().is_loopback() && !args.dashboard_public {
                bail!(
                    "--dashboard-listen = {dashboard} is not a loopback address and the dashboard has \
                     no authentication; add --dashboard-public to serve it there anyway"
                );
            }
            Some(
                tokio::net::TcpListener::bind(dashboard)
                    .await
                    .with_context(|| format!("cannot listen on --dashboard-listen {dashboard}"))?,
            )
        }
    };
    let dashboard_note = match &dashboard {
        Some(listener) => format!("; dashboard on http://{}", listener.local_addr()?),
        None => String::new(),
    };
    // Printed, not logged: scripts and tests read the bound ports from this one line.
    println!("coordinator listening on {address}{dashboard_note}");
    let security = args.security()?;
    let shutdown = worker::shutdown::on_termination_signal()?;
    crate::server::serve(
        listener,
        store,
        settings,
        security,
        dashboard,
        shutdown.cancelled_owned(),
    )
    .await?;
    Ok(())
}

/// Opens a database that must already exist: a typo in a path should not create an empty one.
async fn open_for_reading(url: &str) -> Result<std::sync::Arc<dyn store::Store>> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if !std::path::Path::new(path).exists() {
            bail!("--db = {url}: no database file at {path}");
        }
    }
    store::open(url)
        .await
        .with_context(|| format!("cannot open database {}", store::redact_password(url)))
}

async fn health(args: CoordinatorUrl) -> Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = args.connection()?.health_channel().await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: crate::server::COORDINATOR_SERVICE_NAME.to_string(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("health check failed: {}", status.message()))?;
    let status = response.into_inner().status();
    if status != ServingStatus::Serving {
        bail!("coordinator at {} is {}", args.url, status.as_str_name());
    }
    println!("serving");
    Ok(())
}

async fn submit(args: SubmitArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.sweep_file)
        .with_context(|| format!("cannot read sweep file {}", args.sweep_file.display()))?;
    let mut client = args.coordinator.connect().await?;
    let response = client
        .submit_sweep(proto::v1::SubmitSweepRequest {
            sweep_toml: text,
            source_name: args.sweep_file.display().to_string(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    if response.created {
        println!(
            "submitted sweep {} with {} trials",
            response.sweep, response.trial_count
        );
    } else {
        println!(
            "sweep {} was already submitted ({} trials); nothing changed",
            response.sweep, response.trial_count
        );
    }
    Ok(())
}

async fn retry(args: RetryArgs) -> Result<()> {
    let store = open_for_reading(&args.db).await?;
    let filter = store::RetryFilter {
        width: args.width,
        error_contains: args.error_contains,
    };
    let retried = store
        .retry_failed(&args.sweep, &filter, store::now_ms())
        .await?;
    println!(
        "sweep {}: {retried} failed trial{} back to pending with a fresh attempt budget",
        args.sweep,
        if retried == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn status(args: StatusArgs) -> Result<()> {
    let mut reader = CountsReader::open(&args.source).await?;
    let counts = reader.sweep_counts(args.sweep.as_deref()).await?;
    print!("{}", status_table(&counts));
    Ok(())
}

/// Where trial counts come from: the database directly, or a coordinator.
enum CountsReader {
    Database(std::sync::Arc<dyn store::Store>),
    Coordinator(proto::channel::Client),
}

impl CountsReader {
    async fn open(source: &ReadSource) -> Result<Self> {
        Ok(match &source.db {
            Some(url) => Self::Database(open_for_reading(url).await?),
            None => Self::Coordinator(source.coordinator.connect().await?),
        })
    }

    async fn sweep_counts(&mut self, sweep: Option<&str>) -> Result<Vec<SweepCounts>> {
        Ok(match self {
            Self::Database(store) => store.sweep_counts(sweep).await?,
            Self::Coordinator(client) => client
                .sweep_status(proto::v1::SweepStatusRequest {
                    sweep: sweep.unwrap_or_default().to_string(),
                })
                .await
                .map_err(|status| anyhow::anyhow!("{}", status.message()))?
                .into_inner()
                .sweeps
                .into_iter()
                .map(crate::api::counts_from_wire)
                .collect(),
        })
    }
}

pub fn status_table(counts: &[SweepCounts]) -> String {
    let mut text = format!(
        "{:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}\n",
        "sweep", "total", "pending", "running", "done", "failed", "diverged", "duplicates"
    );
    for sweep in counts {
        text.push_str(&format!(
            "{:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}\n",
            sweep.sweep,
            sweep.total,
            sweep.pending,
            sweep.leased,
            sweep.done,
            sweep.failed,
            sweep.diverged,
            sweep.duplicate_reports
        ));
    }
    text
}

async fn watch(args: WatchArgs) -> Result<()> {
    if !(args.interval_seconds.is_finite() && args.interval_seconds >= 0.1) {
        bail!(
            "--interval-seconds = {} is invalid: must be at least 0.1",
            args.interval_seconds
        );
    }
    let interval = Duration::from_secs_f64(args.interval_seconds);
    let mut reader = CountsReader::open(&args.source).await?;
    let mut progress = crate::progress::ProgressDisplay::new(&args.sweep);
    loop {
        let counts = reader
            .sweep_counts(Some(&args.sweep))
            .await?
            .into_iter()
            .next()
            .with_context(|| format!("unknown sweep `{}`", args.sweep))?;
        progress.update(&counts);
        if counts.is_complete() {
            progress.finish();
            println!(
                "{}: {} of {} trials done, {} failed, {} diverged",
                counts.sweep, counts.done, counts.total, counts.failed, counts.diverged
            );
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

async fn export(args: ExportArgs) -> Result<()> {
    // Checked before reading the store: binary bytes on a terminal garble it and help no one,
    // while `> trials.parquet` or a pipe into another program is a fine place for them.
    if args.format == ExportFormat::Parquet
        && args.output.is_none()
        && std::io::stdout().is_terminal()
    {
        bail!(
            "parquet is binary and standard output is a terminal: give --output FILE.parquet \
             or redirect standard output to a file"
        );
    }
    let store = open_for_reading(&args.db).await?;
    let rows = store.trial_rows(&args.sweep).await?;
    let bytes = match args.format {
        ExportFormat::Csv => export::to_csv(&rows).into_bytes(),
        ExportFormat::Jsonl => export::to_jsonl(&rows).into_bytes(),
        ExportFormat::Parquet => export::to_parquet(&rows)
            .with_context(|| format!("cannot export sweep `{}` as parquet", args.sweep))?,
    };
    match &args.output {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("cannot write to standard output")?;
        }
    }
    Ok(())
}

async fn report(args: ReportArgs) -> Result<()> {
    let report = match &args.source.db {
        Some(url) => {
            let store = open_for_reading(url).await?;
            SweepReport::load(store.as_ref(), &args.sweep, args.include_unconverged).await?
        }
        None => {
            let mut client = args.source.coordinator.connect().await?;
            let response = client
                .sweep_report(proto::v1::SweepReportRequest {
                    sweep: args.sweep.clone(),
                    include_unconverged: args.include_unconverged,
                })
                .await
                .map_err(|status| anyhow::anyhow!("{}", status.message()))?;
            serde_json::from_str(&response.into_inner().report_json)
                .context("the coordinator sent a malformed report")?
        }
    };
    match args.format {
        ReportFormat::Table => print!("{}", crate::report::to_table(&report)),
        ReportFormat::Csv => print!("{}", crate::report::to_csv(&report)),
        ReportFormat::AnalysisCsv => {
            print!("{}", crate::report::analysis_export::analysis_csv(&report))
        }
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Markdown => print!("{}", crate::report::to_markdown(&report)),
    }
    if let Some(directory) = &args.figures {
        let written = report.write_files(directory)?;
        eprintln!(
            "wrote {}",
            written
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
