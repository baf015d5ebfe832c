//! How far each layer's weights wander from Ŵ during the probe: max_t ||W_{ℓ,t} − Ŵ_ℓ|| in the
//! operator, Frobenius and (2,1) norms, what the stagnation-localized bound (science.md §4) is
//! built from.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::measure::norms::normalize;
use crate::model::mlp::Mlp;
use crate::model::simd::{dot_in_lanes, on_widest_simd};

/// Power iterations run on a layer's displacement when its tracking (re)starts from the start
/// vector: from a random vector one iteration falls short (by far, where the displacement has low
/// rank), from the last step's vector it does not.
const ITERATIONS_ON_RESTART: usize = 2;

/// The largest displacement of one layer's weight matrix over every step of every replicate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LayerExcursion {
    /// max_t ||W_t − Ŵ||_op, by warm-started power iteration: each step's value approaches the
    /// exact one from below.
    pub max_spectral: f64,
    pub max_frobenius: f64,
    pub max_two_one: f64,
}

/// One layer's running maxima and the vectors its power iteration keeps between steps.
#[derive(Debug, Clone, PartialEq)]
struct LayerTracker {
    excursion: LayerExcursion,
    /// The current estimate of the top right singular vector (length fan_in), unit length.
    right: Vec<f64>,
    /// Where the iteration restarts if the displacement is ever zero.
    start: Vec<f64>,
    /// (W_t − Ŵ)ᵀ(W_t − Ŵ) times `right`, as it is summed.
    next: Vec<f64>,
    /// Whether `right` is `start`, not yet iterated on a displacement.
    restarted: bool,
}

/// Lanes of one vector of f64 at the widest (AVX-512): rows of up to four such vectors take
/// [`LayerTracker::iterate_short`].
const SHORT_ROW_LANES: usize = 8;

/// Σ values, as the sum of [`SHORT_ROW_LANES`]-wide parts, then halved lane-wise down to one: the
/// additions a vector's horizontal sum makes, in a fixed order.
#[inline(always)]
fn tree_sum<const PADDED: usize>(values: [f64; PADDED]) -> f64 {
    let mut lanes = [0.0; SHORT_ROW_LANES];
    for part in values.chunks_exact(SHORT_ROW_LANES) {
        for (lane, value) in lanes.iter_mut().zip(part) {
            *lane += value;
        }
    }
    let mut width = SHORT_ROW_LANES;
    while width > 1 {
        width /= 2;
        for lane in 0..width {
            lanes[lane] += lanes[lane + width];
        }
    }
    lanes[0]
}

/// A layer's displacement W_t − Ŵ in the norms the excursion tracks.
struct LayerNorms {
    spectral: f64,
    frobenius: f64,
    two_one: f64,
}

impl LayerTracker {
    fn new(start: Vec<f64>) -> Self {
        Self {
            excursion: LayerExcursion::default(),
            right: start.clone(),
            next: vec![0.0; start.len()],
            start,
            restarted: true,
        }
    }

    /// The norms of `displacement` (D = W_t − Ŵ, row-major with rows of `cols`), in one pass over
    /// its rows: each row's squared length (Frobenius and (2,1) norms) and its share of
    /// G r = DᵀD r for the last step's unit vector r. The operator norm is estimated as
    /// √||G r||, which lies between ||D r|| (the Rayleigh quotient's root) and ||D||_op; then
    /// r ← G r / ||G r||, one power iteration per step, warm-started, as D moves little from one
    /// step to the next (the test holds it within 1% of an exact SVD along a random walk).
    #[inline(always)]
    fn norms(&mut self, displacement: &[f64], cols: usize) -> LayerNorms {
        let (squares, two_one) = self.iterate(displacement, cols, true);
        let frobenius = squares.sqrt();
        let mut spectral = self.advance();
        if self.restarted && spectral > 0.0 {
            for _ in 0..ITERATIONS_ON_RESTART {
                self.iterate(displacement, cols, false);
                spectral = self.advance();
            }
        }
        self.restarted = spectral == 0.0;
        LayerNorms {
            spectral,
            frobenius,
            two_one,
        }
    }

    /// `next` = DᵀD `right`, row by row: each row's product with `right`, then its share of the
    /// transposed product while the row is in registers. With `norms`, also the sums of the
    /// rows' squared lengths and of their lengths.
    #[inline(always)]
    fn iterate(&mut self, displacement: &[f64], cols: usize, norms: bool) -> (f64, f64) {
        match cols.div_ceil(SHORT_ROW_LANES) {
            1 => self.iterate_short::<8>(displacement, cols, norms),
            2 => self.iterate_short::<16>(displacement, cols, norms),
            3 => self.iterate_short::<24>(displacement, cols, norms),
            4 => self.iterate_short::<32>(displacement, cols, norms),
            _ => self.iterate_long(displacement, cols, norms),
        }
    }

