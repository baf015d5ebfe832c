//! The project's own `deploy/slurm/workers.sbatch` on a real Slurm: the single-node cluster that
//! `deploy/slurm/single-node-cluster` starts (`.ci/run` does), a coordinator on PostgreSQL, and the
//! cases a cluster user meets: an array of workers, one task cancelled with `scancel`, the job's
//! time limit reached mid-trial, a resubmitted job that finishes the sweep, and one submitted after
//! the sweep is done that exits with nothing to do. Every trial is done exactly once, and trials
//! given back never wait for their lease to expire. The test prints what happened, with times.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Coordinator, PostgresDatabase, Timeline, output_text, repo_root, stderr_of, stdout_of,
    tiny_sweep,
};

const SWEEP: &str = "e2e-slurm";
/// Enough work (about 160 s of one core on the machine of the thin-layer kernels, which made these
/// networks' steps faster: with 250,000 steps the sweep was done 39 s after the start) for the
/// first job's workers to be busy when their signal comes. Asked for 80 s before a two-minute
/// limit, it is due 40 s after the start; slurmctld sends it up to 30 s early and looks every 30 s,
/// so it comes 10 to 40 s after the start: after the workers have leased, before the sweep is done.
const TRIALS_PER_WIDTH: u32 = 30;
const WIDTHS: [u32; 2] = [16, 32];
const TRAINING_STEPS: u32 = 500_000;
const TIMEOUT: Duration = Duration::from_secs(420);

/// Whether `sinfo` answers and shows a node that can take jobs.
fn slurm_is_ready() -> bool {
    Command::new("sinfo")
        .args(["--noheader", "--format=%t"])
        .output()
        .is_ok_and(|output| {
            output.status.success()
                && stdout_of(&output).lines().any(|state| {
                    ["idle", "mix", "alloc"]
                        .iter()
                        .any(|s| state.starts_with(s))
                })
        })
}

/// An sbatch of the project's script as an array job; returns the job id.
fn submit_workers(
    coordinator: &Coordinator,
    token_file: &Path,
    logs: &Path,
    sbatch_args: &[&str],
    exit_when_idle_seconds: u32,
) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut folders = vec![common::binaries().to_path_buf()];
    folders.extend(std::env::split_paths(&path));
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(sbatch_args)
        .arg(repo_root().join("deploy/slurm/workers.sbatch"))
        .current_dir(logs)
        .env(
            "PATH",
            std::env::join_paths(folders).expect("a PATH of plain folders"),
        )
        .env("COORDINATOR_URL", &coordinator.url)
        .env("TOKEN_FILE", token_file)
        .env("EXIT_WHEN_IDLE", exit_when_idle_seconds.to_string())
        .output()
        .expect("sbatch runs");
    assert!(output.status.success(), "sbatch: {}", stderr_of(&output));
    let job = stdout_of(&output).trim().to_string();
    // --parsable prints "JOBID" or "JOBID;CLUSTER".
    job.split(';').next().unwrap_or_default().to_string()
}

/// Each array task's state, from `scontrol show job` (which keeps finished jobs for MinJobAge).
fn task_states(job: &str) -> Vec<(u32, String)> {
    let output = Command::new("scontrol")
        .args(["--oneliner", "show", "job", job])
        .output()
        .expect("scontrol runs");
    assert!(output.status.success(), "scontrol: {}", stderr_of(&output));
    let mut states: Vec<(u32, String)> = stdout_of(&output)
        .lines()
        .filter_map(|record| {
            let field = |name: &str| {
                record
                    .split_whitespace()
                    .find_map(|pair| pair.strip_prefix(name))
                    .map(str::to_string)
            };
            let task = field("ArrayTaskId=")?.parse().ok()?;
            Some((task, field("JobState=")?))
        })
        .collect();
    states.sort();
    states
}

fn is_finished(state: &str) -> bool {
    ![
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "SIGNALING",
        "SUSPENDED",
    ]
    .contains(&state)
}

fn wait_for_job_end(job: &str, tasks: usize) -> Vec<(u32, String)> {
    common::wait_until(TIMEOUT, &format!("job {job} to end"), || {
        let states = task_states(job);
        (states.len() == tasks && states.iter().all(|(_, state)| is_finished(state)))
            .then_some(states)
    })
}

