//! The project's own `docker-compose.yml` and `Dockerfile`, run for real: the stack built and
//! brought up with three workers, a sweep submitted through the `submit` service, `status` and
//! `report` through `exec` as the README writes them, and while trials run a worker container
//! killed, the coordinator container stopped and started, and a worker cut off the network until
//! its lease expired. Every trial is done exactly once, and `down` then `up` keeps the results
//! (the volume). It prints what it did, with times.
//!
//! Needs a Docker engine and the images the files name; on a machine that cannot pull them,
//! `tests/compose/make-images` makes stand-ins (`.ci/run` does, where there is an engine). Without
//! an engine or a compose tool the test says so and passes.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Timeline, output_text as text, rand_u64, repo_root, stdout_of};

const SWEEP: &str = "e2e-compose";
const TRIALS: u32 = 36;
/// Long enough that the sweep outlasts the faults (about 30 s from the first results) several
/// times over: at 400,000 steps a trial took about 1.5 s and a CI run finished the sweep first.
const TRAINING_STEPS: u32 = 1_600_000;
const LEASE_SECONDS: u64 = 8;
const TIMEOUT: Duration = Duration::from_secs(600);
const IMAGES: [&str; 3] = ["rust:1-bookworm", "debian:bookworm-slim", "postgres:16"];

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

/// The compose tool: the `docker compose` plugin where it is installed, else `docker-compose`
/// (Compose 1.x, which Debian bookworm packages).
fn compose_tool() -> Option<Vec<String>> {
    let plugin = Command::new("docker").args(["compose", "version"]).output();
    if plugin.is_ok_and(|output| output.status.success()) {
        return Some(vec!["docker".to_string(), "compose".to_string()]);
    }
    let standalone = Command::new("docker-compose").arg("version").output();
    standalone
        .is_ok_and(|output| output.status.success())
        .then(|| vec!["docker-compose".to_string()])
}

/// One compose project of the repository's file, taken down with its volume when dropped.
struct Stack {
    tool: Vec<String>,
    project: String,
    token: String,
    timeline: Timeline,
}

