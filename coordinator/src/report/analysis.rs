//! The headline comparison of a sweep: how each measurement scales with width, and how well it
//! ranks trials by their generalization gap, computed as the literature defines it
//! (`science.md` §5): Kendall's τ-a (τ-b beside it), the granulated ψ per axis and Ψ of Jiang et
//! al. (2020), the robust sign-error of Dziugaite et al. (2020) and the PGDL competition's
//! conditional-mutual-information score.
//!
//! Who is counted follows Jiang et al.'s protocol: by default only trials trained to their
//! target loss, the others counted and named in [`Population`]. A vacuous bound (capacity ∞, a
//! margin γ ≤ 0) is read as +∞: the largest value in every rank statistic, never fitted or
//! averaged, and counted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parameters::{self, Parameters};
use super::pgdl;
use super::robustness::{self, RobustSignError};
use super::statistics::{self, Granulated};
pub use super::width_slope::{SlopeFit, WidthSlope};
use crate::store::TrialRow;
use vocabulary::catalog::{self, Uses};

/// The gap every measure is ranked against: test error − training error, which is PGDL's and
/// Dziugaite et al.'s training accuracy − test accuracy.
pub const GAP: &str = "error_gap";

/// Which trials the analysis reads, and how many it leaves out and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Population {
    /// Whether trials that ran out of steps before their target loss are analysed too.
    pub include_unconverged: bool,
    pub analysed: u64,
    /// Finished trials that ran out of steps before the target loss, left out by default.
    pub left_out_budget_exhausted: u64,
    pub left_out_diverged: u64,
    /// Trials not finished: pending, leased or failed.
    pub left_out_unfinished: u64,
}

/// ψ_i of one axis with the number of groups it averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisGranulated {
    pub axis: String,
    pub psi: Option<f64>,
    pub groups: usize,
}

/// A slope in width within one cell of the other varied axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSlope {
    /// The other axes' values that define the cell.
    pub cell: Vec<(String, String)>,
    pub slope: Option<WidthSlope>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementAnalysis {
    pub measurement: String,
    /// Not a proven bound but a heuristic diagnostic (the catalog's label says which).
    #[serde(default)]
    pub heuristic: bool,
    /// Analysed trials whose bound is vacuous (+∞).
    #[serde(default)]
    pub vacuous: u64,
    /// Over every analysed trial, pooled over the axes the report's `pooled_over` names. None
    /// with fewer than two widths measured.
    pub width_slope: Option<WidthSlope>,
    /// The slope within each cell of the other varied axes; empty when only width varies.
    #[serde(default)]
    pub cell_slopes: Vec<CellSlope>,
    /// Kendall's τ-a with the gap over all analysed trials (science.md §5).
    #[serde(default)]
    pub kendall_tau_a: Option<f64>,
    /// Kendall's τ-b, beside τ-a.
    #[serde(default)]
    pub kendall_tau_b: Option<f64>,
    /// ψ per varied axis (dotted configuration keys), width first.
    pub granulated_tau: Vec<AxisGranulated>,
    /// Ψ: the mean of ψ over the varied axes.
    #[serde(default)]
    pub psi: Option<f64>,
    #[serde(default)]
    pub robust_sign_error: Option<RobustSignError>,
    /// The PGDL score (0–100); None with fewer than two varied axes.
    #[serde(default)]
    pub pgdl_cmi: Option<f64>,
}

/// The analysis of a sweep's trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub population: Population,
    /// The axes every pooled figure pools over: the seed and every varied axis but width.
    pub pooled_over: Vec<String>,
    pub measurements: Vec<MeasurementAnalysis>,
}

/// Whether a finished trial reached the target loss: converged, or trained for a fixed number
/// of steps because its configuration sets no target.
fn reached_target(row: &TrialRow, parameters: &Parameters) -> bool {
    match row.outcome.as_deref() {
        Some("converged") => true,
        Some("budget_exhausted") => parameters
            .get("training.target_loss")
            .is_none_or(serde_json::Value::is_null),
        _ => false,
    }
}

