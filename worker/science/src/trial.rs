//! One trial from configuration to measurements: data, training, the stagnation probe, then the
//! norms, margins and bounds at the trained point.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use vocabulary::{ProbeStatisticName, TrialConfig};

use crate::data::Dataset;
use crate::data::{self, DataError};
use crate::measure::bound_suite::{TrainedPoint, evaluate_bounds};
use crate::measure::bounds::{
    LayerNorms, ProbeExcursion, spectral_capacity, spectral_complexity, vc_capacity, vc_dimension,
};
use crate::measure::excursion::LayerExcursion;
use crate::measure::flatness::measure_flatness;
use crate::measure::hessian_summary::summarize_hessian;
use crate::measure::layers::measure_layers;
use crate::measure::margins::percentile;
use crate::measure::norms::one_infinity_norm;
use crate::measure::probe::{
    HessianReference, ProbeOutcome, euclidean_norm, linearized_probe, run_probe,
    stay_probability_bound,
};
use crate::measure::spectrum::{heavy_ball_stability_margin, stability_margin};
use crate::measurements::{Outcome, Phase, ProbeStatistic, TrialMeasurements};
use crate::model::evaluate::{EVALUATION_CHUNK, FullGradient, evaluate};
use crate::model::matmul::on_threads;
use crate::model::mlp::{Mlp, Workspace};
use crate::observer::{Cancelled, TrialObserver, checkpoint};
use crate::rng::{Stream, stream};
use crate::saved_weights::{SavedWeightsError, WeightsDirectory};
use crate::train::noise::NOISE_STREAM_VERSION;
use crate::train::training::train;

/// Examples per pass of the full gradient at the trained point (its f32 sums run over a chunk).
const GRADIENT_CHUNK: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error(
        "the trial asks for checkpoints (measure.checkpoints) but this worker has no checkpoint \
         directory: start it with --checkpoint-dir"
    )]
    NoCheckpointDirectory,
    #[error(transparent)]
    Checkpoint(#[from] SavedWeightsError),
    #[error("trial cancelled")]
    Cancelled,
    #[error("invalid trial configuration: {0}")]
    InvalidConfig(#[from] vocabulary::ConfigError),
    #[error("data set unusable: {0}")]
    Data(#[from] DataError),
    #[error("cannot start {threads} threads for the trial's matrix products: {source}")]
    Threads {
        threads: usize,
        source: std::io::Error,
    },
}

impl From<Cancelled> for TrialError {
    fn from(_: Cancelled) -> Self {
        TrialError::Cancelled
    }
}

/// Runs one trial on the calling thread. A divergence is a measured outcome, not an error:
/// the measurements then say in which phase it happened, and what could not be measured is NaN
/// or empty.
pub fn run_trial(
    config: &TrialConfig,
    observer: &dyn TrialObserver,
) -> Result<TrialMeasurements, TrialError> {
    run_trial_with_threads(config, observer, 1)
}

/// [`run_trial`] with up to `threads` threads per matrix product; the numbers are the same.
pub fn run_trial_with_threads(
    config: &TrialConfig,
    observer: &dyn TrialObserver,
    threads: usize,
) -> Result<TrialMeasurements, TrialError> {
    run_trial_with_options(
        config,
        observer,
        &TrialOptions {
            threads,
            ..TrialOptions::default()
        },
    )
}

/// How a worker runs a trial, beyond what the trial's configuration says.
#[derive(Debug, Clone)]
pub struct TrialOptions {
    /// Threads per matrix product; the numbers do not depend on it.
    pub threads: usize,
    /// Where this trial's weight files go when its configuration asks for checkpoints.
    pub checkpoint_directory: Option<PathBuf>,
    /// Written into every weight file's metadata (sweep, trial id).
    pub checkpoint_metadata: HashMap<String, String>,
}

impl Default for TrialOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            checkpoint_directory: None,
            checkpoint_metadata: HashMap::new(),
        }
    }
}

/// [`run_trial`] with a worker's options.
pub fn run_trial_with_options(
    config: &TrialConfig,
    observer: &dyn TrialObserver,
    options: &TrialOptions,
) -> Result<TrialMeasurements, TrialError> {
    let threads = options.threads;
    on_threads(threads, || run_trial_on_threads(config, observer, options))
        .map_err(|source| TrialError::Threads { threads, source })?
}

