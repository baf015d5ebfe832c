//! A coordinator and worker processes on loopback finish a sweep: every trial exactly once,
//! also when a worker is killed mid-sweep, and the command-line clients read the results.

mod common;

use std::time::Duration;

use common::{
    Coordinator, Database, start_worker, stderr_of, stdout_of, stdout_of_success, tiny_sweep,
    wait_until,
};

const SWEEP_TIMEOUT: Duration = Duration::from_secs(180);

fn all_done(database: &Database, total: i64) -> Option<()> {
    let finished = database.count("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')");
    (finished == total).then_some(())
}

fn assert_each_trial_recorded_once(database: &Database, total: i64) {
    assert_eq!(database.count("SELECT COUNT(*) FROM trials"), total);
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'"),
        total,
        "no trial failed"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM results"),
        total,
        "one result per trial"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials t JOIN results r ON r.trial_id = t.id"),
        total,
        "every result belongs to a trial of the sweep"
    );
}

#[test]
fn two_workers_finish_a_sweep_with_one_result_per_trial() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-basic.toml");
    std::fs::write(&sweep_file, tiny_sweep("e2e-basic", &[4, 8, 16], 4, 200)).expect("write sweep");

    let coordinator = Coordinator::start(&directory.path().join("sweeps.db"), 10.0);
    let submitted = coordinator.submit(&sweep_file);
    let said = stdout_of_success(&submitted);
    assert!(said.contains("12 trials"), "{said}");

    let _first = start_worker(&coordinator.url, "e2e-worker-a", 1);
    let _second = start_worker(&coordinator.url, "e2e-worker-b", 1);
    let database = Database::open(&coordinator.db_url);
    wait_until(SWEEP_TIMEOUT, "every trial to finish", || {
        all_done(&database, 12)
    });

    assert_each_trial_recorded_once(&database, 12);
    assert_eq!(
        database.count("SELECT COUNT(DISTINCT worker_id) FROM results"),
        2,
        "both workers took trials"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM layer_measurements"),
        24,
        "two layers measured per trial"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM probe_radii"),
        24,
        "two radii per trial"
    );
    assert_eq!(
        database
            .count("SELECT COUNT(*) FROM results WHERE test_error IS NULL OR train_seconds <= 0"),
        0,
        "real measurements"
    );
    assert_eq!(
        database.count(
            "SELECT COUNT(*) FROM results WHERE hessian_lambda_max IS NULL OR hessian_trace IS NULL"
        ),
        0,
        "the Hessian at every minimum"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM results WHERE noise_stream = 2"),
        12,
        "every result says which noise generator drew its probe"
    );

    // Resubmitting the same file changes nothing; a changed file under the same name is refused.
    let again = coordinator.submit(&sweep_file);
    let said = stdout_of_success(&again);
    assert!(said.contains("already submitted"), "{said}");
    std::fs::write(&sweep_file, tiny_sweep("e2e-basic", &[4, 8, 32], 4, 200)).expect("write sweep");
    let changed = coordinator.submit(&sweep_file);
    let refusal = stderr_of(&changed);
    assert!(!changed.status.success(), "{refusal}");
    assert!(
        refusal.contains("already exists with different contents"),
        "{refusal}"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials"),
        12,
        "nothing stored changed"
    );

    let status = coordinator.client(&["status", "e2e-basic"]);
    let status_text = stdout_of_success(&status);
    assert!(
        status_text
            .lines()
            .any(|line| line.starts_with("e2e-basic") && line.contains(" 12 ")),
        "{status_text}"
    );

    let report = coordinator.client(&["report", "e2e-basic", "--format", "csv"]);
    let csv = stdout_of_success(&report);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "a header and one row per width: {csv}");
    assert!(rows[1].starts_with("e2e-basic,4,4,4,0,0,"), "{csv}");

    // The database can be read directly too, with the same answer.
    let direct = coordinator.on_database("report", "e2e-basic", &["--format", "csv"]);
    assert_eq!(stdout_of(&direct), csv);

    // Watching a finished sweep ends at once; without a terminal the progress is plain lines.
    let watched = coordinator.client(&["watch", "e2e-basic", "--interval-seconds", "0.2"]);
    assert!(watched.status.success(), "{}", stderr_of(&watched));
    assert_eq!(
        stdout_of(&watched),
        "e2e-basic: 12 of 12 trials done, 0 failed, 0 diverged\n"
    );
    assert!(
        stderr_of(&watched).contains("12/12 trials finished"),
        "{}",
        stderr_of(&watched)
    );

    // The figures of a sweep run elsewhere, from its database.
    let figures = directory.path().join("figures");
    let figures_path = figures.to_str().expect("a UTF-8 path");
    let written = coordinator.on_database("report", "e2e-basic", &["--figures", figures_path]);
    assert!(written.status.success(), "{}", stderr_of(&written));
    for name in [
        "bounds-vs-width.svg",
        "survival.svg",
        "msd.svg",
        "report.json",
    ] {
        assert!(
            figures.join(name).is_file(),
            "{name}: {}",
            stderr_of(&written)
        );
    }

    // The table ends in the analysis: slopes in width and rank correlations with the gap.
    let table = stdout_of(&coordinator.client(&["report", "e2e-basic"]));
    assert!(table.contains("slope vs width [95% CI]"), "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.trim_start().starts_with("parameter_count")),
        "{table}"
    );
    let markdown = stdout_of(&coordinator.client(&["report", "e2e-basic", "--format", "markdown"]));
    assert!(markdown.starts_with("## Sweep `e2e-basic`"), "{markdown}");

    let exported = directory.path().join("trials.csv");
    let exported_path = exported.to_str().expect("a UTF-8 path");
    let export = coordinator.on_database("export", "e2e-basic", &["--output", exported_path]);
    assert!(export.status.success(), "{}", stderr_of(&export));
    let trials = std::fs::read_to_string(&exported).expect("export written");
    let lines: Vec<&str> = trials.lines().collect();
    assert_eq!(lines.len(), 13, "a header and one row per trial: {trials}");
    assert!(lines[0].contains("param.model.width"), "{}", lines[0]);
    assert!(
        lines[1..]
            .iter()
            .all(|line| line.contains(",done,converged,")
                || line.contains(",done,budget_exhausted,")),
        "{trials}"
    );

    let jsonl = coordinator.on_database("export", "e2e-basic", &["--format", "jsonl"]);
    let objects: Vec<serde_json::Value> = stdout_of(&jsonl)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 12);
    assert!(
        objects
            .iter()
            .all(|object| object["parameter_count"].is_number())
    );

    // Standard output is a pipe here, so the binary bytes may go there; the unit tests in
    // `report::export_parquet` read the columns back.
    let parquet = coordinator.on_database("export", "e2e-basic", &["--format", "parquet"]);
    assert!(parquet.status.success(), "{}", stderr_of(&parquet));
    assert!(
        parquet.stdout.starts_with(b"PAR1") && parquet.stdout.ends_with(b"PAR1"),
        "a parquet file, footer included: {} bytes",
        parquet.stdout.len()
    );

    let unknown = coordinator.on_database("export", "no-such-sweep", &[]);
    assert!(!unknown.status.success());
    assert!(
        stderr_of(&unknown).contains("unknown sweep `no-such-sweep`"),
        "{}",
        stderr_of(&unknown)
    );
}

