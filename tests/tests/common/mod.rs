//! Real processes for end-to-end tests: the `coordinator` and `worker` binaries, started on
//! ephemeral loopback ports, stopped with signals, and a direct read-only view of the database.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds the binaries once per test process (a no-op when they are up to date, so a test never
/// runs stale binaries) and returns the folder they are in.
pub fn binaries() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        // This test executable lives in target/<profile>/deps; the binaries one folder up.
        let executable = std::env::current_exe().expect("test executable path");
        let folder = executable
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> folder")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--bins", "-p", "coordinator", "-p", "worker"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if folder.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        folder
    })
}

pub fn coordinator_command() -> Command {
    Command::new(binaries().join("coordinator"))
}

/// A process that is killed when the test lets go of it.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for the process to exit, up to `timeout`; None if it is still running.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Coordinator {
    pub process: Process,
    pub url: String,
    /// Where the web dashboard is served, when `--dashboard-listen` was given.
    pub dashboard_url: Option<String>,
    pub db_url: String,
}

impl Coordinator {
    /// `coordinator SUBCOMMAND SWEEP --db URL ARGS…` run to its end on this coordinator's database,
    /// as a user who reads results without the server would run it.
    pub fn on_database(&self, subcommand: &str, sweep: &str, args: &[&str]) -> Output {
        coordinator_command()
            .args([subcommand, sweep, "--db", &self.db_url])
            .args(args)
            .output()
            .expect("the coordinator runs")
    }

    /// `coordinator serve` on 127.0.0.1:0 with the given lease length; reads the bound port.
    pub fn start(db_path: &Path, lease_seconds: f64) -> Self {
        Self::start_with(db_path, lease_seconds, &[], "http")
    }

    /// As [`Coordinator::start`], with more `serve` arguments and the URL scheme to reach it by.
    pub fn start_with(
        db_path: &Path,
        lease_seconds: f64,
        extra_args: &[&str],
        scheme: &str,
    ) -> Self {
        let db_url = format!("sqlite://{}", db_path.display());
        Self::serve(&db_url, "127.0.0.1:0", lease_seconds, extra_args, scheme)
    }

    /// `coordinator serve` on any database URL and listen address.
    pub fn serve(
        db_url: &str,
        listen: &str,
        lease_seconds: f64,
        extra_args: &[&str],
        scheme: &str,
    ) -> Self {
        let db_url = db_url.to_string();
        let mut child = coordinator_command()
            .args(["serve", "--listen", listen, "--db", &db_url])
            .args(["--lease-seconds", &lease_seconds.to_string()])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("coordinator starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("coordinator prints its address");
        let announced = line
            .trim()
            .strip_prefix("coordinator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from coordinator: {line:?}"));
        let (address, dashboard_url) = match announced.split_once("; dashboard on ") {
            Some((address, dashboard)) => (address.to_string(), Some(dashboard.to_string())),
            None => (announced.to_string(), None),
        };
        Self {
            process: Process {
                child,
                name: "coordinator".to_string(),
            },
            url: format!("{scheme}://{address}"),
            dashboard_url,
            db_url,
        }
    }

    /// Runs a coordinator subcommand against this coordinator and returns its output.
    pub fn client(&self, args: &[&str]) -> Output {
        coordinator_command()
            .args(args)
            .args(["--coordinator", &self.url])
            .output()
            .expect("coordinator client runs")
    }

    pub fn submit(&self, sweep_file: &Path) -> Output {
        let path = sweep_file.display().to_string();
        self.client(&["submit", &path])
    }
}

/// Address space a test worker may use: a runaway allocation fails inside this limit instead of
/// depending on the machine's overcommit policy (and never pushes the test machine into swap).
const WORKER_ADDRESS_SPACE_BYTES: u64 = 8 << 30;

/// A `worker` process with a known id and slot count.
pub fn start_worker(coordinator_url: &str, worker_id: &str, slots: u32) -> Process {
    start_worker_with(coordinator_url, worker_id, slots, &[])
}

/// [`start_worker`] with further command-line arguments.
pub fn start_worker_with(
    coordinator_url: &str,
    worker_id: &str,
    slots: u32,
    arguments: &[&str],
) -> Process {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(binaries().join("worker"));
    // SAFETY: setrlimit is async-signal-safe, as pre_exec requires; it touches no shared state.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: WORKER_ADDRESS_SPACE_BYTES,
                rlim_max: WORKER_ADDRESS_SPACE_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .args(["--coordinator", coordinator_url, "--worker-id", worker_id])
        .args(["--slots", &slots.to_string(), "--max-idle-poll-ms", "200"])
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("worker starts");
    Process {
        child,
        name: worker_id.to_string(),
    }
}

