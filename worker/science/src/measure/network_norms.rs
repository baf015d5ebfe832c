//! Network-level inputs of the bounds (science.md §4) that need the parameter layout: per-layer
//! norms including ||W||_{1,∞}, the path norm, ||U_0 X||_F, and the sample statistics.

use rand::Rng;

use crate::measure::bounds::{LayerNorms, SampleStatistics};
use crate::measure::norms::{frobenius_norm, one_infinity_norm, spectral_norm, two_one_norm};
use crate::model::mlp::{LayerShape, Mlp};

/// [`LayerNorms`] of every layer's weight matrix at `parameters`, distances from `initial`;
/// spectral norms by `power_iterations` steps of power iteration.
pub fn layer_norms(
    mlp: &Mlp,
    parameters: &[f32],
    initial: &[f32],
    power_iterations: u32,
    rng: &mut impl Rng,
) -> Vec<LayerNorms> {
    mlp.layers()
        .iter()
        .map(|layer| {
            let (weights, displacement) = weights_and_displacement(layer, parameters, initial);
            let (rows, cols) = (layer.fan_out, layer.fan_in);
            LayerNorms {
                fan_in: layer.fan_in,
                fan_out: layer.fan_out,
                spectral: spectral_norm(&weights, rows, cols, power_iterations, rng),
                frobenius: frobenius_norm(&weights),
                one_infinity: one_infinity_norm(&weights, rows, cols),
                distance_frobenius: frobenius_norm(&displacement),
                distance_two_one: two_one_norm(&displacement, rows, cols),
            }
        })
        .collect()
}

/// The path norm of Jiang et al. (2020): the sum of the outputs of the network with every
/// parameter squared (biases included, as in their code) applied to the all-ones input, in
/// f64. All values along the way are non-negative, so ReLU acts as the identity; for a tanh
/// network the same ReLU-form value Σ_paths Π w² is returned (the activation is not applied).
/// A dense layer's weights W (row-major, fan_out × fan_in) and their displacement W − W⁰ from
/// initialisation, in double precision.
pub fn weights_and_displacement(
    layer: &LayerShape,
    parameters: &[f32],
    initial: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let range = layer.weight_range();
    let weights = parameters[range.clone()]
        .iter()
        .map(|&w| f64::from(w))
        .collect();
    let displacement = parameters[range.clone()]
        .iter()
        .zip(&initial[range])
        .map(|(&now, &start)| f64::from(now) - f64::from(start))
        .collect();
    (weights, displacement)
}

pub fn path_norm(mlp: &Mlp, parameters: &[f32]) -> f64 {
    let mut values = vec![1.0f64; mlp.input_dim()];
    for layer in mlp.layers() {
        let weights = &parameters[layer.weight_range()];
        let mut next: Vec<f64> = match layer.bias_range() {
            Some(range) => parameters[range]
                .iter()
                .map(|&b| f64::from(b) * f64::from(b))
                .collect(),
            None => vec![0.0; layer.fan_out],
        };
        for (slot, row) in next.iter_mut().zip(weights.chunks_exact(layer.fan_in)) {
            for (&w, value) in row.iter().zip(&values) {
                *slot += f64::from(w) * f64::from(w) * value;
            }
        }
        values = next;
    }
    values.iter().sum()
}

/// ||U_0 X||_F = sqrt(Σ_i ||U_0 x_i||²) for the first layer's weights in `initial` (its bias
/// left out, as in f = V[Ux]_+) over the rows of `inputs` (n × input_dim).
///
/// Computed as Σ_{f,g} (XᵀX)_{fg} (U_0ᵀU_0)_{fg} = tr(U_0 XᵀX U_0ᵀ), two d × d Gram matrices in
/// f64: (n + h)·d² multiply-adds for the input dimension d, instead of the n·h·d of forming U_0 X
/// (at width 4096 and d = 20, 20 times fewer). Both Gram matrices are positive semi-definite, so
/// the sum only cancels when U_0 nearly annihilates the inputs.
pub fn initial_image_frobenius(mlp: &Mlp, initial: &[f32], inputs: &[f32]) -> f64 {
    let first = mlp.layers()[0];
    let inputs_gram = gram_of_rows(inputs, first.fan_in);
    let weights_gram = gram_of_rows(&initial[first.weight_range()], first.fan_in);
    let total: f64 = inputs_gram
        .iter()
        .zip(&weights_gram)
        .map(|(x, u)| x * u)
        .sum();
    total.max(0.0).sqrt()
}

/// AᵀA for the rows of `rows` (each `columns` long), row-major `columns × columns`, in f64.
fn gram_of_rows(rows: &[f32], columns: usize) -> Vec<f64> {
    let mut gram = vec![0.0; columns * columns];
    let mut row64 = vec![0.0; columns];
    for row in rows.chunks_exact(columns) {
        for (slot, &value) in row64.iter_mut().zip(row) {
            *slot = f64::from(value);
        }
        for (gram_row, &left) in gram.chunks_exact_mut(columns).zip(&row64) {
            for (slot, &right) in gram_row.iter_mut().zip(&row64) {
                *slot += left * right;
            }
        }
    }
    gram
}

