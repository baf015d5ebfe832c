//! The training loop: SGD until the full training loss reaches the target or the step budget
//! runs out, watching for divergence.

use proto::TrainingConfig;

use crate::science::data::Dataset;
use crate::science::measurements::Phase;
use crate::science::model::evaluate::evaluate;
use crate::science::model::mlp::Mlp;
use crate::science::observer::{Cancelled, PROGRESS_INTERVAL, TrialObserver, checkpoint};
use crate::science::rng::{Stream, stream};
use crate::science::train::noise::NoiseSettings;
use crate::science::train::sgd::{NoisySgd, SgdSettings};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingRun {
    pub steps: u64,
    pub reached_target: bool,
    /// A batch loss, the full training loss or a parameter became NaN or infinite.
    pub diverged: bool,
}

pub fn train(
    mlp: &Mlp,
    parameters: &mut [f32],
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
    let mut sgd = NoisySgd::new(
        mlp,
        dataset,
        settings,
        stream(seed, Stream::BatchOrder),
        stream(seed, Stream::TrainingNoise),
    );
    checkpoint(observer, Phase::Training, 0)?;
    for step in 1..=config.max_steps {
        let report = sgd.step(mlp, parameters);
        if !report.is_finite() {
            return Ok(TrainingRun {
                steps: step,
                reached_target: false,
                diverged: true,
            });
        }
        if step % config.eval_every == 0 || step == config.max_steps {
            let train_loss = evaluate(mlp, parameters, dataset, sgd.workspace_mut(), None).loss;
            if !train_loss.is_finite() {
                return Ok(TrainingRun {
                    steps: step,
                    reached_target: false,
                    diverged: true,
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
    })
}
