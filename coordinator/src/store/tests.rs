//! The store's semantics, one suite run on both backends: leases, expiry, retries, exactly-once
//! results, aggregates.

use super::*;
use crate::report::aggregate::{WidthSummary, width_summaries};
use crate::sweep::{DEFAULT_MAX_TRIALS, SweepPlan};
use vocabulary::catalog::Uses;

/// The report's per-width rows of what the store holds for `sweep`.
async fn widths_of(store: &dyn Store, sweep: &str) -> Result<Vec<WidthSummary>, StoreError> {
    Ok(width_summaries(
        &store.trial_rows(sweep).await?,
        Uses::REPORTED,
    ))
}

/// A sweep of tiny networks; its settings are shared with the other unit tests' sweep.
const SWEEP: &str = concat!(
    "\nname = \"store-test\"\nmax_attempts = 2\n",
    include_str!("../sweep/testdata/tiny_settings.toml"),
    "[grid]\nmodel.width = [8, 16]\nseed = [0, 1]\n"
);

/// A store of one backend with the test sweep registered, and what must be cleaned up after it.
struct Fixture {
    store: Box<dyn Store>,
    plan: SweepPlan,
    _cleanup: Cleanup,
}

enum Cleanup {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase(String),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::PostgresDatabase(name) = self {
            let name = name.clone();
            // Drop runs outside async code: a short-lived runtime on its own thread drops the database.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
                        .await
                        .expect("connect");
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    sqlx::query(&drop)
                        .execute(&mut admin)
                        .await
                        .expect("drop test database");
                });
            })
            .join();
        }
    }
}

/// The server the PostgreSQL tests create their databases on.
fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

async fn sqlite_store() -> (Box<dyn Store>, Cleanup) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", directory.path().join("test.db").display());
    let store = SqliteStore::open(&url).await.expect("open store");
    (Box::new(store), Cleanup::Directory(directory))
}

/// A fresh database per test, so tests run in parallel and leave nothing behind.
async fn postgres_store() -> (Box<dyn Store>, Cleanup) {
    use sqlx::Connection;
    let name = format!("sweeps_test_{:016x}", rand::random::<u64>());
    let admin_url = postgres_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|error| {
            panic!("PostgreSQL at {admin_url} is needed for this test: {error}")
        });
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let cleanup = Cleanup::PostgresDatabase(name.clone());
    let Some((server, _)) = admin_url.rsplit_once('/') else {
        panic!("TEST_POSTGRES_URL must end in /DATABASE");
    };
    let store = PostgresStore::open(&format!("{server}/{name}"))
        .await
        .expect("open store");
    (Box::new(store), cleanup)
}

async fn with_sweep((store, cleanup): (Box<dyn Store>, Cleanup)) -> Fixture {
    let plan =
        SweepPlan::from_toml("store-test.toml", SWEEP, DEFAULT_MAX_TRIALS).expect("valid sweep");
    store.register_sweep(&plan, 1_000).await.expect("register");
    Fixture {
        store,
        plan,
        _cleanup: cleanup,
    }
}

