//! One step of mini-batch SGD with heavy-ball momentum and Gaussian gradient noise:
//! v ← μ v + (g + ξ), Θ ← Θ − η v, with ξ ~ N(0, σ² I). With μ = 0 this is Θ ← Θ − η (g + ξ).

use std::sync::atomic::{AtomicU32, Ordering};

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::Dataset;
use crate::model::evaluate::EVALUATION_CHUNK;
use crate::model::mlp::{Mlp, Workspace};
use crate::model::simd::{largest_magnitude, on_widest_simd};
use crate::model::team::share_out;
use crate::rng::{Stream, stream};
use crate::train::noise::{NoiseScales, NoiseSettings, NoiseStream};

/// While a bound on every |θ| stays below this, far under `f32::MAX`, the parameters are known to
/// be finite without reading them.
const TRUSTED_MAGNITUDE: f64 = f32::MAX as f64 / 4.0;

/// The factor by which the bound grows at each step besides the step's own terms: it covers the
/// rounding of θ − η g − η ξ, at most a relative 2⁻²⁴ per operation.
const ROUNDING_ALLOWANCE: f64 = 1.0 + 1.0 / (1u64 << 20) as f64;

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
///
/// It holds the parameters it trains, so that nothing changes them between steps behind the
/// bound on their magnitude it keeps: a step at width 4096 would otherwise read all 80 MB of them
/// again to learn that they are finite.
#[derive(Debug, Clone)]
pub struct NoisySgd<'d> {
    parameters: Vec<f32>,
    /// At least every |θ| (without momentum); infinite or NaN where unknown.
    largest_parameter: f64,
    dataset: &'d Dataset,
    settings: SgdSettings,
    order: BatchOrder,
    noise: NoiseStream,
    noise_scales: NoiseScales,
    workspace: Workspace,
    batch_inputs: Vec<f32>,
    batch_labels: Vec<u32>,
    velocity: Vec<f32>,
}

impl<'d> NoisySgd<'d> {
    /// The optimizer of a trial's training run from `seed`: its batch order and gradient noise
    /// come from the seed's [`Stream::BatchOrder`] and [`NoiseStream::training`].
    pub fn for_training(
        mlp: &Mlp,
        parameters: Vec<f32>,
        dataset: &'d Dataset,
        settings: SgdSettings,
        seed: u64,
    ) -> Self {
        Self::new(
            mlp,
            parameters,
            dataset,
            settings,
            stream(seed, Stream::BatchOrder),
            NoiseStream::training(seed),
        )
    }

    /// An optimizer that trains `parameters` from where they are.
    pub fn new(
        mlp: &Mlp,
        parameters: Vec<f32>,
        dataset: &'d Dataset,
        settings: SgdSettings,
        batch_order_rng: ChaCha8Rng,
        noise: NoiseStream,
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
            parameters,
            largest_parameter: f64::INFINITY,
            dataset,
            settings,
            order: BatchOrder::new(dataset.len(), batch_order_rng),
            noise,
            noise_scales: NoiseScales::new(mlp, settings.noise, f64::from(settings.learning_rate)),
            workspace: Workspace::new(mlp, capacity),
            batch_inputs: vec![0.0; settings.batch_size * dataset.dim],
            batch_labels: vec![0; settings.batch_size],
            velocity,
        }
    }

    pub fn parameters(&self) -> &[f32] {
        &self.parameters
    }

    pub fn into_parameters(self) -> Vec<f32> {
        self.parameters
    }

    /// The parameters and a workspace for evaluating the network between steps.
    pub fn parameters_and_workspace(&mut self) -> (&[f32], &mut Workspace) {
        (&self.parameters, &mut self.workspace)
    }

    pub fn step(&mut self, mlp: &Mlp) -> StepReport {
        let parameters = &mut self.parameters;
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
            self.noise_scales.add_scaled_to(
                &mut self.velocity,
                1.0,
                &mut self.noise,
                mlp.threads(),
            );
            let velocity = &self.velocity;
            let finite = on_widest_simd(
                #[inline(always)]
                || {
                    let mut finite = true;
                    for (parameter, &velocity) in parameters.iter_mut().zip(velocity) {
                        *parameter -= learning_rate * velocity;
                        finite &= parameter.is_finite();
                    }
                    finite
                },
            );
            (batch_loss, finite)
        } else {
            let descent = mlp.loss_and_descent(
                parameters,
                &self.batch_inputs,
                &self.batch_labels,
                &mut self.workspace,
                learning_rate,
            );
            let largest_noise = self.noise_scales.add_scaled_to(
                parameters,
                -learning_rate,
                &mut self.noise,
                mlp.threads(),
            );
            let finite = self.still_finite(descent.largest_change, largest_noise, mlp.threads());
            (descent.loss, finite)
        };
        StepReport {
            batch_loss,
            parameters_finite,
        }
    }

    /// Whether every parameter is finite after a descent step that moved none by more than
    /// `largest_change` and added noise of at most `largest_noise`. While the bound on their
    /// magnitude stays far below `f32::MAX` nothing is read; past it, the parameters are, and the
    /// bound becomes their exact largest magnitude again.
    fn still_finite(&mut self, largest_change: f64, largest_noise: f32, threads: usize) -> bool {
        // Twice the change: gemm's sums over the batch round too, by far less than that.
        let bound = (self.largest_parameter + 2.0 * largest_change + f64::from(largest_noise))
            * ROUNDING_ALLOWANCE;
        if bound <= TRUSTED_MAGNITUDE {
            self.largest_parameter = bound;
            return true;
        }
        let largest = largest_magnitude_shared(&self.parameters, threads);
        self.largest_parameter = f64::from(largest);
        largest.is_finite()
    }
}

