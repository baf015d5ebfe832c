//! The Gaussian gradient noise ξ of `science.md` §1 in its four forms, as a standard deviation
//! per block of the flat parameter vector (one block per layer's weights and biases).

use std::ops::Range;

use rand::Rng;
use rand_distr::StandardNormal;
use vocabulary::NoiseForm;

use crate::model::mlp::Mlp;

/// What a sweep says about the noise of one phase (training or probe).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSettings {
    pub sigma: f64,
    pub form: NoiseForm,
    pub inverse_temperature: Option<f64>,
}

impl NoiseSettings {
    pub fn silent() -> Self {
        Self {
            sigma: 0.0,
            form: NoiseForm::PerCoordinate,
            inverse_temperature: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NoiseScales {
    blocks: Vec<(Range<usize>, f32)>,
}

impl NoiseScales {
    /// The standard deviation of each coordinate's noise for `mlp` trained at `learning_rate`.
    pub fn new(mlp: &Mlp, settings: NoiseSettings, learning_rate: f64) -> Self {
        let all = 0..mlp.parameter_count();
        let blocks = match settings.form {
            NoiseForm::PerCoordinate => vec![(all, settings.sigma)],
            NoiseForm::FixedTotal => {
                let count = mlp.parameter_count().max(1) as f64;
                vec![(all, settings.sigma / count.sqrt())]
            }
            NoiseForm::PerLayer => mlp
                .layers()
                .iter()
                .map(|layer| {
                    let end = layer
                        .bias_range()
                        .map_or(layer.weight_range().end, |bias| bias.end);
                    let sigma = settings.sigma / (layer.fan_in as f64).sqrt();
                    (layer.weight_offset..end, sigma)
                })
                .collect(),
            // η ξ must be sqrt(2η/β) ζ: ξ has standard deviation sqrt(2 / (η β)).
            NoiseForm::Langevin => {
                let beta = settings.inverse_temperature.unwrap_or(f64::INFINITY);
                vec![(all, (2.0 / (learning_rate * beta)).sqrt())]
            }
        };
        Self {
            blocks: blocks
                .into_iter()
                .filter(|(range, sigma)| !range.is_empty() && *sigma > 0.0 && sigma.is_finite())
                .map(|(range, sigma)| (range, sigma as f32))
                .collect(),
        }
    }

    pub fn is_silent(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The largest standard deviation of any coordinate's noise (0 when silent).
    pub fn largest_sigma(&self) -> f64 {
        self.blocks
            .iter()
            .map(|(_, sigma)| f64::from(*sigma))
            .fold(0.0, f64::max)
    }

    /// E||ξ||², the total variance: Σ over blocks of size · σ².
    pub fn total_variance(&self) -> f64 {
        self.blocks
            .iter()
            .map(|(range, sigma)| range.len() as f64 * f64::from(*sigma).powi(2))
            .sum()
    }

    /// Adds one draw of ξ to `gradient`, coordinates in order (the same draws as before the forms
    /// existed, for the per-coordinate form, so earlier results reproduce).
    pub fn add_to(&self, gradient: &mut [f32], rng: &mut impl Rng) {
        self.add_scaled_to(gradient, 1.0, rng);
    }

    /// Adds `factor` · ξ for one draw of ξ, coordinates in order as [`Self::add_to`] draws them;
    /// returns the largest magnitude added.
    pub fn add_scaled_to(&self, values: &mut [f32], factor: f32, rng: &mut impl Rng) -> f32 {
        let mut largest = 0.0f32;
        for (range, sigma) in &self.blocks {
            let Some(block) = values.get_mut(range.clone()) else {
                continue;
            };
            let scale = factor * sigma;
            for value in block {
                let draw: f32 = rng.sample(StandardNormal);
                let added = scale * draw;
                *value += added;
                largest = largest.max(added.abs());
            }
        }
        largest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};
    use vocabulary::Activation;

    /// 10 → 40 → 40 → 3 with biases: 440 + 1640 + 123 = 2203 parameters.
    fn network() -> Mlp {
        Mlp::new(10, 40, 3, 3, Activation::Relu, true)
    }

    fn settings(form: NoiseForm, inverse_temperature: Option<f64>) -> NoiseSettings {
        NoiseSettings {
            sigma: 0.3,
            form,
            inverse_temperature,
        }
    }

    /// The sample variance of ξ over each layer's block, from `draws` draws.
    fn layer_variances(scales: &NoiseScales, mlp: &Mlp, draws: usize) -> Vec<f64> {
        let mut rng = stream(7, Stream::TrainingNoise);
        let mut sums = vec![0.0f64; mlp.layers().len()];
        let mut counts = vec![0usize; mlp.layers().len()];
        for _ in 0..draws {
            let mut noise = vec![0.0f32; mlp.parameter_count()];
            scales.add_to(&mut noise, &mut rng);
            for (index, layer) in mlp.layers().iter().enumerate() {
                let end = layer
                    .bias_range()
                    .map_or(layer.weight_range().end, |bias| bias.end);
                for value in &noise[layer.weight_offset..end] {
                    sums[index] += f64::from(*value).powi(2);
                    counts[index] += 1;
                }
            }
        }
        sums.iter()
            .zip(&counts)
            .map(|(sum, count)| sum / *count as f64)
            .collect()
    }

    #[test]
    fn the_largest_magnitude_added_is_reported() {
        let scales = NoiseScales::new(&network(), settings(NoiseForm::PerLayer, None), 0.1);
        let mut values = vec![0.0f32; network().parameter_count()];
        let largest =
            scales.add_scaled_to(&mut values, -0.5, &mut stream(3, Stream::ProbeNoise(0)));
        let want = values.iter().fold(0.0f32, |m, value| m.max(value.abs()));
        assert!(want > 0.0);
        assert_eq!(largest, want);
    }

    #[test]
    fn each_form_has_the_variance_of_its_closed_form() {
        let mlp = network();
        assert_eq!(mlp.parameter_count(), 2203);
        let expected: [(NoiseSettings, [f64; 3]); 4] = [
            // σ² = 0.09 everywhere.
            (settings(NoiseForm::PerCoordinate, None), [0.09; 3]),
            // σ² / fan_in: 0.09/10, 0.09/40, 0.09/40.
            (
                settings(NoiseForm::PerLayer, None),
                [0.009, 0.00225, 0.00225],
            ),
            // σ² / D = 0.09 / 2203.
            (settings(NoiseForm::FixedTotal, None), [0.09 / 2203.0; 3]),
            // 2 / (η β) with η = 0.05, β = 1000: 0.04.
            (settings(NoiseForm::Langevin, Some(1000.0)), [0.04; 3]),
        ];
        for (noise, variances) in expected {
            let scales = NoiseScales::new(&mlp, noise, 0.05);
            // 200 draws of ≥ 123 coordinates: the relative standard error of a variance is
            // sqrt(2 / (200 · 123)) ≈ 0.9%, so 5% is over five standard errors.
            for (measured, expected) in layer_variances(&scales, &mlp, 200).iter().zip(variances) {
                assert!(
                    (measured / expected - 1.0).abs() < 0.05,
                    "{:?}: measured {measured}, expected {expected}",
                    noise.form
                );
            }
        }
    }

    #[test]
    fn fixed_total_holds_the_total_variance_as_width_grows() {
        for width in [16, 256, 1024] {
            let mlp = Mlp::new(10, width, 3, 3, Activation::Relu, true);
            let fixed = NoiseScales::new(&mlp, settings(NoiseForm::FixedTotal, None), 0.1);
            assert!(
                (fixed.total_variance() - 0.09).abs() < 1e-6,
                "width {width}"
            );
            let per_coordinate =
                NoiseScales::new(&mlp, settings(NoiseForm::PerCoordinate, None), 0.1);
            let expected = 0.09 * mlp.parameter_count() as f64;
            assert!((per_coordinate.total_variance() / expected - 1.0).abs() < 1e-6);
        }
        let silent = NoiseScales::new(&network(), NoiseSettings::silent(), 0.1);
        assert!(silent.is_silent());
    }
}
