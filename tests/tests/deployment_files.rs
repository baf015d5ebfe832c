//! The deployment files (docker-compose.yml, deploy/kubernetes/*.yaml, deploy/slurm/workers.sbatch)
//! only use commands, subcommands, flags and environment variables that the real binaries have.
//!
//! What the binaries accept is read from their `--help` (clap prints every flag and every
//! `[env: NAME=...]`), so renaming a flag or a variable in the code without updating the
//! deployment files fails this test.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo_root;
use serde_norway::Value;

/// The image built by the Dockerfile; containers of any other image (postgres) are not ours.
const IMAGE: &str = "stagnation-sweeps";

/// What one command (`coordinator serve`, `worker`, ...) accepts, read from its `--help`.
#[derive(Debug, Default)]
struct Accepts {
    flags: BTreeSet<String>,
    help_text: String,
}

/// What the binaries accept: per command line prefix (`coordinator`, `coordinator serve`,
/// `worker`), and the environment variables of each binary.
struct Cli {
    commands: BTreeMap<String, Accepts>,
    subcommands: BTreeMap<String, BTreeSet<String>>,
    /// Variables each binary reads: every `[env: NAME]` of any of its commands, and names such as
    /// COORDINATOR_TOKEN that the help text mentions (read by the program, not by clap).
    env: BTreeMap<String, BTreeSet<String>>,
}

fn help(binary: &str, args: &[&str]) -> String {
    let output = Command::new(common::binaries().join(binary))
        .args(args)
        .arg("--help")
        // No inherited values in the `[env: NAME=value]` annotations (a token, say).
        .env_clear()
        .output()
        .unwrap_or_else(|error| panic!("{binary} {args:?} --help: {error}"));
    assert!(
        output.status.success(),
        "{binary} {args:?} --help failed: {}",
        common::stderr_of(&output)
    );
    common::stdout_of(&output)
}

/// `--flag` names at the start of help lines (`  -s, --slots <SLOTS>`, `      --db <DB>`).
fn flags_of(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        for token in line
            .split([' ', ','])
            .take_while(|token| token.starts_with('-') || token.is_empty())
        {
            if let Some(name) = token.strip_prefix("--") {
                flags.insert(format!(
                    "--{}",
                    name.split(['=', '[', '<']).next().unwrap_or(name)
                ));
            }
        }
    }
    flags
}

/// Names in `[env: NAME=...]` and any other upper-case word starting with `prefix`.
fn env_of(help: &str, prefix: &str) -> BTreeSet<String> {
    help.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|word| word.starts_with(prefix) && word.len() > prefix.len())
        .map(str::to_string)
        .collect()
}

