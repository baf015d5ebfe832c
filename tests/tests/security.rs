//! A coordinator guarded by a bearer token and serving TLS: the right token and CA get in,
//! a missing or wrong token is refused with UNAUTHENTICATED, a wrong CA fails the handshake.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Coordinator, Database, stderr_of, stdout_of, tiny_sweep, wait_until};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

#[test]
fn calls_without_the_right_token_are_refused() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let token_file = directory.path().join("token");
    write(&token_file, "correct-horse-battery-staple\n");
    let wrong_token_file = directory.path().join("wrong-token");
    write(&wrong_token_file, "not-the-token\n");
    let sweep_file = directory.path().join("e2e-token.toml");
    write(&sweep_file, &tiny_sweep("e2e-token", &[4], 2, 50));
    let sweep = sweep_file.display().to_string();

    let token = token_file.display().to_string();
    let coordinator = Coordinator::start_with(
        &directory.path().join("sweeps.db"),
        10.0,
        &["--token-file", &token],
        "http",
    );

    let anonymous = coordinator.client(&["submit", &sweep]);
    assert!(!anonymous.status.success());
    assert!(
        stderr_of(&anonymous).contains("missing or wrong bearer token"),
        "{}",
        stderr_of(&anonymous)
    );
    let wrong_token = wrong_token_file.display().to_string();
    let wrong = coordinator.client(&["submit", &sweep, "--token-file", &wrong_token]);
    assert!(!wrong.status.success());
    assert!(
        stderr_of(&wrong).contains("missing or wrong bearer token"),
        "{}",
        stderr_of(&wrong)
    );
    let database = Database::open(&coordinator.db_url);
    assert_eq!(
        database.count("SELECT COUNT(*) FROM trials"),
        0,
        "refused calls change nothing"
    );

    let accepted = coordinator.client(&["submit", &sweep, "--token-file", &token]);
    assert!(accepted.status.success(), "{}", stderr_of(&accepted));

    // Health checks stay open: orchestrators' probes carry no token.
    let health = coordinator.client(&["health"]);
    assert!(health.status.success(), "{}", stderr_of(&health));

    // A worker with the token (from the environment) finishes the sweep.
    let mut worker = std::process::Command::new(common::binaries().join("worker"))
        .args([
            "--coordinator",
            &coordinator.url,
            "--worker-id",
            "e2e-token-worker",
            "--slots",
            "1",
        ])
        .env("WORKER_TOKEN", "correct-horse-battery-staple")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("worker starts");
    wait_until(Duration::from_secs(120), "the sweep to finish", || {
        (database.count("SELECT COUNT(*) FROM results") == 2).then_some(())
    });
    let _ = worker.kill();
    let _ = worker.wait();
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM: (ca, certificate, key).
fn certificate_authority() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

#[test]
fn tls_clients_verify_the_coordinator_against_their_ca() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (ca, certificate, key) = certificate_authority();
    let (other_ca, _, _) = certificate_authority();
    let paths =
        ["ca.pem", "cert.pem", "key.pem", "other-ca.pem"].map(|name| directory.path().join(name));
    for (path, text) in paths.iter().zip([&ca, &certificate, &key, &other_ca]) {
        write(path, text);
    }
    let [ca_path, certificate_path, key_path, other_ca_path] =
        paths.map(|path| path.display().to_string());

    let coordinator = Coordinator::start_with(
        &directory.path().join("sweeps.db"),
        10.0,
        &["--tls-cert", &certificate_path, "--tls-key", &key_path],
        "https",
    );

    let trusted = coordinator.client(&["status", "--tls-ca", &ca_path]);
    assert!(trusted.status.success(), "{}", stderr_of(&trusted));
    assert!(
        stdout_of(&trusted).starts_with("sweep"),
        "{}",
        stdout_of(&trusted)
    );
    let health = coordinator.client(&["health", "--tls-ca", &ca_path]);
    assert!(health.status.success(), "{}", stderr_of(&health));

    let untrusted = coordinator.client(&["status", "--tls-ca", &other_ca_path]);
    assert!(
        !untrusted.status.success(),
        "a certificate from another CA must not be trusted"
    );
    let message = stderr_of(&untrusted);
    assert!(
        message.contains("cannot reach the coordinator"),
        "{message}"
    );
}
