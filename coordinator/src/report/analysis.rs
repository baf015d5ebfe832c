//! The headline comparison of a sweep, computed over its finished trials: how each measurement
//! scales with width (the log-log slope, with a 95% interval) and how well it ranks trials by
//! their generalization gap (Kendall's τ across all trials, and granulated per grid axis as in
//! `science.md` §5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parameters::{self, Parameters};
use super::statistics::{self, Interval};
use crate::store::TrialRow;
use vocabulary::catalog::{self, Uses};

/// The gap every measure is ranked against.
pub const GAP: &str = "error_gap";

/// A least-squares exponent: the measurement grows as width^slope.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WidthSlope {
    pub slope: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub trials: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementAnalysis {
    pub measurement: String,
    /// Not a proven bound but a heuristic diagnostic (the catalog's label says which).
    #[serde(default)]
    pub heuristic: bool,
    /// None where fewer than two widths are measured or a value is not positive.
    pub width_slope: Option<WidthSlope>,
    /// Kendall's τ-b between the measurement and the gap over all measured trials.
    pub kendall_tau: Option<f64>,
    /// Granulated τ per varied axis (a dotted configuration key), width first.
    pub granulated_tau: Vec<(String, Option<f64>)>,
}

/// Analyses every measurement over the finished, non-diverged trials.
pub fn analyse(rows: &[TrialRow]) -> Vec<MeasurementAnalysis> {
    let trials: Vec<&TrialRow> = rows.iter().filter(|row| row.is_measured()).collect();
    let parameters: Vec<Parameters> = trials
        .iter()
        .map(|row| parameters::flattened(row))
        .collect();
    let axes = parameters::varied(&parameters);
    let groups_per_axis: Vec<Vec<Vec<&TrialRow>>> = axes
        .iter()
        .map(|axis| groups_varying_only(&trials, &parameters, axis))
        .collect();
    catalog::used_for(Uses::ANALYSED)
        .map(|entry| entry.column)
        .map(|measurement| MeasurementAnalysis {
            measurement: measurement.to_string(),
            heuristic: catalog::measurement(measurement).is_some_and(|entry| entry.is_heuristic()),
            width_slope: width_slope(&trials, measurement),
            kendall_tau: statistics::kendall_tau_b(&pairs_with_gap(&trials, measurement)),
            granulated_tau: axes
                .iter()
                .zip(&groups_per_axis)
                .map(|(axis, groups)| {
                    let pairs: Vec<Vec<(f64, f64)>> = groups
                        .iter()
                        .map(|group| pairs_with_gap(group, measurement))
                        .collect();
                    (axis.clone(), statistics::granulated_kendall(&pairs))
                })
                .collect(),
        })
        .collect()
}

fn width_slope(trials: &[&TrialRow], measurement: &str) -> Option<WidthSlope> {
    let points: Vec<(f64, f64)> = trials
        .iter()
        .filter_map(|trial| Some((trial.number("width")?, trial.number(measurement)?)))
        .collect();
    // A slope through the positive values alone would misread a quantity that reaches zero (a
    // stay probability, a gap): no slope then.
    if points.iter().any(|(_, value)| *value <= 0.0) {
        return None;
    }
    let fitted = statistics::log_log_slope(&points)?;
    let (low, high) = match fitted.interval {
        Some(Interval { low, high }) => (Some(low), Some(high)),
        None => (None, None),
    };
    Some(WidthSlope {
        slope: fitted.slope,
        low,
        high,
        trials: fitted.points,
    })
}

fn pairs_with_gap(trials: &[&TrialRow], measurement: &str) -> Vec<(f64, f64)> {
    trials
        .iter()
        .filter_map(|trial| Some((trial.number(measurement)?, trial.number(GAP)?)))
        .collect()
}

