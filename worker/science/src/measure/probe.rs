//! The stagnation probe: independent runs of noisy SGD from the trained point Θ̂, recording the
//! distance d_t = ||Θ_t − Θ̂||₂ after every step, summarised per radius (science.md §3).

use vocabulary::ProbeStatisticName;
use vocabulary::{RadiusUnit, TrialConfig};

use crate::data::TrainTest;
use crate::measure::displacement::{
    distance_moments, late_diffusion, mean_squared_displacement, msd_diffusion,
};
use crate::measure::excursion::{LayerExcursion, LayerExcursions};
use crate::measure::landscape::PlaneProjection;
use crate::measure::linearized::{LinearizedProbe, StayProbabilityBound};
use crate::measure::snapshots::SnapshotStatistics;
use crate::measure::step_displacement::StepDisplacement;
use crate::measure::survival::{ExitTime, exit_time, kaplan_meier, median_survival_time};
use crate::measurements::{LandscapeSlice, MsdPoint, Phase, ProbeStatistic, RadiusMeasurement};
use crate::model::mlp::Mlp;
use crate::observer::{Cancelled, PROGRESS_INTERVAL, TrialObserver, checkpoint};
use crate::rng::{Stream, stream};
use crate::train::noise::{NoiseScales, NoiseSettings, NoiseStream};
use crate::train::sgd::{NoisySgd, SgdSettings};

/// Points of the stored MSD curve, evenly spaced over the probe's steps.
pub const MSD_CURVE_POINTS: u64 = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSummary {
    /// Occupancy of the first listed radius.
    pub stay_fraction: f64,
    pub max_distance: f64,
    /// Mean over replicates of the last distance.
    pub final_distance: f64,
    pub radii: Vec<RadiusMeasurement>,
    /// Distance moments, diffusion and the snapshot statistics (`vocabulary::ProbeStatisticName`).
    pub statistics: Vec<ProbeStatistic>,
    pub msd_curve: Vec<MsdPoint>,
    /// Per layer, the largest weight displacement from Ŵ over the probe.
    pub layer_excursions: Vec<LayerExcursion>,
    /// The loss-landscape slice, when asked for.
    pub landscape: Option<LandscapeSlice>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome {
    Completed(ProbeSummary),
    /// A loss, a parameter or a distance became NaN or infinite.
    Diverged,
    /// The configuration asks for no probe steps or no replicates, or radii relative to a
    /// prediction that could not be made.
    Skipped,
}

/// What the Hessian at Θ̂, measured before the probe, tells it: the top eigenvectors (empty when
/// the Hessian was not measured), along which the displacement is split, and the linearised
/// prediction of the probe built from the spectrum.
#[derive(Debug, Clone, Copy, Default)]
pub struct HessianReference<'a> {
    pub top_vectors: &'a [Vec<f64>],
    pub prediction: Option<&'a LinearizedProbe>,
    pub bound: Option<&'a StayProbabilityBound>,
}

/// The linearised prediction for this trial's probe from the Hessian's top eigenvalues and trace.
pub fn linearized_probe(
    mlp: &Mlp,
    config: &TrialConfig,
    top_eigenvalues: &[f64],
    trace: f64,
) -> LinearizedProbe {
    let learning_rate = config.probe_learning_rate();
    let noise = probe_noise(mlp, config, learning_rate);
    let dimension = mlp.parameter_count();
    let noise_sigma = (noise.total_variance() / dimension.max(1) as f64).sqrt();
    LinearizedProbe::new(
        learning_rate,
        noise_sigma,
        top_eigenvalues,
        trace,
        dimension,
    )
}

/// The lower bound on this trial's stay probabilities from the Hessian's top eigenvalues and its
/// λ_min estimate; None where the probe is linearly unstable (λ_max > 2/η_probe).
pub fn stay_probability_bound(
    mlp: &Mlp,
    config: &TrialConfig,
    top_eigenvalues: &[f64],
    lambda_min: f64,
) -> Option<StayProbabilityBound> {
    let learning_rate = config.probe_learning_rate();
    let noise = probe_noise(mlp, config, learning_rate);
    StayProbabilityBound::new(
        learning_rate,
        noise.largest_sigma(),
        top_eigenvalues,
        lambda_min,
        mlp.parameter_count(),
    )
}

fn probe_noise(mlp: &Mlp, config: &TrialConfig, learning_rate: f64) -> NoiseScales {
    let probe = &config.probe;
    NoiseScales::new(
        mlp,
        NoiseSettings {
            sigma: probe.noise_sigma,
            form: probe.noise_form,
            inverse_temperature: probe.inverse_temperature,
        },
        learning_rate,
    )
}

