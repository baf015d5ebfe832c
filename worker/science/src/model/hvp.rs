//! Exact Hessian-vector products of the full-batch mean cross-entropy by forward-over-reverse
//! differentiation (Pearlmutter's R-operator): one forward pass carries the directional
//! derivatives R{z} = d/dε z(Θ + εv) alongside the activations, one backward pass carries
//! R{δ} alongside the back-propagated errors, and R{∇R̂} = H v falls out of the weight-gradient
//! products. No step size, no cancellation: the only error is f32 rounding inside a chunk.
//!
//! The training set is processed in chunks of `chunk` examples; each chunk's contribution is
//! computed in f32 and accumulated into the f64 result, so the full-batch sum over many chunks
//! loses nothing to f32 accumulation.
//!
//! Values are held unit by unit (units × examples), as in `mlp.rs`, and a layer with a thin side
//! goes through the kernels of `thin.rs` as the training step does; other layers use `gemm`. Each
//! value and its directional derivative sit one after the other in a buffer, so that a sum of two
//! products with a thin side is one thin product over both: R{z} = V a + W R{a} is [V | W] times
//! [a ; R{a}], and Wᵀ R{δ} + Vᵀ δ is [W ; V]ᵀ times [R{δ} ; δ].

use vocabulary::Activation;

use crate::model::matmul::{Combine, MatrixView, multiply, multiply_combining};
use crate::model::mlp::{LayerShape, Mlp, flushed};
use crate::model::simd::{on_widest_simd, row_sums_in_lanes};
use crate::model::thin;

/// v ↦ ∇²R̂_n(Θ) v at fixed parameters Θ over a fixed labelled set, R̂_n the mean softmax
/// cross-entropy of [`Mlp::loss_and_gradient`]. Holds its buffers, so `apply` allocates nothing.
#[derive(Debug)]
pub struct HessianOperator<'a> {
    mlp: &'a Mlp,
    parameters: &'a [f32],
    inputs: &'a [f32],
    labels: &'a [u32],
    chunk: usize,
    /// Per layer, two fan_out × batch blocks one after the other: σ(z) then R{σ(z)} of a hidden
    /// layer, z then R{z} of the last.
    outputs: Vec<Vec<f32>>,
    /// Two fan_out × batch blocks, R{δ} then δ, of the layer being differentiated, and of the
    /// layer before it.
    errors: Vec<f32>,
    errors_previous: Vec<f32>,
    /// Per layer whose forward pass is a thin product over its outputs: [V | W], row by row
    /// (fan_out × 2 fan_in); empty for other layers. W's half is written once.
    side_by_side: Vec<Vec<f32>>,
    /// Per layer whose error is sent back by a thin product: [W ; V] (2 fan_out × fan_in); empty
    /// for other layers. W's half is written once.
    stacked: Vec<Vec<f32>>,
    direction: Vec<f32>,
    chunk_product: Vec<f32>,
}

/// Which products of a layer go through `thin.rs`, for a chunk of `batch` examples.
#[derive(Debug, Clone, Copy)]
struct ThinProducts {
    /// The forward pass and the weight gradient of a first layer with few inputs.
    few_inputs: bool,
    /// The forward pass of a later layer with few outputs.
    forward_to_few_outputs: bool,
    /// The weight gradient of a later layer with few outputs.
    gradient_to_few_outputs: bool,
    /// R{δ} sent back through a later ReLU layer whose outputs, doubled, are still few (the
    /// kernel applies ReLU's mask; tanh's R{δ} also needs δ without σ').
    send_back: bool,
}

