//! PAC-Bayes flatness (Jiang et al. 2020, science.md §4): the largest σ' of a grid fixed in
//! advance for which Gaussian weight noise N(0, σ'² I) lowers the training accuracy by at most
//! [`ACCURACY_DROP`] on average, found by bisection over the grid's indices. Flat minima tolerate
//! a large σ'. The grid is the same for every trial and every data set, so the bound built on
//! σ' pays for the choice with a union bound over its [`SIGMA_GRID_SIZE`] members.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::data::Dataset;
use crate::data::transform::select;
use crate::model::evaluate::{EVALUATION_CHUNK, evaluate};
use crate::model::mlp::{Mlp, Workspace};
use crate::model::simd::on_widest_simd;
use crate::rng::{Stream, stream};

/// The accuracy drop that defines σ'.
pub const ACCURACY_DROP: f64 = 0.1;

/// Training examples the search measures the accuracy on (evenly strided), so that a wide
/// network's search costs a few forward passes, not dozens over the whole set.
const EXAMPLES: usize = 512;

/// The most memory the search keeps its noise draws in (D f64 per draw); a larger network draws
/// them again at every σ, from the same streams, so the numbers do not depend on which it does.
const KEPT_DRAWS_BYTES: usize = 256 << 20;

/// σ_j = 10⁻⁵ · 2^{j/8}, j < 240: 30 octaves (10⁻⁵ to 10⁴) at 9% spacing, fixed before any data
/// is seen.
pub const SIGMA_GRID_SIZE: usize = 240;
const GRID_START: f64 = 1e-5;
const GRID_STEPS_PER_OCTAVE: f64 = 8.0;

/// The j-th σ of the grid.
pub fn grid_sigma(index: usize) -> f64 {
    GRID_START * (index as f64 / GRID_STEPS_PER_OCTAVE).exp2()
}

/// The accuracy drop under weight noise σ, averaged over fixed noise draws (the same draws at
/// every σ, so that the drop varies smoothly with σ).
pub struct NoisyAccuracy<'a> {
    mlp: &'a Mlp,
    minimum: &'a [f32],
    sample: Dataset,
    draws: u32,
    seed: u64,
    workspace: Workspace,
    perturbed: Vec<f32>,
    /// z_d for every draw d, drawn once, where they fit in [`KEPT_DRAWS_BYTES`].
    kept_draws: Vec<Vec<f64>>,
    /// z_d for the draw at hand, where they do not.
    draw: Vec<f64>,
    base_accuracy: f64,
}

impl<'a> NoisyAccuracy<'a> {
    /// On an evenly strided sample of at most [`EXAMPLES`] training examples: the search's.
    pub fn new(mlp: &'a Mlp, minimum: &'a [f32], train: &Dataset, draws: u32, seed: u64) -> Self {
        Self::on(mlp, minimum, strided_sample(train, EXAMPLES), draws, seed)
    }

    /// On every training example: the bound's empirical error of the noisy network.
    pub fn on_all(
        mlp: &'a Mlp,
        minimum: &'a [f32],
        train: &Dataset,
        draws: u32,
        seed: u64,
    ) -> Self {
        Self::on(mlp, minimum, train.clone(), draws, seed)
    }

