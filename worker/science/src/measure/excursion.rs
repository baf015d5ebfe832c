//! How far each layer's weights wander from Ŵ during the probe: max_t ||W_{ℓ,t} − Ŵ_ℓ|| in the
//! operator, Frobenius and (2,1) norms, what the stagnation-localized bound (science.md §4) is
//! built from.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::measure::norms::{euclidean_norm, multiply, multiply_transposed, normalize};
use crate::model::mlp::Mlp;

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

/// One layer's running maxima and the buffers its power iteration keeps between steps.
#[derive(Debug, Clone, PartialEq)]
struct LayerTracker {
    excursion: LayerExcursion,
    /// The current estimate of the top right singular vector (length fan_in).
    right: Vec<f64>,
    /// Where the iteration restarts if the displacement is ever zero.
    start: Vec<f64>,
    image: Vec<f64>,
}

impl LayerTracker {
    /// ||displacement||_op (W_t − Ŵ, rows × cols row-major) after [`ITERATIONS_PER_STEP`]
    /// iterations from the last step's vector.
    fn operator_norm(&mut self, displacement: &[f64], rows: usize, cols: usize) -> f64 {
        for _ in 0..ITERATIONS_PER_STEP {
            multiply(displacement, rows, cols, &self.right, &mut self.image);
            multiply_transposed(displacement, rows, cols, &self.image, &mut self.right);
            if !normalize(&mut self.right) {
                // A zero displacement (the probe has not moved this layer): start afresh later.
                self.right.copy_from_slice(&self.start);
                return 0.0;
            }
        }
        multiply(displacement, rows, cols, &self.right, &mut self.image);
        euclidean_norm(&self.image)
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
                LayerTracker {
                    excursion: LayerExcursion::default(),
                    right: start.clone(),
                    start,
                    image: vec![0.0; shape.fan_out],
                }
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
            let mut squares = 0.0;
            let mut two_one = 0.0;
            for row in weights.chunks_exact(shape.fan_in) {
                let row_squares: f64 = row.iter().map(|d| d * d).sum();
                squares += row_squares;
                two_one += row_squares.sqrt();
            }
            let spectral = tracker.operator_norm(weights, shape.fan_out, shape.fan_in);
            let excursion = &mut tracker.excursion;
            excursion.max_spectral = excursion.max_spectral.max(spectral);
            excursion.max_frobenius = excursion.max_frobenius.max(squares.sqrt());
            excursion.max_two_one = excursion.max_two_one.max(two_one);
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
        let mut displacement = StepDisplacement::new(parameters.len());
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