impl ThinProducts {
    fn of(index: usize, layer: &LayerShape, activation: Activation, batch: usize) -> Self {
        let later = index > 0;
        Self {
            few_inputs: index == 0 && layer.fan_in <= thin::FEW_INPUTS,
            forward_to_few_outputs: later && layer.fan_out <= thin::FEW_OUTPUTS,
            gradient_to_few_outputs: later
                && thin::takes_gradient_to_few_outputs(layer.fan_out, layer.fan_in, batch),
            send_back: later
                && activation == Activation::Relu
                && 2 * layer.fan_out <= thin::FEW_OUTPUTS,
        }
    }
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
        let layers = mlp.layers();
        let widest = layers
            .iter()
            .map(|layer| layer.fan_in.max(layer.fan_out))
            .max()
            .unwrap_or(0);
        // Whether a layer's forward pass and its error go through `thin.rs` does not depend on
        // the chunk's size, only its weight gradient does.
        let thin = |index: usize, layer: &LayerShape| {
            ThinProducts::of(index, layer, mlp.activation(), chunk)
        };
        let joined = |wanted: fn(&ThinProducts) -> bool| -> Vec<Vec<f32>> {
            layers
                .iter()
                .enumerate()
                .map(|(index, layer)| {
                    let size = if wanted(&thin(index, layer)) {
                        2 * layer.fan_out * layer.fan_in
                    } else {
                        0
                    };
                    vec![0.0; size]
                })
                .collect()
        };
        let mut side_by_side = joined(|thin| thin.forward_to_few_outputs);
        let mut stacked = joined(|thin| thin.send_back);
        for (layer, (side_by_side, stacked)) in
            layers.iter().zip(side_by_side.iter_mut().zip(&mut stacked))
        {
            let weights = &parameters[layer.weight_range()];
            place_in_joined(layer, weights, Matrix::Weights, side_by_side, stacked);
        }
        Self {
            mlp,
            parameters,
            inputs,
            labels,
            chunk,
            outputs: layers
                .iter()
                .map(|layer| vec![0.0; 2 * chunk * layer.fan_out])
                .collect(),
            errors: vec![0.0; 2 * chunk * widest],
            errors_previous: vec![0.0; 2 * chunk * widest],
            side_by_side,
            stacked,
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
        self.place_direction_beside_weights();
        let total = self.labels.len();
        let scale = 1.0 / total as f32;
        let input_dim = self.mlp.input_dim();
        let mut start = 0;
        while start < total {
            let end = (start + self.chunk).min(total);
            let inputs = &self.inputs[start * input_dim..end * input_dim];
            let labels = &self.labels[start..end];
            self.forward(inputs, labels.len());
            self.output_errors(labels, scale);
            self.backward(inputs, labels.len());
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

    /// Writes V's half of `side_by_side` and `stacked`.
    fn place_direction_beside_weights(&mut self) {
        let joined = self.side_by_side.iter_mut().zip(&mut self.stacked);
        for (layer, (side_by_side, stacked)) in self.mlp.layers().iter().zip(joined) {
            let direction = &self.direction[layer.weight_range()];
            place_in_joined(layer, direction, Matrix::Direction, side_by_side, stacked);
        }
    }

    /// z = W a + b, R{z} = V a + W R{a} + V_b; hidden a = σ(z), R{a} = σ'(z) R{z}; into
    /// `outputs`, for the unit direction in `self.direction`.
    fn forward(&mut self, inputs: &[f32], batch: usize) {
        let mlp = self.mlp;
        let (threads, activation) = (mlp.threads(), mlp.activation());
        let layers = mlp.layers();
        let last = layers.len() - 1;
        let (parameters, direction) = (self.parameters, &self.direction);
        for (index, layer) in layers.iter().enumerate() {
            let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
            let thin = ThinProducts::of(index, layer, activation, batch);
            let (earlier, current) = self.outputs.split_at_mut(index);
            let (output, r_output) =
                current[0][..2 * fan_out * batch].split_at_mut(fan_out * batch);
            let bias = layer.bias_range().map(|range| &parameters[range]);
            let bias_direction = layer.bias_range().map(|range| &direction[range]);
            if thin.few_inputs {
                let inputs = &inputs[..batch * fan_in];
                for (weights, bias, output) in [
                    (parameters, bias, &mut *output),
                    (direction, bias_direction, &mut *r_output),
                ] {
                    let weights = &weights[layer.weight_range()];
                    thin::forward_from_few_inputs(
                        weights, bias, inputs, fan_in, batch, None, output, threads,
                    );
                }
            } else if thin.forward_to_few_outputs {
                // [a ; R{a}], fan_in × batch each.
                let input = &earlier[index - 1][..2 * fan_in * batch];
                thin::forward_to_few_outputs(
                    &parameters[layer.weight_range()],
                    bias,
                    &input[..fan_in * batch],
                    fan_out,
                    batch,
                    output,
                );
                thin::forward_to_few_outputs(
                    &self.side_by_side[index],
                    bias_direction,
                    input,
                    fan_out,
                    batch,
                    r_output,
                );
            } else {
                let (input, r_input) = if index == 0 {
                    let inputs = MatrixView::row_major(inputs, batch, fan_in);
                    (inputs.transposed(), None)
                } else {
                    let (input, r_input) =
                        earlier[index - 1][..2 * fan_in * batch].split_at(fan_in * batch);
                    (
                        MatrixView::row_major(input, fan_in, batch),
                        Some(MatrixView::row_major(r_input, fan_in, batch)),
                    )
                };
                let weights = layer.weights(parameters);
                let combine = fill_with_bias(output, bias, batch);
                multiply_combining(output, weights, input, combine, threads);
                let combine = fill_with_bias(r_output, bias_direction, batch);
                multiply_combining(r_output, layer.weights(direction), input, combine, threads);
                if let Some(r_input) = r_input {
                    multiply(r_output, weights, r_input, true, threads);
                }
            }
            if index < last {
                activate(activation, output, r_output);
            }
        }
    }

    /// The output layer's δ = (p − e_y)/n and R{δ} = (diag p − p pᵀ) R{z} / n into `errors`;
    /// `scale` = 1 / (examples in the whole set).
    fn output_errors(&mut self, labels: &[u32], scale: f32) {
        let (classes, batch) = (self.mlp.classes(), labels.len());
        let last = self.mlp.layers().len() - 1;
        let (logits, r_logits) =
            self.outputs[last][..2 * classes * batch].split_at(classes * batch);
        let (r_delta, delta) = self.errors[..2 * classes * batch].split_at_mut(classes * batch);
        for (example, &label) in labels.iter().enumerate() {
            let at = |class: usize| class * batch + example;
            let max = (0..classes)
                .map(|class| logits[at(class)])
                .fold(f32::NEG_INFINITY, f32::max);
            let mut exp_sum = 0.0f32;
            for class in 0..classes {
                let shifted = (logits[at(class)] - max).exp();
                delta[at(class)] = shifted;
                exp_sum += shifted;
            }
            let mut mean_direction = 0.0f32;
            for class in 0..classes {
                let probability = flushed(delta[at(class)] / exp_sum);
                delta[at(class)] = probability;
                mean_direction += probability * r_logits[at(class)];
            }
            for class in 0..classes {
                let probability = delta[at(class)];
                r_delta[at(class)] = scale * probability * (r_logits[at(class)] - mean_direction);
                delta[at(class)] = probability * scale;
            }
            delta[at(label as usize)] -= scale;
        }
    }

    /// R{∇W} = R{δ} aᵀ + δ R{a}ᵀ and R{∇b} = Σ R{δ} into `chunk_product`, layer by layer, with
    /// R{δ_prev} = σ' ⊙ (Wᵀ R{δ} + Vᵀ δ) + σ''(z) R{z} ⊙ Wᵀ δ and δ_prev = σ' ⊙ Wᵀ δ sent back.
    fn backward(&mut self, inputs: &[f32], batch: usize) {
        let mlp = self.mlp;
        let (threads, activation) = (mlp.threads(), mlp.activation());
        let layers = mlp.layers();
        let (parameters, direction) = (self.parameters, &self.direction);
        for (index, layer) in layers.iter().enumerate().rev() {
            let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
            let thin = ThinProducts::of(index, layer, activation, batch);
            let errors = &self.errors[..2 * fan_out * batch];
            let (r_delta, delta) = errors.split_at(fan_out * batch);
            let r_delta_view = MatrixView::row_major(r_delta, fan_out, batch);
            let delta_view = MatrixView::row_major(delta, fan_out, batch);
            let target = &mut self.chunk_product[layer.weight_range()];
            if index == 0 {
                let inputs = &inputs[..batch * fan_in];
                if thin.few_inputs {
                    thin::weight_gradient_of_few_inputs(
                        target,
                        Combine::Replace,
                        r_delta,
                        inputs,
                        fan_in,
                        batch,
                        threads,
                    );
                } else {
                    let inputs = MatrixView::row_major(inputs, batch, fan_in);
                    multiply(target, r_delta_view, inputs, false, threads);
                }
            } else {
                let (input, r_input) =
                    self.outputs[index - 1][..2 * fan_in * batch].split_at(fan_in * batch);
                if thin.gradient_to_few_outputs {
                    thin::weight_gradient_to_few_outputs(
                        target,
                        Combine::Replace,
                        r_delta,
                        input,
                        batch,
                    );
                    thin::weight_gradient_to_few_outputs(
                        target,
                        Combine::ACCUMULATE,
                        delta,
                        r_input,
                        batch,
                    );
                } else {
                    let input = MatrixView::row_major(input, fan_in, batch).transposed();
                    let r_input = MatrixView::row_major(r_input, fan_in, batch).transposed();
                    multiply(target, r_delta_view, input, false, threads);
                    multiply(target, delta_view, r_input, true, threads);
                }
            }
            if let Some(range) = layer.bias_range() {
                row_sums_in_lanes(r_delta, batch, &mut self.chunk_product[range]);
            }
            if index == 0 {
                break;
            }
            let (input, r_input) =
                self.outputs[index - 1][..2 * fan_in * batch].split_at(fan_in * batch);
            let (r_previous, previous) =
                self.errors_previous[..2 * fan_in * batch].split_at_mut(fan_in * batch);
            // δ itself is needed to send the error on, and by tanh's R{δ}; not by a first layer's
            // ReLU.
            let needs_delta = index > 1 || activation == Activation::Tanh;
            if thin.send_back {
                let stacked = &self.stacked[index];
                thin::send_back_through_few_outputs(
                    stacked, errors, input, batch, activation, r_previous, threads,
                );
                if needs_delta {
                    let weights = &parameters[layer.weight_range()];
                    thin::send_back_through_few_outputs(
                        weights, delta, input, batch, activation, previous, threads,
                    );
                }
            } else {
                let weights = layer.weights(parameters).transposed();
                let weights_direction = layer.weights(direction).transposed();
                multiply(r_previous, weights, r_delta_view, false, threads);
                multiply(r_previous, weights_direction, delta_view, true, threads);
                let previous = needs_delta.then(|| {
                    multiply(previous, weights, delta_view, false, threads);
                    previous
                });
                back_through_activation(activation, previous, r_previous, input, r_input);
            }
            std::mem::swap(&mut self.errors, &mut self.errors_previous);
        }
    }
}

/// Which of a layer's two matrices (fan_out × fan_in) goes into its joined buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Matrix {
    Weights,
    Direction,
}

/// Writes `values`, the layer's `matrix`, into its half of the joined buffers where it has them:
/// the direction V on the left of `side_by_side` ([V | W], row by row) and below in `stacked`
/// ([W ; V]); the weights W on the right and above.
fn place_in_joined(
    layer: &LayerShape,
    values: &[f32],
    matrix: Matrix,
    side_by_side: &mut [f32],
    stacked: &mut [f32],
) {
    let (fan_in, size) = (layer.fan_in, layer.fan_out * layer.fan_in);
    let direction = matrix == Matrix::Direction;
    if !side_by_side.is_empty() {
        let columns = if direction {
            0..fan_in
        } else {
            fan_in..2 * fan_in
        };
        let rows = side_by_side.chunks_exact_mut(2 * fan_in);
        for (row, values) in rows.zip(values.chunks_exact(fan_in)) {
            row[columns.clone()].copy_from_slice(values);
        }
    }
    if !stacked.is_empty() {
        let rows = if direction { size..2 * size } else { 0..size };
        stacked[rows].copy_from_slice(values);
    }
}

/// Fills each unit's row of `values` (units × batch) with its bias and says that a product is to
/// be added to it; without a bias, that it is to replace it.
fn fill_with_bias(values: &mut [f32], bias: Option<&[f32]>, batch: usize) -> Combine {
    let Some(bias) = bias else {
        return Combine::Replace;
    };
    for (unit, &bias) in values.chunks_exact_mut(batch).zip(bias) {
        unit.fill(bias);
    }
    Combine::ACCUMULATE
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

/// The back-propagated errors Wᵀδ and R{Wᵀδ} (in `slots`, `r_slots`) times σ' at the layer's
/// input `values` (= σ(z)), with R{δ} also taking Wᵀδ ⊙ σ''(z) R{z}. `slots` may be left out
/// where δ is not needed, but not for tanh, whose R{δ} reads it.
fn back_through_activation(
    activation: Activation,
    slots: Option<&mut [f32]>,
    r_slots: &mut [f32],
    values: &[f32],
    r_values: &[f32],
) {
    on_widest_simd(
        #[inline(always)]
        || match (activation, slots) {
            (Activation::Relu, slots) => {
                for (r_slot, &value) in r_slots.iter_mut().zip(values) {
                    *r_slot = if value <= 0.0 { 0.0 } else { *r_slot };
                }
                for (slot, &value) in slots.into_iter().flatten().zip(values) {
                    *slot = if value <= 0.0 { 0.0 } else { *slot };
                }
            }
            (Activation::Tanh, Some(slots)) => {
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
            (Activation::Tanh, None) => unreachable!("tanh's R{{δ}} reads δ"),
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

    /// uᵀ H v against the polarised second difference of the independent f64 loss,
    /// [f(Θ + h(u+v)) − f(Θ + h(u−v)) − f(Θ − h(u−v)) + f(Θ − h(u+v))] / 4h², on networks whose
    /// shapes send each product through `gemm` or through `thin.rs`: inputs beyond
    /// `thin::FEW_INPUTS`, hidden layers wider and narrower than `thin::FEW_OUTPUTS`, outputs too
    /// many to stack δ beside R{δ} in one thin product, both activations, partial chunks, and a
    /// network without a hidden layer.
    #[test]
    fn bilinear_forms_match_second_differences_through_every_kind_of_product() {
        // (inputs, width, classes, depth, activation, chunk)
        let shapes = [
            (40, 20, 17, 3, Activation::Tanh, 5),
            (5, 20, 9, 3, Activation::Relu, 6),
            (5, 24, 3, 3, Activation::Relu, 7),
            (5, 12, 4, 3, Activation::Tanh, 4),
            (36, 6, 5, 2, Activation::Relu, 11),
            (5, 7, 3, 1, Activation::Tanh, 4),
            (40, 7, 17, 1, Activation::Relu, 6),
        ];
        let examples = 11;
        for (seed, (input_dim, width, classes, depth, activation, chunk)) in
            shapes.into_iter().enumerate()
        {
            let mlp = Mlp::new(input_dim, width, classes, depth, activation, true);
            let mut rng = stream(20 + seed as u64, Stream::Init);
            let mut parameters = mlp.initialize(Init::He, &mut rng);
            randomize_biases(&mlp, &mut parameters, &mut rng);
            let (inputs, labels) = random_batch(&mut rng, examples, input_dim, classes);
            let parameters64: Vec<f64> = parameters.iter().map(|&v| f64::from(v)).collect();
            let inputs64: Vec<f64> = inputs.iter().map(|&v| f64::from(v)).collect();
            let mut operator = HessianOperator::new(&mlp, &parameters, &inputs, &labels, chunk);
            let dimension = operator.dimension();
            let mut direction = || -> Vec<f64> {
                (0..dimension)
                    .map(|_| rng.sample::<f64, _>(StandardNormal))
                    .collect()
            };
            let (u, v) = (direction(), direction());
            let mut product = vec![0.0; dimension];
            operator.apply(&v, &mut product);
            let got: f64 = u.iter().zip(&product).map(|(a, b)| a * b).sum();
            // Small enough that no ReLU kink lies within the step for these draws.
            let step = match activation {
                Activation::Relu => 1e-5,
                Activation::Tanh => 1e-3,
            };
            let loss_at = |a: f64, b: f64| {
                let shifted: Vec<f64> = parameters64
                    .iter()
                    .zip(u.iter().zip(&v))
                    .map(|(&p, (&u, &v))| p + step * (a * u + b * v))
                    .collect();
                reference_loss(&mlp, &shifted, &inputs64, &labels)
            };
            let want = (loss_at(1.0, 1.0) - loss_at(1.0, -1.0) - loss_at(-1.0, 1.0)
                + loss_at(-1.0, -1.0))
                / (4.0 * step * step);
            let scale = product.iter().map(|x| x * x).sum::<f64>().sqrt()
                * u.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!(
                (got - want).abs() <= 1e-4 * scale,
                "{input_dim}→{width}→{classes}, depth {depth}, {activation:?}: uᵀHv {got} vs {want}"
            );
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
