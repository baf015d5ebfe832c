//! The probe's mean-squared displacement per width (science.md §3.5): each trial's stored MSD
//! curve, measured and predicted by the linearised dynamics, averaged over seeds step by step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parameters::{WIDTH, flattened};
use crate::store::TrialRow;

/// One width's mean MSD curve over the trials that stored one with the same steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthMsd {
    pub width: u64,
    pub trials: usize,
    pub steps: Vec<u64>,
    /// Mean over trials of the measured MSD at each step.
    pub msd: Vec<f64>,
    /// Mean over trials of the predicted MSD; None where a trial had no prediction.
    pub predicted_msd: Vec<Option<f64>>,
}

/// A stored curve: `results.msd_curve` as the store writes it.
#[derive(Debug, Deserialize)]
struct StoredCurve {
    step: Vec<u64>,
    msd: Vec<Option<f64>>,
    predicted_msd: Vec<Option<f64>>,
}

/// Per width, the mean curve of the measured trials whose curves share the first such trial's
/// steps (a sweep that varies probe.steps across seeds would mix lengths; those are left out).
pub fn msd_by_width(rows: &[TrialRow]) -> Vec<WidthMsd> {
    // width → (steps, per-step sums of msd, per-step (sum, count) of predictions, trials)
    type Accumulated = (Vec<u64>, Vec<f64>, Vec<(f64, usize)>, usize);
    let mut widths: BTreeMap<u64, Accumulated> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.is_measured()) {
        let Some(curve) = row
            .msd_curve
            .as_deref()
            .and_then(|json| serde_json::from_str::<StoredCurve>(json).ok())
        else {
            continue;
        };
        let consistent = curve.msd.len() == curve.step.len()
            && curve.predicted_msd.len() == curve.step.len()
            && curve.msd.iter().all(Option::is_some);
        let Some(width) = flattened(row).get(WIDTH).and_then(|value| value.as_u64()) else {
            continue;
        };
        if !consistent || curve.step.is_empty() {
            continue;
        }
        let (steps, sums, predicted, trials) = widths.entry(width).or_insert_with(|| {
            let points = curve.step.len();
            (
                curve.step.clone(),
                vec![0.0; points],
                vec![(0.0, 0); points],
                0,
            )
        });
        if *steps != curve.step {
            continue;
        }
        *trials += 1;
        for (index, value) in curve.msd.iter().enumerate() {
            sums[index] += value.unwrap_or(0.0);
            if let Some(prediction) = curve.predicted_msd[index] {
                predicted[index].0 += prediction;
                predicted[index].1 += 1;
            }
        }
    }
    widths
        .into_iter()
        .map(|(width, (steps, sums, predicted, trials))| WidthMsd {
            width,
            trials,
            steps,
            msd: sums.iter().map(|sum| sum / trials as f64).collect(),
            predicted_msd: predicted
                .iter()
                .map(|&(sum, count)| (count == trials).then(|| sum / count as f64))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(width: u64, curve: &str) -> TrialRow {
        TrialRow {
            msd_curve: Some(curve.to_string()),
            ..TrialRow::converged(
                format!("{width}-{curve}"),
                format!(r#"{{"model":{{"width":{width}}}}}"#),
                &[],
            )
        }
    }

    #[test]
    fn curves_are_averaged_per_width_over_trials_with_the_same_steps() {
        let rows = [
            trial(
                8,
                r#"{"step":[5,10],"msd":[1.0,2.0],"msd_hessian_top":[null,null],"predicted_msd":[0.5,1.0]}"#,
            ),
            trial(
                8,
                r#"{"step":[5,10],"msd":[3.0,6.0],"msd_hessian_top":[null,null],"predicted_msd":[1.5,null]}"#,
            ),
            // Other steps: left out of width 8's mean.
            trial(
                8,
                r#"{"step":[4,8],"msd":[9.0,9.0],"msd_hessian_top":[null,null],"predicted_msd":[null,null]}"#,
            ),
            trial(
                32,
                r#"{"step":[5],"msd":[0.25],"msd_hessian_top":[0.1],"predicted_msd":[null]}"#,
            ),
            trial(64, "not json"),
        ];
        let curves = msd_by_width(&rows);
        assert_eq!(curves.len(), 2);
        assert_eq!(curves[0].width, 8);
        assert_eq!(curves[0].trials, 2);
        assert_eq!(curves[0].steps, [5, 10]);
        assert_eq!(curves[0].msd, [2.0, 4.0]);
        // Step 10's prediction is missing in one trial: no mean there.
        assert_eq!(curves[0].predicted_msd, [Some(1.0), None]);
        assert_eq!(curves[1].width, 32);
        assert_eq!(curves[1].msd, [0.25]);
        assert_eq!(curves[1].predicted_msd, [None]);
    }
}