    fn on(mlp: &'a Mlp, minimum: &'a [f32], sample: Dataset, draws: u32, seed: u64) -> Self {
        let mut workspace = Workspace::new(mlp, sample.len().clamp(1, EVALUATION_CHUNK));
        let base_accuracy = 1.0 - evaluate(mlp, minimum, &sample, &mut workspace, None).error;
        let keep = (draws as usize).saturating_mul(minimum.len()) <= KEPT_DRAWS_BYTES / 8;
        let kept_draws = if keep {
            (0..draws)
                .map(|draw| {
                    let mut values = vec![0.0; minimum.len()];
                    fill_draw(seed, draw, &mut values);
                    values
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            mlp,
            minimum,
            sample,
            draws,
            seed,
            workspace,
            perturbed: vec![0.0; minimum.len()],
            draw: if keep {
                Vec::new()
            } else {
                vec![0.0; minimum.len()]
            },
            kept_draws,
            base_accuracy,
        }
    }

    /// acc(Θ̂) − mean over draws d of acc(Θ̂ + σ z_d), z_d ~ N(0, I).
    pub fn drop_at(&mut self, sigma: f64) -> f64 {
        let mut accuracy = 0.0;
        for draw in 0..self.draws {
            let noise = match self.kept_draws.get(draw as usize) {
                Some(kept) => kept,
                None => {
                    fill_draw(self.seed, draw, &mut self.draw);
                    &self.draw
                }
            };
            let (perturbed, minimum) = (&mut self.perturbed, self.minimum);
            on_widest_simd(
                #[inline(always)]
                || {
                    for ((slot, &value), &z) in perturbed.iter_mut().zip(minimum).zip(noise) {
                        *slot = (f64::from(value) + sigma * z) as f32;
                    }
                },
            );
            let evaluation = evaluate(
                self.mlp,
                &self.perturbed,
                &self.sample,
                &mut self.workspace,
                None,
            );
            accuracy += 1.0 - evaluation.error;
        }
        self.base_accuracy - accuracy / f64::from(self.draws)
    }
}

/// z_d ~ N(0, I), one coordinate per parameter, from draw d's own stream.
fn fill_draw(seed: u64, draw: u32, values: &mut [f64]) {
    let mut rng = stream(seed, Stream::Flatness(draw));
    for slot in values {
        *slot = rng.sample(StandardNormal);
    }
}

/// The grid index of σ': the largest j whose drop is at most [`ACCURACY_DROP`], by bisection
/// over the indices (the drop grows with σ); None when even the smallest σ drops more.
pub fn flatness_index(mut drop_at: impl FnMut(f64) -> f64) -> Option<usize> {
    // Invariant: every index ≤ low passes (−1: none known), every index ≥ high fails.
    let (mut low, mut high) = (-1i64, SIGMA_GRID_SIZE as i64);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if drop_at(grid_sigma(middle as usize)) <= ACCURACY_DROP {
            low = middle;
        } else {
            high = middle;
        }
    }
    usize::try_from(low).ok()
}

/// What the flatness bound is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flatness {
    /// σ' from the grid; 0 when no grid σ keeps the drop within [`ACCURACY_DROP`].
    pub sigma: f64,
    /// L̂(Q) − L̂(Θ̂): the noisy network's 0-1 training error above the trained network's, over
    /// the whole training set with the same draws (0 when σ' is 0).
    pub error_increase: f64,
}

/// σ' by the grid search on the strided sample, then the noisy network's error there on the whole
/// training set. None without draws.
pub fn measure_flatness(
    mlp: &Mlp,
    minimum: &[f32],
    train: &Dataset,
    draws: u32,
    seed: u64,
) -> Option<Flatness> {
    if draws == 0 {
        return None;
    }
    let mut search = NoisyAccuracy::new(mlp, minimum, train, draws, seed);
    let Some(index) = flatness_index(|sigma| search.drop_at(sigma)) else {
        return Some(Flatness {
            sigma: 0.0,
            error_increase: 0.0,
        });
    };
    let sigma = grid_sigma(index);
    let error_increase = NoisyAccuracy::on_all(mlp, minimum, train, draws, seed).drop_at(sigma);
    Some(Flatness {
        sigma,
        error_increase,
    })
}

