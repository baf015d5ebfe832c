//! Kaplan–Meier survival in the first probe ball, pooled per width over every replicate of every
//! finished trial ("across replicates and seeds", science.md §3.3): the curve behind the median
//! exit time, and what the survival figure draws.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vocabulary::survival::{ExitTime, kaplan_meier};

use super::parameters::{WIDTH, flattened};
use crate::store::TrialRow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthSurvival {
    pub width: u64,
    pub trials: usize,
    pub replicates: usize,
    /// (step, Ŝ) at every step where a replicate left, ascending; Ŝ = 1 before the first.
    pub curve: Vec<(f64, f64)>,
    /// The longest probe among these trials: where the curve ends.
    pub probe_steps: u64,
}

/// One curve per width with at least one measured trial that reports its exit steps.
pub fn survival_by_width(rows: &[TrialRow]) -> Vec<WidthSurvival> {
    // width → (trials, exit times, longest probe)
    let mut pooled: BTreeMap<u64, (usize, Vec<ExitTime>, u64)> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.is_measured()) {
        let Some(exits) = row
            .replicate_exit_steps_1
            .as_deref()
            .and_then(|json| serde_json::from_str::<Vec<u64>>(json).ok())
        else {
            continue;
        };
        let parameters = flattened(row);
        let (Some(width), Some(steps)) = (
            parameters.get(WIDTH).and_then(|value| value.as_u64()),
            parameters
                .get("probe.steps")
                .and_then(|value| value.as_u64()),
        ) else {
            continue;
        };
        let (trials, times, longest) = pooled.entry(width).or_default();
        *trials += 1;
        *longest = (*longest).max(steps);
        times.extend(exits.iter().map(|&step| match step {
            0 => ExitTime {
                time: steps as f64,
                censored: true,
            },
            step => ExitTime {
                time: step as f64,
                censored: false,
            },
        }));
    }
    pooled
        .into_iter()
        .map(|(width, (trials, times, probe_steps))| WidthSurvival {
            width,
            trials,
            replicates: times.len(),
            curve: kaplan_meier(&times)
                .iter()
                .map(|step| (step.time, step.survival))
                .collect(),
            probe_steps,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(width: u64, seed: u64, exits: &str) -> TrialRow {
        TrialRow {
            replicate_exit_steps_1: Some(exits.to_string()),
            ..TrialRow::converged(
                format!("{width}-{seed}"),
                format!(r#"{{"seed":{seed},"model":{{"width":{width}}},"probe":{{"steps":5}}}}"#),
                &[],
            )
        }
    }

    #[test]
    fn replicates_of_all_seeds_are_pooled_per_width() {
        // Width 16, six replicates over two seeds: exits at 2, 4 and 3; three stay the 5 steps.
        // At risk 6 at step 2 → 5/6; 5 at step 3 → 5/6 · 4/5 = 2/3; 4 at step 4 → 2/3 · 3/4 = 1/2.
        let rows = [
            trial(16, 0, "[2,4,0]"),
            trial(16, 1, "[3,0,0]"),
            trial(64, 0, "[0,0,0]"),
        ];
        let curves = survival_by_width(&rows);
        assert_eq!(curves.len(), 2);
        let narrow = &curves[0];
        assert_eq!(
            (
                narrow.width,
                narrow.trials,
                narrow.replicates,
                narrow.probe_steps
            ),
            (16, 2, 6, 5)
        );
        let expected = [(2.0, 5.0 / 6.0), (3.0, 2.0 / 3.0), (4.0, 0.5)];
        assert_eq!(narrow.curve.len(), expected.len(), "{:?}", narrow.curve);
        for ((step, survival), (want_step, want)) in narrow.curve.iter().zip(expected) {
            assert_eq!(*step, want_step);
            assert!((survival - want).abs() < 1e-12, "{survival} vs {want}");
        }
        // Nobody left the wide network's ball: no steps, survival 1 throughout.
        assert!(curves[1].curve.is_empty() && curves[1].replicates == 3);
    }
}
