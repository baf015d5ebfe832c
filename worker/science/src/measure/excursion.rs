//! How far each layer's weights wander from Ŵ during the probe: max_t ||W_{ℓ,t} − Ŵ_ℓ|| in the
//! Frobenius and (2,1) norms, what the stagnation-localized bound (science.md §4) is built from.

use crate::model::mlp::Mlp;

/// The largest displacement of one layer's weight matrix over every step of every replicate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LayerExcursion {
    pub max_frobenius: f64,
    pub max_two_one: f64,
}

/// Running maxima per layer, updated after every probe step.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerExcursions {
    layers: Vec<LayerExcursion>,
}

impl LayerExcursions {
    pub fn new(mlp: &Mlp) -> Self {
        Self {
            layers: vec![LayerExcursion::default(); mlp.layers().len()],
        }
    }

    /// Folds in W_t − Ŵ for the point `parameters`; rows of a weight matrix are its fan-out units.
    pub fn observe(&mut self, mlp: &Mlp, parameters: &[f32], minimum: &[f32]) {
        for (excursion, shape) in self.layers.iter_mut().zip(mlp.layers()) {
            let range = shape.weight_range();
            let mut squares = 0.0;
            let mut two_one = 0.0;
            for (row, row_minimum) in parameters[range.clone()]
                .chunks_exact(shape.fan_in)
                .zip(minimum[range].chunks_exact(shape.fan_in))
            {
                let row_squares: f64 = row
                    .iter()
                    .zip(row_minimum)
                    .map(|(&w, &m)| (f64::from(w) - f64::from(m)).powi(2))
                    .sum();
                squares += row_squares;
                two_one += row_squares.sqrt();
            }
            excursion.max_frobenius = excursion.max_frobenius.max(squares.sqrt());
            excursion.max_two_one = excursion.max_two_one.max(two_one);
        }
    }

    pub fn into_layers(self) -> Vec<LayerExcursion> {
        self.layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::norms::{frobenius_norm, two_one_norm};
    use vocabulary::Activation;

    #[test]
    fn maxima_match_the_matrix_norms_of_the_largest_displacement() {
        let mlp = Mlp::new(3, 4, 2, 2, Activation::Relu, true);
        let minimum: Vec<f32> = (0..mlp.parameter_count()).map(|i| i as f32 * 0.1).collect();
        let mut excursions = LayerExcursions::new(&mlp);
        let shifted = |scale: f32| -> Vec<f32> {
            minimum
                .iter()
                .enumerate()
                .map(|(i, &m)| m + scale * ((i % 5) as f32 - 2.0))
                .collect()
        };
        for scale in [0.5, 2.0, 1.0] {
            excursions.observe(&mlp, &shifted(scale), &minimum);
        }
        let largest = shifted(2.0);
        for (excursion, shape) in excursions.into_layers().iter().zip(mlp.layers()) {
            let difference: Vec<f64> = shape
                .weight_range()
                .map(|i| f64::from(largest[i]) - f64::from(minimum[i]))
                .collect();
            let frobenius = frobenius_norm(&difference);
            let two_one = two_one_norm(&difference, shape.fan_out, shape.fan_in);
            assert!((excursion.max_frobenius - frobenius).abs() < 1e-5 * frobenius);
            assert!((excursion.max_two_one - two_one).abs() < 1e-5 * two_one);
        }
    }
}
