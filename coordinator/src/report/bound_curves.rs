//! Every bound's gap estimate and the measured gaps per width, as mean and standard deviation over
//! seeds: what the headline figure draws, one line per bound with error bars.

use serde::{Deserialize, Serialize};

use super::aggregate::width_summaries;
use super::statistics::MeanInterval;
use crate::store::TrialRow;
use vocabulary::catalog::{self, Uses};

/// The figure's series: the catalog's [`Uses::PLOTTED`] columns with their labels, the bounds'
/// estimates first, then the measured gaps.
pub fn series() -> Vec<(&'static str, &'static str)> {
    let (estimates, measured): (Vec<_>, Vec<_>) = catalog::used_for(Uses::PLOTTED)
        .map(|entry| (entry.column, entry.label))
        .partition(|(column, _)| column.ends_with("_gap_estimate"));
    estimates.into_iter().chain(measured).collect()
}

/// One width's value of a series over the seeds that measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WidthPoint {
    pub width: u64,
    #[serde(flatten)]
    pub summary: MeanInterval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub measurement: String,
    pub label: String,
    pub points: Vec<WidthPoint>,
    /// (width, trials) where the bound is vacuous (+∞), which no mean includes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vacuous: Vec<(u64, u64)>,
}

/// The series of [`series`] that some finished, non-diverged trial measured, in that order,
/// over the same per-width groups as the report's table.
pub fn curves_by_width(rows: &[TrialRow]) -> Vec<Curve> {
    let widths = width_summaries(rows, Uses::PLOTTED);
    series()
        .into_iter()
        .filter_map(|(measurement, label)| {
            let points: Vec<WidthPoint> = widths
                .iter()
                .filter_map(|width| {
                    Some(WidthPoint {
                        width: width.width,
                        summary: width.summary.measurement(measurement)?,
                    })
                })
                .collect();
            let vacuous: Vec<(u64, u64)> = widths
                .iter()
                .map(|width| (width.width, width.summary.vacuous(measurement)))
                .filter(|(_, count)| *count > 0)
                .collect();
            (!points.is_empty() || !vacuous.is_empty()).then(|| Curve {
                measurement: measurement.to_string(),
                label: label.to_string(),
                points,
                vacuous,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(width: f64, values: &[(&str, f64)], outcome: &str) -> TrialRow {
        TrialRow {
            outcome: Some(outcome.to_string()),
            ..TrialRow::converged(
                format!("{width}-{values:?}"),
                "{}",
                &[&[("width", width)][..], values].concat(),
            )
        }
    }

    #[test]
    fn means_and_standard_deviations_per_width_of_the_measured_series() {
        let rows = [
            trial(
                16.0,
                &[("error_gap", 0.1), ("vc_gap_estimate", 2.0)],
                "converged",
            ),
            trial(
                16.0,
                &[("error_gap", 0.3), ("vc_gap_estimate", 4.0)],
                "converged",
            ),
            trial(64.0, &[("error_gap", 0.2)], "budget_exhausted"),
            // A diverged trial's numbers are left out.
            trial(64.0, &[("error_gap", 9.0)], "diverged"),
        ];
        let curves = curves_by_width(&rows);
        let names: Vec<&str> = curves.iter().map(|c| c.measurement.as_str()).collect();
        // Bounds before gaps, only the series that were measured.
        assert_eq!(names, ["vc_gap_estimate", "error_gap"]);
        let vc = &curves[0].points;
        assert_eq!(vc.len(), 1);
        assert_eq!(
            (vc[0].width, vc[0].summary.mean, vc[0].summary.count),
            (16, 3.0, 2)
        );
        // Sample sd of (2, 4): sqrt(2).
        assert!((vc[0].summary.std_dev.expect("two trials") - 2f64.sqrt()).abs() < 1e-12);
        let gap = &curves[1].points;
        assert_eq!(gap.len(), 2);
        assert!((gap[0].summary.mean - 0.2).abs() < 1e-12);
        assert_eq!(
            (gap[1].width, gap[1].summary.mean, gap[1].summary.std_dev),
            (64, 0.2, None)
        );
    }
}
