//! Exact Hessian-vector products of the full-batch mean cross-entropy by forward-over-reverse
//! differentiation (Pearlmutter's R-operator): one forward pass carries the directional
//! derivatives R{z} = d/dε z(Θ + εv) alongside the activations, one backward pass carries
//! R{δ} alongside the back-propagated errors, and R{∇R̂} = H v falls out of the weight-gradient
//! products. No step size, no cancellation: the only error is f32 rounding inside a chunk.
//!
//! The training set is processed in chunks of `chunk` examples; each chunk's contribution is
//! computed in f32 with `gemm` and accumulated into the f64 result, so the full-batch sum over
//! many chunks loses nothing to f32 accumulation.

use vocabulary::Activation;

use crate::model::matmul::{MatrixView, multiply};
use crate::model::mlp::{Mlp, flushed};
use crate::model::simd::on_widest_simd;

/// v ↦ ∇²R̂_n(Θ) v at fixed parameters Θ over a fixed labelled set, R̂_n the mean softmax
/// cross-entropy of [`Mlp::loss_and_gradient`]. Holds its buffers, so `apply` allocates nothing.
#[derive(Debug)]
pub struct HessianOperator<'a> {
    mlp: &'a Mlp,
    parameters: &'a [f32],
    inputs: &'a [f32],
    labels: &'a [u32],
    chunk: usize,
    /// Per layer, chunk × fan_out: activations σ(z) of hidden layers, logits z of the last.
    activations: Vec<Vec<f32>>,
    /// Per layer, chunk × fan_out: R{σ(z)} of hidden layers, R{z} of the last.
    directional: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_next: Vec<f32>,
    r_delta: Vec<f32>,
    r_delta_next: Vec<f32>,
    direction: Vec<f32>,
    chunk_product: Vec<f32>,
}

impl<'a> HessianOperator<'a> {
    /// `inputs` is `labels.len() × input_dim`, row-major; `chunk` examples per pass (memory
    /// ≈ 4 · chunk · Σ fan_out floats).
    pub fn new(
        mlp: &'a Mlp,
        parameters: &'a [f32],
        inputs: &'a [f32],
        labels: &'a [u32],
        chunk: usize,
    ) -> Self {
        assert_eq!(
            parameters.len(),
            mlp.parameter_count(),
            "parameter vector has the wrong length"
        );
        assert_eq!(
            inputs.len(),
            labels.len() * mlp.input_dim(),
            "inputs and labels disagree on the number of examples"
        );
        assert!(
            !labels.is_empty(),
            "the hessian of an empty set is undefined"
        );
        let chunk = chunk.clamp(1, labels.len());
        let widest = mlp
            .layers()
            .iter()
            .map(|layer| layer.fan_in.max(layer.fan_out))
            .max()
            .unwrap_or(0);
        let per_layer = || -> Vec<Vec<f32>> {
            mlp.layers()
                .iter()
                .map(|layer| vec![0.0; chunk * layer.fan_out])
                .collect()
        };
        Self {
            mlp,
            parameters,
            inputs,
            labels,
            chunk,
            activations: per_layer(),
            directional: per_layer(),
            delta: vec![0.0; chunk * widest],
            delta_next: vec![0.0; chunk * widest],
            r_delta: vec![0.0; chunk * widest],
            r_delta_next: vec![0.0; chunk * widest],
            direction: vec![0.0; mlp.parameter_count()],
            chunk_product: vec![0.0; mlp.parameter_count()],
        }
    }

    /// D, the number of parameters.
    pub fn dimension(&self) -> usize {
        self.mlp.parameter_count()
    }