fn result_with(
    test_error: f64,
    train_error: f64,
    spectral_capacity: f64,
) -> proto::v1::TrialResult {
    proto::v1::TrialResult {
        outcome: "converged".to_string(),
        train_loss: 0.01,
        test_loss: 0.5,
        train_error,
        test_error,
        steps: 100,
        reached_target: true,
        parameter_count: 1000,
        train_size: 100,
        vc_capacity: 400.0,
        spectral_capacity,
        margin_gamma: 1.0,
        radii: vec![proto::v1::RadiusMeasurement {
            radius: 0.5,
            stay_probability: 1.0,
            mean_exit_step: 10.0,
            occupancy: 1.0,
            median_exit_step: 12.0,
            replicate_exit_steps: vec![3, 0],
            mean_exits: 0.5,
            mean_reentries: 0.25,
            predicted_stay_probability: 0.75,
            stay_probability_bound: 0.5,
        }],
        layers: (1..=2)
            .map(|layer| proto::v1::LayerMeasurement {
                layer,
                fan_in: 4,
                fan_out: 8,
                spectral_norm: 2.0,
                frobenius_norm: 3.0,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn lease_of(trial: &LeasedTrial) -> LeaseRef {
    LeaseRef {
        trial_id: trial.trial_id.clone(),
        lease_id: trial.lease_id.clone(),
    }
}

async fn counts(store: &dyn Store) -> SweepCounts {
    store
        .sweep_counts(Some("store-test"))
        .await
        .expect("counts")
        .remove(0)
}

async fn registering_is_idempotent_and_a_changed_sweep_is_refused(fixture: Fixture) {
    let again = fixture
        .store
        .register_sweep(&fixture.plan, 2_000)
        .await
        .expect("register again");
    assert_eq!(
        again,
        RegisterOutcome {
            created: false,
            trial_count: 4
        }
    );
    assert_eq!(counts(fixture.store.as_ref()).await.total, 4);

    let changed = SweepPlan::from_toml(
        "store-test.toml",
        &SWEEP.replace("0.1", "0.2"),
        DEFAULT_MAX_TRIALS,
    )
    .expect("valid");
    let error = fixture
        .store
        .register_sweep(&changed, 3_000)
        .await
        .expect_err("changed sweep refused");
    assert!(matches!(error, StoreError::SweepChanged { .. }));
    assert!(error.to_string().contains("store-test"), "{error}");
    assert_eq!(
        counts(fixture.store.as_ref()).await.total,
        4,
        "nothing stored was touched"
    );
}

async fn leases_hand_out_each_pending_trial_once_in_grid_order(fixture: Fixture) {
    let first = fixture
        .store
        .lease_trials("a", 3, 10_000, 5_000)
        .await
        .expect("lease");
    let second = fixture
        .store
        .lease_trials("b", 3, 10_000, 5_000)
        .await
        .expect("lease");
    assert_eq!(first.len(), 3);
    assert_eq!(second.len(), 1);
    let order: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|trial| trial.trial_id.as_str())
        .collect();
    let planned: Vec<String> = fixture
        .plan
        .trials()
        .map(|trial| trial.expect("trial").id)
        .collect();
    assert_eq!(order, planned);
    assert!(
        first
            .iter()
            .all(|trial| trial.attempt == 1 && trial.lease_deadline_ms == 15_000)
    );
    let config: proto::TrialConfig =
        serde_json::from_str(&first[0].config_json).expect("config travels as JSON");
    assert_eq!(config, fixture.plan.all_trials().expect("trials")[0].config);
    assert!(
        fixture
            .store
            .lease_trials("c", 3, 10_000, 5_000)
            .await
            .expect("lease")
            .is_empty()
    );
    assert_eq!(counts(fixture.store.as_ref()).await.leased, 4);
}

async fn heartbeats_extend_held_leases_and_name_lost_ones(fixture: Fixture) {
    let leased = fixture
        .store
        .lease_trials("a", 1, 1_000, 5_000)
        .await
        .expect("lease");
    let held = lease_of(&leased[0]);
    let stranger = LeaseRef {
        trial_id: held.trial_id.clone(),
        lease_id: "not-this-lease".to_string(),
    };
    let outcome = fixture
        .store
        .heartbeat(&[held.clone(), stranger.clone()], 1_000, 5_900)
        .await
        .expect("heartbeat");
    assert_eq!(outcome.extended, vec![held.clone()]);
    assert_eq!(outcome.lost, vec![stranger]);
    // Extended to 6_900: not expired at 6_500, although the first deadline was 6_000.
    assert_eq!(
        fixture.store.reclaim_expired(6_500).await.expect("reclaim"),
        Reclaimed::default()
    );
}

async fn an_expired_lease_requeues_until_max_attempts_then_fails_with_its_error(fixture: Fixture) {
    let first = fixture
        .store
        .lease_trials("a", 1, 1_000, 0)
        .await
        .expect("lease");
    let reclaimed = fixture.store.reclaim_expired(1_001).await.expect("reclaim");
    assert_eq!(
        reclaimed,
        Reclaimed {
            requeued: 1,
            failed: 0
        }
    );

    let second = fixture
        .store
        .lease_trials("b", 1, 1_000, 2_000)
        .await
        .expect("lease");
    assert_eq!(
        second[0].trial_id, first[0].trial_id,
        "the requeued trial comes first"
    );
    assert_eq!(second[0].attempt, 2);
    // The heartbeat of the first, expired lease is refused.
    let late = fixture
        .store
        .heartbeat(&[lease_of(&first[0])], 1_000, 2_100)
        .await
        .expect("heartbeat");
    assert_eq!(late.lost.len(), 1);

    let reclaimed = fixture.store.reclaim_expired(3_001).await.expect("reclaim");
    assert_eq!(
        reclaimed,
        Reclaimed {
            requeued: 0,
            failed: 1
        }
    );
    let counts = counts(fixture.store.as_ref()).await;
    assert_eq!((counts.failed, counts.pending), (1, 3));
    let trial = fixture
        .store
        .trial(&first[0].trial_id)
        .await
        .expect("trial")
        .expect("known trial");
    assert_eq!(trial.state, "failed");
    assert_eq!(
        trial.last_error.as_deref(),
        Some("lease expired on worker b (attempt 2)")
    );
}

async fn failed_trials_are_retried_with_a_fresh_budget_and_a_history(fixture: Fixture) {
    // Two expired leases use up the sweep's two attempts.
    let first = fixture
        .store
        .lease_trials("a", 1, 1_000, 0)
        .await
        .expect("lease");
    fixture.store.reclaim_expired(1_001).await.expect("reclaim");
    fixture
        .store
        .lease_trials("b", 1, 1_000, 2_000)
        .await
        .expect("lease");
    fixture.store.reclaim_expired(3_001).await.expect("reclaim");
    let trial_id = &first[0].trial_id;
    let retry = |filter: RetryFilter, now_ms: i64| {
        let store = &fixture.store;
        async move { store.retry_failed("store-test", &filter, now_ms).await }
    };

    let other_error = RetryFilter {
        error_contains: Some("out of memory".to_string()),
        ..RetryFilter::default()
    };
    assert_eq!(retry(other_error, 4_000).await.expect("retry"), 0);
    let other_width = RetryFilter {
        width: Some(999),
        ..RetryFilter::default()
    };
    assert_eq!(retry(other_width, 4_000).await.expect("retry"), 0);
    let this_error = RetryFilter {
        error_contains: Some("lease expired".to_string()),
        ..RetryFilter::default()
    };
    assert_eq!(retry(this_error, 5_000).await.expect("retry"), 1);
    // Nothing is failed any more: a second retry finds nothing.
    assert_eq!(
        retry(RetryFilter::default(), 5_500).await.expect("retry"),
        0
    );

    let trial = fixture
        .store
        .trial(trial_id)
        .await
        .expect("trial")
        .expect("known trial");
    assert_eq!((trial.state.as_str(), trial.attempts), ("pending", 0));
    assert_eq!(trial.retries, 1);
    let counts = counts(fixture.store.as_ref()).await;
    assert_eq!((counts.failed, counts.pending), (0, 4));
    // It is leased again first, in grid order, as its first attempt of the new budget.
    let again = fixture
        .store
        .lease_trials("c", 1, 1_000, 6_000)
        .await
        .expect("lease");
    assert_eq!((&again[0].trial_id, again[0].attempt), (trial_id, 1));
    assert!(matches!(
        fixture
            .store
            .retry_failed("no-such-sweep", &RetryFilter::default(), 7_000)
            .await,
        Err(StoreError::UnknownSweep(_))
    ));
}

async fn a_result_is_recorded_once_and_duplicates_are_counted(fixture: Fixture) {
    let leased = fixture
        .store
        .lease_trials("a", 1, 1_000, 0)
        .await
        .expect("lease");
    let lease = lease_of(&leased[0]);
    let result = result_with(0.2, 0.0, 900.0);
    assert_eq!(
        fixture
            .store
            .record_result("a", &lease, &result, 10)
            .await
            .expect("record"),
        RecordOutcome::Recorded
    );
    assert_eq!(
        fixture
            .store
            .record_result("a", &lease, &result, 20)
            .await
            .expect("record"),
        RecordOutcome::Duplicate
    );
    let counts = counts(fixture.store.as_ref()).await;
    assert_eq!((counts.done, counts.duplicate_reports), (1, 1));
    let trial = fixture
        .store
        .trial(&lease.trial_id)
        .await
        .expect("trial")
        .expect("known trial");
    assert_eq!(
        (trial.state.as_str(), trial.recorded_by.as_deref()),
        ("done", Some("a"))
    );
    let summaries = widths_of(fixture.store.as_ref(), "store-test")
        .await
        .expect("summaries");
    let gap = summaries[0]
        .summary
        .measurement("spectral_gap_estimate")
        .expect("one value");
    assert_eq!(gap.count, 1);
    assert!(
        (gap.mean - 3.0).abs() < 1e-12,
        "sqrt(900 / 100) = 3, got {gap:?}"
    );
}

async fn a_late_report_counts_unless_the_trial_is_leased_to_someone_else(fixture: Fixture) {
    let first = fixture
        .store
        .lease_trials("a", 2, 1_000, 0)
        .await
        .expect("lease");
    fixture.store.reclaim_expired(2_000).await.expect("reclaim");
    let second = fixture
        .store
        .lease_trials("b", 1, 1_000, 2_000)
        .await
        .expect("lease");
    assert_eq!(first[0].trial_id, second[0].trial_id);

    // Trial 0 is b's now: a's late result is refused and nothing is stored.
    let refused = fixture
        .store
        .record_result(
            "a",
            &lease_of(&first[0]),
            &result_with(0.1, 0.0, 1.0),
            2_500,
        )
        .await
        .expect_err("leased to someone else");
    assert!(
        matches!(&refused, StoreError::LeasedElsewhere { worker_id, .. } if worker_id == "b"),
        "{refused}"
    );
    assert_eq!(counts(fixture.store.as_ref()).await.done, 0);

    // Trial 1 went back to pending and nobody holds it: a's late result completes it.
    let outcome = fixture
        .store
        .record_result(
            "a",
            &lease_of(&first[1]),
            &result_with(0.1, 0.0, 1.0),
            2_500,
        )
        .await
        .expect("late report");
    assert_eq!(outcome, RecordOutcome::Recorded);
    let late = fixture
        .store
        .trial(&first[1].trial_id)
        .await
        .expect("trial")
        .expect("known trial");
    assert_eq!(
        (late.state.as_str(), late.recorded_by.as_deref()),
        ("done", Some("a"))
    );
    let again = fixture
        .store
        .lease_trials("c", 4, 1_000, 2_600)
        .await
        .expect("lease");
    assert!(
        again
            .iter()
            .all(|trial| trial.trial_id != first[1].trial_id),
        "a done trial is not leased again"
    );

    let outcome = fixture
        .store
        .record_result(
            "b",
            &lease_of(&second[0]),
            &result_with(0.1, 0.0, 1.0),
            2_600,
        )
        .await
        .expect("holder's report");
    assert_eq!(outcome, RecordOutcome::Recorded);
    let heartbeat = fixture
        .store
        .heartbeat(&[lease_of(&second[0])], 1_000, 2_700)
        .await
        .expect("heartbeat");
    assert_eq!(
        heartbeat.lost.len(),
        1,
        "a done trial's lease is no longer held"
    );
    let counts = counts(fixture.store.as_ref()).await;
    assert_eq!((counts.done, counts.duplicate_reports), (2, 0));
}

async fn failures_retry_until_max_attempts_and_releases_cost_no_attempt(fixture: Fixture) {
    let first = fixture
        .store
        .lease_trials("a", 1, 1_000, 0)
        .await
        .expect("lease");
    let released = fixture
        .store
        .release(&[lease_of(&first[0])], 10)
        .await
        .expect("release");
    assert_eq!(released, 1);

    let again = fixture
        .store
        .lease_trials("a", 1, 1_000, 20)
        .await
        .expect("lease");
    assert_eq!(
        (again[0].trial_id.as_str(), again[0].attempt),
        (first[0].trial_id.as_str(), 1)
    );
    let outcome = fixture
        .store
        .record_failure(&lease_of(&again[0]), "boom", 30)
        .await
        .expect("failure");
    assert_eq!(outcome, FailureOutcome::Retrying);
    let third = fixture
        .store
        .lease_trials("a", 1, 1_000, 40)
        .await
        .expect("lease");
    assert_eq!(third[0].attempt, 2);
    let outcome = fixture
        .store
        .record_failure(&lease_of(&third[0]), "boom again", 50)
        .await
        .expect("failure");
    assert_eq!(outcome, FailureOutcome::Failed);
    let stale = fixture
        .store
        .record_failure(&lease_of(&third[0]), "boom", 60)
        .await
        .expect("failure");
    assert_eq!(stale, FailureOutcome::Stale);
    assert_eq!(counts(fixture.store.as_ref()).await.failed, 1);
}

async fn trial_rows_aggregate_per_width_over_finished_trials(fixture: Fixture) {
    let leased = fixture
        .store
        .lease_trials("a", 4, 1_000, 0)
        .await
        .expect("lease");
    // Grid order: (8, seed 0), (8, seed 1), (16, seed 0), (16, seed 1).
    let test_errors = [0.1, 0.3, 0.2, 0.2];
    for (trial, test_error) in leased.iter().zip(test_errors).take(3) {
        fixture
            .store
            .record_result(
                "a",
                &lease_of(trial),
                &result_with(test_error, 0.0, 100.0),
                10,
            )
            .await
            .expect("record");
    }
    let summaries = widths_of(fixture.store.as_ref(), "store-test")
        .await
        .expect("summaries");
    assert_eq!(summaries.len(), 2);
    let narrow = &summaries[0];
    assert_eq!(
        (narrow.width, narrow.summary.trials, narrow.summary.done),
        (8, 2, 2)
    );
    let test_error = narrow.summary.measurement("test_error").expect("two");
    assert_eq!(test_error.count, 2);
    assert!((test_error.mean - 0.2).abs() < 1e-12);
    // Sample standard deviation of {0.1, 0.3}: sqrt(((0.1)² + (0.1)²) / 1) = 0.1414…
    assert!((test_error.std_dev.expect("sd") - 0.02f64.sqrt()).abs() < 1e-9);
    let wide = &summaries[1];
    assert_eq!(
        (wide.width, wide.summary.trials, wide.summary.done),
        (16, 2, 1)
    );
    let single = wide.summary.measurement("test_error").expect("one");
    assert_eq!(single.std_dev, None, "one value has no spread");
    let stay = wide.summary.measurement("stay_probability_1");
    assert_eq!(stay.map(|stay| stay.mean), Some(1.0));

    let unknown = widths_of(fixture.store.as_ref(), "nope")
        .await
        .expect_err("unknown sweep");
    assert!(matches!(unknown, StoreError::UnknownSweep(_)));
}

async fn a_lease_batch_deals_disjoint_trials_in_arrival_order_each_call_its_own_lease(
    fixture: Fixture,
) {
    let request = |worker: &str, max_trials| LeaseRequest {
        worker_id: worker.to_string(),
        max_trials,
    };
    let leased = fixture
        .store
        .lease_batch(
            &[request("a", 1), request("b", 2), request("c", 5)],
            10_000,
            5_000,
        )
        .await
        .expect("lease batch");
    let sizes: Vec<usize> = leased.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 2, 1], "4 trials dealt in arrival order");
    let order: Vec<&str> = leased
        .iter()
        .flatten()
        .map(|trial| trial.trial_id.as_str())
        .collect();
    let planned: Vec<String> = fixture
        .plan
        .trials()
        .map(|trial| trial.expect("trial").id)
        .collect();
    assert_eq!(order, planned);
    assert_eq!(leased[1][0].lease_id, leased[1][1].lease_id);
    assert_ne!(leased[0][0].lease_id, leased[1][0].lease_id);
    assert_ne!(leased[1][0].lease_id, leased[2][0].lease_id);
    let holder = fixture
        .store
        .trial(&leased[2][0].trial_id)
        .await
        .expect("trial")
        .expect("known trial");
    assert_eq!(
        (holder.state.as_str(), holder.worker_id.as_deref()),
        ("leased", Some("c"))
    );
    // Each call's lease is its own: a heartbeat with another call's lease id is refused.
    let crossed = LeaseRef {
        trial_id: leased[2][0].trial_id.clone(),
        lease_id: leased[0][0].lease_id.clone(),
    };
    let outcome = fixture
        .store
        .heartbeat(std::slice::from_ref(&crossed), 10_000, 6_000)
        .await
        .expect("heartbeat");
    assert_eq!(outcome.lost, [crossed]);
}

async fn a_report_batch_answers_each_report_alone(fixture: Fixture) {
    let leased = fixture
        .store
        .lease_trials("a", 3, 10_000, 0)
        .await
        .expect("lease");
    let report = |worker: &str, trial: &LeasedTrial, test_error| ResultReport {
        worker_id: worker.to_string(),
        lease: lease_of(trial),
        result: result_with(test_error, 0.0, 400.0),
    };
    let unknown = ResultReport {
        lease: LeaseRef {
            trial_id: "no-such-trial".to_string(),
            lease_id: "x".to_string(),
        },
        ..report("a", &leased[0], 0.1)
    };
    // One layer for a network of depth 2: refused alone, nothing of it stored.
    let misshapen = {
        let mut misshapen = report("a", &leased[1], 0.2);
        misshapen.result.layers.truncate(1);
        misshapen
    };
    fixture
        .store
        .record_result("a", &lease_of(&leased[2]), &result_with(0.3, 0.0, 400.0), 5)
        .await
        .expect("record before the batch");
    let outcomes = fixture
        .store
        .record_results(
            &[
                report("a", &leased[0], 0.1),
                unknown,
                report("b", &leased[0], 0.9),
                report("a", &leased[1], 0.2),
                report("a", &leased[2], 0.3),
                misshapen,
            ],
            10,
        )
        .await
        .expect("batch");
    assert_eq!(outcomes.len(), 6);
    assert!(matches!(outcomes[0], Ok(RecordOutcome::Recorded)));
    assert!(matches!(outcomes[1], Err(StoreError::UnknownTrial(_))));
    assert!(
        matches!(outcomes[2], Ok(RecordOutcome::Duplicate)),
        "the second report of a trial in one batch is a duplicate"
    );
    assert!(matches!(outcomes[3], Ok(RecordOutcome::Recorded)));
    assert!(matches!(outcomes[4], Ok(RecordOutcome::Duplicate)));
    match &outcomes[5] {
        Err(StoreError::ResultMismatch { mismatch, .. }) => assert!(
            mismatch.contains("`result.layers` has 1 entries"),
            "{mismatch}"
        ),
        other => panic!("a misshapen result is refused, not {other:?}"),
    }

    let counts = counts(fixture.store.as_ref()).await;
    assert_eq!((counts.done, counts.duplicate_reports), (3, 2));
    let first = fixture
        .store
        .trial(&leased[0].trial_id)
        .await
        .expect("trial")
        .expect("known trial");
    assert_eq!(
        (first.state.as_str(), first.recorded_by.as_deref()),
        ("done", Some("a"))
    );
    let summaries = widths_of(fixture.store.as_ref(), "store-test")
        .await
        .expect("summaries");
    let test_error: Vec<(usize, Option<f64>)> = summaries
        .iter()
        .map(|width| {
            let error = width.summary.measurement("test_error");
            (
                error.map_or(0, |error| error.count),
                error.map(|error| error.mean),
            )
        })
        .collect();
    // Width 8 holds trials 0 and 1 (0.1, 0.2); width 16 holds trial 2 (0.3, stored first).
    assert_eq!(test_error.len(), 2);
    assert_eq!(test_error[0].0, 2);
    assert!((test_error[0].1.expect("mean") - 0.15).abs() < 1e-12);
    assert_eq!(test_error[1].0, 1);
    assert!((test_error[1].1.expect("mean") - 0.3).abs() < 1e-12);
}

async fn trial_rows_show_every_trial_in_grid_order_with_its_measurements(fixture: Fixture) {
    let leased = fixture
        .store
        .lease_trials("a", 2, 10_000, 0)
        .await
        .expect("lease");
    let result = proto::v1::TrialResult {
        reached_target: true,
        hessian_top_eigenvalues: vec![2.5, 1.0],
        bounds: vec![
            proto::v1::BoundMeasurement {
                name: "golowich_rakhlin_shamir".to_string(),
                capacity: 400.0,
            },
            proto::v1::BoundMeasurement {
                name: "path_norm".to_string(),
                capacity: f64::INFINITY,
            },
            proto::v1::BoundMeasurement {
                name: "stagnation_localized_spectral".to_string(),
                capacity: 25.0,
            },
        ],
        msd_curve: vec![
            proto::v1::MsdPoint {
                step: 5,
                msd: 0.5,
                msd_hessian_top: 0.25,
                predicted_msd: f64::NAN,
            },
            proto::v1::MsdPoint {
                step: 10,
                msd: 1.0,
                msd_hessian_top: 0.5,
                predicted_msd: 0.75,
            },
        ],
        landscape: Some(proto::v1::LandscapeSlice {
            plane: "pca".to_string(),
            grid: 2,
            extent: 0.5,
            losses: [1.0f32, 2.0, 3.0, 4.5]
                .iter()
                .flat_map(|loss| loss.to_le_bytes())
                .collect(),
            trajectory: vec![
                proto::v1::LandscapePoint {
                    replicate: 0,
                    step: 50,
                    a: 0.1,
                    b: -0.2,
                },
                proto::v1::LandscapePoint {
                    replicate: 1,
                    step: 100,
                    a: f64::NAN,
                    b: 0.3,
                },
            ],
        }),
        probe_statistics: vec![
            proto::v1::ProbeStatistic {
                name: "msd_diffusion".to_string(),
                value: 0.125,
            },
            proto::v1::ProbeStatistic {
                name: "hessian_aligned_share".to_string(),
                value: 0.625,
            },
            proto::v1::ProbeStatistic {
                name: "linear_barrier".to_string(),
                value: f64::NAN,
            },
        ],
        ..result_with(0.25, 0.05, 900.0)
    };
    fixture
        .store
        .record_result("a", &lease_of(&leased[0]), &result, 10)
        .await
        .expect("record");
    let rows = fixture.store.trial_rows("store-test").await.expect("rows");
    let planned = fixture.plan.all_trials().expect("trials");
    assert_eq!(rows.len(), 4);
    for (row, trial) in rows.iter().zip(&planned) {
        assert_eq!(row.trial_id, trial.id);
        assert_eq!(row.number("width"), Some(trial.config.model.width as f64));
        assert_eq!(row.number("seed"), Some(trial.config.seed as f64));
        let params: proto::TrialConfig = serde_json::from_str(&row.params).expect("params");
        assert_eq!(params, trial.config);
    }
    let done = &rows[0];
    assert!(done.is_measured());
    assert_eq!(
        (
            done.state.as_str(),
            done.outcome.as_deref(),
            done.worker_id.as_deref()
        ),
        ("done", Some("converged"), Some("a"))
    );
    assert_eq!(done.number("test_error"), Some(0.25));
    assert_eq!(done.number("reached_target"), Some(1.0));
    assert_eq!(done.number("spectral_capacity"), Some(900.0));
    assert_eq!(done.number("hessian_lambda_max"), Some(2.5));
    assert_eq!(done.number("stay_probability_1"), Some(1.0));
    assert_eq!(done.number("median_exit_step_1"), Some(12.0));
    assert_eq!(done.replicate_exit_steps_1.as_deref(), Some("[3,0]"));
    assert_eq!(
        done.number("radius_2"),
        None,
        "the result has one probe radius"
    );
    assert!((done.number("error_gap").expect("gap") - 0.2).abs() < 1e-12);
    // sqrt(400 / 100) = 2; an infinite capacity (γ ≤ 0) is stored as NULL and read as +∞, the
    // largest value for a rank statistic; an absent bound has no value.
    assert_eq!(
        done.number("golowich_rakhlin_shamir_gap_estimate"),
        Some(2.0)
    );
    assert_eq!(done.number("path_norm_gap_estimate"), Some(f64::INFINITY));
    assert_eq!(done.number("frobenius_2layer_gap_estimate"), None);
    // A probe statistic as reported; a non-finite one and an unmeasured one have no value.
    assert_eq!(done.number("msd_diffusion"), Some(0.125));
    assert_eq!(done.number("linear_barrier"), None);
    assert_eq!(done.number("basin_return_share"), None);
    assert_eq!(done.number("hessian_aligned_share"), Some(0.625));
    assert_eq!(
        done.number("stagnation_localized_spectral_gap_estimate"),
        Some(0.5)
    );
    assert_eq!(done.number("mean_exits_1"), Some(0.5));
    assert_eq!(done.number("mean_reentries_1"), Some(0.25));
    assert_eq!(done.number("predicted_stay_probability_1"), Some(0.75));
    assert_eq!(done.number("stay_probability_bound_1"), Some(0.5));
    assert_eq!(
        done.msd_curve.as_deref(),
        Some(
            r#"{"msd":[0.5,1.0],"msd_hessian_top":[0.25,0.5],"predicted_msd":[null,0.75],"step":[5,10]}"#
        )
    );
    let slices = fixture
        .store
        .landscape_slices("store-test")
        .await
        .expect("slices");
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(slice.trial_id, done.trial_id);
    assert_eq!(slice.width, planned[0].config.model.width as u64);
    assert_eq!((slice.plane.as_str(), slice.grid), ("pca", 2));
    assert_eq!(slice.extent, 0.5);
    assert_eq!(slice.losses, [1.0, 2.0, 3.0, 4.5]);
    assert_eq!(slice.trajectory[0], (0, 50, 0.1, -0.2));
    assert!(slice.trajectory[1].2.is_nan());
    assert_eq!(slice.radius, Some(0.5));
    assert_eq!(
        (rows[1].state.as_str(), rows[1].number("test_error")),
        ("leased", None)
    );
    assert!(!rows[1].is_measured());
    assert!(matches!(
        fixture.store.trial_rows("no-such-sweep").await,
        Err(StoreError::UnknownSweep(_))
    ));
}

/// A database migrated by the texts as released (each edited migration's old checksum, and the
/// view those texts made) opens: it is re-stamped, its view re-created, and its trials kept.
#[tokio::test]
async fn a_database_migrated_before_the_view_left_the_migrations_opens_with_its_trials() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", directory.path().join("old.db").display());
    let plan =
        SweepPlan::from_toml("store-test.toml", SWEEP, DEFAULT_MAX_TRIALS).expect("valid sweep");
    let store = SqliteStore::open(&url).await.expect("open store");
    store.register_sweep(&plan, 1_000).await.expect("register");
    drop(store);

    let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
    for (version, released) in super::schema::SQLITE_EDITED {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = ?")
            .bind(hex::decode(released).expect("hex"))
            .bind(version)
            .execute(&pool)
            .await
            .expect("stamp the released checksum");
    }
    for statement in [
        "DROP VIEW trial_results",
        "CREATE VIEW trial_results AS SELECT t.sweep, t.id AS trial_id FROM trials t",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect("old view");
    }
    pool.close().await;

    let store = SqliteStore::open(&url).await.expect("reopens");
    let rows = store.trial_rows("store-test").await.expect("rows");
    assert_eq!(rows.len(), plan.trials().count());
    assert!(rows.iter().all(|row| row.state == "pending"));
}