impl Stack {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.tool[0]);
        command
            .args(&self.tool[1..])
            .args(["--project-name", &self.project])
            .args(args)
            .current_dir(repo_root())
            .env("SWEEPS_TOKEN", &self.token)
            .env("COORDINATOR_LEASE_SECONDS", LEASE_SECONDS.to_string());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the compose tool runs")
    }

    /// Runs a compose command that must succeed, and says so on the timeline.
    fn must(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{} {}: {}",
            self.tool.join(" "),
            args.join(" "),
            text(&output)
        );
        self.say(format!(
            "{} {} ({:.1} s)",
            self.tool.join(" "),
            args.join(" "),
            started.elapsed().as_secs_f64()
        ));
        output
    }

    fn say(&self, what: impl AsRef<str>) {
        self.timeline.say(what);
    }

    /// One number from the database, through psql in the postgres container.
    fn count(&self, sql: &str) -> i64 {
        let output = self.run(&[
            "exec", "-T", "postgres", "psql", "-U", "sweeps", "-d", "sweeps", "-Atc", sql,
        ]);
        assert!(output.status.success(), "{sql}: {}", text(&output));
        stdout_of(&output)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: not a number: {}", text(&output)))
    }

    /// The running containers of a service.
    fn containers(&self, service: &str) -> Vec<String> {
        let output = self.run(&["ps", "-q", service]);
        assert!(output.status.success(), "{}", text(&output));
        stdout_of(&output)
            .lines()
            .map(str::to_string)
            .filter(|id| !id.is_empty())
            .collect()
    }

    fn network(&self) -> String {
        let coordinator = self.containers("coordinator");
        let output = docker(&[
            "inspect",
            "--format",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            coordinator.first().expect("a coordinator container"),
        ]);
        text(&output)
            .split_whitespace()
            .next()
            .expect("the coordinator is on a network")
            .to_string()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let output = self.run(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        if !output.status.success() {
            eprintln!("compose down: {}", text(&output));
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn sweep_toml() -> String {
    common::tiny_sweep(SWEEP, &[16, 32], TRIALS / 2, TRAINING_STEPS)
}

#[test]
fn the_compose_stack_finishes_a_sweep_through_a_killed_worker_a_coordinator_restart_and_a_partition()
 {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    // CI runs this where the machine has a Docker engine, as machines of this project's kind do.
    let (Ok(engine), Some(tool)) = (engine, compose_tool()) else {
        eprintln!("no docker or compose tool here: the compose test is left out");
        return;
    };
    if !engine.status.success() {
        eprintln!(
            "no Docker engine answers here: the compose test is left out ({})",
            text(&engine).trim()
        );
        return;
    }
    let missing: Vec<&str> = IMAGES
        .into_iter()
        .filter(|image| !docker(&["image", "inspect", image]).status.success())
        .collect();
    assert!(
        missing.is_empty(),
        "images {missing:?} are missing: tests/compose/make-images makes stand-ins without a registry"
    );

    let stack = Stack {
        tool,
        project: format!("sweeps-e2e-{:08x}", rand_u64() as u32),
        token: format!("{:016x}{:016x}", rand_u64(), rand_u64()),
        timeline: Timeline::start("compose"),
    };
    stack.say(format!(
        "Docker {} with {}; project {}",
        stdout_of(&engine).trim(),
        stack.tool.join(" "),
        stack.project
    ));
    stack.must(&["up", "--build", "-d", "--scale", "worker=3"]);
    let workers = stack.containers("worker");
    assert_eq!(workers.len(), 3, "three workers run");

    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("sweep.toml");
    std::fs::write(&sweep_file, sweep_toml()).expect("write sweep");
    let mount = format!("{}:/my.toml:ro", sweep_file.display());
    let submitted = stack.must(&[
        "run",
        "--rm",
        "-v",
        &mount,
        "submit",
        "coordinator",
        "submit",
        "/my.toml",
    ]);
    stack.say(format!("  {}", stdout_of(&submitted).trim()));
    let total = TRIALS as i64;
    let done = || stack.count("SELECT COUNT(*) FROM trials WHERE state = 'done'");
    common::wait_until(TIMEOUT, "the first results", || (done() >= 2).then_some(()));

    // A worker container killed mid-trial.
    let killed = &workers[0];
    let kill = docker(&["kill", killed]);
    assert!(kill.status.success(), "{}", text(&kill));
    stack.say(format!(
        "docker kill {} (a worker; {} of {total} trials done)",
        short(killed),
        done()
    ));

    // The coordinator container stopped and started again.
    stack.must(&["stop", "coordinator"]);
    stack.must(&["start", "coordinator"]);
    common::wait_until(TIMEOUT, "the coordinator to serve again", || {
        stack
            .run(&["exec", "-T", "coordinator", "coordinator", "health"])
            .status
            .success()
            .then_some(())
    });
    stack.say(format!(
        "the coordinator serves again; {} of {total} done",
        done()
    ));

    // A worker cut off the network while it holds a lease, until that lease has expired.
    let network = stack.network();
    let cut_off = &workers[1];
    let cut_off_leases = || {
        let output = docker(&["inspect", "--format", "{{.Config.Hostname}}", cut_off]);
        let hostname = stdout_of(&output).trim().to_string();
        stack.count(&format!(
            "SELECT COUNT(*) FROM trials WHERE state = 'leased' AND worker_id LIKE '{hostname}-%'"
        ))
    };
    common::wait_until(TIMEOUT, "the worker to be cut off to hold a lease", || {
        (cut_off_leases() > 0).then_some(())
    });
    let disconnect = docker(&["network", "disconnect", &network, cut_off]);
    assert!(disconnect.status.success(), "{}", text(&disconnect));
    let cut_at = Instant::now();
    stack.say(format!(
        "docker network disconnect {network} {} (it holds {} lease(s))",
        short(cut_off),
        cut_off_leases()
    ));
    common::wait_until(TIMEOUT, "the cut-off worker's lease to expire", || {
        (cut_off_leases() == 0).then_some(())
    });
    stack.say(format!(
        "its lease expired {:.1} s after the cut (leases last {LEASE_SECONDS} s); {} of {total} done",
        cut_at.elapsed().as_secs_f64(),
        done()
    ));
    let connect = docker(&["network", "connect", &network, cut_off]);
    assert!(connect.status.success(), "{}", text(&connect));
    stack.say(format!(
        "docker network connect {network} {}",
        short(cut_off)
    ));
    let reconnected_at = Instant::now();
    common::wait_until(
        Duration::from_secs(90),
        "the reconnected worker to lease again",
        || (cut_off_leases() > 0).then_some(()),
    );
    stack.say(format!(
        "the reconnected worker leases again, {:.1} s after the reconnection",
        reconnected_at.elapsed().as_secs_f64()
    ));
    let stats = docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.CPUPerc}}",
    ]);
    for line in stdout_of(&stats)
        .lines()
        .filter(|line| line.starts_with(&stack.project))
    {
        stack.say(format!("  docker stats: {line}"));
    }
    assert!(
        done() < total,
        "the sweep finished before the faults were over; make the trials longer"
    );

    common::wait_until(TIMEOUT, "every trial to finish", || {
        (stack.count("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')") == total)
            .then_some(())
    });
    stack.say("every trial finished");
    let status = stack.must(&["exec", "-T", "coordinator", "coordinator", "status"]);
    stack.say(format!(
        "  {}",
        stdout_of(&status).trim().replace('\n', "\n  ")
    ));
    let report = stack.must(&[
        "exec",
        "-T",
        "coordinator",
        "coordinator",
        "report",
        SWEEP,
        "--format",
        "table",
    ]);
    assert!(
        stdout_of(&report).contains("16") && stdout_of(&report).contains("32"),
        "the report has a row per width:\n{}",
        text(&report)
    );

    let results = stack.count("SELECT COUNT(*) FROM results");
    let duplicates = stack.count(&format!(
        "SELECT duplicate_reports FROM sweeps WHERE name = '{SWEEP}'"
    ));
    let leases = stack.count("SELECT COALESCE(SUM(attempts), 0) FROM trials");
    stack.say(format!(
        "{results} results for {total} trials; {} trial(s) leased again after a lost lease; \
         {duplicates} duplicate report(s) acknowledged and ignored",
        leases - total
    ));
    assert_eq!(
        stack.count("SELECT COUNT(*) FROM trials WHERE state = 'done'"),
        total,
        "none failed"
    );
    assert_eq!(results, total, "one result per trial");
    assert!(
        leases > total,
        "the killed and the cut-off workers' trials were leased again"
    );

    // The volume keeps the results across down and up.
    stack.must(&["down", "--timeout", "10"]);
    stack.must(&["up", "-d", "--scale", "worker=1"]);
    assert_eq!(
        stack.count("SELECT COUNT(*) FROM results"),
        total,
        "the results survive down and up"
    );
    stack.say("after down and up: every result is still there");
}
