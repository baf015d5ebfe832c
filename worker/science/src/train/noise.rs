//! The Gaussian gradient noise ξ of `science.md` §1 in its four forms, as a standard deviation
//! per block of the flat parameter vector (one block per layer's weights and biases).

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use vocabulary::NoiseForm;

use crate::model::mlp::Mlp;
use crate::model::simd::on_widest_simd;
use crate::model::team::share_out_chunks;
use crate::rng::normal::{GROUP, normal_group};

/// Which generator draws the gradient noise, stored with every result. 1: ChaCha8 and
/// rand_distr's ziggurat, one coordinate after another (until December 2026). 2: Philox4x32-10 and
/// Box–Muller, each coordinate's draw a function of (seed, run, step, coordinate) alone.
pub const NOISE_STREAM_VERSION: u32 = 2;

/// Coordinates per thread below which drawing the noise on one thread is faster (1 MB).
const MIN_PART: usize = 1 << 18;

/// The gradient noise of one run of noisy SGD (the training, or one probe replicate). Draw t's
/// value at coordinate j depends on the trial seed, the run, t and j alone (Philox counters
/// (j/4, t, run) under the seed as key): any part of a draw is computed without the rest, so the
/// numbers do not depend on how many threads draw them, or in what pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoiseStream {
    key: [u32; 2],
    run: u32,
    draws: u64,
}

impl NoiseStream {
    /// The noise of the training run of the trial seeded with `seed`.
    pub fn training(seed: u64) -> Self {
        Self::new(seed, 0)
    }

    /// The noise of probe replicate `replicate` of the trial seeded with `seed`.
    pub fn probe(seed: u64, replicate: u32) -> Self {
        Self::new(seed, replicate.wrapping_add(1))
    }

    fn new(seed: u64, run: u32) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
            run,
            draws: 0,
        }
    }

    /// The Philox counter words after the block index for the next draw, which it then counts.
    fn next_draw(&mut self) -> [u32; 3] {
        let draw = self.draws;
        self.draws += 1;
        [draw as u32, (draw >> 32) as u32, self.run]
    }
}

