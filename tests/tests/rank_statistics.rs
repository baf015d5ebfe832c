//! The report's rank statistics against a recomputation from `coordinator export` by their
//! published definitions, one pair of trials at a time: Kendall's τ-a, ψ per axis and Ψ (Jiang
//! et al. 2020), the robust sign-error (Dziugaite et al. 2020) and the PGDL conditional
//! mutual information, on a real sweep with two varied axes and seeds.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Coordinator, Database, start_worker, stdout_of_success, tiny_sweep, wait_until};
use serde_json::Value;

const SWEEP: &str = "e2e-rank-statistics";

/// Width × learning rate × five seeds on a noisy task with a large test set, so that gaps
/// differ by more than test-set noise and environments keep their weight.
fn sweep_file() -> String {
    let replacements = [
        ("train_size = 128", "train_size = 96"),
        ("test_size = 256", "test_size = 4096"),
        ("label_noise = 0.05", "label_noise = 0.3"),
        ("[grid]\n", "[grid]\ntraining.learning_rate = [0.02, 0.1]\n"),
    ];
    replacements
        .iter()
        .fold(tiny_sweep(SWEEP, &[2, 64], 5, 400), |text, (from, to)| {
            assert!(text.contains(from), "{from}");
            text.replacen(from, to, 1)
        })
}

/// An exported trial: its configuration (the varied keys) and its numbers.
struct Trial {
    axes: BTreeMap<String, String>,
    seed: String,
    numbers: BTreeMap<String, f64>,
}

fn sign(a: f64, b: f64) -> f64 {
    match a.partial_cmp(&b) {
        Some(std::cmp::Ordering::Greater) => 1.0,
        Some(std::cmp::Ordering::Less) => -1.0,
        _ => 0.0,
    }
}

/// (1/(N(N−1))) Σ_{i≠j} sign(μ_i − μ_j) sign(g_i − g_j).
fn tau_a(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return None;
    }
    let mut sum = 0.0;
    for (i, a) in pairs.iter().enumerate() {
        for (j, b) in pairs.iter().enumerate() {
            if i != j {
                sum += sign(a.0, b.0) * sign(a.1, b.1);
            }
        }
    }
    Some(sum / (n * (n - 1.0)))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// ψ of `axis`: τ-a averaged over every group of ≥ 2 trials agreeing on all else.
fn psi(trials: &[(&Trial, f64, f64)], axis: &str) -> (Option<f64>, usize) {
    // Keyed by every other setting, the seed included, as text.
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (trial, measure, gap) in trials {
        let others: Vec<(&String, &String)> =
            trial.axes.iter().filter(|(key, _)| *key != axis).collect();
        groups
            .entry(format!("{others:?} seed {}", trial.seed))
            .or_default()
            .push((*measure, *gap));
    }
    let taus: Vec<f64> = groups.values().filter_map(|group| tau_a(group)).collect();
    (mean(&taus), taus.len())
}

/// Dziugaite et al.: per ordered pair of combinations differing in one axis, the weighted
/// sign-error over its runs' pairs, kept at effective sample size ≥ 12; (mean, worst, count).
fn robust(trials: &[(&Trial, f64, f64)], test_size: f64) -> Option<(f64, f64, usize)> {
    let mut environments: BTreeMap<(String, String), (f64, f64, f64)> = BTreeMap::new();
    for (first, c1, g1) in trials {
        for (second, c2, g2) in trials {
            let differing = first
                .axes
                .iter()
                .filter(|(key, value)| second.axes.get(*key) != Some(value))
                .count();
            if differing != 1 {
                continue;
            }
            let hoeffding = (1.0
                - 2.0 * (-2.0 * test_size * ((g1 - g2).abs() / 2.0).powi(2)).exp())
            .max(0.0)
            .powi(2);
            let weight = (hoeffding - 0.5).max(0.0);
            let key = (format!("{:?}", first.axes), format!("{:?}", second.axes));
            let entry = environments.entry(key).or_default();
            entry.0 += weight;
            entry.1 += weight * weight;
            entry.2 += weight * (1.0 - sign(*c1, *c2) * sign(*g1, *g2)) / 2.0;
        }
    }
    let losses: Vec<f64> = environments
        .values()
        .filter(|(sum, squares, _)| *sum > 0.0 && sum * sum / squares >= 12.0 - 1e-9)
        .map(|(sum, _, loss)| loss / sum)
        .collect();
    let worst = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    mean(&losses).map(|mean| (mean, worst, losses.len()))
}

