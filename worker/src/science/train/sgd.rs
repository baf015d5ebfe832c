//! One step of mini-batch SGD with heavy-ball momentum and Gaussian gradient noise:
//! v ← μ v + (g + ξ), Θ ← Θ − η v, with ξ ~ N(0, σ² I). With μ = 0 this is Θ ← Θ − η (g + ξ).

use std::sync::atomic::{AtomicBool, Ordering};

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::science::data::Dataset;
use crate::science::model::mlp::{Mlp, Workspace};
use crate::science::model::simd::{on_widest_simd, sum_in_lanes};
use crate::science::model::team::share_out;
use crate::science::train::noise::{NoiseScales, NoiseSettings};

/// Largest chunk used to evaluate a full data set with the optimizer's workspace.
const EVALUATION_CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdSettings {
    pub learning_rate: f32,
    pub momentum: f32,
    pub noise: NoiseSettings,
    pub batch_size: usize,
}

/// Epochs of shuffled example indices; the remainder of an epoch that cannot fill a batch is
/// dropped, so every batch has the same size.
#[derive(Debug, Clone)]
struct BatchOrder {
    permutation: Vec<u32>,
    position: usize,
    rng: ChaCha8Rng,
}

impl BatchOrder {
    fn new(examples: usize, rng: ChaCha8Rng) -> Self {
        Self {
            permutation: (0..examples as u32).collect(),
            position: examples,
            rng,
        }
    }

    fn next_batch(&mut self, batch_size: usize) -> &[u32] {
        if self.position + batch_size > self.permutation.len() {
            self.permutation.shuffle(&mut self.rng);
            self.position = 0;
        }
        let batch = &self.permutation[self.position..self.position + batch_size];
        self.position += batch_size;
        batch
    }
}

/// What one step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Mean loss of the batch before the update.
    pub batch_loss: f64,
    /// Whether every parameter is finite after the update.
    pub parameters_finite: bool,
}

impl StepReport {
    pub fn is_finite(&self) -> bool {
        self.batch_loss.is_finite() && self.parameters_finite
    }
}

/// The optimizer state and every buffer a step needs, allocated once.
#[derive(Debug, Clone)]
pub struct NoisySgd<'d> {
    dataset: &'d Dataset,
    settings: SgdSettings,
    order: BatchOrder,
    noise: ChaCha8Rng,
    noise_scales: NoiseScales,
    workspace: Workspace,
    batch_inputs: Vec<f32>,
    batch_labels: Vec<u32>,
    velocity: Vec<f32>,
}

impl<'d> NoisySgd<'d> {
    pub fn new(
        mlp: &Mlp,
        dataset: &'d Dataset,
        settings: SgdSettings,
        batch_order_rng: ChaCha8Rng,
        noise_rng: ChaCha8Rng,
    ) -> Self {
        assert!(
            settings.batch_size >= 1 && settings.batch_size <= dataset.len(),
            "batch size {} does not fit {} examples",
            settings.batch_size,
            dataset.len()
        );
        let capacity = settings.batch_size.max(EVALUATION_CHUNK.min(dataset.len()));
        let velocity = if settings.momentum > 0.0 {
            vec![0.0; mlp.parameter_count()]
        } else {
            Vec::new()
        };
        Self {
            dataset,
            settings,
            order: BatchOrder::new(dataset.len(), batch_order_rng),
            noise: noise_rng,
            noise_scales: NoiseScales::new(mlp, settings.noise, f64::from(settings.learning_rate)),
            workspace: Workspace::new(mlp, capacity),
            batch_inputs: vec![0.0; settings.batch_size * dataset.dim],
            batch_labels: vec![0; settings.batch_size],
            velocity,
        }
    }

    /// A workspace for evaluating the network between steps.
    pub fn workspace_mut(&mut self) -> &mut Workspace {
        &mut self.workspace
    }

    pub fn step(&mut self, mlp: &Mlp, parameters: &mut [f32]) -> StepReport {
        let dim = self.dataset.dim;
        let batch = self.order.next_batch(self.settings.batch_size);
        for (slot, &example) in batch.iter().enumerate() {
            let example = example as usize;
            self.batch_inputs[slot * dim..(slot + 1) * dim]
                .copy_from_slice(self.dataset.input(example));
            self.batch_labels[slot] = self.dataset.labels[example];
        }
        let SgdSettings {
            learning_rate,
            momentum,
            ..
        } = self.settings;
        // The gradient is folded into the velocity or the parameters as the backward pass forms
        // it; the noise follows: v ← μ v + g + ξ, or Θ ← Θ − η g − η ξ.
        let (batch_loss, parameters_finite) = if momentum > 0.0 {
            let batch_loss = mlp.loss_and_folded_gradient(
                parameters,
                &self.batch_inputs,
                &self.batch_labels,
                &mut self.workspace,
                &mut self.velocity,
                momentum,
            );
            self.noise_scales
                .add_scaled_to(&mut self.velocity, 1.0, &mut self.noise);
            let mut finite = true;
            for (parameter, &velocity) in parameters.iter_mut().zip(&self.velocity) {
                *parameter -= learning_rate * velocity;
                finite &= parameter.is_finite();
            }
            (batch_loss, finite)
        } else {
            let batch_loss = mlp.loss_and_descent(
                parameters,
                &self.batch_inputs,
                &self.batch_labels,
                &mut self.workspace,
                learning_rate,
            );
            self.noise_scales
                .add_scaled_to(parameters, -learning_rate, &mut self.noise);
            (batch_loss, all_finite_shared(parameters, mlp.threads()))
        };
        StepReport {
            batch_loss,
            parameters_finite,
        }
    }
}

