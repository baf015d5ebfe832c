//! The coordinator's web dashboard and Prometheus metrics, over real HTTP from a finished sweep.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Coordinator, Database, start_worker_with, stderr_of, tiny_sweep, wait_until};

/// The browser `.ci/run` installs (Debian's `chromium`), or `$CHROMIUM`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|directory| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| directory.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// Loads `url` in headless Chromium, lets its scripts run, and returns the DOM it rendered; a
/// screenshot of the page goes to `screenshot`.
fn render_in_chromium(browser: &Path, url: &str, screenshot: &Path) -> String {
    let profile = tempfile::tempdir().expect("browser profile directory");
    let run = |mode: &str| {
        let mut child = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1280,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(mode)
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("headless Chromium starts");
        // Drained while Chromium runs: a DOM larger than the pipe's buffer would otherwise block
        // it on its write while we wait for it to exit.
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                pipe.read_to_string(&mut text).map(|_| text)
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
        let status = wait_until(Duration::from_secs(90), "headless Chromium", || {
            child.try_wait().expect("wait for Chromium")
        });
        let stdout = stdout
            .join()
            .expect("the reader thread")
            .expect("read the DOM");
        let stderr = stderr
            .join()
            .expect("the reader thread")
            .unwrap_or_default();
        assert!(
            status.success(),
            "Chromium {mode} failed: {status}: {stderr}"
        );
        stdout
    };
    run(&format!("--screenshot={}", screenshot.display()));
    run("--dump-dom")
}

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
    // A 7 × 7 landscape slice per trial, which the page shows one per width, and the weights
    // saved as safetensors files.
    let sweep = tiny_sweep("e2e-dashboard", &[4, 16], 2, 100)
        .replace("replicates = 2\n", "replicates = 2\nlandscape_grid = 7\n")
        + "\n[measure]\ncheckpoints = true\n";
    assert!(sweep.contains("landscape_grid = 7"));
    std::fs::write(&sweep_file, sweep).expect("write sweep");
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

    // Built now and kept: the page after the sweep ends must not be this one.
    let (status, before) = get(&dashboard, "/sweeps/e2e-dashboard");
    assert_eq!(status, 200, "{before}");
    assert!(before.contains("0 of 4 trials done"), "{before}");

    let weights = directory.path().join("weights");
    let _worker = start_worker_with(
        &coordinator.url,
        "dashboard-worker",
        2,
        &["--checkpoint-dir", &weights.to_string_lossy()],
    );
    let database = Database::open(&coordinator.db_url);
    wait_until(Duration::from_secs(120), "every trial done", || {
        (database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'") == 4).then_some(())
    });

    // Every trial's initial, trained and end-of-probe weights, under SWEEP/TRIAL_ID.
    let trials = std::fs::read_dir(weights.join("e2e-dashboard"))
        .expect("the sweep's checkpoint directory")
        .count();
    assert_eq!(trials, 4);
    for entry in std::fs::read_dir(weights.join("e2e-dashboard")).expect("readable") {
        let trial = entry.expect("an entry").path();
        for name in [
            "initial",
            "trained",
            "probe-end-replicate-0",
            "probe-end-replicate-1",
        ] {
            let file = trial.join(format!("{name}.safetensors"));
            let bytes = std::fs::read(&file).expect("a weight file");
            // An 8-byte header length, then the JSON header naming the tensors.
            let header = String::from_utf8_lossy(&bytes[8..bytes.len().min(4096)]).to_string();
            assert!(
                header.contains("\"layer1.weight\"") && header.contains("\"layer2.bias\""),
                "{}: {header}",
                file.display()
            );
        }
    }

    let (status, page) = get(&dashboard, "/sweeps/e2e-dashboard");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("4 of 4 trials done"), "{page}");
    assert_eq!(
        get(&dashboard, "/sweeps/e2e-dashboard").1,
        page,
        "an unchanged sweep's page is the same"
    );
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
    assert!(
        page.contains("<figure id=\"survival\"><svg") && page.contains("width 16 (4 replicates"),
        "the Kaplan–Meier figure pools each width's replicates: {page}"
    );
    assert!(page.contains("<pre id=\"analysis\">"), "{page}");
    assert!(
        page.contains("<figure id=\"msd\"><svg") && page.contains("dashed: linearised prediction"),
        "the MSD figure with its prediction: {page}"
    );
    for width in [4, 16] {
        assert!(
            page.contains(&format!("<figure id=\"landscape-{width}\"><svg"))
                && page.contains(&format!("training loss around Θ̂, width {width} seed 0")),
            "the landscape of width {width}: {page}"
        );
    }
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "a finished sweep's page is not refreshed"
    );

    match chromium() {
        Some(browser) => {
            let screenshot = directory.path().join("sweep-page.png");
            let dom = render_in_chromium(
                &browser,
                &format!("{dashboard}/sweeps/e2e-dashboard"),
                &screenshot,
            );
            assert!(dom.contains("<table id=\"widths\">"), "{dom}");
            assert_eq!(dom.matches("<tr><td>").count(), 2, "{dom}");
            let figure = dom
                .split("<figure id=\"bounds-vs-width\">")
                .nth(1)
                .expect("the browser shows the figure");
            assert!(figure.starts_with("<svg"), "{figure}");
            assert!(figure.contains("measured gap, 0-1 error"), "{figure}");
            assert!(dom.contains("<figure id=\"survival\"><svg"), "{dom}");
            assert!(dom.contains("<figure id=\"landscape-16\"><svg"), "{dom}");
            let png = std::fs::read(&screenshot).expect("Chromium wrote a screenshot");
            assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
            // A page with a table and a plot compresses to far more than a blank one (~5 KiB).
            assert!(png.len() > 20_000, "screenshot of {} bytes", png.len());
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("headless Chromium is missing: .ci/run installs Debian's chromium")
        }
        None => eprintln!("headless Chromium not found: the browser check is left out"),
    }

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