fn worker_id(job: &str, task: u32) -> String {
    format!("slurm-{job}-{task}")
}

/// The `--output` file the script names for one array task.
fn task_log(logs: &Path, job: &str, task: u32) -> String {
    std::fs::read_to_string(logs.join(format!("sweep-workers-{job}_{task}.out")))
        .unwrap_or_default()
}

/// How many trials a worker's log says it gave back when it stopped.
fn released_in(log: &str) -> u64 {
    log.lines()
        .filter(|line| line.contains("running trials released"))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|pair| pair.strip_prefix("released="))
                .and_then(|count| count.parse::<u64>().ok())
        })
        .sum()
}

fn trials_started_in(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("trial started"))
        .count()
}

/// Trials a worker holds a lease on now.
fn leased_by(database: &PostgresDatabase, worker: &str) -> i64 {
    database.count(&format!(
        "SELECT COUNT(*) FROM trials WHERE state = 'leased' AND worker_id = '{worker}'"
    ))
}

#[test]
fn a_slurm_job_array_finishes_a_sweep_through_a_cancelled_task_a_time_limit_and_a_resubmission() {
    if !slurm_is_ready() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "no Slurm node is ready: .ci/run starts one with deploy/slurm/single-node-cluster"
            );
        }
        eprintln!(
            "Slurm is not running here (deploy/slurm/single-node-cluster starts it): skipped"
        );
        return;
    }
    // Built before the clock starts, so the timeline shows Slurm's times alone.
    common::binaries();
    let timeline = Timeline::start("slurm");
    let database = PostgresDatabase::create();
    let directory = tempfile::tempdir().expect("temporary directory");
    let token_file = directory.path().join("token");
    std::fs::write(&token_file, format!("{:032x}\n", common::rand_u64())).expect("write token");
    let logs = directory.path().join("logs");
    std::fs::create_dir(&logs).expect("log folder");
    let sweep_file = directory.path().join("e2e-slurm.toml");
    std::fs::write(
        &sweep_file,
        tiny_sweep(SWEEP, &WIDTHS, TRIALS_PER_WIDTH, TRAINING_STEPS),
    )
    .expect("write sweep");
    let total = (WIDTHS.len() as u32 * TRIALS_PER_WIDTH) as i64;

    let token = token_file.display().to_string();
    let coordinator = Coordinator::serve(
        &database.url,
        "127.0.0.1:0",
        5.0,
        &["--token-file", &token],
        "http",
    );
    let sweep = sweep_file.display().to_string();
    let submitted = coordinator.client(&["submit", &sweep, "--token-file", &token]);
    assert!(submitted.status.success(), "{}", output_text(&submitted));
    timeline.say(format!(
        "coordinator at {} on PostgreSQL; sweep {SWEEP} submitted, {total} trials",
        coordinator.url
    ));

    // Job 1: three workers with a two-minute limit and SIGTERM 80 s before it.
    let first = submit_workers(
        &coordinator,
        &token_file,
        &logs,
        &[
            "--array=0-2",
            "--cpus-per-task=1",
            "--time=2",
            "--signal=TERM@80",
        ],
        300,
    );
    timeline.say(format!(
        "sbatch --array=0-2 --cpus-per-task=1 --time=2 --signal=TERM@80: job {first}"
    ));

    // scancel one task once it is running a trial.
    let cancelled = worker_id(&first, 1);
    common::wait_until(TIMEOUT, "task 1 to lease a trial", || {
        (leased_by(&database, &cancelled) > 0).then_some(())
    });
    timeline.say(format!(
        "{cancelled} runs a trial; the array's states: {:?}",
        task_states(&first)
    ));
    let scancel = Command::new("scancel")
        .arg(format!("{first}_1"))
        .output()
        .expect("scancel runs");
    assert!(
        scancel.status.success(),
        "scancel: {}",
        output_text(&scancel)
    );
    let cancelled_at = Instant::now();
    common::wait_until(TIMEOUT, "the cancelled task to give its trial back", || {
        (leased_by(&database, &cancelled) == 0).then_some(())
    });
    timeline.say(format!(
        "scancel {first}_1: its trial given back after {:.1} s (leases last 5 s)",
        cancelled_at.elapsed().as_secs_f64()
    ));

    let first_states = wait_for_job_end(&first, 3);
    let leased_after_first = database.count("SELECT COUNT(*) FROM trials WHERE state = 'leased'");
    let done_after_first = database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'");
    timeline.say(format!(
        "job {first} ended: {first_states:?}; {done_after_first} of {total} trials done, \
         {leased_after_first} still leased"
    ));
    // Each task gave back exactly the trials it had started and not reported.
    let mut given_back_at_time_limit = 0;
    for task in 0..3 {
        let log = task_log(&logs, &first, task);
        let (started, released) = (trials_started_in(&log) as i64, released_in(&log) as i64);
        let reported = database.count(&format!(
            "SELECT COUNT(*) FROM results WHERE worker_id = '{}'",
            worker_id(&first, task)
        ));
        timeline.say(format!(
            "  task {task}: started {started} trials, reported {reported}, gave back {released} as it stopped"
        ));
        assert_eq!(started, reported + released, "task {task}:\n{log}");
        if task != 1 {
            given_back_at_time_limit += released;
        }
    }
    assert!(
        done_after_first < total,
        "the first job's time limit came after the sweep was done; make the trials longer"
    );
    assert_eq!(
        leased_after_first, 0,
        "every worker of the first job gave its trials back as it stopped"
    );
    let cancelled_log = task_log(&logs, &first, 1);
    assert!(
        released_in(&cancelled_log) >= 1,
        "the cancelled task released its trial:\n{cancelled_log}"
    );
    assert!(
        given_back_at_time_limit >= 1,
        "the time limit's SIGTERM came while the workers were running trials"
    );

    // Job 2: the same array resubmitted, with room to finish.
    let second = submit_workers(
        &coordinator,
        &token_file,
        &logs,
        &["--array=0-2", "--cpus-per-task=1", "--time=10"],
        3,
    );
    timeline.say(format!(
        "sbatch --array=0-2 --cpus-per-task=1 --time=10 (EXIT_WHEN_IDLE=3): job {second}"
    ));
    common::wait_until(TIMEOUT, "every trial to be done", || {
        (database.count("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')") == total)
            .then_some(())
    });
    timeline.say("every trial done");
    let second_states = wait_for_job_end(&second, 3);
    timeline.say(format!(
        "job {second} ended once idle for 3 s: {second_states:?}"
    ));

    // Job 3: submitted after the sweep is done; its workers find nothing and exit.
    let third = submit_workers(
        &coordinator,
        &token_file,
        &logs,
        &["--array=0-1", "--cpus-per-task=1", "--time=5"],
        3,
    );
    let third_submitted = Instant::now();
    let third_states = wait_for_job_end(&third, 2);
    timeline.say(format!(
        "job {third} (after the sweep): ended in {:.1} s: {third_states:?}",
        third_submitted.elapsed().as_secs_f64()
    ));

    for (job, states) in [(&second, &second_states), (&third, &third_states)] {
        for (task, state) in states {
            assert_eq!(
                state,
                "COMPLETED",
                "task {task} of job {job} exits cleanly:\n{}",
                task_log(&logs, job, *task)
            );
        }
    }
    for task in 0..2 {
        let log = task_log(&logs, &third, task);
        assert_eq!(trials_started_in(&log), 0, "{log}");
        assert!(log.contains("no trial to run; stopping"), "{log}");
    }

    let by_job = |job: &str| {
        database.count(&format!(
            "SELECT COUNT(*) FROM results WHERE worker_id LIKE 'slurm-{job}-%'"
        ))
    };
    let (from_first, from_second, from_third) = (by_job(&first), by_job(&second), by_job(&third));
    let duplicates = database.count("SELECT duplicate_reports FROM sweeps");
    let leases = database.count("SELECT COALESCE(SUM(attempts), 0) FROM trials");
    timeline.say(format!(
        "results: {from_first} from job {first}, {from_second} from job {second}, \
         {from_third} from job {third}; {duplicates} duplicate reports; {leases} leases counted \
         for {total} trials"
    ));
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'"),
        total
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM results"),
        total,
        "one result per trial"
    );
    assert_eq!(from_first + from_second, total);
    assert_eq!(from_third, 0);
    assert_eq!(duplicates, 0, "no trial was reported twice");
    assert_eq!(
        leases, total,
        "a trial given back does not use up an attempt; none expired"
    );
}