/// Runs every replicate from `minimum` (Θ̂); its batch order and noise come from the replicate's
/// own streams, so replicates are independent and reproducible. Snapshots fall on steps
/// ⌈k·T/S⌉, k = 1 … S. Each replicate's end point is handed to `replicate_end`.
pub fn run_probe(
    mlp: &Mlp,
    minimum: &[f32],
    data: &TrainTest,
    config: &TrialConfig,
    hessian: HessianReference<'_>,
    replicate_end: &mut dyn FnMut(u32, &[f32]),
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
        batch_size: config.probe_batch_size(),
    };
    let scale = match probe.radius_unit {
        RadiusUnit::Absolute => 1.0,
        RadiusUnit::RelativeToMinimumNorm => euclidean_norm(minimum),
        RadiusUnit::RelativeToPredictedRms => match hessian.prediction {
            Some(prediction) => prediction.mean_squared_distance(probe.steps).sqrt(),
            None => {
                tracing::warn!("no Hessian to predict the probe's RMS distance from: no probe");
                return Ok(ProbeOutcome::Skipped);
            }
        },
    };
    let radii: Vec<f64> = probe.radii.iter().map(|radius| radius * scale).collect();
    let dataset = &data.train;
    let snapshots = u64::from(probe.snapshots).min(probe.steps);
    let evaluations = u64::from(probe.snapshot_evaluations).min(snapshots);
    let mut snapshot_statistics =
        SnapshotStatistics::new(mlp, minimum, data, evaluations > 0, hessian.top_vectors);

    checkpoint(observer, Phase::Probe, 0)?;
    let mut trajectories = Vec::with_capacity(probe.replicates as usize);
    let mut top_squared = Vec::with_capacity(probe.replicates as usize);
    let mut excursions =
        LayerExcursions::new(mlp, &mut stream(config.seed, Stream::ProbeExcursion));
    let mut plane = (probe.landscape_grid > 0)
        .then(|| PlaneProjection::new(mlp, minimum, probe.landscape_plane, config.seed));
    for replicate in 0..probe.replicates {
        let mut sgd = NoisySgd::new(
            mlp,
            minimum.to_vec(),
            dataset,
            settings,
            stream(config.seed, Stream::ProbeBatches(replicate)),
            NoiseStream::probe(config.seed, replicate),
        );
        let mut displacement = StepDisplacement::new(minimum.len(), hessian.top_vectors);
        let mut distances = Vec::with_capacity(probe.steps as usize);
        let mut along_top = Vec::with_capacity(probe.steps as usize);
        let (mut taken, mut evaluated) = (0, 0);
        for step in 1..=probe.steps {
            let report = sgd.step(mlp);
            let parameters = sgd.parameters();
            let measured = displacement.update(parameters, minimum);
            let distance = measured.length;
            if !report.is_finite() || !distance.is_finite() {
                return Ok(ProbeOutcome::Diverged);
            }
            distances.push(distance);
            excursions.observe_displacement(mlp, displacement.values());
            if !hessian.top_vectors.is_empty() {
                along_top.push(measured.squared_projection);
            }
            if evaluated < evaluations
                && step == ((evaluated + 1) * probe.steps).div_ceil(evaluations)
            {
                snapshot_statistics.evaluate(parameters);
                evaluated += 1;
            }
            if taken < snapshots && step == ((taken + 1) * probe.steps).div_ceil(snapshots) {
                snapshot_statistics.keep(step, parameters);
                if let Some(plane) = &mut plane {
                    plane.observe(replicate, step, parameters);
                }
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
        let parameters = sgd.into_parameters();
        replicate_end(replicate, &parameters);
        trajectories.push(distances);
        top_squared.push(along_top);
        if let Some(plane) = &mut plane {
            plane.finish_replicate();
        }
        snapshot_statistics.finish_replicate(
            &parameters,
            probe.basin_steps,
            settings.learning_rate,
            radii[0],
        );
    }
    let mut summary = summarize(&trajectories, &radii);
    let msd = mean_squared_displacement(&squares(&trajectories));
    let top = mean_squared_displacement(&top_squared);
    summary
        .statistics
        .extend(subspace_statistics(&msd, &top, hessian.prediction));
    summary
        .statistics
        .extend(snapshot_statistics.into_statistics());
    if let Some(prediction) = hessian.prediction {
        for measurement in &mut summary.radii {
            measurement.predicted_stay_probability =
                prediction.stay_probability(measurement.radius, probe.steps);
        }
    }
    if let Some(bound) = hessian.bound {
        for measurement in &mut summary.radii {
            measurement.stay_probability_bound =
                bound.stay_probability(measurement.radius, probe.steps);
        }
    }
    summary.msd_curve = msd_curve(&msd, &top, hessian.prediction);
    summary.layer_excursions = excursions.into_layers();
    summary.landscape =
        plane.and_then(|plane| plane.into_slice(mlp, &data.train, probe.landscape_grid, radii[0]));
    Ok(ProbeOutcome::Completed(summary))
}

fn squares(trajectories: &[Vec<f64>]) -> Vec<Vec<f64>> {
    trajectories
        .iter()
        .map(|trajectory| trajectory.iter().map(|d| d * d).collect())
        .collect()
}

/// The RMS distance at the last step beside the prediction's, and the late diffusion split into
/// the top Hessian subspace and its complement, from the MSD and its part in that subspace
/// (`top` empty without it).
fn subspace_statistics(
    msd: &[f64],
    top: &[f64],
    prediction: Option<&LinearizedProbe>,
) -> Vec<ProbeStatistic> {
    let mut statistics = vec![ProbeStatistic {
        name: ProbeStatisticName::FinalRmsDistance,
        value: msd.last().map_or(f64::NAN, |last| last.sqrt()),
    }];
    if let Some(prediction) = prediction {
        statistics.push(ProbeStatistic {
            name: ProbeStatisticName::PredictedRmsDistance,
            value: prediction.mean_squared_distance(msd.len() as u64).sqrt(),
        });
    }
    if !top.is_empty() {
        let rest: Vec<f64> = msd.iter().zip(top).map(|(all, top)| all - top).collect();
        statistics.push(ProbeStatistic {
            name: ProbeStatisticName::MsdDiffusionHessianTop,
            value: late_diffusion(top),
        });
        statistics.push(ProbeStatistic {
            name: ProbeStatisticName::MsdDiffusionHessianRest,
            value: late_diffusion(&rest),
        });
    }
    statistics
}

/// The MSD at steps ⌈k·T/N⌉, k = 1 … N, N = min(T, [`MSD_CURVE_POINTS`]): measured, its part in
/// the top Hessian subspace, and predicted.
fn msd_curve(msd: &[f64], top: &[f64], prediction: Option<&LinearizedProbe>) -> Vec<MsdPoint> {
    let steps = msd.len() as u64;
    let points = steps.min(MSD_CURVE_POINTS);
    (1..=points)
        .map(|k| {
            let step = (k * steps).div_ceil(points);
            let index = step as usize - 1;
            MsdPoint {
                step,
                msd: msd[index],
                msd_hessian_top: top.get(index).copied().unwrap_or(f64::NAN),
                predicted_msd: prediction.map_or(f64::NAN, |prediction| {
                    prediction.mean_squared_distance(step)
                }),
            }
        })
        .collect()
}

/// Summarises distance trajectories of equal length T (one per replicate) for absolute radii:
/// exit time τ_r = first 1-based step with d_t > r, censored at T; stay probability = share of
/// trajectories with no such step; occupancy = share of all steps with d_t ≤ r; exits and
/// re-entries = crossings of the sphere outwards and inwards, from d_0 = 0.
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
        let mut crossings = [0usize; 2];
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
            let mut inside = true;
            for &distance in trajectory {
                let now_inside = distance <= radius;
                if now_inside != inside {
                    crossings[usize::from(now_inside)] += 1;
                }
                inside = now_inside;
            }
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
            mean_exits: crossings[0] as f64 / replicates,
            mean_reentries: crossings[1] as f64 / replicates,
            predicted_stay_probability: f64::NAN,
            stay_probability_bound: f64::NAN,
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
                name: ProbeStatisticName::MeanDistance,
                value: mean_distance,
            },
            ProbeStatistic {
                name: ProbeStatisticName::RmsDistance,
                value: rms_distance,
            },
            ProbeStatistic {
                name: ProbeStatisticName::MsdDiffusion,
                value: msd_diffusion(trajectories),
            },
        ],
        stay_fraction: measurements
            .first()
            .map_or(f64::NAN, |first| first.occupancy),
        max_distance,
        final_distance,
        radii: measurements,
        msd_curve: Vec::new(),
        layer_excursions: Vec::new(),
        landscape: None,
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
        // A leaves at 2 and comes back at 3; B leaves at 4; C never leaves.
        assert!((wide.mean_exits - 2.0 / 3.0).abs() < 1e-12);
        assert!((wide.mean_reentries - 1.0 / 3.0).abs() < 1e-12);
        let narrow = &summary.radii[1];
        assert_eq!(narrow.stay_probability, 0.0);
        assert!((narrow.mean_exit_step - (2.0 + 2.0 + 3.0) / 3.0).abs() < 1e-12);
        assert!((narrow.occupancy - 4.0 / 12.0).abs() < 1e-12);
        // Radius 0.7: each replicate leaves once and never comes back.
        assert_eq!(narrow.mean_exits, 1.0);
        assert_eq!(narrow.mean_reentries, 0.0);

        assert!((summary.stay_fraction - 10.0 / 12.0).abs() < 1e-12);
        assert_eq!(summary.max_distance, 2.0);
        assert!((summary.final_distance - (0.9 + 2.0 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn distances_are_euclidean() {
        assert!((euclidean_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]) - 5.0).abs() < 1e-12);
    }
}