/// Analyses every measurement over the population chosen by `include_unconverged`.
pub fn analyse(rows: &[TrialRow], include_unconverged: bool) -> Analysis {
    let mut population = Population {
        include_unconverged,
        ..Population::default()
    };
    let mut trials: Vec<&TrialRow> = Vec::new();
    let mut parameters: Vec<Parameters> = Vec::new();
    for row in rows {
        let values = parameters::flattened(row);
        if row.state != "done" {
            population.left_out_unfinished += 1;
        } else if row.outcome.as_deref() == Some("diverged") {
            population.left_out_diverged += 1;
        } else if include_unconverged || reached_target(row, &values) {
            trials.push(row);
            parameters.push(values);
        } else {
            population.left_out_budget_exhausted += 1;
        }
    }
    population.analysed = trials.len() as u64;
    let axes = parameters::varied(&parameters);
    let mut pooled_over: Vec<String> = Vec::new();
    if varies(&parameters, parameters::SEED) {
        pooled_over.push(parameters::SEED.to_string());
    }
    pooled_over.extend(
        axes.iter()
            .filter(|axis| *axis != parameters::WIDTH)
            .cloned(),
    );
    let context = Context::new(&trials, &parameters, &axes);
    let measurements = catalog::used_for(Uses::ANALYSED)
        .map(|entry| context.analyse(entry.column))
        .collect();
    Analysis {
        population,
        pooled_over,
        measurements,
    }
}

fn varies(parameters: &[Parameters], key: &str) -> bool {
    parameters
        .iter()
        .any(|values| values.get(key) != parameters[0].get(key))
}

/// What every measurement's analysis shares: the trials, their grouping per axis, their
/// hyperparameter combinations.
struct Context<'a> {
    trials: &'a [&'a TrialRow],
    axes: &'a [String],
    /// Per axis, the trials (indices) of each group in which only that axis varies.
    groups_per_axis: Vec<Vec<Vec<usize>>>,
    /// Per trial, its index of value on each axis.
    value_indices: Vec<Vec<usize>>,
    /// Per trial, its combination of axis values (the seed left out).
    combinations: Vec<usize>,
    /// Per combination, its value indices.
    combination_values: Vec<Vec<usize>>,
    /// Cells of the axes other than width, each with its trials; empty when width varies alone.
    cells: Vec<parameters::Cell>,
    /// Per trial, its gap, width and test-set size (stored, else the configured
    /// `data.test_size`, for results stored before the size itself was): read once, shared by
    /// every measurement's analysis.
    gaps: Vec<Option<f64>>,
    widths: Vec<Option<f64>>,
    test_sizes: Vec<Option<f64>>,
}