/// The largest |value| (NaN where a value is NaN), the values cut into parts that the trial's
/// threads share out (a network of width 4096 has 80 MB of parameters).
fn largest_magnitude_shared(values: &[f32], threads: usize) -> f32 {
    /// Parts no smaller than this (1 MB), below which a thread costs more than it saves.
    const MIN_PART: usize = 1 << 18;
    let parts = threads.clamp(1, (values.len() / MIN_PART).max(1));
    let part_len = values.len().div_ceil(parts);
    // The bits of magnitudes order as the magnitudes do, and a NaN's lie above them all.
    let largest = AtomicU32::new(0);
    share_out(parts, &|part| {
        let start = (part * part_len).min(values.len());
        let end = (start + part_len).min(values.len());
        let part_largest = on_widest_simd(
            #[inline(always)]
            || largest_magnitude(&values[start..end]),
        );
        largest.fetch_max(part_largest.to_bits(), Ordering::Relaxed);
    });
    f32::from_bits(largest.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::matmul::on_threads;
    use crate::rng::{Stream, stream};
    use rand::Rng;
    use rand_distr::StandardNormal;
    use vocabulary::{Activation, Init};

    #[test]
    fn the_shared_largest_magnitude_finds_a_nan_or_the_largest_value_in_any_part() {
        // Three parts of about 1 MB on three threads, and the last part shorter.
        let len = 3 * (1 << 18) + 5;
        let mut values = vec![1.0f32; len];
        for threads in [1, 2, 3] {
            on_threads(threads, || {
                assert_eq!(largest_magnitude_shared(&values, threads), 1.0);
                for at in [0, len / 3, len / 2, len - 1] {
                    values[at] = -7.5;
                    assert_eq!(largest_magnitude_shared(&values, threads), 7.5);
                    values[at] = f32::NAN;
                    assert!(
                        largest_magnitude_shared(&values, threads).is_nan(),
                        "NaN at {at}, {threads} threads"
                    );
                    values[at] = 1.0;
                }
            })
            .expect("the helpers start");
        }
    }

    fn random_dataset(examples: usize, dim: usize, classes: usize) -> Dataset {
        let mut rng = stream(5, Stream::TrainInputs);
        Dataset {
            inputs: (0..examples * dim)
                .map(|_| rng.sample(StandardNormal))
                .collect(),
            labels: (0..examples)
                .map(|_| rng.random_range(0..classes as u32))
                .collect(),
            n: examples,
            dim,
            classes,
        }
    }

    #[test]
    fn a_step_reports_finiteness_as_reading_every_parameter_would() {
        let mlp = Mlp::new(12, 24, 3, 3, Activation::Relu, true);
        let dataset = random_dataset(64, 12, 3);
        let mut diverged = 0;
        for learning_rate in [0.05, 1e6, 1e15, 1e25, 1e36, 3e38] {
            for (sigma, momentum) in [(0.0, 0.0), (0.1, 0.0), (0.0, 0.9)] {
                let settings = SgdSettings {
                    learning_rate,
                    momentum,
                    noise: NoiseSettings {
                        sigma,
                        ..NoiseSettings::silent()
                    },
                    batch_size: 16,
                };
                let parameters = mlp.initialize(Init::He, &mut stream(2, Stream::Init));
                let mut sgd = NoisySgd::for_training(&mlp, parameters, &dataset, settings, 2);
                for step in 1..=12 {
                    let report = sgd.step(&mlp);
                    let largest = sgd
                        .parameters()
                        .iter()
                        .fold(0.0f64, |m, value| m.max(f64::from(value.abs())));
                    let finite = sgd.parameters().iter().all(|value| value.is_finite());
                    let case = format!("η {learning_rate}, σ {sigma}, μ {momentum}, step {step}");
                    assert_eq!(report.parameters_finite, finite, "{case}");
                    if finite && momentum == 0.0 {
                        assert!(
                            largest <= sgd.largest_parameter,
                            "{case}: |θ| reaches {largest}, above the bound {}",
                            sgd.largest_parameter
                        );
                    }
                    if learning_rate == 0.05 && momentum == 0.0 && step > 1 {
                        assert!(
                            sgd.largest_parameter > largest,
                            "{case}: the parameters were read where the bound sufficed"
                        );
                    }
                    if !finite {
                        diverged += 1;
                        break;
                    }
                }
            }
        }
        assert!(diverged >= 6, "only {diverged} runs overflowed");
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
