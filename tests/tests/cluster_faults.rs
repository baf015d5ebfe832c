//! Faults a cluster has, with real processes: workers killed at random moments, a coordinator
//! killed and restarted, database connections dropped, a trial that crashes every worker that
//! runs it. Each run ends with every trial done (or failed, for the poisoned one), none lost and
//! none recorded twice, and prints what it did.

mod common;

use std::time::{Duration, Instant};

use common::{
    Coordinator, Database, PostgresDatabase, Process, rand_u64, start_worker, stderr_of, tiny_sweep,
};

const TIMEOUT: Duration = Duration::from_secs(300);

fn port_of(url: &str) -> String {
    url.rsplit(':').next().expect("url with a port").to_string()
}

/// Kills the coordinator with SIGKILL and starts a new one on the same port and database.
fn restart(coordinator: Coordinator, lease_seconds: f64) -> Coordinator {
    let port = port_of(&coordinator.url);
    let db_url = coordinator.db_url.clone();
    let mut process = coordinator.process;
    process.signal(libc::SIGKILL);
    process
        .wait_for_exit(Duration::from_secs(5))
        .expect("SIGKILL ends the coordinator");
    Coordinator::serve(
        &db_url,
        &format!("127.0.0.1:{port}"),
        lease_seconds,
        &[],
        "http",
    )
}

#[test]
fn two_coordinators_on_postgres_survive_killed_workers_a_killed_coordinator_and_dropped_connections()
 {
    let database = PostgresDatabase::create();
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-cluster.toml");
    let seeds = 150;
    std::fs::write(&sweep_file, tiny_sweep("e2e-cluster", &[4, 8], seeds, 150))
        .expect("write sweep");
    let total = 2 * seeds as i64;

    let lease_seconds = 2.0;
    let first = Coordinator::serve(&database.url, "127.0.0.1:0", lease_seconds, &[], "http");
    let mut second = Some(Coordinator::serve(
        &database.url,
        "127.0.0.1:0",
        lease_seconds,
        &[],
        "http",
    ));
    let submitted = first.submit(&sweep_file);
    assert!(submitted.status.success(), "{}", stderr_of(&submitted));

    let urls = [
        first.url.clone(),
        second.as_ref().expect("running").url.clone(),
    ];
    let mut workers: Vec<Process> = (0..6)
        .map(|index| start_worker(&urls[index % 2], &format!("e2e-cluster-{index}"), 1))
        .collect();

    let (mut worker_kills, mut coordinator_kills, mut terminated_connections) = (0, 0, 0);
    let started = Instant::now();
    let mut round = 0;
    loop {
        let finished =
            database.count("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')");
        if finished == total {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "timed out with {finished} of {total} trials finished"
        );
        std::thread::sleep(Duration::from_millis(400));
        round += 1;
        if worker_kills < 8 {
            let index = (rand_u64() % workers.len() as u64) as usize;
            workers[index].signal(libc::SIGKILL);
            workers[index].wait_for_exit(Duration::from_secs(5));
            worker_kills += 1;
            workers[index] =
                start_worker(&urls[index % 2], &format!("e2e-cluster-{index}-{round}"), 1);
        }
        if round == 3 {
            second = Some(restart(second.take().expect("running"), lease_seconds));
            coordinator_kills += 1;
        }
        if round == 5 {
            terminated_connections += database.terminate_connections();
        }
    }

    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'"),
        total,
        "none failed"
    );
    assert_eq!(
        database.count("SELECT COUNT(*) FROM results"),
        total,
        "one result per trial"
    );
    let leases = database.count("SELECT COALESCE(SUM(attempts), 0) FROM trials");
    let duplicates = database.count("SELECT duplicate_reports FROM sweeps");
    println!(
        "cluster run: {total} trials in {:.1} s; {worker_kills} worker kills, {coordinator_kills} coordinator kill, \
         {terminated_connections} database connections terminated; {} re-leases, {duplicates} duplicate reports ignored",
        started.elapsed().as_secs_f64(),
        leases - total
    );
    drop(workers);
}

#[test]
fn a_coordinator_killed_and_restarted_on_sqlite_loses_no_trial() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-restart.toml");
    std::fs::write(&sweep_file, tiny_sweep("e2e-restart", &[8, 16], 10, 400)).expect("write sweep");

    let lease_seconds = 2.0;
    let coordinator = Coordinator::start(&directory.path().join("sweeps.db"), lease_seconds);
    let submitted = coordinator.submit(&sweep_file);
    assert!(submitted.status.success(), "{}", stderr_of(&submitted));
    let _workers = [
        start_worker(&coordinator.url, "e2e-restart-a", 1),
        start_worker(&coordinator.url, "e2e-restart-b", 1),
    ];
    let database = Database::open(&coordinator.db_url);
    common::wait_until(TIMEOUT, "some results", || {
        (database.count("SELECT COUNT(*) FROM results") >= 3).then_some(())
    });
    let coordinator = restart(coordinator, lease_seconds);

    common::wait_until(TIMEOUT, "every trial to finish", || {
        (database.count("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')") == 20)
            .then_some(())
    });
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'"),
        20
    );
    assert_eq!(database.count("SELECT COUNT(*) FROM results"), 20);
    println!(
        "restart run: {} re-leases, {} duplicate reports ignored",
        database.count("SELECT SUM(attempts) FROM trials") - 20,
        database.count("SELECT duplicate_reports FROM sweeps")
    );
    drop(coordinator);
}

#[test]
fn a_poisoned_trial_fails_after_its_attempts_without_stalling_the_sweep() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-poison.toml");
    // Width 2^20 with two hidden layers asks for a 2^40-entry weight matrix: the allocation fails
    // (test workers run under an address-space limit) and the worker process aborts, every time
    // it takes this trial.
    let sweep = tiny_sweep("e2e-poison", &[4, 8, 1_048_576], 2, 100)
        .replace("depth = 2", "depth = 3")
        .replace("max_attempts = 5", "max_attempts = 2");
    std::fs::write(&sweep_file, sweep).expect("write sweep");

    let coordinator = Coordinator::start(&directory.path().join("sweeps.db"), 1.5);
    let submitted = coordinator.submit(&sweep_file);
    assert!(submitted.status.success(), "{}", stderr_of(&submitted));
    let database = Database::open(&coordinator.db_url);

    // A supervisor's job (Kubernetes, Slurm): start a worker again when one dies.
    let mut workers: Vec<Process> = (0..2)
        .map(|index| start_worker(&coordinator.url, &format!("e2e-poison-{index}"), 1))
        .collect();
    let mut crashes = 0;
    let started = Instant::now();
    while database.count("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')") < 6 {
        assert!(started.elapsed() < TIMEOUT, "the sweep stalled");
        for (index, worker) in workers.iter_mut().enumerate() {
            if let Ok(Some(_)) = worker.child.try_wait() {
                crashes += 1;
                *worker = start_worker(
                    &coordinator.url,
                    &format!("e2e-poison-{index}-{crashes}"),
                    1,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'"),
        4
    );
    assert_eq!(database.count("SELECT COUNT(*) FROM results"), 4);
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials WHERE state = 'failed' AND width = 1048576"),
        2
    );
    let errors = database.strings("SELECT last_error FROM trials WHERE state = 'failed'");
    assert!(
        errors
            .iter()
            .all(|error| error.starts_with("lease expired on worker")),
        "{errors:?}"
    );
    assert!(
        crashes >= 2,
        "the poisoned trials crashed workers ({crashes} crashes)"
    );
    println!("poison run: {crashes} worker crashes, failed trials' errors: {errors:?}");
}