#[test]
fn killing_a_worker_mid_trial_loses_no_trial_and_records_none_twice() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-kill.toml");
    // Long enough trials that a worker is killed while it trains one.
    std::fs::write(
        &sweep_file,
        tiny_sweep("e2e-kill", &[32, 64, 128], 4, 60_000),
    )
    .expect("write sweep");

    let coordinator = Coordinator::start(&directory.path().join("sweeps.db"), 1.5);
    let submitted = coordinator.submit(&sweep_file);
    assert!(submitted.status.success(), "{}", stderr_of(&submitted));

    let mut doomed = start_worker(&coordinator.url, "e2e-doomed", 1);
    let _survivor = start_worker(&coordinator.url, "e2e-survivor", 1);
    let database = Database::open(&coordinator.db_url);
    let held = wait_until(SWEEP_TIMEOUT, "the doomed worker to hold a lease", || {
        let held = database
            .strings("SELECT id FROM trials WHERE state = 'leased' AND worker_id = 'e2e-doomed'");
        held.into_iter().next()
    });
    doomed.signal(libc::SIGKILL);
    assert!(
        doomed.wait_for_exit(Duration::from_secs(5)).is_some(),
        "SIGKILL ends the worker"
    );

    wait_until(SWEEP_TIMEOUT, "every trial to finish", || {
        all_done(&database, 12)
    });
    assert_each_trial_recorded_once(&database, 12);
    let attempts = database.count(&format!("SELECT attempts FROM trials WHERE id = '{held}'"));
    assert!(
        attempts >= 2,
        "the killed worker's trial was leased again (attempts = {attempts})"
    );
    let recorded_by = database.strings(&format!(
        "SELECT worker_id FROM results WHERE trial_id = '{held}'"
    ));
    assert_eq!(recorded_by, vec!["e2e-survivor".to_string()]);
}

#[test]
fn a_worker_stopped_with_sigterm_releases_its_trial_at_once() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-term.toml");
    std::fs::write(&sweep_file, tiny_sweep("e2e-term", &[64], 1, 200_000)).expect("write sweep");

    // A long lease: if the trial came back, it was released, not expired.
    let coordinator = Coordinator::start(&directory.path().join("sweeps.db"), 600.0);
    let submitted = coordinator.submit(&sweep_file);
    assert!(submitted.status.success(), "{}", stderr_of(&submitted));
    let mut worker = start_worker(&coordinator.url, "e2e-term-worker", 1);
    let database = Database::open(&coordinator.db_url);
    wait_until(SWEEP_TIMEOUT, "the worker to hold a lease", || {
        (database.count("SELECT COUNT(*) FROM trials WHERE state = 'leased'") == 1).then_some(())
    });

    worker.signal(libc::SIGTERM);
    let status = worker
        .wait_for_exit(Duration::from_secs(10))
        .expect("the worker stops within 10 s");
    assert!(status.success(), "graceful exit: {status}");
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'pending' AND attempts = 0"),
        1
    );
    assert_eq!(database.count("SELECT COUNT(*) FROM results"), 0);

    coordinator.process.signal(libc::SIGTERM);
    let mut coordinator_process = coordinator.process;
    let status = coordinator_process
        .wait_for_exit(Duration::from_secs(10))
        .expect("the coordinator stops on SIGTERM");
    assert!(status.success(), "graceful exit: {status}");
}