    /// `out = H v`. `v` is scaled to unit length before it is rounded to f32 (H v is linear in
    /// v), so tiny or huge directions lose no precision.
    pub fn apply(&mut self, vector: &[f64], out: &mut [f64]) {
        let dimension = self.dimension();
        assert_eq!(vector.len(), dimension, "direction has the wrong length");
        assert_eq!(out.len(), dimension, "output has the wrong length");
        out.fill(0.0);
        let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            if !norm.is_finite() {
                out.fill(f64::NAN);
            }
            return;
        }
        for (slot, &value) in self.direction.iter_mut().zip(vector) {
            *slot = (value / norm) as f32;
        }
        let total = self.labels.len();
        let scale = 1.0 / total as f32;
        let input_dim = self.mlp.input_dim();
        let mut start = 0;
        while start < total {
            let end = (start + self.chunk).min(total);
            let inputs = &self.inputs[start * input_dim..end * input_dim];
            let labels = &self.labels[start..end];
            self.chunk_pass(inputs, labels, scale);
            let chunk_product = &self.chunk_product;
            on_widest_simd(
                #[inline(always)]
                || {
                    for (slot, &value) in out.iter_mut().zip(chunk_product) {
                        *slot += f64::from(value);
                    }
                },
            );
            start = end;
        }
        for slot in out.iter_mut() {
            *slot *= norm;
        }
    }

    /// Writes this chunk's share of H v (for the unit direction in `self.direction`) into
    /// `self.chunk_product`; `scale` = 1 / (examples in the whole set).
    fn chunk_pass(&mut self, inputs: &[f32], labels: &[u32], scale: f32) {
        let mlp = self.mlp;
        let threads = mlp.threads();
        let activation = mlp.activation();
        let batch = labels.len();
        let layers = mlp.layers();
        let last = layers.len() - 1;
        let parameters = self.parameters;
        let direction = &self.direction;

        // Forward: z = W a + b, R{z} = V a + W R{a} + V_b; hidden a = σ(z), R{a} = σ'(z) R{z}.
        for (index, layer) in layers.iter().enumerate() {
            let (earlier, current) = self.activations.split_at_mut(index);
            let (earlier_r, current_r) = self.directional.split_at_mut(index);
            let input = if index == 0 {
                inputs
            } else {
                &earlier[index - 1][..batch * layer.fan_in]
            };
            let output = &mut current[0][..batch * layer.fan_out];
            let r_output = &mut current_r[0][..batch * layer.fan_out];
            let has_bias = match layer.bias_range() {
                Some(range) => {
                    for row in output.chunks_exact_mut(layer.fan_out) {
                        row.copy_from_slice(&parameters[range.clone()]);
                    }
                    for row in r_output.chunks_exact_mut(layer.fan_out) {
                        row.copy_from_slice(&direction[range.clone()]);
                    }
                    true
                }
                None => false,
            };
            let input_view = MatrixView::row_major(input, batch, layer.fan_in);
            let weights = layer.weights(parameters);
            let weights_direction = layer.weights(direction);
            multiply(output, input_view, weights.transposed(), has_bias, threads);
            multiply(
                r_output,
                input_view,
                weights_direction.transposed(),
                has_bias,
                threads,
            );
            if index > 0 {
                let r_input = &earlier_r[index - 1][..batch * layer.fan_in];
                multiply(
                    r_output,
                    MatrixView::row_major(r_input, batch, layer.fan_in),
                    weights.transposed(),
                    true,
                    threads,
                );
            }
            if index < last {
                activate(activation, output, r_output);
            }
        }

        // Output layer: δ = (p − e_y)/n, R{δ} = (diag p − p pᵀ) R{z} / n.
        let classes = mlp.classes();
        let logits = &self.activations[last][..batch * classes];
        let r_logits = &self.directional[last][..batch * classes];
        for (((row, r_row), (delta, r_delta)), &label) in logits
            .chunks_exact(classes)
            .zip(r_logits.chunks_exact(classes))
            .zip(
                self.delta[..batch * classes]
                    .chunks_exact_mut(classes)
                    .zip(self.r_delta[..batch * classes].chunks_exact_mut(classes)),
            )
            .zip(labels)
        {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut exp_sum = 0.0f32;
            for (slot, &logit) in delta.iter_mut().zip(row) {
                let shifted = (logit - max).exp();
                *slot = shifted;
                exp_sum += shifted;
            }
            let mut mean_direction = 0.0f32;
            for (slot, &r_logit) in delta.iter_mut().zip(r_row) {
                *slot = flushed(*slot / exp_sum);
                mean_direction += *slot * r_logit;
            }
            for ((r_slot, slot), &r_logit) in r_delta.iter_mut().zip(delta.iter_mut()).zip(r_row) {
                *r_slot = scale * *slot * (r_logit - mean_direction);
                *slot *= scale;
            }
            delta[label as usize] -= scale;
        }

        // Backward: R{∇W} = R{δ}ᵀ a + δᵀ R{a}; R{δ_prev} = (R{δ} W + δ V) ⊙ σ' + (δ W) ⊙ σ'' R{z}.
        for index in (0..=last).rev() {
            let layer = layers[index];
            let (input, r_input) = if index == 0 {
                (inputs, None)
            } else {
                (
                    &self.activations[index - 1][..batch * layer.fan_in],
                    Some(&self.directional[index - 1][..batch * layer.fan_in]),
                )
            };
            let delta_view =
                MatrixView::row_major(&self.delta[..batch * layer.fan_out], batch, layer.fan_out);
            let r_delta_view =
                MatrixView::row_major(&self.r_delta[..batch * layer.fan_out], batch, layer.fan_out);
            let product = &mut self.chunk_product[layer.weight_range()];
            multiply(
                product,
                r_delta_view.transposed(),
                MatrixView::row_major(input, batch, layer.fan_in),
                false,
                threads,
            );
            if let Some(r_input) = r_input {
                multiply(
                    product,
                    delta_view.transposed(),
                    MatrixView::row_major(r_input, batch, layer.fan_in),
                    true,
                    threads,
                );
            }
            if let Some(range) = layer.bias_range() {
                let bias_product = &mut self.chunk_product[range];
                let r_delta = &self.r_delta[..batch * layer.fan_out];
                on_widest_simd(
                    #[inline(always)]
                    || {
                        bias_product.fill(0.0);
                        for row in r_delta.chunks_exact(layer.fan_out) {
                            for (slot, value) in bias_product.iter_mut().zip(row) {
                                *slot += value;
                            }
                        }
                    },
                );
            }
            let Some(r_input) = r_input else {
                continue;
            };
            let weights = layer.weights(parameters);
            let weights_direction = layer.weights(direction);
            let next = &mut self.delta_next[..batch * layer.fan_in];
            let r_next = &mut self.r_delta_next[..batch * layer.fan_in];
            multiply(next, delta_view, weights, false, threads);
            multiply(r_next, r_delta_view, weights, false, threads);
            multiply(r_next, delta_view, weights_direction, true, threads);
            back_through_activation(activation, next, r_next, input, r_input);
            std::mem::swap(&mut self.delta, &mut self.delta_next);
            std::mem::swap(&mut self.r_delta, &mut self.r_delta_next);
        }
    }
}

