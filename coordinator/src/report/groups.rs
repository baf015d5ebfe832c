//! Aggregates per combination of grid values: width alone, and width crossed with each other
//! axis that varies (noise, learning rate, probe noise, …), over the seeds of each cell.

use serde::{Deserialize, Serialize};

use super::aggregate::Summary;
use super::parameters::{self, Parameters};
use crate::store::TrialRow;
use vocabulary::catalog::Uses;

/// One cell: the axis values that define it, and its trials summarised over the catalog's
/// [`Uses::CELL`] columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Each axis with its value as shown (text, so a noise form is a value like a width).
    pub axes: Vec<(String, String)>,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The cells of one grouping (say width × noise_sigma), in axis-value order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grouping {
    pub axes: Vec<String>,
    pub cells: Vec<Cell>,
}

/// Width alone, then width × each other axis that takes more than one value in the sweep (any
/// setting of the sweep file: noise, learning rate, noise form, data size, …).
pub fn groupings(rows: &[TrialRow]) -> Vec<Grouping> {
    let parameters: Vec<Parameters> = rows.iter().map(parameters::flattened).collect();
    let varied = parameters::varied(&parameters);
    let mut axis_sets: Vec<Vec<&str>> = Vec::new();
    match varied.first().filter(|axis| *axis == parameters::WIDTH) {
        Some(width) => {
            axis_sets.push(vec![width.as_str()]);
            axis_sets.extend(
                varied[1..]
                    .iter()
                    .map(|axis| vec![width.as_str(), axis.as_str()]),
            );
        }
        None => axis_sets.extend(varied.iter().map(|axis| vec![axis.as_str()])),
    }
    axis_sets
        .into_iter()
        .map(|axes| grouping(rows, &parameters, &axes))
        .collect()
}

fn grouping(rows: &[TrialRow], parameters: &[Parameters], axes: &[&str]) -> Grouping {
    Grouping {
        axes: axes.iter().map(|axis| axis.to_string()).collect(),
        cells: parameters::cells(parameters, axes)
            .into_iter()
            .map(|(axes, members)| {
                let members: Vec<&TrialRow> = members.iter().map(|&index| &rows[index]).collect();
                Cell {
                    axes,
                    summary: Summary::of(&members, Uses::CELL),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::statistics::MeanInterval;

    fn gap_of(cell: &Cell) -> Option<MeanInterval> {
        cell.summary.measurement("error_gap")
    }

    fn trial(width: f64, noise: f64, seed: f64, gap: f64) -> TrialRow {
        TrialRow::converged(
            format!("{width}-{noise}-{seed}"),
            format!(
                r#"{{"seed":{seed},"model":{{"width":{width}}},"training":{{"noise_sigma":{noise}}}}}"#
            ),
            &[
                ("width", width),
                ("noise_sigma", noise),
                ("seed", seed),
                ("error_gap", gap),
            ],
        )
    }

    #[test]
    fn cells_cross_width_with_each_varied_axis_and_summarise_over_seeds() {
        // Width 8: noise 0.1 gaps {0.1, 0.3}, noise 0.2 gaps {0.2, 0.4};
        // width 16: noise 0.1 gaps {0.5, 0.7}, noise 0.2 one failed trial.
        let mut failed = trial(16.0, 0.2, 0.0, 0.0);
        failed.state = "failed".to_string();
        failed.outcome = None;
        let rows = vec![
            trial(8.0, 0.1, 0.0, 0.1),
            trial(8.0, 0.1, 1.0, 0.3),
            trial(8.0, 0.2, 0.0, 0.2),
            trial(8.0, 0.2, 1.0, 0.4),
            trial(16.0, 0.1, 0.0, 0.5),
            trial(16.0, 0.1, 1.0, 0.7),
            failed,
        ];
        let groupings = groupings(&rows);
        let axes: Vec<Vec<String>> = groupings
            .iter()
            .map(|grouping| grouping.axes.clone())
            .collect();
        assert_eq!(
            axes,
            [
                vec!["model.width".to_string()],
                vec![
                    "model.width".to_string(),
                    "training.noise_sigma".to_string()
                ]
            ]
        );

        // Width 8 alone: gaps 0.1, 0.3, 0.2, 0.4: mean 0.25, sd sqrt(0.05/3), 95% t(3) interval
        // 0.25 ± 3.182446 · sqrt(0.05/3) / 2.
        let width_8 = &groupings[0].cells[0];
        assert_eq!((width_8.summary.trials, width_8.summary.done), (4, 4));
        let gap = gap_of(width_8).expect("a summary");
        assert!((gap.mean - 0.25).abs() < 1e-12);
        let sd = (0.05f64 / 3.0).sqrt();
        assert!((gap.std_dev.expect("sd") - sd).abs() < 1e-12);
        let half = 3.182446 * sd / 2.0;
        assert!((gap.interval.expect("interval").high - (0.25 + half)).abs() < 1e-5);

        let crossed = &groupings[1].cells;
        assert_eq!(crossed.len(), 4);
        assert_eq!(
            crossed[1].axes,
            [
                ("model.width".to_string(), "8".to_string()),
                ("training.noise_sigma".to_string(), "0.2".to_string())
            ]
        );
        assert!((gap_of(&crossed[1]).expect("a summary").mean - 0.3).abs() < 1e-12);
        let empty = &crossed[3];
        assert_eq!(
            (
                empty.summary.trials,
                empty.summary.done,
                empty.summary.failed
            ),
            (1, 0, 1)
        );
        assert_eq!(gap_of(empty), None, "nothing finished to summarise");
    }
}