/// The PGDL score: for each pair of axes, groups of ordered trial pairs by their ordered values
/// on both axes; mean I(gap > ; measure >) over mean H(gap >), bits; the minimum × 100.
fn pgdl(trials: &[(&Trial, f64, f64)], axes: &[String]) -> Option<f64> {
    let entropy = |counts: &[f64]| -> f64 {
        let total: f64 = counts.iter().sum();
        counts
            .iter()
            .map(|count| {
                let p = count / total;
                -p * (p + 1e-12).log2()
            })
            .sum()
    };
    let mut best: Option<f64> = None;
    for (index, first) in axes.iter().enumerate() {
        for second in &axes[index + 1..] {
            let mut groups: BTreeMap<[String; 4], [[f64; 2]; 2]> = BTreeMap::new();
            for (a, ca, ga) in trials {
                for (b, cb, gb) in trials {
                    let key = [
                        a.axes[first].clone(),
                        b.axes[first].clone(),
                        a.axes[second].clone(),
                        b.axes[second].clone(),
                    ];
                    let gap = usize::from(ga <= gb);
                    let measure = usize::from(ca <= cb);
                    groups.entry(key).or_default()[gap][measure] += 1.0;
                }
            }
            let (mut information, mut gap_entropy) = (0.0, 0.0);
            for table in groups.values() {
                let total: f64 = table.iter().flatten().sum();
                let rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]];
                let columns = [table[0][0] + table[1][0], table[0][1] + table[1][1]];
                for a in 0..2 {
                    for b in 0..2 {
                        let joint = table[a][b] / total;
                        if joint > 0.0 {
                            information +=
                                joint * (joint / (rows[a] / total * columns[b] / total)).log2();
                        }
                    }
                }
                gap_entropy += entropy(&rows);
            }
            if gap_entropy / groups.len() as f64 > 1e-9 {
                let score = information / gap_entropy;
                best = Some(best.map_or(score, |best: f64| best.min(score)));
            }
        }
    }
    best.map(|score| 100.0 * score)
}

fn close(report: Option<f64>, recomputed: Option<f64>, what: &str) {
    match (report, recomputed) {
        (Some(report), Some(recomputed)) => assert!(
            (report - recomputed).abs() <= 1e-9 * (1.0 + recomputed.abs()),
            "{what}: report {report}, recomputed {recomputed}"
        ),
        (report, recomputed) => assert_eq!(report, recomputed, "{what}"),
    }
}