    /// [`Self::iterate`] for rows of at most `PADDED` values, `PADDED` a multiple of
    /// [`SHORT_ROW_LANES`]: along such a row a loop is mostly its remainder and its final sum, so
    /// each row is read as `PADDED` values (running into the next row, whose values a mask
    /// zeroes) and summed in a fixed tree.
    #[inline(always)]
    fn iterate_short<const PADDED: usize>(
        &mut self,
        displacement: &[f64],
        cols: usize,
        norms: bool,
    ) -> (f64, f64) {
        let (mut squares, mut two_one) = (0.0, 0.0);
        let mut mask = [0.0; PADDED];
        let mut right = [0.0; PADDED];
        mask[..cols].fill(1.0);
        right[..cols].copy_from_slice(&self.right);
        let mut next = [0.0; PADDED];
        let rows = displacement.len().checked_div(cols).unwrap_or(0);
        // Rows whose padded read stays inside the layer; the rest are read from a padded copy.
        let inside = displacement
            .len()
            .checked_sub(PADDED)
            .map_or(0, |room| room / cols + 1)
            .min(rows);
        let mut last = [0.0; PADDED];
        for index in 0..rows {
            let start = index * cols;
            let row: &[f64; PADDED] = if index < inside {
                displacement[start..start + PADDED]
                    .try_into()
                    .expect("PADDED values from the row's start")
            } else {
                last[..cols].copy_from_slice(&displacement[start..start + cols]);
                &last
            };
            let mut masked = [0.0; PADDED];
            let mut products = [0.0; PADDED];
            let mut own_squares = [0.0; PADDED];
            for k in 0..PADDED {
                masked[k] = row[k] * mask[k];
                products[k] = masked[k] * right[k];
                own_squares[k] = masked[k] * masked[k];
            }
            let image = tree_sum(products);
            if norms {
                let row_squares = tree_sum(own_squares);
                squares += row_squares;
                two_one += row_squares.sqrt();
            }
            for k in 0..PADDED {
                next[k] += image * masked[k];
            }
        }
        self.next.copy_from_slice(&next[..cols]);
        (squares, two_one)
    }

    /// [`Self::iterate`] for rows long enough to vectorise along.
    #[inline(always)]
    fn iterate_long(&mut self, displacement: &[f64], cols: usize, norms: bool) -> (f64, f64) {
        let (mut squares, mut two_one) = (0.0, 0.0);
        self.next.fill(0.0);
        for row in displacement.chunks_exact(cols) {
            if norms {
                let row_squares = dot_in_lanes(row, row);
                squares += row_squares;
                two_one += row_squares.sqrt();
            }
            let image = dot_in_lanes(row, &self.right);
            for (slot, value) in self.next.iter_mut().zip(row) {
                *slot += image * value;
            }
        }
        (squares, two_one)
    }

    /// √||`next`|| as the operator norm's estimate, and `right` ← `next` / ||`next`||; where
    /// `next` is zero (the probe has not moved this layer), 0, and `right` back at the start.
    #[inline(always)]
    fn advance(&mut self) -> f64 {
        std::mem::swap(&mut self.right, &mut self.next);
        let length = dot_in_lanes(&self.right, &self.right).sqrt();
        if !normalize(&mut self.right) {
            self.right.copy_from_slice(&self.start);
            return 0.0;
        }
        length.sqrt()
    }
}

/// Running maxima per layer, updated after every probe step.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerExcursions {
    layers: Vec<LayerTracker>,
}

impl LayerExcursions {
    /// Start vectors of the power iterations drawn from `rng`.
    pub fn new(mlp: &Mlp, rng: &mut impl Rng) -> Self {
        let layers = mlp
            .layers()
            .iter()
            .map(|shape| {
                let mut start: Vec<f64> = (0..shape.fan_in)
                    .map(|_| rng.sample(StandardNormal))
                    .collect();
                if !normalize(&mut start) {
                    start.fill(1.0 / (shape.fan_in.max(1) as f64).sqrt());
                }
                LayerTracker::new(start)
            })
            .collect();
        Self { layers }
    }

    /// Folds in W_t − Ŵ read from the whole displacement Θ_t − Θ̂ (f64, flat like the
    /// parameters), which the probe forms once per step; rows of a weight matrix are its fan-out
    /// units.
    pub fn observe_displacement(&mut self, mlp: &Mlp, displacement: &[f64]) {
        for (tracker, shape) in self.layers.iter_mut().zip(mlp.layers()) {
            let weights = &displacement[shape.weight_range()];
            let norms = on_widest_simd(
                #[inline(always)]
                || tracker.norms(weights, shape.fan_in),
            );
            let excursion = &mut tracker.excursion;
            excursion.max_spectral = excursion.max_spectral.max(norms.spectral);
            excursion.max_frobenius = excursion.max_frobenius.max(norms.frobenius);
            excursion.max_two_one = excursion.max_two_one.max(norms.two_one);
        }
    }