/// a = σ(z) and R{a} = σ'(z) R{z} in place of z and R{z}, compiled for the widest vector
/// instructions: with the activation chosen outside the loop, ReLU's is two selects.
fn activate(activation: Activation, values: &mut [f32], r_values: &mut [f32]) {
    on_widest_simd(
        #[inline(always)]
        || match activation {
            Activation::Relu => {
                for (value, r_value) in values.iter_mut().zip(r_values.iter_mut()) {
                    let off = *value <= 0.0;
                    *value = if off { 0.0 } else { *value };
                    *r_value = if off { 0.0 } else { *r_value };
                }
            }
            Activation::Tanh => {
                for (value, r_value) in values.iter_mut().zip(r_values.iter_mut()) {
                    *value = value.tanh();
                    *r_value *= 1.0 - *value * *value;
                }
            }
        },
    );
}

/// The back-propagated errors δW and R{δW} (in `slots`, `r_slots`) times σ' at the layer's input
/// `values` (= σ(z)), with R{δ} also taking δW ⊙ σ''(z) R{z}.
fn back_through_activation(
    activation: Activation,
    slots: &mut [f32],
    r_slots: &mut [f32],
    values: &[f32],
    r_values: &[f32],
) {
    on_widest_simd(
        #[inline(always)]
        || match activation {
            Activation::Relu => {
                for ((slot, r_slot), &value) in slots.iter_mut().zip(r_slots.iter_mut()).zip(values)
                {
                    let off = value <= 0.0;
                    *slot = if off { 0.0 } else { *slot };
                    *r_slot = if off { 0.0 } else { *r_slot };
                }
            }
            Activation::Tanh => {
                for (((slot, r_slot), &value), &r_value) in slots
                    .iter_mut()
                    .zip(r_slots.iter_mut())
                    .zip(values)
                    .zip(r_values)
                {
                    // σ' = 1 − a², σ'' R{z} = −2a (1 − a²) R{z} = −2a R{a}.
                    let back = *slot;
                    let derivative = 1.0 - value * value;
                    *r_slot = *r_slot * derivative - 2.0 * value * r_value * back;
                    *slot = back * derivative;
                }
            }
        },
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::mlp::tests::{random_batch, randomize_biases};
    use crate::rng::{Stream, stream};
    use rand::Rng;
    use rand_distr::StandardNormal;
    use vocabulary::Init;

    /// An independent f64 forward pass and mean cross-entropy, written without the engine (the
    /// one the engine's own gradient tests use).
    fn reference_loss(mlp: &Mlp, parameters: &[f64], inputs: &[f64], labels: &[u32]) -> f64 {
        crate::model::mlp::tests::reference_loss(mlp, parameters, inputs, labels, mlp.activation())
            .0
    }

    /// The dense Hessian of the reference loss by second central differences with step h:
    /// H_ij ≈ [f(+i+j) − f(+i−j) − f(−i+j) + f(−i−j)] / 4h².
    fn reference_hessian(
        mlp: &Mlp,
        parameters: &[f64],
        inputs: &[f64],
        labels: &[u32],
        step: f64,
    ) -> Vec<f64> {
        let dimension = parameters.len();
        let mut hessian = vec![0.0; dimension * dimension];
        let mut shifted = parameters.to_vec();
        for i in 0..dimension {
            for j in i..dimension {
                let mut corner = |si: f64, sj: f64| {
                    shifted[i] += si * step;
                    shifted[j] += sj * step;
                    let value = reference_loss(mlp, &shifted, inputs, labels);
                    shifted[i] = parameters[i];
                    shifted[j] = parameters[j];
                    value
                };
                let value = (corner(1.0, 1.0) - corner(1.0, -1.0) - corner(-1.0, 1.0)
                    + corner(-1.0, -1.0))
                    / (4.0 * step * step);
                hessian[i * dimension + j] = value;
                hessian[j * dimension + i] = value;
            }
        }
        hessian
    }

    pub(crate) struct TinyProblem {
        pub mlp: Mlp,
        pub parameters: Vec<f32>,
        pub inputs: Vec<f32>,
        pub labels: Vec<u32>,
    }

    pub(crate) fn tiny_problem(
        activation: Activation,
        bias: bool,
        depth: usize,
        seed: u64,
    ) -> TinyProblem {
        let (input_dim, width, classes, batch) = (3, 4, 3, 7);
        let mlp = Mlp::new(input_dim, width, classes, depth, activation, bias);
        let mut rng = stream(seed, Stream::Init);
        let mut parameters = mlp.initialize(Init::He, &mut rng);
        randomize_biases(&mlp, &mut parameters, &mut rng);
        let (inputs, labels) = random_batch(&mut rng, batch, input_dim, classes);
        TinyProblem {
            mlp,
            parameters,
            inputs,
            labels,
        }
    }

    /// The dense Hessian formed column by column from `apply` on the unit vectors.
    pub(crate) fn dense_from_products(operator: &mut HessianOperator<'_>) -> Vec<f64> {
        let dimension = operator.dimension();
        let mut dense = vec![0.0; dimension * dimension];
        let mut unit = vec![0.0; dimension];
        let mut column = vec![0.0; dimension];
        for j in 0..dimension {
            unit[j] = 1.0;
            operator.apply(&unit, &mut column);
            unit[j] = 0.0;
            for i in 0..dimension {
                dense[i * dimension + j] = column[i];
            }
        }
        dense
    }

    fn check_against_second_differences(
        activation: Activation,
        bias: bool,
        depth: usize,
        chunk: usize,
        tolerance: f64,
    ) {
        let problem = tiny_problem(activation, bias, depth, 3 + depth as u64);
        let parameters64: Vec<f64> = problem.parameters.iter().map(|&v| f64::from(v)).collect();
        let inputs64: Vec<f64> = problem.inputs.iter().map(|&v| f64::from(v)).collect();
        let expected = reference_hessian(
            &problem.mlp,
            &parameters64,
            &inputs64,
            &problem.labels,
            1e-4,
        );
        let mut operator = HessianOperator::new(
            &problem.mlp,
            &problem.parameters,
            &problem.inputs,
            &problem.labels,
            chunk,
        );
        let dense = dense_from_products(&mut operator);
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let dimension = operator.dimension();
        for i in 0..dimension {
            for j in 0..dimension {
                let (got, want) = (dense[i * dimension + j], expected[i * dimension + j]);
                assert!(
                    (got - want).abs() <= tolerance * scale,
                    "{activation:?} bias {bias} depth {depth}: H[{i},{j}] {got} vs {want}"
                );
            }
        }
        // A general direction, scaled far from unit length: linearity in v.
        let mut rng = stream(9, Stream::PowerIteration);
        let direction: Vec<f64> = (0..dimension)
            .map(|_| 1e-7 * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let mut product = vec![0.0; dimension];
        operator.apply(&direction, &mut product);
        for i in 0..dimension {
            let want: f64 = (0..dimension)
                .map(|j| expected[i * dimension + j] * direction[j])
                .sum();
            assert!(
                (product[i] - want).abs() <= 1e-7 * tolerance * scale * dimension as f64,
                "row {i}: {} vs {want}",
                product[i]
            );
        }
    }

    #[test]
    fn tanh_products_match_second_differences_of_an_independent_loss() {
        for (depth, bias, chunk) in [(2, true, 7), (3, true, 3), (2, false, 1)] {
            check_against_second_differences(Activation::Tanh, bias, depth, chunk, 1e-5);
        }
    }

    #[test]
    fn relu_products_match_second_differences_of_an_independent_loss() {
        // Away from kinks a ReLU network's Hessian is that of a piecewise-linear map under the
        // cross-entropy; a step of 1e-4 crosses no kink for these draws.
        for (depth, bias, chunk) in [(2, true, 4), (3, false, 7)] {
            check_against_second_differences(Activation::Relu, bias, depth, chunk, 1e-5);
        }
    }

    #[test]
    fn the_zero_direction_maps_to_zero() {
        let problem = tiny_problem(Activation::Tanh, true, 2, 1);
        let mut operator = HessianOperator::new(
            &problem.mlp,
            &problem.parameters,
            &problem.inputs,
            &problem.labels,
            16,
        );
        let dimension = operator.dimension();
        let mut out = vec![1.0; dimension];
        operator.apply(&vec![0.0; dimension], &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
    }
}