impl<'a> Context<'a> {
    fn new(trials: &'a [&'a TrialRow], parameters: &[Parameters], axes: &'a [String]) -> Self {
        let groups_per_axis = axes
            .iter()
            .map(|axis| groups_varying_only(parameters, axis))
            .collect();
        let mut value_indices = vec![Vec::with_capacity(axes.len()); trials.len()];
        for axis in axes {
            let mut values: Vec<(u8, u64, String)> = parameters
                .iter()
                .map(|values| parameters::sort_key(values.get(axis)))
                .collect();
            values.sort();
            values.dedup();
            for (trial, values_of_trial) in parameters.iter().enumerate() {
                let key = parameters::sort_key(values_of_trial.get(axis));
                let index = values.binary_search(&key).unwrap_or_default();
                value_indices[trial].push(index);
            }
        }
        let mut combination_ids: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
        let combinations = value_indices
            .iter()
            .map(|indices| {
                let next = combination_ids.len();
                *combination_ids.entry(indices.clone()).or_insert(next)
            })
            .collect();
        let mut combination_values = vec![Vec::new(); combination_ids.len()];
        for (values, id) in combination_ids {
            combination_values[id] = values;
        }
        let others: Vec<&str> = axes
            .iter()
            .map(String::as_str)
            .filter(|axis| *axis != parameters::WIDTH)
            .collect();
        let by_width = axes.first().is_some_and(|axis| axis == parameters::WIDTH);
        let cells = if by_width && !others.is_empty() {
            parameters::cells(parameters, &others)
        } else {
            Vec::new()
        };
        Self {
            trials,
            axes,
            groups_per_axis,
            value_indices,
            combinations,
            combination_values,
            cells,
            gaps: trials.iter().map(|trial| trial.number(GAP)).collect(),
            widths: trials.iter().map(|trial| trial.number("width")).collect(),
            test_sizes: trials
                .iter()
                .zip(parameters)
                .map(|(trial, values)| {
                    trial.number("test_size").or_else(|| {
                        values
                            .get("data.test_size")
                            .and_then(serde_json::Value::as_f64)
                            .filter(|size| *size > 0.0)
                    })
                })
                .collect(),
        }
    }

    /// (measure, gap) of the trials in `members` that have both; `values` per trial.
    fn pairs(
        &self,
        members: impl Iterator<Item = usize>,
        values: &[Option<f64>],
    ) -> Vec<(f64, f64)> {
        members
            .filter_map(|trial| Some((values[trial]?, self.gaps[trial]?)))
            .collect()
    }

    fn slope(
        &self,
        members: impl Iterator<Item = usize>,
        values: &[Option<f64>],
    ) -> Option<WidthSlope> {
        let points: Vec<(f64, f64)> = members
            .filter_map(|trial| Some((self.widths[trial]?, values[trial]?)))
            .collect();
        super::width_slope::fit(&points)
    }

    fn analyse(&self, measurement: &str) -> MeasurementAnalysis {
        let values: Vec<Option<f64>> = self
            .trials
            .iter()
            .map(|trial| trial.number(measurement))
            .collect();
        let everyone = 0..self.trials.len();
        let concordance = statistics::concordance(&self.pairs(everyone.clone(), &values));
        let granulated: Vec<Option<Granulated>> = self
            .groups_per_axis
            .iter()
            .map(|groups| {
                let pairs: Vec<Vec<(f64, f64)>> = groups
                    .iter()
                    .map(|group| self.pairs(group.iter().copied(), &values))
                    .collect();
                statistics::granulated_kendall(&pairs)
            })
            .collect();
        MeasurementAnalysis {
            measurement: measurement.to_string(),
            heuristic: catalog::measurement(measurement).is_some_and(|entry| entry.is_heuristic()),
            vacuous: values
                .iter()
                .filter(|value| **value == Some(f64::INFINITY))
                .count() as u64,
            width_slope: self.slope(everyone, &values),
            cell_slopes: self
                .cells
                .iter()
                .map(|(cell, members)| CellSlope {
                    cell: cell.clone(),
                    slope: self.slope(members.iter().copied(), &values),
                })
                .collect(),
            kendall_tau_a: concordance.tau_a(),
            kendall_tau_b: concordance.tau_b(),
            psi: statistics::overall_granulated(&granulated),
            granulated_tau: self
                .axes
                .iter()
                .zip(&granulated)
                .map(|(axis, granulated)| AxisGranulated {
                    axis: axis.clone(),
                    psi: granulated.map(|granulated| granulated.psi),
                    groups: granulated.map_or(0, |granulated| granulated.groups),
                })
                .collect(),
            robust_sign_error: self.robust_sign_error(&values),
            pgdl_cmi: self.pgdl_cmi(&values),
        }
    }

    fn robust_sign_error(&self, values: &[Option<f64>]) -> Option<RobustSignError> {
        let runs: Vec<robustness::Run> = (0..self.trials.len())
            .filter_map(|trial| {
                Some(robustness::Run {
                    combination: self.combinations[trial],
                    measure: values[trial]?,
                    gap: self.gaps[trial]?,
                    test_size: self.test_sizes[trial]?,
                })
            })
            .collect();
        robustness::robust_sign_error(&runs, |first, second| {
            let (a, b) = (
                &self.combination_values[first],
                &self.combination_values[second],
            );
            a.iter().zip(b).filter(|(x, y)| x != y).count() == 1
        })
    }

    fn pgdl_cmi(&self, values: &[Option<f64>]) -> Option<f64> {
        let models: Vec<pgdl::Model> = (0..self.trials.len())
            .filter_map(|trial| {
                Some(pgdl::Model {
                    values: self.value_indices[trial].clone(),
                    measure: values[trial]?,
                    gap: self.gaps[trial]?,
                })
            })
            .collect();
        pgdl::conditional_mutual_information(&models, self.axes.len())
    }
}