    pub fn into_layers(self) -> Vec<LayerExcursion> {
        self.layers
            .into_iter()
            .map(|tracker| tracker.excursion)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::norms::{frobenius_norm, two_one_norm};
    use crate::measure::step_displacement::StepDisplacement;
    use crate::rng::{Stream, stream};
    use vocabulary::Activation;

    /// Folds in the point `parameters`, as the probe does after a step.
    fn observe(excursions: &mut LayerExcursions, mlp: &Mlp, parameters: &[f32], minimum: &[f32]) {
        let mut displacement = StepDisplacement::new(parameters.len(), &[]);
        displacement.update(parameters, minimum);
        excursions.observe_displacement(mlp, displacement.values());
    }

    fn exact_operator_norm(matrix: &[f64], rows: usize, cols: usize) -> f64 {
        nalgebra::DMatrix::from_row_slice(rows, cols, matrix)
            .singular_values()
            .max()
    }

    fn displacement(
        shape: &crate::model::mlp::LayerShape,
        point: &[f32],
        minimum: &[f32],
    ) -> Vec<f64> {
        shape
            .weight_range()
            .map(|i| f64::from(point[i]) - f64::from(minimum[i]))
            .collect()
    }

    #[test]
    fn maxima_match_the_matrix_norms_of_the_largest_displacement() {
        // Rows of 3 and 4 (padded) and of 40 (along the row).
        for (input, width) in [(3, 4), (40, 6)] {
            let mlp = Mlp::new(input, width, 2, 2, Activation::Relu, true);
            let minimum: Vec<f32> = (0..mlp.parameter_count()).map(|i| i as f32 * 0.1).collect();
            let mut excursions = LayerExcursions::new(&mlp, &mut stream(1, Stream::ProbeExcursion));
            let shifted = |scale: f32| -> Vec<f32> {
                minimum
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| m + scale * ((i % 5) as f32 - 2.0))
                    .collect()
            };
            for scale in [0.5, 2.0, 1.0] {
                observe(&mut excursions, &mlp, &shifted(scale), &minimum);
            }
            let largest = shifted(2.0);
            for (excursion, shape) in excursions.into_layers().iter().zip(mlp.layers()) {
                let difference = displacement(shape, &largest, &minimum);
                let frobenius = frobenius_norm(&difference);
                let two_one = two_one_norm(&difference, shape.fan_out, shape.fan_in);
                assert!((excursion.max_frobenius - frobenius).abs() < 1e-5 * frobenius);
                assert!((excursion.max_two_one - two_one).abs() < 1e-5 * two_one);
            }
        }
    }

    /// A probe-like walk: Gaussian increments, so the displacement's direction drifts step by
    /// step; the tracked maximum against the largest exact singular value over the whole walk.
    #[test]
    fn the_operator_norm_excursion_follows_an_exact_svd_along_a_random_walk() {
        // Rows of 7 and 12 (one padded vector or two), of 20 (read running into the next row,
        // the last rows from a copy), and of 40 and 36 (along the row).
        for (input, width, classes, depth) in [(7, 12, 5, 3), (20, 9, 4, 2), (40, 36, 3, 2)] {
            let mlp = Mlp::new(input, width, classes, depth, Activation::Relu, true);
            let mut rng = stream(9, Stream::ProbeBatches(0));
            let minimum: Vec<f32> = (0..mlp.parameter_count())
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            let mut point = minimum.clone();
            let mut excursions = LayerExcursions::new(&mlp, &mut stream(9, Stream::ProbeExcursion));
            let mut exact_maxima = vec![0.0f64; mlp.layers().len()];
            for _ in 0..200 {
                for value in &mut point {
                    *value += 0.01 * rng.sample::<f32, _>(StandardNormal);
                }
                observe(&mut excursions, &mlp, &point, &minimum);
                for (maximum, shape) in exact_maxima.iter_mut().zip(mlp.layers()) {
                    let difference = displacement(shape, &point, &minimum);
                    *maximum = maximum.max(exact_operator_norm(
                        &difference,
                        shape.fan_out,
                        shape.fan_in,
                    ));
                }
            }
            for (excursion, exact) in excursions.into_layers().iter().zip(&exact_maxima) {
                assert!(
                    excursion.max_spectral <= exact * (1.0 + 1e-9),
                    "{} above {exact}",
                    excursion.max_spectral
                );
                assert!(
                    excursion.max_spectral >= 0.99 * exact,
                    "{} vs {exact} in {input}→{width}→{classes}",
                    excursion.max_spectral
                );
                // The Frobenius stand-in it replaces: about sqrt(mn)/(sqrt m + sqrt n) times
                // larger.
                assert!(excursion.max_frobenius > 1.2 * excursion.max_spectral);
            }
        }
    }

    #[test]
    fn a_probe_that_never_moves_a_layer_has_no_excursion() {
        let mlp = Mlp::new(3, 4, 2, 2, Activation::Relu, true);
        let minimum: Vec<f32> = (0..mlp.parameter_count()).map(|i| i as f32).collect();
        let mut excursions = LayerExcursions::new(&mlp, &mut stream(2, Stream::ProbeExcursion));
        observe(&mut excursions, &mlp, &minimum, &minimum);
        let mut moved = minimum.clone();
        moved[0] += 3.0;
        observe(&mut excursions, &mlp, &moved, &minimum);
        let layers = excursions.into_layers();
        assert!(
            (layers[0].max_spectral - 3.0).abs() < 1e-6,
            "{:?}",
            layers[0]
        );
        assert_eq!(layers[1], LayerExcursion::default());
    }
}