/// The subcommand names of a `Commands:` section (clap's own `help` left out).
fn subcommands_of(help: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            if line.trim().is_empty() || !line.starts_with(' ') {
                break;
            }
            // Subcommand lines are indented by two spaces; wrapped descriptions by more.
            if line.starts_with("  ") && !line.starts_with("   ") {
                let name = line.split_whitespace().next().unwrap_or_default();
                if name != "help" {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

fn read_cli() -> Cli {
    let mut commands = BTreeMap::new();
    let mut subcommands = BTreeMap::new();
    let mut env = BTreeMap::new();
    for (binary, prefix) in [("coordinator", "COORDINATOR_"), ("worker", "WORKER_")] {
        let top = help(binary, &[]);
        let subs = subcommands_of(&top);
        let mut names = env_of(&top, prefix);
        commands.insert(
            binary.to_string(),
            Accepts {
                flags: flags_of(&top),
                help_text: top.clone(),
            },
        );
        for sub in &subs {
            let text = help(binary, &[sub]);
            names.extend(env_of(&text, prefix));
            // Global flags (--log) are printed in each subcommand's help too.
            commands.insert(
                format!("{binary} {sub}"),
                Accepts {
                    flags: flags_of(&text),
                    help_text: text,
                },
            );
        }
        subcommands.insert(binary.to_string(), subs);
        env.insert(binary.to_string(), names);
    }
    Cli {
        commands,
        subcommands,
        env,
    }
}

impl Cli {
    /// Checks one command line (`coordinator report SWEEP --format csv`); returns what is wrong.
    fn check_command(&self, words: &[String], place: &str, problems: &mut Vec<String>) {
        let Some(binary) = words
            .first()
            .map(|word| word.rsplit('/').next().unwrap_or(word))
        else {
            problems.push(format!("{place}: empty command"));
            return;
        };
        let Some(subs) = self.subcommands.get(binary) else {
            problems.push(format!(
                "{place}: runs `{binary}`, not `coordinator` or `worker`"
            ));
            return;
        };
        let rest = &words[1..];
        let mut key = binary.to_string();
        if !subs.is_empty() {
            match rest.iter().find(|word| !word.starts_with('-')) {
                Some(sub) if subs.contains(sub) => key = format!("{binary} {sub}"),
                Some(sub) => {
                    problems.push(format!(
                        "{place}: `{binary} {sub}`: no such subcommand (have: {subs:?})"
                    ));
                    return;
                }
                None => {
                    problems.push(format!("{place}: `{binary}` without a subcommand"));
                    return;
                }
            }
        }
        let accepts = &self.commands[&key];
        for word in rest.iter().filter(|word| word.starts_with("--")) {
            let flag = word.split('=').next().unwrap_or(word);
            if !accepts.flags.contains(flag) {
                problems.push(format!(
                    "{place}: `{key}` has no flag {flag} (has: {:?})",
                    accepts.flags
                ));
            }
        }
        assert!(!accepts.help_text.is_empty());
    }

    /// Checks environment variable names given to a container running `binary`.
    fn check_env(&self, binary: &str, names: &[String], place: &str, problems: &mut Vec<String>) {
        let binary = binary.rsplit('/').next().unwrap_or(binary);
        let Some(known) = self.env.get(binary) else {
            return; // reported by check_command
        };
        for name in names {
            if !known.contains(name) {
                problems.push(format!(
                    "{place}: environment variable {name} is not read by `{binary}` (reads: {known:?})"
                ));
            }
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A compose/Kubernetes command: a list of strings, or one string split on white space.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => serde_norway::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })
            .collect(),
        Value::String(text) => text.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Environment names of a compose service: a mapping, or a list of `NAME=value`.
fn compose_env_names(service: &Value) -> Vec<String> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => map
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| item.split('=').next().unwrap_or(item).to_string())
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn compose_file_uses_only_real_commands_flags_and_variables() {
    let cli = read_cli();
    let path = repo_root().join("docker-compose.yml");
    let compose: Value = serde_norway::from_str(&read(&path)).expect("docker-compose.yml parses");
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("docker-compose.yml has services");

    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["postgres", "coordinator", "worker", "submit"]),
        "docker-compose.yml services"
    );

    let worker = &compose["services"]["worker"];
    assert!(
        worker.get("container_name").is_none() && worker.get("ports").is_none(),
        "the worker service must have no container_name and no ports, or --scale worker=N clashes"
    );
    assert!(
        compose["services"]["submit"]
            .get("profiles")
            .map(words)
            .is_some_and(|profiles| profiles.contains(&"submit".to_string())),
        "the submit service is in the `submit` profile, so `up` does not start it"
    );

    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        let ours = service.get("build").is_some()
            || str_of(service, "image").is_some_and(|image| image.starts_with(IMAGE));
        if !ours {
            continue;
        }
        let place = format!("docker-compose.yml service {name}");
        let command = service.get("command").map(words).unwrap_or_default();
        cli.check_command(&command, &format!("{place} command"), &mut problems);
        if let Some(binary) = command.first() {
            cli.check_env(
                binary,
                &compose_env_names(service),
                &format!("{place} environment"),
                &mut problems,
            );
        }
        if let Some(test) = service
            .get("healthcheck")
            .and_then(|check| check.get("test"))
        {
            let mut test = words(test);
            if matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) {
                test.remove(0);
            }
            if test.len() == 1 {
                test = test[0].split_whitespace().map(str::to_string).collect();
            }
            cli.check_command(&test, &format!("{place} healthcheck"), &mut problems);
        }
        checked += 1;
    }
    assert_eq!(checked, 3, "coordinator, worker and submit run our image");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every pod template (Deployment, StatefulSet, Job, ...) or bare Pod spec in a manifest.
fn pod_specs(document: &Value) -> Vec<&Value> {
    let mut specs = Vec::new();
    if str_of(document, "kind") == Some("Pod") {
        specs.extend(document.get("spec"));
    }
    if let Some(spec) = document.get("spec").and_then(|spec| spec.get("template")) {
        specs.extend(spec.get("spec"));
    }
    if let Some(spec) = document
        .get("spec")
        .and_then(|spec| spec.get("jobTemplate"))
        .and_then(|job| job.get("spec"))
        .and_then(|job| job.get("template"))
    {
        specs.extend(spec.get("spec"));
    }
    specs
}

fn yaml_files(folder: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("deploy/kubernetes exists") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml")
        {
            found.push(path);
        }
    }
}