/// Every ⌊i·n/k⌋-th example, i < k: a subsample spread over a data set whose files may be sorted
/// by class.
fn strided_sample(dataset: &Dataset, examples: usize) -> Dataset {
    let count = examples.min(dataset.len());
    let indices: Vec<usize> = (0..count).map(|i| i * dataset.len() / count).collect();
    select(dataset, &indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::Activation;

    #[test]
    fn sigma_prime_brackets_the_accuracy_drop() {
        let mlp = Mlp::new(6, 24, 3, 2, Activation::Relu, true);
        let mut rng = stream(5, Stream::Init);
        let minimum = mlp.initialize(vocabulary::Init::He, &mut rng);
        // Labels from the network itself: accuracy 1 at the minimum, so noise can only lower it.
        let inputs: Vec<f32> = (0..600 * 6)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let mut labelled = Dataset {
            inputs,
            labels: vec![0; 600],
            n: 600,
            dim: 6,
            classes: 3,
        };
        let mut workspace = Workspace::new(&mlp, 600);
        mlp.forward(&minimum, &labelled.inputs, 600, &mut workspace);
        labelled.labels = workspace
            .logits()
            .chunks_exact(3)
            .map(|row| {
                let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                row.iter().position(|&value| value == best).unwrap_or(0) as u32
            })
            .collect();
        let noisy = NoisyAccuracy::new(&mlp, &minimum, &labelled, 3, 11);
        assert_eq!(noisy.sample.len(), EXAMPLES);
        assert_eq!(noisy.base_accuracy, 1.0);
        let flatness = measure_flatness(&mlp, &minimum, &labelled, 3, 11).expect("draws");
        let sigma = flatness.sigma;
        assert!(sigma > 0.0 && sigma.is_finite(), "{sigma}");
        // σ' is a grid member, and the next grid σ up drops more.
        let index = (0..SIGMA_GRID_SIZE)
            .find(|&index| grid_sigma(index) == sigma)
            .expect("on the grid");

        // An independent evaluation of the drop, perturbing by hand with the same draws: on the
        // strided sample the search uses, and on every example as the bound takes it (labels from
        // the network: its own error is 0).
        let drop_on = |sigma: f64, dataset: &Dataset| -> f64 {
            let mut workspace = Workspace::new(&mlp, 64);
            let mut accuracy = 0.0;
            for draw in 0..3 {
                let mut rng = stream(11, Stream::Flatness(draw));
                let perturbed: Vec<f32> = minimum
                    .iter()
                    .map(|&w| (f64::from(w) + sigma * rng.sample::<f64, _>(StandardNormal)) as f32)
                    .collect();
                accuracy += 1.0 - evaluate(&mlp, &perturbed, dataset, &mut workspace, None).error;
            }
            1.0 - accuracy / 3.0
        };
        let sample = strided_sample(&labelled, EXAMPLES);
        let drop = |sigma: f64| drop_on(sigma, &sample);
        assert!(drop(sigma) <= ACCURACY_DROP, "{}", drop(sigma));
        let next = grid_sigma(index + 1);
        assert!(drop(next) > ACCURACY_DROP, "{}", drop(next));
        assert!(drop(sigma * 2.0) > ACCURACY_DROP, "{}", drop(sigma * 2.0));
        assert!((flatness.error_increase - drop_on(sigma, &labelled)).abs() < 1e-12);
        // A drop of 0.1 needs noise comparable with the weights, not orders of magnitude off.
        let scale = crate::measure::probe::euclidean_norm(&minimum) / (minimum.len() as f64).sqrt();
        assert!(
            sigma > 0.01 * scale && sigma < 10.0 * scale,
            "{sigma} vs {scale}"
        );
        // No draws, no answer.
        assert_eq!(measure_flatness(&mlp, &minimum, &labelled, 0, 11), None);
    }

    #[test]
    fn the_grid_search_finds_what_a_scan_of_the_fixed_grid_finds() {
        assert_eq!(grid_sigma(0), 1e-5);
        assert!((grid_sigma(8) / grid_sigma(0) - 2.0).abs() < 1e-12);
        assert!((grid_sigma(SIGMA_GRID_SIZE - 1) - 1e-5 * 2f64.powf(239.0 / 8.0)).abs() < 1e-6);
        // Monotone drops crossing 0.1 at several places, the ends included.
        for threshold in [1e-6, 1e-5, 3.3e-3, 0.71, 42.0, 1e5] {
            let drop = |sigma: f64| if sigma <= threshold { 0.05 } else { 0.5 };
            let scanned = (0..SIGMA_GRID_SIZE)
                .rev()
                .find(|&index| drop(grid_sigma(index)) <= 0.1);
            let mut calls = 0;
            let found = flatness_index(|sigma| {
                calls += 1;
                drop(sigma)
            });
            assert_eq!(found, scanned, "threshold {threshold}");
            assert!(calls <= 8, "{calls} evaluations");
        }
    }
}
