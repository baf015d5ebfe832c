//! The one way a report summarises a set of trials: how many there are by state, and per
//! measurement the mean with its standard deviation and Student-t interval over the finished,
//! non-diverged ones. The per-width table, the crossed tables, the headline figure and the
//! dashboard all read these summaries, so none of them can disagree with another in the last digits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::statistics::{MeanInterval, mean_interval};
use crate::store::TrialRow;
use vocabulary::catalog::{self, Uses};

/// Trial counts of a group and a [`MeanInterval`] per measurement (`None` where no finished,
/// non-diverged trial of the group measured it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub trials: u64,
    pub done: u64,
    pub failed: u64,
    pub diverged: u64,
    pub measurements: Vec<(String, Option<MeanInterval>)>,
    /// Per measurement with any, the finished trials whose bound is vacuous (+∞): counted here,
    /// never averaged into the mean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vacuous: Vec<(String, u64)>,
}

impl Summary {
    /// The group `members`, summarised over the catalog's columns marked `uses`, in catalog order.
    pub fn of(members: &[&TrialRow], uses: Uses) -> Self {
        let in_state = |state: &str| members.iter().filter(|row| row.state == state).count() as u64;
        let measured: Vec<&&TrialRow> = members.iter().filter(|row| row.is_measured()).collect();
        Self {
            trials: members.len() as u64,
            done: in_state("done"),
            failed: in_state("failed"),
            diverged: members
                .iter()
                .filter(|row| row.outcome.as_deref() == Some("diverged"))
                .count() as u64,
            measurements: catalog::used_for(uses)
                .map(|entry| {
                    let values: Vec<f64> = measured
                        .iter()
                        .filter_map(|row| row.number(entry.column))
                        .collect();
                    (entry.column.to_string(), mean_interval(&values))
                })
                .collect(),
            vacuous: catalog::used_for(uses)
                .filter_map(|entry| {
                    let count = measured
                        .iter()
                        .filter(|row| row.number(entry.column) == Some(f64::INFINITY))
                        .count() as u64;
                    (count > 0).then(|| (entry.column.to_string(), count))
                })
                .collect(),
        }
    }

    /// The finished trials whose `name` is vacuous.
    pub fn vacuous(&self, name: &str) -> u64 {
        self.vacuous
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map_or(0, |(_, count)| *count)
    }

    pub fn measurement(&self, name: &str) -> Option<MeanInterval> {
        self.measurements
            .iter()
            .find(|(candidate, _)| candidate == name)
            .and_then(|(_, summary)| *summary)
    }
}

/// One width's row of a report: its trials summarised over the catalog's [`Uses::REPORTED`]
/// columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthSummary {
    pub width: u64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The trials of each width, in width order.
pub fn by_width(rows: &[TrialRow]) -> BTreeMap<u64, Vec<&TrialRow>> {
    let mut widths: BTreeMap<u64, Vec<&TrialRow>> = BTreeMap::new();
    for row in rows {
        if let Some(width) = row.number("width") {
            widths.entry(width as u64).or_default().push(row);
        }
    }
    widths
}

/// A row per width over the columns marked `uses`.
pub fn width_summaries(rows: &[TrialRow], uses: Uses) -> Vec<WidthSummary> {
    by_width(rows)
        .into_iter()
        .map(|(width, members)| WidthSummary {
            width,
            summary: Summary::of(&members, uses),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(width: f64, test_error: f64, state: &str, outcome: Option<&str>) -> TrialRow {
        TrialRow {
            state: state.to_string(),
            outcome: outcome.map(str::to_string),
            ..TrialRow::converged(
                format!("{width}-{test_error}"),
                "{}",
                &[("width", width), ("test_error", test_error)],
            )
        }
    }

    #[test]
    fn widths_count_every_trial_and_average_the_finished_ones() {
        let rows = [
            trial(8.0, 0.1, "done", Some("converged")),
            trial(8.0, 0.3, "done", Some("budget_exhausted")),
            trial(8.0, 0.9, "done", Some("diverged")),
            trial(8.0, f64::INFINITY, "done", Some("converged")),
            trial(16.0, 0.2, "done", Some("converged")),
            trial(16.0, 0.0, "failed", None),
            trial(16.0, 0.0, "pending", None),
        ];
        let widths = width_summaries(&rows, Uses::REPORTED);
        assert_eq!(widths.len(), 2);
        let narrow = &widths[0].summary;
        assert_eq!(widths[0].width, 8);
        assert_eq!(
            (narrow.trials, narrow.done, narrow.failed, narrow.diverged),
            (4, 4, 0, 1)
        );
        assert_eq!(narrow.vacuous("test_error"), 1, "+∞ is counted …");
        let test_error = narrow.measurement("test_error").expect("two values");
        assert_eq!(
            test_error.count, 2,
            "… not averaged, like the diverged trial"
        );
        assert!((test_error.mean - 0.2).abs() < 1e-12);
        // Sample standard deviation of {0.1, 0.3}: sqrt((0.1² + 0.1²) / 1).
        assert!((test_error.std_dev.expect("sd") - 0.02f64.sqrt()).abs() < 1e-12);
        let wide = &widths[1].summary;
        assert_eq!((wide.trials, wide.done, wide.failed), (3, 1, 1));
        let single = wide.measurement("test_error").expect("one value");
        assert_eq!(
            (single.count, single.std_dev),
            (1, None),
            "no spread of one"
        );
        assert_eq!(wide.measurement("train_error"), None, "never measured");
    }
}