/// m, c, d and the input norms of the training inputs (`n × input_dim`, row-major).
pub fn sample_statistics(inputs: &[f32], input_dim: usize, classes: usize) -> SampleStatistics {
    let mut norm_squared_sum = 0.0;
    let mut max_abs_squared_sum = 0.0;
    let mut max_norm_squared = 0.0f64;
    let mut count = 0usize;
    for input in inputs.chunks_exact(input_dim) {
        let norm_squared: f64 = input.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let max_abs = input.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        norm_squared_sum += norm_squared;
        max_abs_squared_sum += max_abs * max_abs;
        max_norm_squared = max_norm_squared.max(norm_squared);
        count += 1;
    }
    SampleStatistics {
        train_size: count as f64,
        classes: classes as f64,
        input_dim: input_dim as f64,
        mean_input_norm_squared: norm_squared_sum / count as f64,
        mean_input_max_abs_squared: max_abs_squared_sum / count as f64,
        max_input_norm: max_norm_squared.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};
    use vocabulary::Activation;

    #[test]
    fn the_path_norm_sums_squared_path_products() {
        // 2 → 2 → 1 with biases. Layer 1: W = [[1, −2], [0.5, 0]], b = (1, −1);
        // layer 2: W = [[3, −1]], b = (2). Ones through squares: hidden (1 + 4 + 1, 0.25 + 0 + 1)
        // = (6, 1.25); output 9 · 6 + 1 · 1.25 + 4 = 59.25.
        let mlp = Mlp::new(2, 2, 1, 2, Activation::Relu, true);
        let parameters = [1.0, -2.0, 0.5, 0.0, 1.0, -1.0, 3.0, -1.0, 2.0];
        assert_eq!(path_norm(&mlp, &parameters), 59.25);
        // Without biases: hidden (5, 0.25); output 45 + 0.25 = 45.25, summed over 1 class.
        let mlp = Mlp::new(2, 2, 1, 2, Activation::Tanh, false);
        assert_eq!(path_norm(&mlp, &[1.0, -2.0, 0.5, 0.0, 3.0, -1.0]), 45.25);
    }

    #[test]
    fn the_image_norm_by_gram_matrices_matches_forming_every_image() {
        let mlp = Mlp::new(7, 33, 3, 2, Activation::Relu, true);
        let mut rng = stream(4, Stream::Init);
        let initial = mlp.initialize(vocabulary::Init::He, &mut rng);
        let inputs: Vec<f32> = (0..50 * 7)
            .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
            .collect();
        let first = mlp.layers()[0];
        let weights = &initial[first.weight_range()];
        let mut by_definition = 0.0f64;
        for input in inputs.chunks_exact(7) {
            for row in weights.chunks_exact(7) {
                let image: f64 = row
                    .iter()
                    .zip(input)
                    .map(|(&w, &x)| f64::from(w) * f64::from(x))
                    .sum();
                by_definition += image * image;
            }
        }
        let measured = initial_image_frobenius(&mlp, &initial, &inputs);
        assert!(
            (measured - by_definition.sqrt()).abs() < 1e-12 * by_definition.sqrt(),
            "{measured} vs {}",
            by_definition.sqrt()
        );
    }

    #[test]
    fn the_image_norm_and_sample_statistics_match_hand_computation() {
        // U_0 = [[1, 2], [0, −1]], inputs (1, 1) → (3, −1) and (2, −2) → (−2, 2): 9 + 1 + 4 + 4.
        let mlp = Mlp::new(2, 2, 3, 2, Activation::Relu, false);
        let mut initial = vec![0.0f32; mlp.parameter_count()];
        initial[..4].copy_from_slice(&[1.0, 2.0, 0.0, -1.0]);
        let inputs = [1.0, 1.0, 2.0, -2.0];
        assert!((initial_image_frobenius(&mlp, &initial, &inputs) - 18.0f64.sqrt()).abs() < 1e-12);
        // ||x||² = 2 and 8; ||x||_∞² = 1 and 4; max ||x|| = sqrt(8).
        let statistics = sample_statistics(&inputs, 2, 3);
        assert_eq!(statistics.train_size, 2.0);
        assert_eq!(statistics.mean_input_norm_squared, 5.0);
        assert_eq!(statistics.mean_input_max_abs_squared, 2.5);
        assert!((statistics.max_input_norm - 8.0f64.sqrt()).abs() < 1e-12);
        // Layer norms of the same first layer against a zero start: ||W||_F = sqrt(6),
        // ℓ1,∞ = 3, (2,1) of W − 0 = sqrt(5) + 1.
        let norms = layer_norms(
            &mlp,
            &initial,
            &vec![0.0; mlp.parameter_count()],
            200,
            &mut stream(1, Stream::PowerIteration),
        );
        assert!((norms[0].frobenius - 6.0f64.sqrt()).abs() < 1e-12);
        assert_eq!(norms[0].one_infinity, 3.0);
        assert!((norms[0].distance_two_one - (5.0f64.sqrt() + 1.0)).abs() < 1e-12);
        // Spectral norm of [[1, 2], [0, −1]]: sqrt of the top eigenvalue of WᵀW = [[1, 2], [2, 5]],
        // 3 + 2 sqrt(2), i.e. 1 + sqrt(2).
        assert!((norms[0].spectral - (1.0 + 2.0f64.sqrt())).abs() < 1e-9);
        assert_eq!(norms[1].spectral, 0.0);
    }
}
