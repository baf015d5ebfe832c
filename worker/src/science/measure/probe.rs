//! The stagnation probe: independent runs of noisy SGD from the trained point Θ̂, recording the
//! distance d_t = ||Θ_t − Θ̂||₂ after every step, summarised per radius (science.md §3).

use proto::{RadiusUnit, TrialConfig};

use crate::science::data::TrainTest;
use crate::science::measure::displacement::{distance_moments, msd_diffusion};
use crate::science::measure::snapshots::SnapshotStatistics;
use crate::science::measure::survival::{ExitTime, exit_time, kaplan_meier, median_survival_time};
use crate::science::measurements::{Phase, ProbeStatistic, RadiusMeasurement};
use crate::science::model::mlp::Mlp;
use crate::science::observer::{Cancelled, PROGRESS_INTERVAL, TrialObserver, checkpoint};
use crate::science::rng::{Stream, stream};
use crate::science::train::noise::NoiseSettings;
use crate::science::train::sgd::{NoisySgd, SgdSettings};

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSummary {
    /// Occupancy of the first listed radius.
    pub stay_fraction: f64,
    pub max_distance: f64,
    /// Mean over replicates of the last distance.
    pub final_distance: f64,
    pub radii: Vec<RadiusMeasurement>,
    /// Distance moments, diffusion and the snapshot statistics (`proto::PROBE_STATISTIC_NAMES`).
    pub statistics: Vec<ProbeStatistic>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome {
    Completed(ProbeSummary),
    /// A loss, a parameter or a distance became NaN or infinite.
    Diverged,
    /// The configuration asks for no probe steps or no replicates.
    Skipped,
}

/// Runs every replicate from `minimum` (Θ̂); its batch order and noise come from the replicate's
/// own streams, so replicates are independent and reproducible. Snapshots fall on steps
/// ⌈k·T/S⌉, k = 1 … S.
pub fn run_probe(
    mlp: &Mlp,
    minimum: &[f32],
    data: &TrainTest,
    config: &TrialConfig,
    observer: &dyn TrialObserver,
) -> Result<ProbeOutcome, Cancelled> {
    let probe = &config.probe;
    if probe.steps == 0 || probe.replicates == 0 {
        return Ok(ProbeOutcome::Skipped);
    }
    let settings = SgdSettings {
        learning_rate: config.probe_learning_rate() as f32,
        momentum: 0.0,
        noise: NoiseSettings {
            sigma: probe.noise_sigma,
            form: probe.noise_form,
            inverse_temperature: probe.inverse_temperature,
        },
        batch_size: config.training.batch_size,
    };
    let scale = match probe.radius_unit {
        RadiusUnit::Absolute => 1.0,
        RadiusUnit::RelativeToMinimumNorm => euclidean_norm(minimum),
    };
    let radii: Vec<f64> = probe.radii.iter().map(|radius| radius * scale).collect();
    let dataset = &data.train;
    let snapshots = u64::from(probe.snapshots).min(probe.steps);
    let mut snapshot_statistics = SnapshotStatistics::new(mlp, minimum, data, snapshots > 0);

    checkpoint(observer, Phase::Probe, 0)?;
    let mut parameters = minimum.to_vec();
    let mut trajectories = Vec::with_capacity(probe.replicates as usize);
    for replicate in 0..probe.replicates {
        parameters.copy_from_slice(minimum);
        let mut sgd = NoisySgd::new(
            mlp,
            dataset,
            settings,
            stream(config.seed, Stream::ProbeBatches(replicate)),
            stream(config.seed, Stream::ProbeNoise(replicate)),
        );
        let mut distances = Vec::with_capacity(probe.steps as usize);
        let mut taken = 0;
        for step in 1..=probe.steps {
            let report = sgd.step(mlp, &mut parameters);
            let distance = euclidean_distance(&parameters, minimum);
            if !report.is_finite() || !distance.is_finite() {
                return Ok(ProbeOutcome::Diverged);
            }
            distances.push(distance);
            if taken < snapshots && step == ((taken + 1) * probe.steps).div_ceil(snapshots) {
                snapshot_statistics.observe(&parameters);
                taken += 1;
            }
            if step % PROGRESS_INTERVAL == 0 {
                checkpoint(
                    observer,
                    Phase::Probe,
                    u64::from(replicate) * probe.steps + step,
                )?;
            }
        }
        trajectories.push(distances);
        snapshot_statistics.finish_replicate(
            &parameters,
            probe.basin_steps,
            settings.learning_rate,
            radii[0],
        );
    }
    let mut summary = summarize(&trajectories, &radii);
    summary
        .statistics
        .extend(snapshot_statistics.into_statistics());
    Ok(ProbeOutcome::Completed(summary))
}

/// Summarises distance trajectories of equal length T (one per replicate) for absolute radii:
/// exit time τ_r = first 1-based step with d_t > r, censored at T; stay probability = share of
/// trajectories with no such step; occupancy = share of all steps with d_t ≤ r.
pub fn summarize(trajectories: &[Vec<f64>], radii: &[f64]) -> ProbeSummary {
    let steps = trajectories.first().map_or(0, Vec::len);
    debug_assert!(
        trajectories
            .iter()
            .all(|trajectory| trajectory.len() == steps)
    );
    let replicates = trajectories.len() as f64;
    let total_steps = (trajectories.len() * steps) as f64;

    let mut measurements = Vec::with_capacity(radii.len());
    for &radius in radii {
        let mut stayed = 0usize;
        let mut exit_step_sum = 0.0;
        let mut steps_inside = 0usize;
        for trajectory in trajectories {
            match trajectory.iter().position(|&distance| distance > radius) {
                Some(index) => exit_step_sum += (index + 1) as f64,
                None => {
                    stayed += 1;
                    exit_step_sum += steps as f64;
                }
            }
            steps_inside += trajectory
                .iter()
                .filter(|&&distance| distance <= radius)
                .count();
        }
        let exits: Vec<ExitTime> = trajectories
            .iter()
            .map(|trajectory| exit_time(trajectory, radius))
            .collect();
        measurements.push(RadiusMeasurement {
            radius,
            stay_probability: stayed as f64 / replicates,
            mean_exit_step: exit_step_sum / replicates,
            median_exit_step: median_survival_time(&kaplan_meier(&exits)).unwrap_or(f64::NAN),
            replicate_exit_steps: exits
                .iter()
                .map(|exit| if exit.censored { 0 } else { exit.time as u64 })
                .collect(),
            occupancy: steps_inside as f64 / total_steps,
        });
    }

    let max_distance = trajectories
        .iter()
        .flatten()
        .copied()
        .fold(f64::NAN, f64::max);
    let final_distance = trajectories
        .iter()
        .filter_map(|trajectory| trajectory.last())
        .sum::<f64>()
        / replicates;
    let (mean_distance, rms_distance) = distance_moments(trajectories);
    ProbeSummary {
        statistics: vec![
            ProbeStatistic {
                name: "mean_distance",
                value: mean_distance,
            },
            ProbeStatistic {
                name: "rms_distance",
                value: rms_distance,
            },
            ProbeStatistic {
                name: "msd_diffusion",
                value: msd_diffusion(trajectories),
            },
        ],
        stay_fraction: measurements
            .first()
            .map_or(f64::NAN, |first| first.occupancy),
        max_distance,
        final_distance,
        radii: measurements,
    }
}

/// ||a||₂ accumulated in f64.
pub fn euclidean_norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// ||a − b||₂ accumulated in f64.
pub fn euclidean_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let difference = f64::from(x) - f64::from(y);
            difference * difference
        })
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_matches_a_hand_worked_trajectory() {
        // T = 4. Radius 1: replicate A exits at step 2, B at step 4, C never (censored at 4).
        // Steps inside: A 3 of 4 (0.5, 1.5, 0.8, 0.9), B 3, C 4: occupancy 10 / 12.
        // Radius 0.7: A exits at 2, B at 2, C at 3; inside: A 1, B 1, C 2 → 4 / 12.
        let trajectories = vec![
            vec![0.5, 1.5, 0.8, 0.9],
            vec![0.2, 0.8, 0.9, 2.0],
            vec![0.1, 0.3, 0.9, 1.0],
        ];
        let summary = summarize(&trajectories, &[1.0, 0.7]);
        let wide = &summary.radii[0];
        assert_eq!(wide.radius, 1.0);
        assert!((wide.stay_probability - 1.0 / 3.0).abs() < 1e-12);
        assert!((wide.mean_exit_step - (2.0 + 4.0 + 4.0) / 3.0).abs() < 1e-12);
        assert!((wide.occupancy - 10.0 / 12.0).abs() < 1e-12);
        assert_eq!(wide.replicate_exit_steps, [2, 4, 0]);
        let narrow = &summary.radii[1];
        assert_eq!(narrow.stay_probability, 0.0);
        assert!((narrow.mean_exit_step - (2.0 + 2.0 + 3.0) / 3.0).abs() < 1e-12);
        assert!((narrow.occupancy - 4.0 / 12.0).abs() < 1e-12);

        assert!((summary.stay_fraction - 10.0 / 12.0).abs() < 1e-12);
        assert_eq!(summary.max_distance, 2.0);
        assert!((summary.final_distance - (0.9 + 2.0 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn distances_are_euclidean() {
        assert!((euclidean_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]) - 5.0).abs() < 1e-12);
    }
}
