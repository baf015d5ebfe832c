//! The coordinator's web dashboard and Prometheus metrics, over real HTTP from a finished sweep.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Coordinator, Database, start_worker, stderr_of, tiny_sweep, wait_until};

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn get(base: &str, path: &str) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a header and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

#[test]
fn the_dashboard_shows_sweeps_a_sweep_page_and_metrics() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_file = directory.path().join("e2e-dashboard.toml");
    std::fs::write(&sweep_file, tiny_sweep("e2e-dashboard", &[4, 16], 2, 100))
        .expect("write sweep");
    let coordinator = Coordinator::start_with(
        &directory.path().join("sweeps.db"),
        10.0,
        &["--dashboard-listen", "127.0.0.1:0"],
        "http",
    );
    let dashboard = coordinator
        .dashboard_url
        .clone()
        .expect("the coordinator announces its dashboard");
    let submitted = coordinator.submit(&sweep_file);
    assert!(submitted.status.success(), "{}", stderr_of(&submitted));

    let (status, body) = get(&dashboard, "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("href=\"/sweeps/e2e-dashboard\""), "{body}");
    assert!(
        body.contains("http-equiv=\"refresh\""),
        "refreshed while the sweep runs"
    );

    let _worker = start_worker(&coordinator.url, "dashboard-worker", 2);
    let database = Database::open(&coordinator.db_url);
    wait_until(Duration::from_secs(120), "every trial done", || {
        (database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'") == 4).then_some(())
    });

    let (status, page) = get(&dashboard, "/sweeps/e2e-dashboard");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("4 of 4 trials done"), "{page}");
    assert!(page.contains("<table id=\"widths\">"), "{page}");
    let rows = page.matches("<tr><td>").count();
    assert_eq!(rows, 2, "one row per width: {page}");
    assert!(
        page.contains("<figure id=\"bounds-vs-width\"><svg"),
        "the figure is inline SVG"
    );
    assert!(
        page.contains("measured gap, 0-1 error"),
        "the figure has its legend"
    );
    assert!(page.contains("<pre id=\"analysis\">"), "{page}");
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "a finished sweep's page is not refreshed"
    );

    let (status, metrics) = get(&dashboard, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    for line in [
        "sweep_trials{sweep=\"e2e-dashboard\",state=\"done\"} 4",
        "sweep_trials{sweep=\"e2e-dashboard\",state=\"pending\"} 0",
        "coordinator_results_recorded_total 4",
        "coordinator_trials_leased_total 4",
        "coordinator_workers_seen 1",
        "coordinator_rpc_duration_seconds_count{rpc=\"ReportResult\"} 4",
    ] {
        assert!(
            metrics.lines().any(|candidate| candidate == line),
            "{line} in\n{metrics}"
        );
    }
    assert!(metrics.contains("# TYPE coordinator_rpc_duration_seconds histogram"));

    let (status, body) = get(&dashboard, "/sweeps/no-such-sweep");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown sweep `no-such-sweep`"), "{body}");
}

#[test]
fn a_dashboard_on_a_public_address_needs_to_be_asked_for() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let output = common::coordinator_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(format!(
            "sqlite://{}",
            directory.path().join("sweeps.db").display()
        ))
        .args(["--dashboard-listen", "0.0.0.0:0"])
        .output()
        .expect("coordinator runs");
    assert!(!output.status.success());
    assert!(
        stderr_of(&output).contains("--dashboard-public"),
        "{}",
        stderr_of(&output)
    );
}