#[test]
fn the_report_s_rank_statistics_equal_a_recomputation_from_the_export() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sweep_path = directory.path().join("sweep.toml");
    std::fs::write(&sweep_path, sweep_file()).expect("write sweep");
    let coordinator = Coordinator::start(&directory.path().join("sweeps.db"), 10.0);
    let said = stdout_of_success(&coordinator.submit(&sweep_path));
    assert!(said.contains("20 trials"), "{said}");
    let _first = start_worker(&coordinator.url, "rank-worker-a", 1);
    let _second = start_worker(&coordinator.url, "rank-worker-b", 1);
    let database = Database::open(&coordinator.db_url);
    wait_until(Duration::from_secs(300), "every trial to finish", || {
        (database.count("SELECT COUNT(*) FROM trials WHERE state = 'done'") == 20).then_some(())
    });

    let exported =
        stdout_of_success(&coordinator.on_database("export", SWEEP, &["--format", "jsonl"]));
    let report: Value = serde_json::from_str(&stdout_of_success(&coordinator.on_database(
        "report",
        SWEEP,
        &["--format", "json"],
    )))
    .expect("the report is JSON");

    let axes = vec![
        "model.width".to_string(),
        "training.learning_rate".to_string(),
    ];
    let trials: Vec<Trial> = exported
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a JSON line");
            let object = row.as_object().expect("an object");
            // No target loss: every finished, non-diverged trial is analysed.
            assert_eq!(row["state"], "done");
            Trial {
                axes: axes
                    .iter()
                    .map(|axis| (axis.clone(), object[&format!("param.{axis}")].to_string()))
                    .collect(),
                seed: object["param.seed"].to_string(),
                numbers: object
                    .iter()
                    .filter_map(|(key, value)| Some((key.clone(), value.as_f64()?)))
                    .collect(),
            }
        })
        .collect();
    assert_eq!(trials.len(), 20);
    assert!(
        trials
            .iter()
            .all(|trial| trial.numbers["test_size"] == 4096.0),
        "the test-set size is stored"
    );
    assert_eq!(report["population"]["analysed"], 20);
    assert_eq!(
        report["pooled_over"],
        serde_json::json!(["seed", "training.learning_rate"])
    );

    let analyses = report["analysis"].as_array().expect("an analysis");
    assert!(analyses.len() > 20, "every analysed measurement");
    let mut robust_found = BTreeSet::new();
    let mut pgdl_found = BTreeSet::new();
    for analysis in analyses {
        let name = analysis["measurement"].as_str().expect("a name");
        let members: Vec<(&Trial, f64, f64)> = trials
            .iter()
            .filter_map(|trial| {
                let value = match trial.numbers.get(name) {
                    Some(value) => *value,
                    // A bound stored as NULL while the margin is not positive is vacuous: +∞.
                    None if (name.ends_with("_gap_estimate") || name == "spectral_capacity")
                        && trial.numbers.get("margin_gamma").is_some_and(|g| *g <= 0.0) =>
                    {
                        f64::INFINITY
                    }
                    None => return None,
                };
                Some((trial, value, *trial.numbers.get("error_gap")?))
            })
            .collect();
        let pairs: Vec<(f64, f64)> = members.iter().map(|(_, c, g)| (*c, *g)).collect();
        close(
            analysis["kendall_tau_a"].as_f64(),
            tau_a(&pairs),
            &format!("{name} τ-a"),
        );
        let mut psis = Vec::new();
        for (index, axis) in axes.iter().enumerate() {
            let reported = &analysis["granulated_tau"][index];
            assert_eq!(reported["axis"], axis.as_str());
            let (value, groups) = psi(&members, axis);
            close(reported["psi"].as_f64(), value, &format!("{name} ψ {axis}"));
            if value.is_some() {
                assert_eq!(reported["groups"], groups, "{name} ψ {axis} groups");
                psis.push(value.unwrap_or_default());
            }
        }
        close(analysis["psi"].as_f64(), mean(&psis), &format!("{name} Ψ"));
        let recomputed = robust(&members, 4096.0);
        let reported = &analysis["robust_sign_error"];
        close(
            reported["mean"].as_f64(),
            recomputed.map(|r| r.0),
            &format!("{name} sign-error mean"),
        );
        close(
            reported["worst"].as_f64(),
            recomputed.map(|r| r.1),
            &format!("{name} sign-error worst"),
        );
        if let Some((_, _, environments)) = recomputed {
            assert_eq!(reported["environments"], environments);
            robust_found.insert(name.to_string());
        }
        let recomputed = pgdl(&members, &axes);
        close(
            analysis["pgdl_cmi"].as_f64(),
            recomputed,
            &format!("{name} PGDL"),
        );
        if recomputed.is_some() {
            pgdl_found.insert(name.to_string());
        }
    }
    // The statistics exist on this sweep, so the comparisons above compared numbers.
    assert!(robust_found.contains("error_gap"), "{robust_found:?}");
    assert!(pgdl_found.contains("error_gap"), "{pgdl_found:?}");
    assert!(pgdl_found.len() > 10, "{pgdl_found:?}");
}
