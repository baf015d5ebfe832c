//! The training loop: SGD until the full training loss reaches the target or the step budget
//! runs out, watching for divergence; then, when asked, full-batch gradient descent down to a
//! gradient-norm tolerance (the polish), so that the probe starts at a stationary point.

use vocabulary::TrainingConfig;

use crate::data::Dataset;
use crate::measure::probe::euclidean_norm;
use crate::measurements::Phase;
use crate::model::evaluate::{FullGradient, evaluate};
use crate::model::mlp::Mlp;
use crate::observer::{Cancelled, PROGRESS_INTERVAL, TrialObserver, checkpoint};
use crate::train::noise::NoiseSettings;
use crate::train::sgd::{NoisySgd, SgdSettings};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingRun {
    pub steps: u64,
    pub reached_target: bool,
    /// A batch loss, the full training loss or a parameter became NaN or infinite.
    pub diverged: bool,
    /// Full-batch gradient-descent steps of the polish (0 without one).
    pub polish_steps: u64,
}

/// Examples per chunk of the polish's full-batch gradients.
const POLISH_CHUNK: usize = 256;

pub fn train(
    mlp: &Mlp,
    parameters: &mut Vec<f32>,
    dataset: &Dataset,
    config: &TrainingConfig,
    seed: u64,
    observer: &dyn TrialObserver,
) -> Result<TrainingRun, Cancelled> {
    let mut run = run_sgd(mlp, parameters, dataset, config, seed, observer)?;
    if let (false, Some(tolerance)) = (run.diverged, config.polish_tolerance) {
        let (steps, finite) = polish(
            mlp,
            parameters,
            dataset,
            config.learning_rate as f32,
            tolerance,
            config.polish_max_steps,
            observer,
        )?;
        run.polish_steps = steps;
        run.diverged = !finite;
    }
    Ok(run)
}

/// Full-batch gradient descent until ||∇R̂_n|| ≤ `tolerance` or `max_steps`; returns the steps
/// taken and whether the parameters stayed finite.
fn polish(
    mlp: &Mlp,
    parameters: &mut [f32],
    dataset: &Dataset,
    learning_rate: f32,
    tolerance: f64,
    max_steps: u64,
    observer: &dyn TrialObserver,
) -> Result<(u64, bool), Cancelled> {
    let mut full = FullGradient::new(mlp, POLISH_CHUNK.min(dataset.len()));
    for step in 0..max_steps {
        let loss = full.compute(mlp, parameters, dataset);
        let norm = euclidean_norm(full.gradient());
        if !(loss.is_finite() && norm.is_finite()) {
            return Ok((step, false));
        }
        if norm <= tolerance {
            return Ok((step, true));
        }
        for (parameter, &slope) in parameters.iter_mut().zip(full.gradient()) {
            *parameter -= learning_rate * slope;
        }
        if (step + 1) % PROGRESS_INTERVAL == 0 {
            checkpoint(observer, Phase::Training, step + 1)?;
        }
    }
    Ok((max_steps, parameters.iter().all(|value| value.is_finite())))
}

/// SGD from `parameters`, which hold the last step's parameters afterwards, also when cancelled.
fn run_sgd(
    mlp: &Mlp,
    parameters: &mut Vec<f32>,
    dataset: &Dataset,
    config: &TrainingConfig,
    seed: u64,
    observer: &dyn TrialObserver,
) -> Result<TrainingRun, Cancelled> {
    let settings = SgdSettings {
        learning_rate: config.learning_rate as f32,
        momentum: config.momentum as f32,
        noise: NoiseSettings {
            sigma: config.noise_sigma,
            form: config.noise_form,
            inverse_temperature: config.inverse_temperature,
        },
        batch_size: config.batch_size,
    };
    let mut sgd = NoisySgd::for_training(mlp, std::mem::take(parameters), dataset, settings, seed);
    let run = sgd_steps(&mut sgd, mlp, dataset, config, observer);
    *parameters = sgd.into_parameters();
    run
}

fn sgd_steps(
    sgd: &mut NoisySgd<'_>,
    mlp: &Mlp,
    dataset: &Dataset,
    config: &TrainingConfig,
    observer: &dyn TrialObserver,
) -> Result<TrainingRun, Cancelled> {
    checkpoint(observer, Phase::Training, 0)?;
    for step in 1..=config.max_steps {
        let report = sgd.step(mlp);
        if !report.is_finite() {
            return Ok(TrainingRun {
                steps: step,
                reached_target: false,
                diverged: true,
                polish_steps: 0,
            });
        }
        if step % config.eval_every == 0 || step == config.max_steps {
            let (parameters, workspace) = sgd.parameters_and_workspace();
            let train_loss = evaluate(mlp, parameters, dataset, workspace, None).loss;
            if !train_loss.is_finite() {
                return Ok(TrainingRun {
                    steps: step,
                    reached_target: false,
                    diverged: true,
                    polish_steps: 0,
                });
            }
            if config
                .target_loss
                .is_some_and(|target| train_loss <= target)
            {
                return Ok(TrainingRun {
                    steps: step,
                    reached_target: true,
                    diverged: false,
                    polish_steps: 0,
                });
            }
        }
        if step % PROGRESS_INTERVAL == 0 {
            checkpoint(observer, Phase::Training, step)?;
        }
    }
    Ok(TrainingRun {
        steps: config.max_steps,
        reached_target: false,
        diverged: false,
        polish_steps: 0,
    })
}