/// The same suite on both backends: SQLite always, PostgreSQL on the local server.
macro_rules! store_conformance_suite {
    ([$($backend:ident => $open:ident),*], $tests:tt) => {
        $(store_conformance_suite!(@backend $backend, $open, $tests);)*
    };
    (@backend $backend:ident, $open:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::with_sweep(super::$open().await).await).await;
                }
            )*
        }
    };
}

store_conformance_suite!(
    [sqlite => sqlite_store, postgres => postgres_store],
    [
        registering_is_idempotent_and_a_changed_sweep_is_refused,
        leases_hand_out_each_pending_trial_once_in_grid_order,
        heartbeats_extend_held_leases_and_name_lost_ones,
        an_expired_lease_requeues_until_max_attempts_then_fails_with_its_error,
        failed_trials_are_retried_with_a_fresh_budget_and_a_history,
        a_result_is_recorded_once_and_duplicates_are_counted,
        a_late_report_counts_unless_the_trial_is_leased_to_someone_else,
        failures_retry_until_max_attempts_and_releases_cost_no_attempt,
        trial_rows_aggregate_per_width_over_finished_trials,
        a_lease_batch_deals_disjoint_trials_in_arrival_order_each_call_its_own_lease,
        a_report_batch_answers_each_report_alone,
        trial_rows_show_every_trial_in_grid_order_with_its_measurements,
    ]
);