/// Trials grouped so that within a group only `axis` varies: every other setting, the seed
/// included, agrees.
fn groups_varying_only<'a>(
    trials: &[&'a TrialRow],
    parameters: &[Parameters],
    axis: &str,
) -> Vec<Vec<&'a TrialRow>> {
    let mut groups: BTreeMap<Vec<(&str, String)>, Vec<&'a TrialRow>> = BTreeMap::new();
    for (trial, values) in trials.iter().zip(parameters) {
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
                r#"{{"seed":{seed},"model":{{"width":{width}}},"training":{{"learning_rate":{learning_rate}}}}}"#
            ),
            &[&axes[..], values].concat(),
        )
    }

    fn analysis_of<'a>(analyses: &'a [MeasurementAnalysis], name: &str) -> &'a MeasurementAnalysis {
        analyses
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
        let analyses = analyse(&rows);
        let capacity = analysis_of(&analyses, "vc_capacity")
            .width_slope
            .expect("a slope");
        assert!((capacity.slope - 1.5).abs() < 1e-12, "{capacity:?}");
        assert_eq!(capacity.trials, 8);
        let gap = analysis_of(&analyses, "error_gap")
            .width_slope
            .expect("a slope");
        assert!(gap.slope.abs() < 1e-12, "{gap:?}");
        // A constant gap ranks nothing.
        assert_eq!(analysis_of(&analyses, "vc_capacity").kendall_tau, None);
        // Only the stagnation-localized bound is marked a heuristic, in every table that reads it.
        let heuristic: Vec<&str> = analyses
            .iter()
            .filter(|analysis| analysis.heuristic)
            .map(|analysis| analysis.measurement.as_str())
            .collect();
        assert_eq!(heuristic, ["stagnation_localized_spectral_gap_estimate"]);
        let report = crate::report::SweepReport {
            analysis: analyses,
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
        // 2 discordant ((1,.1)-(.5,.3) and (2,.2)-(.5,.3)): τ = (4 − 2)/6 = 1/3.
        // Over width (learning rate fixed): {(1,.1),(2,.2)} τ = 1 and {(.5,.3),(3,.4)} τ = 1 → 1.
        // Over learning rate (width fixed): {(1,.1),(.5,.3)} τ = −1 and {(2,.2),(3,.4)} τ = 1 → 0.
        let rows = vec![
            trial(8.0, 0.0, 0.1, &[("error_gap", 0.1), ("margin_gamma", 1.0)]),
            trial(16.0, 0.0, 0.1, &[("error_gap", 0.2), ("margin_gamma", 2.0)]),
            trial(8.0, 0.0, 0.2, &[("error_gap", 0.3), ("margin_gamma", 0.5)]),
            trial(16.0, 0.0, 0.2, &[("error_gap", 0.4), ("margin_gamma", 3.0)]),
        ];
        let analyses = analyse(&rows);
        let margin = analysis_of(&analyses, "margin_gamma");
        assert!((margin.kendall_tau.expect("τ") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            margin.granulated_tau,
            vec![
                ("model.width".to_string(), Some(1.0)),
                ("training.learning_rate".to_string(), Some(0.0)),
            ]
        );
    }

    #[test]
    fn no_slope_for_a_quantity_that_reaches_zero() {
        let rows = vec![
            trial(8.0, 0.0, 0.1, &[("stay_probability_1", 1.0)]),
            trial(16.0, 0.0, 0.1, &[("stay_probability_1", 0.5)]),
            trial(32.0, 0.0, 0.1, &[("stay_probability_1", 0.0)]),
        ];
        let analyses = analyse(&rows);
        assert_eq!(
            analysis_of(&analyses, "stay_probability_1").width_slope,
            None
        );
    }

    #[test]
    fn unfinished_and_diverged_trials_are_left_out() {
        let mut running = trial(32.0, 0.0, 0.1, &[("vc_capacity", 1e9), ("error_gap", 0.9)]);
        running.state = "leased".to_string();
        let mut diverged = trial(64.0, 0.0, 0.1, &[("vc_capacity", 1e9), ("error_gap", 0.9)]);
        diverged.outcome = Some("diverged".to_string());
        let rows = vec![
            trial(8.0, 0.0, 0.1, &[("vc_capacity", 8.0)]),
            trial(16.0, 0.0, 0.1, &[("vc_capacity", 16.0)]),
            running,
            diverged,
        ];
        let slope = analysis_of(&analyse(&rows), "vc_capacity")
            .width_slope
            .expect("a slope");
        assert!((slope.slope - 1.0).abs() < 1e-12);
        assert_eq!(slope.trials, 2);
    }
}