#[test]
fn kubernetes_manifests_use_only_real_commands_flags_and_variables() {
    let cli = read_cli();
    let folder = repo_root().join("deploy/kubernetes");
    let mut files = Vec::new();
    yaml_files(&folder, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no manifests under {}", folder.display());

    let mut problems = Vec::new();
    let mut containers_checked = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for file in &files {
        let name = file
            .strip_prefix(repo_root())
            .unwrap_or(file)
            .display()
            .to_string();
        for document in serde_norway::Deserializer::from_str(&read(file)) {
            let document = <Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            if document.is_null() {
                continue;
            }
            if let (Some(kind), Some(resource)) = (
                str_of(&document, "kind"),
                document
                    .get("metadata")
                    .and_then(|metadata| str_of(metadata, "name")),
            ) {
                kinds.insert(format!("{kind}/{resource}"));
            }
            for spec in pod_specs(&document) {
                let containers = ["initContainers", "containers"]
                    .into_iter()
                    .filter_map(|key| spec.get(key).and_then(Value::as_sequence))
                    .flatten();
                for container in containers {
                    let image = str_of(container, "image").unwrap_or_default();
                    if !image.starts_with(IMAGE) {
                        continue;
                    }
                    let container_name = str_of(container, "name").unwrap_or_default();
                    let place = format!("{name} container {container_name}");
                    let mut command = container.get("command").map(words).unwrap_or_default();
                    command.extend(container.get("args").map(words).unwrap_or_default());
                    cli.check_command(&command, &place, &mut problems);
                    let env: Vec<String> = container
                        .get("env")
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                        .filter_map(|variable| str_of(variable, "name"))
                        .map(str::to_string)
                        .collect();
                    if let Some(binary) = command.first() {
                        cli.check_env(binary, &env, &format!("{place} env"), &mut problems);
                    }
                    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                        let Some(probe_spec) = container.get(probe) else {
                            continue;
                        };
                        if let Some(exec) = probe_spec.get("exec").and_then(|e| e.get("command")) {
                            cli.check_command(
                                &words(exec),
                                &format!("{place} {probe}"),
                                &mut problems,
                            );
                        }
                    }
                    containers_checked.insert(format!("{name}/{container_name}"));
                }
            }
        }
    }
    for expected in [
        "Deployment/coordinator",
        "Service/coordinator",
        "Deployment/worker",
    ] {
        assert!(kinds.contains(expected), "no {expected} in {files:?}");
    }
    assert!(
        containers_checked.len() >= 2,
        "expected the coordinator and worker containers, checked {containers_checked:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn kubernetes_coordinator_reads_its_database_url_from_a_secret_and_is_probed_over_grpc() {
    let text = read(&repo_root().join("deploy/kubernetes/coordinator.yaml"));
    let deployment = serde_norway::Deserializer::from_str(&text)
        .map(|document| <Value as serde::Deserialize>::deserialize(document).expect("parses"))
        .find(|document| str_of(document, "kind") == Some("Deployment"))
        .expect("a Deployment in coordinator.yaml");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let database = container["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|variable| str_of(variable, "name") == Some("COORDINATOR_DB"))
        .expect("COORDINATOR_DB is set");
    assert!(
        database.get("value").is_none() && database["valueFrom"].get("secretKeyRef").is_some(),
        "COORDINATOR_DB comes from a Secret, never a literal value"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["grpc"]["port"].as_u64(),
            Some(50051),
            "{probe} uses the gRPC health service on 50051"
        );
    }
    assert!(
        container["resources"].get("requests").is_some(),
        "resource requests"
    );
}

/// Joins `\`-continued lines and drops comments (#SBATCH lines included: they are sbatch's).
fn logical_lines(script: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        if current.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

#[test]
fn slurm_script_uses_only_real_worker_flags_and_variables() {
    let cli = read_cli();
    let script = read(&repo_root().join("deploy/slurm/workers.sbatch"));
    let mut problems = Vec::new();
    let mut invocations = 0;
    let mut used = BTreeSet::new();
    for line in logical_lines(&script) {
        let tokens: Vec<String> = line
            .split_whitespace()
            .map(|token| token.trim_matches(['"', '\'']).to_string())
            .collect();
        let Some(start) = tokens.iter().position(|token| token == "worker") else {
            continue;
        };
        let command = &tokens[start..];
        if !command.iter().skip(1).any(|token| token.starts_with("--")) {
            continue;
        }
        invocations += 1;
        used.extend(command.iter().filter(|t| t.starts_with("--")).cloned());
        cli.check_command(command, "deploy/slurm/workers.sbatch", &mut problems);
    }
    assert!(
        invocations >= 1,
        "no `worker --...` line in deploy/slurm/workers.sbatch"
    );
    for flag in ["--coordinator", "--token-file", "--slots", "--worker-id"] {
        assert!(used.contains(flag), "the sbatch script passes {flag}");
    }
    // Any WORKER_* variable the script names must be one the worker reads.
    let named: Vec<String> = env_of(&script, "WORKER_").into_iter().collect();
    cli.check_env(
        "worker",
        &named,
        "deploy/slurm/workers.sbatch",
        &mut problems,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
