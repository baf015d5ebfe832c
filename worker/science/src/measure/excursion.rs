//! How far each layer's weights wander from Ŵ during the probe: max_t ||W_{ℓ,t} − Ŵ_ℓ|| in the
//! operator, Frobenius and (2,1) norms, what the stagnation-localized bound (science.md §4) is
//! built from.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::measure::norms::normalize;
use crate::measure::step_displacement::dot;
use crate::model::mlp::Mlp;
use crate::model::simd::on_widest_simd;

/// Power iterations on (W_t − Ŵ)ᵀ(W_t − Ŵ) per probe step. The displacement moves little from
/// one step to the next, so the previous step's right singular vector is already close: two
/// iterations from it keep the estimate within 1% of an exact SVD (see the test).
const ITERATIONS_PER_STEP: usize = 2;

/// The largest displacement of one layer's weight matrix over every step of every replicate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LayerExcursion {
    /// max_t ||W_t − Ŵ||_op, by warm-started power iteration: each step's value approaches the
    /// exact one from below.
    pub max_spectral: f64,
    pub max_frobenius: f64,
    pub max_two_one: f64,
}

/// Rows shorter than this are too short to vectorise along: such a layer's displacement is
/// copied column by column, and its products run along the columns (fan_out long) instead.
const SHORT_ROWS: usize = 64;

/// Columns are this many f64 (one cache line) longer than a column: at a stride of a power of two
/// the columns' writes, one per row, all fell into the same L1 cache set and evicted each other.
const COLUMN_PAD: usize = 8;

/// Rows of a column-major displacement handled together: their part of every column, and of
/// the image, stays in the L1 cache between the product and the transposed product.
const ROW_BLOCK: usize = 512;

/// One layer's running maxima and the buffers its power iteration keeps between steps.
#[derive(Debug, Clone, PartialEq)]
struct LayerTracker {
    excursion: LayerExcursion,
    /// The current estimate of the top right singular vector (length fan_in).
    right: Vec<f64>,
    /// Where the iteration restarts if the displacement is ever zero.
    start: Vec<f64>,
    /// (W_t − Ŵ)ᵀ(W_t − Ŵ) times `right`, as it is summed.
    next: Vec<f64>,
    /// W_t − Ŵ column by column (fan_in columns of fan_out) where rows are short; else empty.
    columns: Vec<f64>,
    /// (W_t − Ŵ) `right`, where the columns are used (length fan_out).
    image: Vec<f64>,
}

/// A layer's displacement W_t − Ŵ in the norms the excursion tracks.
struct LayerNorms {
    spectral: f64,
    frobenius: f64,
    two_one: f64,
}

impl LayerTracker {
    fn new(start: Vec<f64>, rows: usize) -> Self {
        let cols = start.len();
        let by_columns = cols < SHORT_ROWS;
        Self {
            excursion: LayerExcursion::default(),
            right: start.clone(),
            next: vec![0.0; cols],
            columns: if by_columns {
                vec![0.0; (rows + COLUMN_PAD) * cols]
            } else {
                Vec::new()
            },
            image: if by_columns {
                vec![0.0; rows]
            } else {
                Vec::new()
            },
            start,
        }
    }

    /// The norms of `displacement` (W_t − Ŵ, rows × cols row-major); the operator norm after
    /// [`ITERATIONS_PER_STEP`] power iterations from the last step's vector, each
    /// r ← (W_t − Ŵ)ᵀ(W_t − Ŵ) r / ||·||, then ||(W_t − Ŵ) r||.
    #[inline(always)]
    fn norms(&mut self, displacement: &[f64], cols: usize) -> LayerNorms {
        let (mut squares, mut two_one) = (0.0, 0.0);
        let by_columns = !self.columns.is_empty();
        let rows = displacement.len().checked_div(cols).unwrap_or(0);
        for (index, row) in displacement.chunks_exact(cols).enumerate() {
            let row_squares = dot(row, row);
            squares += row_squares;
            two_one += row_squares.sqrt();
            if by_columns {
                for (column, &value) in row.iter().enumerate() {
                    self.columns[column * (rows + COLUMN_PAD) + index] = value;
                }
            }
        }
        let frobenius = squares.sqrt();
        for _ in 0..ITERATIONS_PER_STEP {
            if by_columns {
                self.iterate_by_columns(rows, cols);
            } else {
                self.iterate_by_rows(displacement, cols);
            }
            std::mem::swap(&mut self.right, &mut self.next);
            if !normalize(&mut self.right) {
                // A zero displacement (the probe has not moved this layer): start afresh later.
                self.right.copy_from_slice(&self.start);
                return LayerNorms {
                    spectral: 0.0,
                    frobenius,
                    two_one,
                };
            }
        }
        let spectral = if by_columns {
            self.multiply_by_columns(rows, cols, 0..rows);
            dot(&self.image, &self.image).sqrt()
        } else {
            displacement
                .chunks_exact(cols)
                .map(|row| dot(row, &self.right).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        LayerNorms {
            spectral,
            frobenius,
            two_one,
        }
    }

    /// `next` = DᵀD `right` for row-major D, one pass over its rows: each row's product with
    /// `right`, then its share of the transposed product, while the row is in cache.
    #[inline(always)]
    fn iterate_by_rows(&mut self, displacement: &[f64], cols: usize) {
        self.next.fill(0.0);
        for row in displacement.chunks_exact(cols) {
            let image = dot(row, &self.right);
            for (slot, value) in self.next.iter_mut().zip(row) {
                *slot += image * value;
            }
        }
    }

    /// `next` = DᵀD `right` from D's columns, a block of rows at a time: the block's image
    /// Σ_j r_j D[block, j], then each column's product with it.
    #[inline(always)]
    fn iterate_by_columns(&mut self, rows: usize, cols: usize) {
        self.next.fill(0.0);
        for first in (0..rows).step_by(ROW_BLOCK) {
            let block = first..(first + ROW_BLOCK).min(rows);
            self.multiply_by_columns(rows, cols, block.clone());
            let columns = self.columns.chunks_exact(rows + COLUMN_PAD);
            for (column, slot) in columns.zip(&mut self.next) {
                *slot += dot(&column[block.clone()], &self.image[block.clone()]);
            }
        }
    }

    /// `image[block]` = (D `right`)[block] from D's columns.
    #[inline(always)]
    fn multiply_by_columns(&mut self, rows: usize, cols: usize, block: std::ops::Range<usize>) {
        let image = &mut self.image[block.clone()];
        image.fill(0.0);
        let columns = self.columns.chunks_exact(rows + COLUMN_PAD);
        for (column, &weight) in columns.zip(&self.right).take(cols) {
            for (slot, value) in image.iter_mut().zip(&column[block.clone()]) {
                *slot += weight * value;
            }
        }
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
                LayerTracker::new(start, shape.fan_out)
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
        let mlp = Mlp::new(3, 4, 2, 2, Activation::Relu, true);
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

    /// A probe-like walk: Gaussian increments, so the displacement's direction drifts step by
    /// step; the tracked maximum against the largest exact singular value over the whole walk.
    #[test]
    fn the_operator_norm_excursion_follows_an_exact_svd_along_a_random_walk() {
        let mlp = Mlp::new(7, 12, 5, 3, Activation::Relu, true);
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
                "{} vs {exact}",
                excursion.max_spectral
            );
            // The Frobenius stand-in it replaces: about sqrt(mn)/(sqrt m + sqrt n) times larger.
            assert!(excursion.max_frobenius > 1.2 * excursion.max_spectral);
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
