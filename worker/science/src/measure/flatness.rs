//! PAC-Bayes flatness (Jiang et al. 2020, science.md §4): the largest σ' for which Gaussian
//! weight noise N(0, σ'² I) lowers the training accuracy by at most [`ACCURACY_DROP`] on average,
//! found by doubling then bisection. Flat minima tolerate a large σ'.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::data::Dataset;
use crate::data::transform::select;
use crate::measure::probe::euclidean_norm;
use crate::model::evaluate::evaluate;
use crate::model::mlp::{Mlp, Workspace};
use crate::rng::{Stream, stream};

/// The accuracy drop that defines σ'.
pub const ACCURACY_DROP: f64 = 0.1;

/// Training examples the accuracy is measured on (evenly strided), so that a wide network's
/// search costs a few forward passes, not dozens over the whole set.
const EXAMPLES: usize = 512;

/// Halvings of the bracket [σ, 2σ] after doubling: its ends then differ by 2^(1/256), 0.3%.
const BISECTION_STEPS: u32 = 8;

/// Doublings from the starting σ (1e-4 of the RMS weight) before giving up: 2^40 covers every
/// scale a trained network has.
const MAX_DOUBLINGS: u32 = 40;

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
    base_accuracy: f64,
}

impl<'a> NoisyAccuracy<'a> {
    pub fn new(mlp: &'a Mlp, minimum: &'a [f32], train: &Dataset, draws: u32, seed: u64) -> Self {
        let sample = strided_sample(train, EXAMPLES);
        let mut workspace = Workspace::new(mlp, sample.len().max(1));
        let base_accuracy = 1.0 - evaluate(mlp, minimum, &sample, &mut workspace, None).error;
        Self {
            mlp,
            minimum,
            sample,
            draws,
            seed,
            workspace,
            perturbed: vec![0.0; minimum.len()],
            base_accuracy,
        }
    }

    /// acc(Θ̂) − mean over draws d of acc(Θ̂ + σ z_d), z_d ~ N(0, I).
    pub fn drop_at(&mut self, sigma: f64) -> f64 {
        let mut accuracy = 0.0;
        for draw in 0..self.draws {
            let mut rng = stream(self.seed, Stream::Flatness(draw));
            for (slot, &value) in self.perturbed.iter_mut().zip(self.minimum) {
                let z: f64 = rng.sample(StandardNormal);
                *slot = (f64::from(value) + sigma * z) as f32;
            }
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

/// σ': the largest σ tried whose drop is at most [`ACCURACY_DROP`]. NaN without draws; the
/// last σ doubled to when no noise scale reaches the drop.
pub fn flatness_sigma(noisy: &mut NoisyAccuracy<'_>) -> f64 {
    if noisy.draws == 0 {
        return f64::NAN;
    }
    let scale = euclidean_norm(noisy.minimum) / (noisy.minimum.len().max(1) as f64).sqrt();
    let mut low = 0.0;
    let mut high = 1e-4 * scale.max(f64::MIN_POSITIVE);
    let mut doublings = 0;
    while noisy.drop_at(high) <= ACCURACY_DROP {
        low = high;
        high *= 2.0;
        doublings += 1;
        if doublings == MAX_DOUBLINGS {
            return low;
        }
    }
    for _ in 0..BISECTION_STEPS {
        let middle = if low > 0.0 {
            (low * high).sqrt()
        } else {
            high / 2.0
        };
        if noisy.drop_at(middle) <= ACCURACY_DROP {
            low = middle;
        } else {
            high = middle;
        }
    }
    low
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
        let mut noisy = NoisyAccuracy::new(&mlp, &minimum, &labelled, 3, 11);
        assert_eq!(noisy.sample.len(), EXAMPLES);
        assert_eq!(noisy.base_accuracy, 1.0);
        let sigma = flatness_sigma(&mut noisy);
        assert!(sigma > 0.0 && sigma.is_finite(), "{sigma}");

        // An independent evaluation of the drop, perturbing by hand over the whole set's
        // strided sample with the same draws.
        let drop = |sigma: f64| -> f64 {
            let sample = strided_sample(&labelled, EXAMPLES);
            let mut workspace = Workspace::new(&mlp, 64);
            let mut accuracy = 0.0;
            for draw in 0..3 {
                let mut rng = stream(11, Stream::Flatness(draw));
                let perturbed: Vec<f32> = minimum
                    .iter()
                    .map(|&w| (f64::from(w) + sigma * rng.sample::<f64, _>(StandardNormal)) as f32)
                    .collect();
                accuracy += 1.0 - evaluate(&mlp, &perturbed, &sample, &mut workspace, None).error;
            }
            1.0 - accuracy / 3.0
        };
        assert!(drop(sigma) <= ACCURACY_DROP, "{}", drop(sigma));
        assert!(drop(sigma * 1.01) > ACCURACY_DROP - 0.02);
        assert!(drop(sigma * 2.0) > ACCURACY_DROP, "{}", drop(sigma * 2.0));
        // A drop of 0.1 needs noise comparable with the weights, not orders of magnitude off.
        let scale = euclidean_norm(&minimum) / (minimum.len() as f64).sqrt();
        assert!(
            sigma > 0.01 * scale && sigma < 10.0 * scale,
            "{sigma} vs {scale}"
        );
        // No draws, no answer.
        let mut none = NoisyAccuracy::new(&mlp, &minimum, &labelled, 0, 11);
        assert!(flatness_sigma(&mut none).is_nan());
    }
}