/// The repository's root folder (the tests crate sits in it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository root")
        .to_path_buf()
}

/// A run's timeline: lines with the seconds since it started, shown in `cargo test`'s output even
/// when the test passes (the harness captures the print macros, not writes to the process's
/// stderr).
pub struct Timeline {
    tag: &'static str,
    started: Instant,
}

impl Timeline {
    pub fn start(tag: &'static str) -> Self {
        Self {
            tag,
            started: Instant::now(),
        }
    }

    pub fn say(&self, what: impl AsRef<str>) {
        use std::io::Write;
        let line = format!(
            "[{} {:6.1} s] {}",
            self.tag,
            self.started.elapsed().as_secs_f64(),
            what.as_ref()
        );
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// What a finished command wrote, stdout then stderr, for an assertion's message.
pub fn output_text(output: &Output) -> String {
    format!("{}{}", stdout_of(output), stderr_of(output))
}

pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The standard output of a command that must have succeeded (its standard error shown if not).
pub fn stdout_of_success(output: &Output) -> String {
    assert!(output.status.success(), "{}", stderr_of(output));
    stdout_of(output)
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small sweep of tiny networks; `max_steps` sets how long each trial trains.
pub fn tiny_sweep(name: &str, widths: &[u32], seeds: u32, max_steps: u32) -> String {
    let widths: Vec<String> = widths.iter().map(u32::to_string).collect();
    format!(
        r#"
name = "{name}"
max_attempts = 5

[data]
dataset = "teacher_student"
input_dim = 8
classes = 3
train_size = 128
test_size = 256
teacher_width = 8
label_noise = 0.05

[model]
depth = 2
width = 8
activation = "relu"

[training]
loss = "cross_entropy"
learning_rate = 0.05
momentum = 0.9
batch_size = 16
max_steps = {max_steps}
eval_every = 50

[probe]
steps = 100
noise_sigma = 0.01
radii = [0.05, 0.2]
radius_unit = "relative_to_minimum_norm"
replicates = 2

[grid]
model.width = [{widths}]
seed = {{ start = 0, stop = {last_seed} }}
"#,
        widths = widths.join(", "),
        last_seed = seeds - 1,
    )
}

/// Polls `check` every 100 ms until it returns Some or the timeout passes.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Read-only queries on the coordinator's SQLite file (WAL lets them run beside the coordinator).
pub struct Database {
    runtime: tokio::runtime::Runtime,
    pool: sqlx::SqlitePool,
}

impl Database {
    pub fn open(db_url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pool = runtime.block_on(async {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(db_url)
                .expect("url")
                .read_only(true)
                .busy_timeout(Duration::from_secs(10));
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("open database")
        });
        Self { runtime, pool }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.runtime
            .block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.runtime
            .block_on(sqlx::query_scalar::<_, String>(sql).fetch_all(&self.pool))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }
}

/// A fresh PostgreSQL database on the local server for one test, dropped when the test ends.
pub struct PostgresDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl PostgresDatabase {
    pub fn create() -> Self {
        let admin_url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let name = format!("sweeps_e2e_{:016x}", rand_u64());
        Self::admin_sql(&admin_url, &format!("CREATE DATABASE \"{name}\""));
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("TEST_POSTGRES_URL ends in /DATABASE");
        Self {
            url: format!("{server}/{name}"),
            name,
            admin_url,
        }
    }

    fn admin_sql(admin_url: &str, sql: &str) -> u64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(admin_url)
                .await
                .unwrap_or_else(|error| panic!("PostgreSQL at {admin_url} is needed: {error}"));
            sqlx::query(sql)
                .execute(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"))
                .rows_affected()
        })
    }

    /// Terminates every server connection to this database (as a failover or a restart would).
    pub fn terminate_connections(&self) -> u64 {
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        );
        Self::admin_sql(&self.admin_url, &sql)
    }

    pub fn count(&self, sql: &str) -> i64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"))
        })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        Self::admin_sql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// A random number without a dependency: the standard library's randomly keyed hasher.
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}