/// Trials (indices) grouped so that within a group only `axis` varies: every other setting, the
/// seed included, agrees.
fn groups_varying_only(parameters: &[Parameters], axis: &str) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<Vec<(&str, String)>, Vec<usize>> = BTreeMap::new();
    for (trial, values) in parameters.iter().enumerate() {
        let key = values
            .iter()
            .filter(|(key, _)| *key != axis)
            .map(|(key, value)| (key.as_str(), value.to_string()))
            .collect();
        groups.entry(key).or_default().push(trial);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(width: f64, seed: f64, learning_rate: f64, values: &[(&str, f64)]) -> TrialRow {
        let axes = [
            ("width", width),
            ("seed", seed),
            ("learning_rate", learning_rate),
        ];
        TrialRow::converged(
            format!("{width}-{seed}-{learning_rate}"),
            format!(
                r#"{{"seed":{seed},"model":{{"width":{width}}},"training":{{"learning_rate":{learning_rate},"target_loss":0.01}}}}"#
            ),
            &[&axes[..], values].concat(),
        )
    }

    fn analysis_of<'a>(analysis: &'a Analysis, name: &str) -> &'a MeasurementAnalysis {
        analysis
            .measurements
            .iter()
            .find(|analysis| analysis.measurement == name)
            .expect("analysed")
    }

    #[test]
    fn slopes_recover_exact_power_laws_in_width() {
        // capacity = 5 · width^1.5 and a flat gap of 0.3: slopes 1.5 and 0, exactly.
        let rows: Vec<TrialRow> = [16.0, 64.0, 256.0, 1024.0]
            .into_iter()
            .flat_map(|width: f64| {
                [0.0, 1.0].map(|seed| {
                    trial(
                        width,
                        seed,
                        0.1,
                        &[("vc_capacity", 5.0 * width.powf(1.5)), ("error_gap", 0.3)],
                    )
                })
            })
            .collect();
        let analysis = analyse(&rows, false);
        assert_eq!(analysis.pooled_over, ["seed"]);
        let capacity = analysis_of(&analysis, "vc_capacity")
            .width_slope
            .expect("a slope");
        assert!((capacity.slope - 1.5).abs() < 1e-12, "{capacity:?}");
        assert_eq!((capacity.trials, capacity.fit), (8, SlopeFit::LogLogTrials));
        let gap = analysis_of(&analysis, "error_gap")
            .width_slope
            .expect("a slope");
        assert!(gap.slope.abs() < 1e-12, "{gap:?}");
        // A constant gap: τ-a is 0 (every pair tied in the gap), τ-b undefined.
        let vc = analysis_of(&analysis, "vc_capacity");
        assert_eq!((vc.kendall_tau_a, vc.kendall_tau_b), (Some(0.0), None));
        // Only the stagnation-localized bound is marked a heuristic, in every table that reads it.
        let heuristic: Vec<&str> = analysis
            .measurements
            .iter()
            .filter(|analysis| analysis.heuristic)
            .map(|analysis| analysis.measurement.as_str())
            .collect();
        assert_eq!(heuristic, ["stagnation_localized_spectral_gap_estimate"]);
        let report = crate::report::SweepReport {
            analysis: analysis.measurements,
            ..crate::report::SweepReport::empty("s")
        };
        let table = crate::report::analysis_table(&report);
        assert!(table.contains("stagnation_localized_spectral_gap_estimate (heuristic)"));
        assert!(!table.contains("vc_capacity (heuristic)"));
    }

    #[test]
    fn rank_correlation_with_the_gap_overall_and_per_axis() {
        // Four trials: width ∈ {8, 16} × learning rate ∈ {0.1, 0.2}, one seed.
        // gap:       (8, .1) 0.1   (16, .1) 0.2   (8, .2) 0.3   (16, .2) 0.4
        // measure m: (8, .1) 1     (16, .1) 2     (8, .2) 0.5   (16, .2) 3
        // Overall pairs (m, gap): (1,.1) (2,.2) (.5,.3) (3,.4): of the 6 pairs, 4 concordant,
        // 2 discordant ((1,.1)-(.5,.3) and (2,.2)-(.5,.3)): τ-a = τ-b = (4 − 2)/6 = 1/3.
        // Over width (learning rate fixed): {(1,.1),(2,.2)} τ = 1 and {(.5,.3),(3,.4)} τ = 1:
        // ψ = 1 over 2 groups. Over learning rate (width fixed): {(1,.1),(.5,.3)} τ = −1 and
        // {(2,.2),(3,.4)} τ = 1: ψ = 0. Ψ = (1 + 0)/2 = 0.5.
        let rows = vec![
            trial(8.0, 0.0, 0.1, &[("error_gap", 0.1), ("margin_gamma", 1.0)]),
            trial(16.0, 0.0, 0.1, &[("error_gap", 0.2), ("margin_gamma", 2.0)]),
            trial(8.0, 0.0, 0.2, &[("error_gap", 0.3), ("margin_gamma", 0.5)]),
            trial(16.0, 0.0, 0.2, &[("error_gap", 0.4), ("margin_gamma", 3.0)]),
        ];
        let analysis = analyse(&rows, false);
        assert_eq!(analysis.pooled_over, ["training.learning_rate"]);
        let margin = analysis_of(&analysis, "margin_gamma");
        assert!((margin.kendall_tau_a.expect("τ-a") - 1.0 / 3.0).abs() < 1e-12);
        assert!((margin.kendall_tau_b.expect("τ-b") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            margin.granulated_tau,
            vec![
                AxisGranulated {
                    axis: "model.width".to_string(),
                    psi: Some(1.0),
                    groups: 2
                },
                AxisGranulated {
                    axis: "training.learning_rate".to_string(),
                    psi: Some(0.0),
                    groups: 2
                },
            ]
        );
        assert_eq!(margin.psi, Some(0.5));
        // Within each learning rate, two widths: a slope per cell beside the pooled one.
        assert_eq!(margin.cell_slopes.len(), 2);
        assert_eq!(
            margin.cell_slopes[0].cell,
            [("training.learning_rate".to_string(), "0.1".to_string())]
        );
        // Margin 1 → 2 over width 8 → 16: exponent 1 in the first cell; 0.5 → 3 in the second.
        let first = margin.cell_slopes[0].slope.expect("a slope");
        assert!((first.slope - 1.0).abs() < 1e-12);
        let second = margin.cell_slopes[1].slope.expect("a slope");
        assert!((second.slope - 6f64.ln() / 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_hand_made_grid_with_ties_a_constant_gap_group_and_a_vacuous_bound() {
        // Width ∈ {8, 16, 32} × learning rate ∈ {0.1, 0.2}, one seed; spectral bound m.
        //            lr 0.1: gap / m        lr 0.2: gap / m
        // width 8     0.1 / 1               0.2 / 2
        // width 16    0.1 / 3               0.3 / ∞ (vacuous)
        // width 32    0.1 / 2               0.4 / ∞ (vacuous)
        // ψ over width: lr 0.1 group, gap constant: τ-a 0. lr 0.2 group: gaps .2 < .3 < .4,
        // m 2 < ∞ = ∞: pairs (8,16) C, (8,32) C, (16,32) tied in m: τ-a = 2/3. ψ = 1/3, 2 groups.
        // ψ over lr: width 8: (1,.1),(2,.2) C → 1; width 16: (3,.1),(∞,.3) C → 1; width 32:
        // (2,.1),(∞,.4) C → 1. ψ = 1, 3 groups. Ψ = (1/3 + 1)/2 = 2/3.
        // τ-a overall over 15 pairs: m ranks 1 < 2 = 2 < 3 < ∞ = ∞, gaps .1 .1 .1 .2 .3 .4.
        // Trials a(1,.1) b(3,.1) c(2,.1) d(2,.2) e(∞,.3) f(∞,.4). Concordant: a-d a-e a-f b-e
        // b-f c-e c-f d-e d-f = 9; discordant: b-d (3 > 2, .1 < .2) = 1; ties in gap: a-b a-c
        // b-c; ties in m: c-d e-f. τ-a = (9 − 1)/15.
        let spectral = "spectral_gap_estimate";
        let rows = vec![
            trial(8.0, 0.0, 0.1, &[("error_gap", 0.1), (spectral, 1.0)]),
            trial(16.0, 0.0, 0.1, &[("error_gap", 0.1), (spectral, 3.0)]),
            trial(32.0, 0.0, 0.1, &[("error_gap", 0.1), (spectral, 2.0)]),
            trial(8.0, 0.0, 0.2, &[("error_gap", 0.2), (spectral, 2.0)]),
            trial(
                16.0,
                0.0,
                0.2,
                &[("error_gap", 0.3), (spectral, f64::INFINITY)],
            ),
            trial(
                32.0,
                0.0,
                0.2,
                &[("error_gap", 0.4), (spectral, f64::INFINITY)],
            ),
        ];
        let analysis = analyse(&rows, false);
        let bound = analysis_of(&analysis, spectral);
        assert_eq!(bound.vacuous, 2);
        assert!((bound.kendall_tau_a.expect("τ-a") - 8.0 / 15.0).abs() < 1e-12);
        let psi: Vec<(Option<f64>, usize)> = bound
            .granulated_tau
            .iter()
            .map(|axis| (axis.psi, axis.groups))
            .collect();
        assert!((psi[0].0.expect("ψ width") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((psi[0].1, psi[1]), (2, (Some(1.0), 3)));
        assert!((bound.psi.expect("Ψ") - 2.0 / 3.0).abs() < 1e-12);
        // The slope is fitted over the four finite values only.
        assert_eq!(bound.width_slope.expect("a slope").trials, 4);
        // One model per grid point of two axes: each PGDL group holds a single pair, whose gap
        // cannot vary, so there is no score; nor, without seeds, enough pairs for the robust
        // error.
        assert_eq!(bound.pgdl_cmi, None);
        assert_eq!(bound.robust_sign_error, None);
    }

    #[test]
    fn results_stored_without_their_test_size_take_the_configured_one() {
        // Width 8 and 64, four seeds each; gaps 0.1 and 0.5 (+ 0.001 · seed), a measure that
        // follows them. 16 seed pairs per environment of equal weight: both directions kept,
        // error 0. The rows carry no `test_size`, as results stored before it was; the
        // configuration's `data.test_size` stands in.
        let rows: Vec<TrialRow> = [8.0, 64.0]
            .into_iter()
            .flat_map(|width: f64| {
                (0..4).map(move |seed| {
                    let gap = if width < 10.0 { 0.1 } else { 0.5 } + 0.001 * seed as f64;
                    TrialRow::converged(
                        format!("{width}-{seed}"),
                        format!(
                            r#"{{"seed":{seed},"model":{{"width":{width}}},"data":{{"test_size":10000}}}}"#
                        ),
                        &[("width", width), ("error_gap", gap), ("margin_gamma", gap)],
                    )
                })
            })
            .collect();
        let analysis = analyse(&rows, false);
        let robust = analysis_of(&analysis, "margin_gamma")
            .robust_sign_error
            .expect("kept environments");
        assert_eq!(
            (robust.mean, robust.worst, robust.environments),
            (0.0, 0.0, 2)
        );
    }

    #[test]
    fn only_trials_trained_to_the_target_are_analysed_unless_asked() {
        let mut running = trial(32.0, 0.0, 0.1, &[("vc_capacity", 1e9), ("error_gap", 0.9)]);
        running.state = "leased".to_string();
        let mut diverged = trial(64.0, 0.0, 0.1, &[("vc_capacity", 1e9), ("error_gap", 0.9)]);
        diverged.outcome = Some("diverged".to_string());
        let mut exhausted = trial(128.0, 0.0, 0.1, &[("vc_capacity", 1e9), ("error_gap", 0.9)]);
        exhausted.outcome = Some("budget_exhausted".to_string());
        let rows = vec![
            trial(8.0, 0.0, 0.1, &[("vc_capacity", 8.0)]),
            trial(16.0, 0.0, 0.1, &[("vc_capacity", 16.0)]),
            running,
            diverged,
            exhausted,
        ];
        let analysis = analyse(&rows, false);
        assert_eq!(
            analysis.population,
            Population {
                include_unconverged: false,
                analysed: 2,
                left_out_budget_exhausted: 1,
                left_out_diverged: 1,
                left_out_unfinished: 1,
            }
        );
        let slope = analysis_of(&analysis, "vc_capacity")
            .width_slope
            .expect("a slope");
        assert!((slope.slope - 1.0).abs() < 1e-12);
        assert_eq!(slope.trials, 2);
        let included = analyse(&rows, true);
        assert_eq!(
            (
                included.population.analysed,
                included.population.left_out_budget_exhausted
            ),
            (3, 0)
        );
        // Without a target loss, running out of steps is the protocol: the trial is analysed.
        let mut fixed_steps = trial(8.0, 0.0, 0.1, &[("vc_capacity", 8.0)]);
        fixed_steps.outcome = Some("budget_exhausted".to_string());
        fixed_steps.params = r#"{"seed":0,"model":{"width":8}}"#.to_string();
        assert_eq!(analyse(&[fixed_steps], false).population.analysed, 1);
    }
}
