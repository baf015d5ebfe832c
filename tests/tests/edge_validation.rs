//! Requests a coordinator must refuse at the edge, each with a clear status, leaving what is
//! stored untouched: an oversized message, unknown trial and lease ids, a result for a trial
//! leased to someone else, NaN where a number must be finite.

mod common;

use std::time::Duration;

use common::{Coordinator, Database, tiny_sweep, wait_until};
use proto::channel::{Client, Connection};
use proto::v1 as wire;
use tonic::Code;

fn finished_result() -> wire::TrialResult {
    wire::TrialResult {
        outcome: "converged".to_string(),
        train_loss: 0.01,
        test_loss: 0.2,
        test_error: 0.1,
        steps: 10,
        parameter_count: 100,
        train_size: 128,
        ..Default::default()
    }
}

fn report(
    worker_id: &str,
    trial: &wire::LeasedTrial,
    result: wire::TrialResult,
) -> wire::ReportResultRequest {
    wire::ReportResultRequest {
        worker_id: worker_id.to_string(),
        lease: Some(wire::LeaseRef {
            trial_id: trial.trial_id.clone(),
            lease_id: trial.lease_id.clone(),
        }),
        result: Some(result),
    }
}

async fn lease_one(client: &mut Client, worker_id: &str) -> wire::LeasedTrial {
    client
        .lease_trials(wire::LeaseTrialsRequest {
            worker_id: worker_id.to_string(),
            max_trials: 1,
        })
        .await
        .expect("lease")
        .into_inner()
        .trials
        .pop()
        .expect("a pending trial")
}

async fn refused(
    call: impl std::future::Future<
        Output = Result<tonic::Response<wire::ReportResultResponse>, tonic::Status>,
    >,
) -> tonic::Status {
    call.await
        .expect_err("the coordinator must refuse this report")
}

#[test]
fn bad_requests_get_a_clear_status_and_change_nothing() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("edge.toml");
    std::fs::write(&sweep_file, tiny_sweep("edge", &[4], 2, 50)).expect("write sweep");
    let database = directory.path().join("sweeps.db");
    // Leases of one second, so one can expire and go to another worker within the test.
    let coordinator = Coordinator::start(&database, 1.0);
    assert!(coordinator.submit(&sweep_file).status.success());

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let connection = Connection {
            url: coordinator.url.clone(),
            tls_ca: None,
            token: None,
        };
        let mut client = connection.connect().await.expect("connect");
        let trial = lease_one(&mut client, "worker-a").await;

        let status = refused(client.report_result(report(
            "worker-a",
            &wire::LeasedTrial {
                trial_id: "0123456789abcdef0123456789abcdef".to_string(),
                ..trial.clone()
            },
            finished_result(),
        )))
        .await;
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(status.message().contains("unknown trial"), "{status:?}");

        let not_a_number = wire::TrialResult {
            test_loss: f64::NAN,
            ..finished_result()
        };
        let status = refused(client.report_result(report("worker-a", &trial, not_a_number))).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("result.test_loss"), "{status:?}");

        let oversized = wire::TrialResult {
            hessian_top_eigenvalues: vec![1.0; 3_000_000],
            ..finished_result()
        };
        // A client without our size limit, so the coordinator's own limit is what refuses it.
        let mut unlimited =
            wire::coordinator_client::CoordinatorClient::connect(coordinator.url.clone())
                .await
                .expect("connect")
                .max_encoding_message_size(64 << 20);
        let status = refused(unlimited.report_result(report("worker-a", &trial, oversized))).await;
        assert!(
            matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
            "{status:?}"
        );

        let heartbeat = client
            .heartbeat(wire::HeartbeatRequest {
                worker_id: "worker-a".to_string(),
                running: vec![wire::TrialProgress {
                    lease: Some(wire::LeaseRef {
                        trial_id: trial.trial_id.clone(),
                        lease_id: "not-a-lease-anyone-holds".to_string(),
                    }),
                    ..Default::default()
                }],
            })
            .await
            .expect("heartbeat")
            .into_inner();
        assert_eq!(heartbeat.lost.len(), 1, "an unknown lease id is named lost");

        // Worker a's lease runs out without a heartbeat; the trial goes to worker b.
        let mut taken_over = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let leased = client
                .lease_trials(wire::LeaseTrialsRequest {
                    worker_id: "worker-b".to_string(),
                    max_trials: 1,
                })
                .await
                .expect("lease")
                .into_inner()
                .trials;
            if let Some(leased) = leased
                .into_iter()
                .find(|leased| leased.trial_id == trial.trial_id)
            {
                taken_over = Some(leased);
                break;
            }
        }
        let taken_over = taken_over.expect("the expired trial is leased again");
        let status =
            refused(client.report_result(report("worker-a", &trial, finished_result()))).await;
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("worker-b"), "{status:?}");

        // The holder's report is the one recorded.
        let recorded = client
            .report_result(report("worker-b", &taken_over, finished_result()))
            .await
            .expect("holder's report")
            .into_inner();
        assert!(!recorded.duplicate);
    });

    let stored = Database::open(&coordinator.db_url);
    let results = wait_until(Duration::from_secs(5), "the holder's result", || {
        let count = stored.count("SELECT COUNT(*) FROM results");
        (count > 0).then_some(count)
    });
    assert_eq!(results, 1, "only the holder's result was stored");
    assert_eq!(
        stored.strings("SELECT worker_id FROM results"),
        ["worker-b"]
    );
    assert_eq!(
        stored.count("SELECT duplicate_reports FROM sweeps WHERE name = 'edge'"),
        0
    );
}