/// Adds `scale` · z_j to each value, z_j the draw of coordinate `first + j` of the draw whose
/// counter words are `draw`; returns the largest magnitude added. Call it inside
/// [`on_widest_simd`].
#[inline(always)]
fn add_normals(values: &mut [f32], first: usize, scale: f32, key: [u32; 2], draw: [u32; 3]) -> f32 {
    let mut normals = [0.0f32; GROUP];
    // The largest |z| as bits (which order as the magnitudes do), so that the loop vectorises;
    // |scale · z| rounds monotonically in |z|, so the largest product is that of the largest z.
    // Kept per position in the group and taken over them at the end: a running maximum of the
    // whole group would be a horizontal reduction in every group.
    let mut largest_normals = [0u32; GROUP];
    let mut coordinate = first;
    let mut rest = values;
    while !rest.is_empty() {
        let offset = coordinate % GROUP;
        let (head, tail) = rest.split_at_mut((GROUP - offset).min(rest.len()));
        normal_group(key, draw, (coordinate / GROUP) as u32, &mut normals);
        let drawn = head.iter_mut().zip(&normals[offset..]);
        for ((value, &normal), largest) in drawn.zip(&mut largest_normals[offset..]) {
            *value += scale * normal;
            *largest = (*largest).max(normal.to_bits() & 0x7fff_ffff);
        }
        coordinate += head.len();
        rest = tail;
    }
    let largest_normal = largest_normals.into_iter().max().unwrap_or(0);
    (scale * f32::from_bits(largest_normal)).abs()
}

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

    /// Adds the next draw of ξ from `noise` to `gradient`.
    pub fn add_to(&self, gradient: &mut [f32], noise: &mut NoiseStream) {
        self.add_scaled_to(gradient, 1.0, noise, 1);
    }

    /// Adds `factor` · ξ for the next draw of ξ from `noise`, on up to `threads` threads of the
    /// current team; returns the largest magnitude added.
    pub fn add_scaled_to(
        &self,
        values: &mut [f32],
        factor: f32,
        noise: &mut NoiseStream,
        threads: usize,
    ) -> f32 {
        let (key, draw) = (noise.key, noise.next_draw());
        let largest = AtomicU32::new(0);
        for (range, sigma) in &self.blocks {
            let Some(block) = values.get_mut(range.clone()) else {
                continue;
            };
            let scale = factor * sigma;
            let parts = threads.clamp(1, (block.len() / MIN_PART).max(1));
            // The call is written out in both branches: behind a shared closure, `add_normals`
            // was no longer inlined into the vector code, and the draw took twice as long.
            if parts == 1 {
                let block_largest = on_widest_simd(
                    #[inline(always)]
                    || add_normals(block, range.start, scale, key, draw),
                );
                largest.fetch_max(block_largest.to_bits(), Ordering::Relaxed);
                continue;
            }
            // Parts a whole number of groups long, so that no group is drawn twice.
            let part_len = block.len().div_ceil(parts).next_multiple_of(GROUP);
            share_out_chunks(block, part_len, &|index, values| {
                let first = range.start + index * part_len;
                let part_largest = on_widest_simd(
                    #[inline(always)]
                    || add_normals(values, first, scale, key, draw),
                );
                largest.fetch_max(part_largest.to_bits(), Ordering::Relaxed);
            });
        }
        f32::from_bits(largest.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut noise_stream = NoiseStream::training(7);
        let mut sums = vec![0.0f64; mlp.layers().len()];
        let mut counts = vec![0usize; mlp.layers().len()];
        for _ in 0..draws {
            let mut noise = vec![0.0f32; mlp.parameter_count()];
            scales.add_to(&mut noise, &mut noise_stream);
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
        let largest = scales.add_scaled_to(&mut values, -0.5, &mut NoiseStream::probe(3, 0), 1);
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

    #[test]
    fn a_draw_is_the_same_on_any_number_of_threads() {
        // Three parts of 2¹⁸ coordinates and a few more, so that the parts end mid-group.
        let mlp = Mlp::new(1000, 787, 1, 2, Activation::Relu, false);
        let scales = NoiseScales::new(&mlp, settings(NoiseForm::PerCoordinate, None), 0.1);
        let draw = |threads: usize| {
            let mut values = vec![0.0f32; mlp.parameter_count()];
            let mut noise = NoiseStream::probe(11, 2);
            crate::model::matmul::on_threads(threads, || {
                scales.add_scaled_to(&mut values, 1.0, &mut noise, threads);
                scales.add_scaled_to(&mut values, 1.0, &mut noise, threads)
            })
            .expect("the helper threads start");
            values
        };
        let alone = draw(1);
        assert_eq!(alone.len(), 787_787);
        for threads in [2, 3, 4] {
            let shared = draw(threads);
            assert!(
                alone
                    .iter()
                    .zip(&shared)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn a_coordinate_draw_depends_on_its_index_not_on_its_block() {
        // Per layer, the blocks start mid-group; their draws are those of the whole vector.
        let mlp = network();
        let whole = NoiseScales::new(&mlp, settings(NoiseForm::PerCoordinate, None), 0.1);
        let per_layer = NoiseScales::new(&mlp, settings(NoiseForm::PerLayer, None), 0.1);
        let mut everywhere = vec![0.0f32; mlp.parameter_count()];
        let mut by_layer = vec![0.0f32; mlp.parameter_count()];
        whole.add_to(&mut everywhere, &mut NoiseStream::training(5));
        per_layer.add_to(&mut by_layer, &mut NoiseStream::training(5));
        for layer in mlp.layers() {
            let end = layer
                .bias_range()
                .map_or(layer.weight_range().end, |bias| bias.end);
            let scale = (layer.fan_in as f32).sqrt();
            for index in layer.weight_offset..end {
                let (own, shared) = (by_layer[index] * scale, everywhere[index]);
                assert!((own - shared).abs() <= 1e-6 * shared.abs(), "{index}");
            }
        }
    }

    #[test]
    fn runs_steps_and_seeds_draw_uncorrelated_noise() {
        let mlp = Mlp::new(100, 200, 10, 2, Activation::Relu, true);
        let scales = NoiseScales::new(&mlp, settings(NoiseForm::PerCoordinate, None), 0.1);
        let draw = |noise: &mut NoiseStream| {
            let mut values = vec![0.0f32; mlp.parameter_count()];
            scales.add_to(&mut values, noise);
            values
        };
        let mut training = NoiseStream::training(1);
        let first = draw(&mut training);
        let others = [
            draw(&mut training),
            draw(&mut NoiseStream::probe(1, 0)),
            draw(&mut NoiseStream::probe(1, 1)),
            draw(&mut NoiseStream::training(2)),
            draw(&mut NoiseStream::training(1 << 32)),
        ];
        assert_eq!(draw(&mut NoiseStream::training(1)), first);
        // 22,210 coordinates: a correlation's standard error is 1/√n ≈ 0.0067.
        let n = first.len() as f64;
        for other in &others {
            let correlation: f64 = first
                .iter()
                .zip(other)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
                / (n * 0.09);
            assert!(correlation.abs() < 0.04, "correlation {correlation}");
        }
    }
}