/// Whether every value is finite, the values cut into parts that the trial's threads share out
/// (a step at width 4096 checks 80 MB).
fn all_finite_shared(values: &[f32], threads: usize) -> bool {
    /// Parts no smaller than this (1 MB), below which a thread costs more than it saves.
    const MIN_PART: usize = 1 << 18;
    let parts = threads.clamp(1, (values.len() / MIN_PART).max(1));
    let part_len = values.len().div_ceil(parts);
    let finite = AtomicBool::new(true);
    share_out(parts, &|part| {
        let start = (part * part_len).min(values.len());
        let end = (start + part_len).min(values.len());
        if !all_finite(&values[start..end]) {
            finite.store(false, Ordering::Relaxed);
        }
    });
    finite.into_inner()
}

/// Whether every value is finite, in one vectorisable pass: x · 0 is 0 for a finite x and NaN
/// for an infinite or NaN one, and a NaN survives any sum.
fn all_finite(values: &[f32]) -> bool {
    on_widest_simd(
        #[inline(always)]
        || sum_in_lanes(values, |value| value * 0.0) == 0.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::model::matmul::on_threads;
    use crate::science::rng::{Stream, stream};

    #[test]
    fn a_single_infinite_or_nan_value_is_found_in_any_lane() {
        for len in [0, 5, 16, 37] {
            let finite: Vec<f32> = (0..len).map(|i| i as f32 * 1e30 - 1e31).collect();
            assert!(all_finite(&finite), "{len} finite values");
            for at in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut values = finite.clone();
                    values[at] = bad;
                    assert!(!all_finite(&values), "{bad} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn the_shared_check_finds_a_nan_in_any_part() {
        // Three parts of about 1 MB on three threads, and the last part shorter.
        let len = 3 * (1 << 18) + 5;
        let mut values = vec![1.0f32; len];
        for threads in [1, 2, 3] {
            on_threads(threads, || {
                assert!(all_finite_shared(&values, threads));
                for at in [0, len / 3, len / 2, len - 1] {
                    values[at] = f32::NAN;
                    assert!(
                        !all_finite_shared(&values, threads),
                        "NaN at {at}, {threads} threads"
                    );
                    values[at] = 1.0;
                }
            })
            .expect("the helpers start");
        }
    }

    #[test]
    fn every_epoch_visits_each_example_once() {
        let mut order = BatchOrder::new(10, stream(1, Stream::BatchOrder));
        for _ in 0..3 {
            let mut seen: Vec<u32> = Vec::new();
            for _ in 0..3 {
                seen.extend_from_slice(order.next_batch(3));
            }
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 9, "a batch repeated an example within an epoch");
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::science::rng::{Stream, stream};
    use proto::{Activation, Init};
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// `cargo test -p worker --release --lib -- --ignored --nocapture one_sgd_step_time`
    #[test]
    #[ignore = "a timing measurement, not a check"]
    fn one_sgd_step_time() {
        let mlp = Mlp::new(784, 256, 10, 3, Activation::Relu, true);
        let examples = 1024;
        let mut rng = stream(1, Stream::TrainInputs);
        let dataset = Dataset {
            inputs: (0..examples * 784)
                .map(|_| rng.sample(StandardNormal))
                .collect(),
            labels: (0..examples).map(|_| rng.random_range(0..10)).collect(),
            n: examples,
            dim: 784,
            classes: 10,
        };
        let mut parameters = mlp.initialize(Init::He, &mut stream(1, Stream::Init));
        let mut workspace = Workspace::new(&mlp, 128);
        let mut gradient = vec![0.0; mlp.parameter_count()];
        let inputs = &dataset.inputs[..128 * 784];
        let labels = &dataset.labels[..128];
        let repeats = 200;
        let started = std::time::Instant::now();
        for _ in 0..repeats {
            mlp.forward(&parameters, inputs, 128, &mut workspace);
        }
        let forward = started.elapsed().as_secs_f64() / f64::from(repeats);
        let started = std::time::Instant::now();
        for _ in 0..repeats {
            mlp.loss_and_gradient(&parameters, inputs, labels, &mut workspace, &mut gradient);
        }
        let backward = started.elapsed().as_secs_f64() / f64::from(repeats);
        println!(
            "forward {:.3} ms, forward + backward {:.3} ms",
            forward * 1e3,
            backward * 1e3
        );
        for noise_sigma in [0.0, 0.01] {
            let settings = SgdSettings {
                learning_rate: 0.01,
                momentum: 0.9,
                noise: NoiseSettings {
                    sigma: noise_sigma,
                    ..NoiseSettings::silent()
                },
                batch_size: 128,
            };
            let mut sgd = NoisySgd::new(
                &mlp,
                &dataset,
                settings,
                stream(1, Stream::BatchOrder),
                stream(1, Stream::TrainingNoise),
            );
            sgd.step(&mlp, &mut parameters);
            let steps = 200;
            let started = std::time::Instant::now();
            for _ in 0..steps {
                sgd.step(&mlp, &mut parameters);
            }
            let per_step = started.elapsed().as_secs_f64() / f64::from(steps);
            println!(
                "784→256→256→10, batch 128, σ = {noise_sigma}: {:.3} ms per step",
                per_step * 1e3
            );
        }
    }
}