/// [`run_trial_with_options`] with the team of the trial's threads started.
fn run_trial_on_threads(
    config: &TrialConfig,
    observer: &dyn TrialObserver,
    options: &TrialOptions,
) -> Result<TrialMeasurements, TrialError> {
    let threads = options.threads;
    config.validate()?;
    let weights = if config.measure.checkpoints {
        let directory = options
            .checkpoint_directory
            .as_deref()
            .ok_or(TrialError::NoCheckpointDirectory)?;
        let mut metadata = options.checkpoint_metadata.clone();
        metadata.insert("trial_config".to_string(), config.to_canonical_json());
        Some(WeightsDirectory::create(directory, metadata)?)
    } else {
        None
    };
    checkpoint(observer, Phase::Data, 0)?;
    let data = data::build(&config.data, config.seed)?;
    let resolved = with_data_shape(config, &data)?;
    let config = &resolved;
    let mlp = Mlp::from_config(&config.model, &config.data).with_threads(threads);
    let initial = mlp.initialize(config.model.init, &mut stream(config.seed, Stream::Init));

    let started = Instant::now();
    let mut parameters = initial.clone();
    let run = train(
        &mlp,
        &mut parameters,
        &data.train,
        &config.training,
        config.seed,
        observer,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    if let Some(weights) = &weights {
        weights.save("initial", "initial", &mlp, &initial)?;
        weights.save("trained", "trained", &mlp, &parameters)?;
    }

    let gradient_norm = if run.diverged {
        f64::NAN
    } else {
        gradient_norm_at(&mlp, &parameters, &data.train)
    };
    let mut measurements = TrialMeasurements {
        outcome: if run.diverged {
            Outcome::Diverged
        } else if run.reached_target {
            Outcome::Converged
        } else {
            Outcome::BudgetExhausted
        },
        diverged_phase: run.diverged.then_some(Phase::Training),
        train_loss: f64::NAN,
        test_loss: f64::NAN,
        train_error: f64::NAN,
        test_error: f64::NAN,
        steps: run.steps,
        reached_target: run.reached_target,
        parameter_count: mlp.parameter_count() as u64,
        margin_gamma: f64::NAN,
        vc_capacity: f64::NAN,
        spectral_capacity: f64::NAN,
        mean_input_norm_squared: data.train.mean_input_norm_squared(),
        train_size: data.train.len() as u64,
        test_size: data.test.len() as u64,
        noise_stream: NOISE_STREAM_VERSION,
        stay_fraction: f64::NAN,
        max_distance: f64::NAN,
        final_distance: f64::NAN,
        minimum_norm: f64::NAN,
        train_seconds,
        probe_seconds: 0.0,
        measure_seconds: 0.0,
        layers: Vec::new(),
        radii: Vec::new(),
        hessian_top_eigenvalues: Vec::new(),
        hessian_lambda_min: f64::NAN,
        hessian_trace: f64::NAN,
        stability_margin: f64::NAN,
        probe_stability_margin: f64::NAN,
        training_stability_margin: f64::NAN,
        bounds: Vec::new(),
        probe_statistics: Vec::new(),
        polish_steps: run.polish_steps,
        gradient_norm,
        msd_curve: Vec::new(),
        landscape: None,
    };

    // The Hessian comes before the probe, whose subspace statistics and prediction need it.
    let mut hessian_seconds = 0.0;
    let hessian = if run.diverged {
        None
    } else {
        let started = Instant::now();
        let hessian = summarize_hessian(
            &mlp,
            &parameters,
            &data.train,
            &config.measure,
            config.training.learning_rate,
            config.seed,
        );
        hessian_seconds = started.elapsed().as_secs_f64();
        hessian
    };
    if let Some(hessian) = &hessian {
        measurements.hessian_top_eigenvalues = hessian.top_eigenvalues.clone();
        measurements.hessian_lambda_min = hessian.lambda_min;
        measurements.hessian_trace = hessian.trace;
        measurements.stability_margin = hessian.stability_margin;
        if let Some(&lambda_max) = hessian.top_eigenvalues.first() {
            measurements.probe_stability_margin =
                stability_margin(config.probe_learning_rate(), lambda_max);
            measurements.training_stability_margin = heavy_ball_stability_margin(
                config.training.learning_rate,
                config.training.momentum,
                lambda_max,
            );
        }
    }
    let mut layer_excursions = Vec::new();
    if !run.diverged {
        let prediction = hessian
            .as_ref()
            .map(|hessian| linearized_probe(&mlp, config, &hessian.top_eigenvalues, hessian.trace));
        let bound = hessian.as_ref().and_then(|hessian| {
            stay_probability_bound(&mlp, config, &hessian.top_eigenvalues, hessian.lambda_min)
        });
        let reference = HessianReference {
            top_vectors: hessian
                .as_ref()
                .map_or(&[], |hessian| hessian.top_vectors.as_slice()),
            prediction: prediction.as_ref(),
            bound: bound.as_ref(),
        };
        let started = Instant::now();
        let mut save_error = None;
        let mut save_end = |replicate: u32, end: &[f32]| {
            if let (Some(weights), None) = (&weights, &save_error) {
                let name = format!("probe-end-replicate-{replicate}");
                if let Err(error) = weights.save(&name, &name, &mlp, end) {
                    save_error = Some(error);
                }
            }
        };
        let probe = run_probe(
            &mlp,
            &parameters,
            &data,
            config,
            reference,
            &mut save_end,
            observer,
        )?;
        if let Some(error) = save_error {
            return Err(error.into());
        }
        measurements.probe_seconds = started.elapsed().as_secs_f64();
        match probe {
            ProbeOutcome::Completed(summary) => {
                measurements.stay_fraction = summary.stay_fraction;
                measurements.max_distance = summary.max_distance;
                measurements.final_distance = summary.final_distance;
                measurements.radii = summary.radii;
                measurements.probe_statistics = summary.statistics;
                measurements.probe_statistics.extend(bound_assumptions(
                    config,
                    data.train.len(),
                    run.polish_steps,
                ));
                measurements.msd_curve = summary.msd_curve;
                layer_excursions = summary.layer_excursions;
                measurements.landscape = summary.landscape;
            }
            ProbeOutcome::Diverged => {
                measurements.outcome = Outcome::Diverged;
                measurements.diverged_phase = Some(Phase::Probe);
            }
            ProbeOutcome::Skipped => {}
        }
    }

    checkpoint(observer, Phase::Measure, 0)?;
    let started = Instant::now();
    let mut workspace = Workspace::new(
        &mlp,
        EVALUATION_CHUNK.min(data.train.len().max(data.test.len())),
    );
    let mut margins = Vec::with_capacity(data.train.len());
    let train_evaluation = evaluate(
        &mlp,
        &parameters,
        &data.train,
        &mut workspace,
        Some(&mut margins),
    );
    let test_evaluation = evaluate(&mlp, &parameters, &data.test, &mut workspace, None);
    measurements.train_loss = train_evaluation.loss;
    measurements.train_error = train_evaluation.error;
    measurements.test_loss = test_evaluation.loss;
    measurements.test_error = test_evaluation.error;
    if !run.diverged {
        measure_trained_point(
            config,
            &mlp,
            &parameters,
            &initial,
            &data.train,
            &margins,
            &layer_excursions,
            &mut measurements,
        );
        checkpoint(observer, Phase::Measure, 1)?;
    }
    measurements.measure_seconds = started.elapsed().as_secs_f64() + hessian_seconds;
    Ok(measurements)
}

/// ||∇R̂_n(Θ)|| over `dataset`, accumulated in f64.
/// Whether the stay-probability bound's assumptions beyond the Hessian hold: a full-batch probe
/// (no mini-batch noise) and a minimum polished to its gradient-norm tolerance (no drift).
fn bound_assumptions(
    config: &TrialConfig,
    train_size: usize,
    polish_steps: u64,
) -> [ProbeStatistic; 2] {
    let full_batch = config.probe_batch_size() >= train_size;
    // The polish stops short of its step budget exactly when it reached its tolerance.
    let polished = config.training.polish_tolerance.is_some()
        && polish_steps < config.training.polish_max_steps;
    [
        ProbeStatistic {
            name: ProbeStatisticName::ProbeFullBatch,
            value: f64::from(u8::from(full_batch)),
        },
        ProbeStatistic {
            name: ProbeStatisticName::MinimumPolished,
            value: f64::from(u8::from(polished)),
        },
    ]
}

fn gradient_norm_at(mlp: &Mlp, parameters: &[f32], dataset: &Dataset) -> f64 {
    let mut full = FullGradient::new(mlp, GRADIENT_CHUNK.min(dataset.len()));
    full.compute(mlp, parameters, dataset);
    euclidean_norm(full.gradient())
}

/// The configuration with the data set's actual shape filled in (file sets take input_dim,
/// classes and sizes from their files), after checking that a batch fits in the training set.
fn with_data_shape(
    config: &TrialConfig,
    data: &data::TrainTest,
) -> Result<TrialConfig, TrialError> {
    let mut resolved = config.clone();
    resolved.data.input_dim = data.train.dim;
    resolved.data.classes = data.train.classes;
    resolved.data.train_size = data.train.len();
    resolved.data.test_size = data.test.len();
    let batch_sizes = [
        ("training.batch_size", Some(config.training.batch_size)),
        ("probe.batch_size", config.probe.batch_size),
    ];
    for (key, batch_size) in batch_sizes {
        if let Some(batch_size) = batch_size
            && batch_size > data.train.len()
        {
            return Err(TrialError::InvalidConfig(vocabulary::ConfigError {
                key: key.to_string(),
                value: batch_size.to_string(),
                reason: format!(
                    "must not exceed the {} training examples of the data set",
                    data.train.len()
                ),
            }));
        }
    }
    Ok(resolved)
}

/// Norms, margin and bounds at a finite trained point; `layer_excursions` from the probe (empty
/// without one).
#[allow(clippy::too_many_arguments)]
fn measure_trained_point(
    config: &TrialConfig,
    mlp: &Mlp,
    parameters: &[f32],
    initial: &[f32],
    train: &Dataset,
    margins: &[f64],
    layer_excursions: &[LayerExcursion],
    measurements: &mut TrialMeasurements,
) {
    let mut power_rng = stream(config.seed, Stream::PowerIteration);
    let mut layers = measure_layers(
        mlp,
        parameters,
        initial,
        config.measure.power_iterations,
        &mut power_rng,
    );
    let gamma = percentile(margins, config.measure.margin_percentile);

    let hidden_units = (config.model.depth - 1) * config.model.width;
    let vc = vc_dimension(
        measurements.parameter_count as f64,
        hidden_units as f64,
        config.data.classes as f64,
        config.data.input_dim as f64,
    );
    let train_size = measurements.train_size as f64;
    let spectral_norms: Vec<f64> = layers.iter().map(|layer| layer.spectral_norm).collect();
    let distances: Vec<f64> = layers
        .iter()
        .map(|layer| layer.distance_from_init_two_one)
        .collect();
    let max_width = config
        .data
        .input_dim
        .max(config.model.width)
        .max(config.data.classes);

    measurements.margin_gamma = gamma;
    measurements.vc_capacity = vc_capacity(
        vc,
        config.data.classes as f64,
        train_size,
        config.measure.delta,
    );
    measurements.spectral_capacity = spectral_capacity(
        spectral_complexity(&spectral_norms, &distances),
        measurements.mean_input_norm_squared,
        max_width as f64,
        gamma,
    );
    measurements.minimum_norm = euclidean_norm(parameters);
    let norms: Vec<LayerNorms> = layers
        .iter()
        .zip(mlp.layers())
        .map(|(measured, shape)| {
            let weights: Vec<f64> = parameters[shape.weight_range()]
                .iter()
                .map(|&w| f64::from(w))
                .collect();
            LayerNorms {
                fan_in: shape.fan_in,
                fan_out: shape.fan_out,
                spectral: measured.spectral_norm,
                frobenius: measured.frobenius_norm,
                one_infinity: one_infinity_norm(&weights, shape.fan_out, shape.fan_in),
                distance_frobenius: measured.distance_from_init_frobenius,
                distance_two_one: measured.distance_from_init_two_one,
            }
        })
        .collect();
    let probe_excursions: Vec<ProbeExcursion> = layer_excursions
        .iter()
        .zip(&layers)
        .map(|(excursion, layer)| ProbeExcursion {
            minimum_spectral: layer.spectral_norm,
            max_spectral_displacement: excursion.max_spectral,
            max_two_one_displacement: excursion.max_two_one,
        })
        .collect();
    let flatness = measure_flatness(
        mlp,
        parameters,
        train,
        config.measure.flatness_draws,
        config.seed,
    );
    measurements.bounds = evaluate_bounds(&TrainedPoint {
        mlp,
        parameters,
        initial,
        train,
        layers: &norms,
        gamma,
        delta: config.measure.delta,
        max_width: max_width as f64,
        flatness,
        probe_excursions: &probe_excursions,
    });
    for (layer, excursion) in layers.iter_mut().zip(layer_excursions) {
        layer.probe_max_displacement_spectral = excursion.max_spectral;
        layer.probe_max_displacement_frobenius = excursion.max_frobenius;
        layer.probe_max_displacement_two_one = excursion.max_two_one;
    }
    measurements.layers = layers;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::SilentObserver;
    use std::sync::atomic::{AtomicU64, Ordering};
    use vocabulary::{Activation, DataConfig, DataSet, LandscapePlane, RadiusUnit};
    use vocabulary::{BoundName, ProbeStatisticName};

    /// The example configuration made easy to fit: width 32 with momentum, trained to loss 0.05.
    fn easy_config() -> TrialConfig {
        let mut config = TrialConfig::example();
        (config.data.train_size, config.data.test_size) = (128, 256);
        config.model.width = 32;
        config.training.momentum = 0.9;
        config.training.target_loss = Some(0.05);
        config.training.max_steps = 5000;
        config.training.eval_every = 20;
        config.probe.steps = 100;
        config.probe.learning_rate = Some(0.01);
        config.probe.radius_unit = RadiusUnit::RelativeToMinimumNorm;
        config.probe.replicates = 3;
        config
    }

    #[test]
    fn training_an_easy_task_reaches_the_target_and_every_measurement_is_filled() {
        let config = easy_config();
        let measurements = run_trial(&config, &SilentObserver).expect("the trial runs");
        // One hidden layer: every bound applies, each with a positive margin.
        let names: Vec<BoundName> = measurements.bounds.iter().map(|bound| bound.name).collect();
        assert_eq!(names, BoundName::ALL);
        assert!(
            measurements
                .bounds
                .iter()
                .all(|bound| bound.capacity.is_finite() && bound.capacity > 0.0),
            "{:?}",
            measurements.bounds
        );
        assert_eq!(
            measurements.outcome,
            Outcome::Converged,
            "{measurements:#?}"
        );
        let statistic = |name: &str| {
            measurements
                .probe_statistics
                .iter()
                .find(|statistic| statistic.name.name() == name)
                .map(|statistic| statistic.value)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let names: Vec<ProbeStatisticName> = measurements
            .probe_statistics
            .iter()
            .map(|statistic| statistic.name)
            .collect();
        assert_eq!(names, ProbeStatisticName::ALL);
        assert!(statistic("rms_distance") >= statistic("mean_distance"));
        assert!(statistic("mean_distance") > 0.0);
        assert!(statistic("loss_excursion_max_train") >= statistic("loss_excursion_mean_train"));
        assert!(statistic("loss_excursion_max_test") >= statistic("loss_excursion_mean_test"));
        // The example's 10 snapshots per replicate, each cloud beside its random-walk null (PR
        // 55/23 and top-2 share 0.777812 for 10 evenly spaced steps, by a separate Jacobi).
        assert_eq!(statistic("snapshot_count"), 10.0);
        assert!((statistic("null_participation_ratio") - 55.0 / 23.0).abs() < 1e-9);
        assert!((statistic("null_top_two_share") - 0.777_812_032_5).abs() < 1e-9);
        let ratio = statistic("participation_ratio");
        assert!((1.0..=10.0).contains(&ratio), "participation ratio {ratio}");
        assert!((1.0..=10.0).contains(&statistic("components_for_90_percent")));
        assert!((0.0..=1.0).contains(&statistic("top_two_share")));
        for share in [
            "convexity_positive_share_train",
            "convexity_positive_share_test",
            "basin_return_share",
        ] {
            assert!((0.0..=1.0).contains(&statistic(share)), "{share}");
        }
        assert!(statistic("linear_barrier") >= 0.0);
        assert!((0.0..=1.0).contains(&statistic("hessian_aligned_share")));
        assert!(statistic("predicted_rms_distance") > 0.0);
        assert!(statistic("final_rms_distance") > 0.0);
        // The probe runs at 0.01 without momentum; training at the example's rate with μ = 0.9.
        let lambda_max = measurements.hessian_top_eigenvalues[0];
        let probe_margin = 2.0 / 0.01 - lambda_max;
        let training_margin = 2.0 * 1.9 / config.training.learning_rate - lambda_max;
        assert!(
            (measurements.probe_stability_margin - probe_margin).abs() < 1e-9 * probe_margin.abs()
        );
        assert!(
            (measurements.training_stability_margin - training_margin).abs()
                < 1e-9 * training_margin.abs()
        );
        for layer in &measurements.layers {
            // ||·||_op ≤ ||·||_F ≤ ||·||_{2,1} for the same largest displacement.
            assert!(layer.probe_max_displacement_spectral > 0.0, "{layer:?}");
            assert!(
                layer.probe_max_displacement_spectral <= layer.probe_max_displacement_frobenius
            );
            assert!(layer.probe_max_displacement_frobenius <= layer.probe_max_displacement_two_one);
        }
        // The example's probe: mini-batch, from an unpolished minimum; flagged as such.
        assert_eq!(statistic("probe_full_batch"), 0.0);
        assert_eq!(statistic("minimum_polished"), 0.0);
        for radius in &measurements.radii {
            assert!((0.0..=1.0).contains(&radius.predicted_stay_probability));
            assert!(
                (0.0..=1.0).contains(&radius.stay_probability_bound),
                "{radius:?}"
            );
            assert!(radius.stay_probability_bound <= radius.predicted_stay_probability + 1e-12);
            assert!(radius.mean_reentries <= radius.mean_exits);
        }
        // 100 probe steps: the curve has 64 points ending at the last step, its top-subspace
        // part never above the whole, its prediction growing.
        let curve = &measurements.msd_curve;
        assert_eq!(curve.len(), 64);
        assert_eq!(curve.last().map(|point| point.step), Some(100));
        let last_msd = curve.last().map_or(f64::NAN, |point| point.msd);
        assert!((last_msd.sqrt() - statistic("final_rms_distance")).abs() < 1e-9);
        assert!(
            curve
                .iter()
                .all(|point| point.msd_hessian_top <= point.msd * (1.0 + 1e-9))
        );
        assert!(
            curve
                .windows(2)
                .all(|pair| pair[1].predicted_msd >= pair[0].predicted_msd)
        );
        // ⟨∇R̂(Θ), Θ − Θ̂⟩ / ||Θ − Θ̂||² ≈ a Rayleigh quotient of the Hessian near Θ̂, so no larger
        // than its top eigenvalue (with room for the cubic terms).
        let lambda_max = measurements.hessian_top_eigenvalues[0];
        assert!(
            statistic("convexity_min_train") <= 1.2 * lambda_max + 1e-3,
            "μ̂ {} above λ_max {lambda_max}",
            statistic("convexity_min_train")
        );
        assert!(measurements.reached_target);
        assert!(measurements.train_loss <= 0.05 && measurements.train_loss < 0.1 * 3f64.ln());
        assert_eq!(measurements.train_error, 0.0);
        assert!(
            measurements.test_error < 0.5,
            "test error {}",
            measurements.test_error
        );
        assert!(measurements.margin_gamma > 0.0);
        assert!(measurements.vc_capacity.is_finite() && measurements.spectral_capacity.is_finite());
        assert_eq!(measurements.parameter_count, 8 * 32 + 32 + 32 * 3 + 3);
        assert_eq!(measurements.layers.len(), 2);
        assert_eq!(measurements.radii.len(), 2);
        let minimum_norm = measurements.minimum_norm;
        assert!((measurements.radii[1].radius - minimum_norm).abs() < 1e-12 * minimum_norm);
        assert!(measurements.max_distance > 0.0 && measurements.max_distance.is_finite());
        assert!((0.0..=1.0).contains(&measurements.stay_fraction));
        // Training moved the weights away from their initialisation.
        assert!(
            measurements
                .layers
                .iter()
                .all(|layer| layer.distance_from_init_frobenius > 0.0)
        );
    }

    #[test]
    fn a_trial_is_bit_identical_when_repeated() {
        let mut config = easy_config();
        config.training.noise_sigma = 0.01;
        config.training.max_steps = 200;
        config.model.depth = 3;
        config.model.activation = Activation::Tanh;
        let without_times = |mut measurements: TrialMeasurements| {
            measurements.train_seconds = 0.0;
            measurements.probe_seconds = 0.0;
            measurements.measure_seconds = 0.0;
            serde_json::to_string(&measurements).expect("measurements serialize")
        };
        let first = without_times(run_trial(&config, &SilentObserver).expect("the trial runs"));
        let second = without_times(run_trial(&config, &SilentObserver).expect("the trial runs"));
        assert_eq!(first, second);
        config.seed += 1;
        let other_seed =
            without_times(run_trial(&config, &SilentObserver).expect("the trial runs"));
        assert_ne!(first, other_seed);
    }

    #[test]
    fn a_trial_is_bit_identical_whatever_the_number_of_threads() {
        // Wide enough that gemm does split the products between threads.
        let mut config = easy_config();
        config.model.width = 192;
        config.model.depth = 3;
        config.training.batch_size = 64;
        config.training.max_steps = 40;
        config.training.noise_sigma = 0.01;
        config.probe.steps = 30;
        let without_times = |mut measurements: TrialMeasurements| {
            measurements.train_seconds = 0.0;
            measurements.probe_seconds = 0.0;
            measurements.measure_seconds = 0.0;
            serde_json::to_string(&measurements).expect("measurements serialize")
        };
        let run = |threads| {
            without_times(
                run_trial_with_threads(&config, &SilentObserver, threads).expect("the trial runs"),
            )
        };
        let single = run(1);
        assert_eq!(single, run(2));
        assert_eq!(single, run(4));
    }

    /// Wired end to end on a real network: with full-batch probe gradients (only the injected
    /// noise left) from a polished minimum, the measured RMS distance after the probe is the one
    /// the Hessian's linearised dynamics predict.
    #[test]
    fn a_full_batch_probe_near_a_polished_minimum_spreads_as_predicted() {
        let mut config = easy_config();
        config.training.polish_tolerance = Some(1e-3);
        config.training.polish_max_steps = 5000;
        config.probe.batch_size = Some(config.data.train_size);
        config.probe.replicates = 8;
        config.probe.steps = 200;
        config.probe.noise_sigma = 0.05;
        config.probe.learning_rate = Some(0.02);
        config.probe.radius_unit = RadiusUnit::RelativeToPredictedRms;
        config.probe.radii = vec![0.5, 3.0];
        config.measure.hessian_top_k = 10;
        config.measure.lanczos_steps = 40;
        config.measure.hutchinson_probes = 50;
        let measurements = run_trial(&config, &SilentObserver).expect("the trial runs");
        let statistic = |name: &str| {
            measurements
                .probe_statistics
                .iter()
                .find(|statistic| statistic.name.name() == name)
                .map_or(f64::NAN, |statistic| statistic.value)
        };
        let (measured, predicted) = (
            statistic("final_rms_distance"),
            statistic("predicted_rms_distance"),
        );
        // 8 replicates of ~390 coordinates: sampling error of a few percent; the bulk's shared
        // eigenvalue and the cubic terms add a little.
        assert!(
            (measured / predicted - 1.0).abs() < 0.15,
            "measured {measured} vs predicted {predicted}"
        );
        // Radii in predicted RMS units: half of it is left by every replicate, three times it
        // by none, and the prediction's bound holds there.
        let [inner, outer] = [&measurements.radii[0], &measurements.radii[1]];
        assert!((inner.radius / predicted - 0.5).abs() < 1e-9);
        assert_eq!(inner.stay_probability, 0.0);
        assert_eq!(outer.stay_probability, 1.0);
        assert!(outer.predicted_stay_probability > 0.5);
        // Full batch, and flagged polished exactly when the polish met its tolerance; the bound
        // holds.
        assert_eq!(statistic("probe_full_batch"), 1.0);
        let polished = measurements.polish_steps < config.training.polish_max_steps;
        assert_eq!(statistic("minimum_polished"), f64::from(u8::from(polished)));
        for radius in [inner, outer] {
            assert!(
                radius.stay_probability_bound <= radius.stay_probability,
                "{radius:?}"
            );
        }
        assert!(outer.stay_probability_bound > 0.0, "{outer:?}");
    }

    #[test]
    fn a_landscape_slice_is_made_in_either_plane_when_asked_for() {
        for plane in [LandscapePlane::Pca, LandscapePlane::Random] {
            let mut config = easy_config();
            config.probe.landscape_grid = 5;
            config.probe.landscape_plane = plane;
            let measurements = run_trial(&config, &SilentObserver).expect("the trial runs");
            let slice = measurements.landscape.expect("a slice");
            assert_eq!(slice.plane, plane.as_str());
            assert_eq!(slice.losses.len(), 25);
            // Every replicate's snapshots, in order, inside the square.
            assert_eq!(slice.trajectory.len(), 3 * 10);
            assert!(
                slice
                    .trajectory
                    .iter()
                    .all(|point| point.a.abs() <= slice.extent && point.b.abs() <= slice.extent)
            );
            // The centre of the grid is Θ̂, whose loss is the trained one.
            let centre = f64::from(slice.losses[12]);
            assert!(
                (centre - measurements.train_loss).abs() < 1e-4 * measurements.train_loss.max(1.0),
                "{centre} vs {}",
                measurements.train_loss
            );
            assert!(slice.losses.iter().all(|loss| loss.is_finite()));
        }
        assert!(
            run_trial(&easy_config(), &SilentObserver)
                .expect("the trial runs")
                .landscape
                .is_none()
        );
    }

    #[test]
    fn checkpoints_hold_the_initial_trained_and_probe_end_weights() {
        let mut config = easy_config();
        config.measure.checkpoints = true;
        let result = run_trial(&config, &SilentObserver);
        assert!(
            matches!(result, Err(TrialError::NoCheckpointDirectory)),
            "{result:?}"
        );
        let directory = tempfile::tempdir().expect("a temporary directory");
        let options = TrialOptions {
            checkpoint_directory: Some(directory.path().join("sweep").join("trial")),
            checkpoint_metadata: HashMap::from([("sweep".to_string(), "s".to_string())]),
            ..TrialOptions::default()
        };
        let measurements =
            run_trial_with_options(&config, &SilentObserver, &options).expect("the trial runs");
        let read = |name: &str| -> Vec<f32> {
            let bytes = std::fs::read(directory.path().join("sweep/trial").join(name))
                .expect("the file exists");
            let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
            let mut values = Vec::new();
            for layer in 1..=2 {
                for part in ["weight", "bias"] {
                    let tensor = file
                        .tensor(&format!("layer{layer}.{part}"))
                        .expect("a tensor per layer");
                    values.extend(
                        tensor
                            .data()
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
            }
            values
        };
        let initial = read("initial.safetensors");
        let trained = read("trained.safetensors");
        assert_eq!(initial.len(), measurements.parameter_count as usize);
        // Training moved the weights; the trained file is the point the measurements describe:
        // its norm is ||Θ̂||.
        assert_ne!(initial, trained);
        let norm = trained
            .iter()
            .map(|&w| f64::from(w).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - measurements.minimum_norm).abs() < 1e-9 * norm);
        for replicate in 0..config.probe.replicates {
            let end = read(&format!("probe-end-replicate-{replicate}.safetensors"));
            let distance = end
                .iter()
                .zip(&trained)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(distance > 0.0 && distance <= measurements.max_distance + 1e-12);
        }
        // The weights do not change the numbers.
        config.measure.checkpoints = false;
        let without = run_trial(&config, &SilentObserver).expect("the trial runs");
        assert_eq!(without.test_loss, measurements.test_loss);
        assert_eq!(without.bounds, measurements.bounds);
    }

    #[test]
    fn the_polish_brings_the_gradient_norm_under_its_tolerance() {
        let mut config = easy_config();
        config.probe.steps = 0;
        let unpolished = run_trial(&config, &SilentObserver).expect("the trial runs");
        assert_eq!(unpolished.polish_steps, 0);
        let tolerance = unpolished.gradient_norm / 10.0;
        config.training.polish_tolerance = Some(tolerance);
        let polished = run_trial(&config, &SilentObserver).expect("the trial runs");
        assert!(polished.polish_steps > 0);
        assert!(polished.polish_steps < config.training.polish_max_steps);
        assert!(
            polished.gradient_norm <= tolerance,
            "{} > {tolerance}",
            polished.gradient_norm
        );
        assert!(polished.train_loss < unpolished.train_loss);
    }

    #[test]
    fn a_huge_learning_rate_diverges_without_panicking() {
        let mut config = easy_config();
        config.training.learning_rate = 1e6;
        let measurements = run_trial(&config, &SilentObserver).expect("the trial runs");
        assert_eq!(measurements.outcome, Outcome::Diverged);
        assert_eq!(measurements.diverged_phase, Some(Phase::Training));
        assert!(measurements.layers.is_empty() && measurements.radii.is_empty());
        assert!(measurements.steps < config.training.max_steps);
    }

    #[test]
    fn a_huge_probe_learning_rate_diverges_in_the_probe_and_keeps_the_training_results() {
        let mut config = easy_config();
        config.probe.learning_rate = Some(1e6);
        let measurements = run_trial(&config, &SilentObserver).expect("the trial runs");
        assert_eq!(measurements.outcome, Outcome::Diverged);
        assert_eq!(measurements.diverged_phase, Some(Phase::Probe));
        assert!(measurements.reached_target);
        assert!(measurements.train_loss <= 0.05);
        assert_eq!(measurements.layers.len(), 2);
        assert!(measurements.radii.is_empty());
    }

    struct CancelAfter {
        reports: AtomicU64,
        limit: u64,
    }

    impl TrialObserver for CancelAfter {
        fn progress(&self, _phase: Phase, _step: u64) {
            self.reports.fetch_add(1, Ordering::Relaxed);
        }

        fn cancelled(&self) -> bool {
            self.reports.load(Ordering::Relaxed) >= self.limit
        }
    }

    #[test]
    fn a_cancelled_trial_stops_with_an_error() {
        let observer = CancelAfter {
            reports: AtomicU64::new(0),
            limit: 3,
        };
        let result = run_trial(&easy_config(), &observer);
        assert!(matches!(result, Err(TrialError::Cancelled)), "{result:?}");
        assert_eq!(observer.reports.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn an_invalid_configuration_is_rejected() {
        let mut config = easy_config();
        config.model.width = 0;
        let result = run_trial(&config, &SilentObserver);
        assert!(
            matches!(result, Err(TrialError::InvalidConfig(ref error)) if error.key == "model.width")
        );
    }

    #[test]
    fn a_gaussian_mixture_trial_learns_its_clusters() {
        let mut config = easy_config();
        config.data.dataset = DataSet::GaussianMixture;
        config.data.teacher_width = 0;
        config.data.cluster_separation = Some(6.0);
        config.data.subsample = Some(100);
        config.data.standardize = true;
        config.probe.steps = 0;
        let measurements = run_trial(&config, &SilentObserver).expect("the trial runs");
        assert_eq!(measurements.train_size, 100);
        assert!(
            measurements.test_error < 0.1,
            "test error {}",
            measurements.test_error
        );
    }

    #[test]
    fn unusable_data_files_fail_the_trial_with_a_data_error() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = easy_config();
        config.data = DataConfig::synthetic(DataSet::Csv, 0, 2, 0, 0);
        let train = dir.path().join("train.csv");
        let test = dir.path().join("test.csv");
        let rows: String = (0..40).map(|row| format!("{row},{}\n", row % 2)).collect();
        std::fs::write(&train, &rows).expect("writes");
        std::fs::write(&test, "1,7\n").expect("writes");
        config.data.has_header = Some(false);
        config.data.train_path = Some(train.to_string_lossy().into_owned());
        config.data.test_path = Some(test.to_string_lossy().into_owned());
        let result = run_trial(&config, &SilentObserver);
        assert!(
            matches!(
                result,
                Err(TrialError::Data(DataError::CsvLabel { line: 1, .. }))
            ),
            "{result:?}"
        );
        // A batch larger than the file is a configuration error found once the file is read.
        std::fs::write(&test, "1,1\n").expect("writes");
        config.training.batch_size = 64;
        let result = run_trial(&config, &SilentObserver);
        assert!(
            matches!(result, Err(TrialError::InvalidConfig(ref error)) if error.key == "training.batch_size"),
            "{result:?}"
        );
    }

    #[test]
    fn the_parameter_count_helper_counts_weights_and_biases() {
        let config = easy_config();
        assert_eq!(
            crate::parameter_count(&config.model, &config.data),
            8 * 32 + 32 + 32 * 3 + 3
        );
    }
}
