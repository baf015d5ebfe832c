//! A dense network `input → width → … → width → classes` whose parameters live in one flat
//! vector, so distances and norms over the whole network are plain vector operations.
//!
//! Layer ℓ stores its weight matrix (fan_out × fan_in, row-major) followed by its bias.

use std::ops::Range;

use rand::Rng;
use rand_distr::StandardNormal;
use vocabulary::{Activation, DataConfig, Init, ModelConfig};

use crate::model::matmul::{Combine, MatrixView, multiply, multiply_combining};
use crate::model::simd::{largest_magnitude, on_widest_simd, row_sums_in_lanes};
use crate::model::thin;

/// Where one dense layer's parameters sit in the flat parameter vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShape {
    pub fan_in: usize,
    pub fan_out: usize,
    pub weight_offset: usize,
    pub has_bias: bool,
}

impl LayerShape {
    pub fn weight_range(&self) -> Range<usize> {
        self.weight_offset..self.weight_offset + self.fan_in * self.fan_out
    }

    /// This layer's fan_out × fan_in weight block of a flat parameter (or direction) vector.
    pub fn weights<'a>(&self, parameters: &'a [f32]) -> MatrixView<'a> {
        MatrixView::row_major(&parameters[self.weight_range()], self.fan_out, self.fan_in)
    }

    pub fn bias_range(&self) -> Option<Range<usize>> {
        let start = self.weight_offset + self.fan_in * self.fan_out;
        self.has_bias.then(|| start..start + self.fan_out)
    }

    fn parameter_count(&self) -> usize {
        self.fan_in * self.fan_out + if self.has_bias { self.fan_out } else { 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    layers: Vec<LayerShape>,
    activation: Activation,
    parameter_count: usize,
    /// Threads each matrix product may use; the results do not depend on it.
    threads: usize,
}

/// The number of parameters (weights and biases) of the network a configuration describes.
pub fn parameter_count(model: &ModelConfig, data: &DataConfig) -> u64 {
    Mlp::from_config(model, data).parameter_count() as u64
}

impl Mlp {
    /// `depth` dense layers; every hidden layer has `width` units.
    pub fn new(
        input_dim: usize,
        width: usize,
        classes: usize,
        depth: usize,
        activation: Activation,
        bias: bool,
    ) -> Self {
        assert!(depth >= 1, "a network needs at least one layer");
        let mut layers = Vec::with_capacity(depth);
        let mut offset = 0;
        for index in 0..depth {
            let fan_in = if index == 0 { input_dim } else { width };
            let fan_out = if index + 1 == depth { classes } else { width };
            let layer = LayerShape {
                fan_in,
                fan_out,
                weight_offset: offset,
                has_bias: bias,
            };
            offset += layer.parameter_count();
            layers.push(layer);
        }
        Self {
            layers,
            activation,
            parameter_count: offset,
            threads: 1,
        }
    }

    /// The same network computed with up to `threads` threads per matrix product.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn from_config(model: &ModelConfig, data: &DataConfig) -> Self {
        Self::new(
            data.input_dim,
            model.width,
            data.classes,
            model.depth,
            model.activation,
            model.bias,
        )
    }

    pub fn layers(&self) -> &[LayerShape] {
        &self.layers
    }

    pub fn parameter_count(&self) -> usize {
        self.parameter_count
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].fan_in
    }

    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1].fan_out
    }

    fn widest_layer(&self) -> usize {
        self.layers
            .iter()
            .map(|layer| layer.fan_out.max(layer.fan_in))
            .max()
            .unwrap_or(0)
    }

    /// Gaussian weights with variance 2/fan_in (He) or 1/fan_in (LeCun); biases zero.
    pub fn initialize(&self, init: Init, rng: &mut impl Rng) -> Vec<f32> {
        let gain = match init {
            Init::He => 2.0,
            Init::Lecun => 1.0,
        };
        let mut parameters = vec![0.0f32; self.parameter_count];
        for layer in &self.layers {
            let scale = (gain / layer.fan_in as f64).sqrt() as f32;
            for weight in &mut parameters[layer.weight_range()] {
                let draw: f32 = rng.sample(StandardNormal);
                *weight = scale * draw;
            }
        }
        parameters
    }

    /// Runs `inputs` (batch × input_dim, row-major) through the network; the logits are then
    /// in [`Workspace::logits`].
    ///
    /// Inside, every layer's output is held unit by unit (fan_out × batch): gemm forms W · Xᵀ,
    /// and later the weight gradient Δᵀ · X, fastest in that orientation when the batch is much
    /// smaller than a wide layer.
    pub fn forward(
        &self,
        parameters: &[f32],
        inputs: &[f32],
        batch: usize,
        workspace: &mut Workspace,
    ) {
        assert!(
            batch <= workspace.capacity,
            "batch {batch} exceeds the workspace capacity"
        );
        assert_eq!(
            parameters.len(),
            self.parameter_count,
            "parameter vector has the wrong length"
        );
        let last = self.layers.len() - 1;
        workspace.largest_first_output = None;
        for (index, layer) in self.layers.iter().enumerate() {
            let (earlier, current) = workspace.activations.split_at_mut(index);
            let input = if index == 0 {
                MatrixView::row_major(&inputs[..batch * layer.fan_in], batch, layer.fan_in)
                    .transposed()
            } else {
                MatrixView::row_major(
                    &earlier[index - 1][..layer.fan_in * batch],
                    layer.fan_in,
                    batch,
                )
            };
            let output = &mut current[0][..layer.fan_out * batch];
            let bias = layer.bias_range().map(|range| &parameters[range]);
            let hidden_activation = (index < last).then_some(self.activation);
            if index == 0 && layer.fan_in <= thin::FEW_INPUTS {
                workspace.largest_first_output = Some(thin::forward_from_few_inputs(
                    &parameters[layer.weight_range()],
                    bias,
                    &inputs[..batch * layer.fan_in],
                    layer.fan_in,
                    batch,
                    hidden_activation,
                    output,
                    self.threads,
                ));
                continue;
            }
            if index > 0 && layer.fan_out <= thin::FEW_OUTPUTS {
                thin::forward_to_few_outputs(
                    &parameters[layer.weight_range()],
                    bias,
                    &earlier[index - 1][..layer.fan_in * batch],
                    layer.fan_out,
                    batch,
                    output,
                );
                if let Some(activation) = hidden_activation {
                    activate(output, activation);
                }
                continue;
            }
            let weights = layer.weights(parameters);
            let combine = match layer.bias_range() {
                Some(range) => {
                    for (unit, &bias) in output.chunks_exact_mut(batch).zip(&parameters[range]) {
                        unit.fill(bias);
                    }
                    Combine::ACCUMULATE
                }
                None => Combine::Replace,
            };
            multiply_combining(output, weights, input, combine, self.threads);
            if index < last {
                activate(output, self.activation);
            }
        }
        let classes = self.classes();
        transpose(
            &workspace.activations[last][..classes * batch],
            &mut workspace.logits[..batch * classes],
            classes,
            batch,
        );
        workspace.batch = batch;
    }

    /// Mean softmax cross-entropy over the batch; writes its gradient into `gradient`.
    pub fn loss_and_gradient(
        &self,
        parameters: &[f32],
        inputs: &[f32],
        labels: &[u32],
        workspace: &mut Workspace,
        gradient: &mut [f32],
    ) -> f64 {
        assert_eq!(
            gradient.len(),
            self.parameter_count,
            "gradient vector has the wrong length"
        );
        self.backward(
            GradientSink::Store {
                parameters,
                gradient,
            },
            inputs,
            labels,
            workspace,
        )
    }

    /// Mean softmax cross-entropy over the batch, with its gradient g folded into `target` as
    /// the backward pass forms it: `target ← keep · target + g` (a momentum velocity).
    pub fn loss_and_folded_gradient(
        &self,
        parameters: &[f32],
        inputs: &[f32],
        labels: &[u32],
        workspace: &mut Workspace,
        target: &mut [f32],
        keep: f32,
    ) -> f64 {
        assert_eq!(
            target.len(),
            self.parameter_count,
            "gradient target has the wrong length"
        );
        self.backward(
            GradientSink::Fold {
                parameters,
                target,
                keep,
            },
            inputs,
            labels,
            workspace,
        )
    }

    /// One gradient-descent step Θ ← Θ − η g, taken layer by layer as the backward pass forms
    /// g, so that no gradient vector is written and read back.
    pub fn loss_and_descent(
        &self,
        parameters: &mut [f32],
        inputs: &[f32],
        labels: &[u32],
        workspace: &mut Workspace,
        learning_rate: f32,
    ) -> Descent {
        let mut largest_change = 0.0;
        let loss = self.backward(
            GradientSink::Descend {
                parameters,
                learning_rate,
                largest_change: &mut largest_change,
            },
            inputs,
            labels,
            workspace,
        );
        Descent {
            loss,
            largest_change,
        }
    }

    fn backward(
        &self,
        mut sink: GradientSink<'_>,
        inputs: &[f32],
        labels: &[u32],
        workspace: &mut Workspace,
    ) -> f64 {
        let batch = labels.len();
        self.forward(sink.parameters(), inputs, batch, workspace);
        let last = self.layers.len() - 1;
        let classes = self.classes();
        let Workspace {
            activations,
            logits,
            delta,
            delta_previous,
            sent_back,
            bias_gradient,
            largest_first_output,
            ..
        } = workspace;

        // The output error is held unit by unit (classes × batch), like the activations.
        let scale = 1.0 / batch as f32;
        let mut loss_sum = 0.0f64;
        let delta_rows = &mut delta[..classes * batch];
        for (example, (row_logits, &label)) in logits[..batch * classes]
            .chunks_exact(classes)
            .zip(labels)
            .enumerate()
        {
            let label = label as usize;
            let max = row_logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut exp_sum = 0.0f32;
            for (class, &logit) in row_logits.iter().enumerate() {
                let shifted = (logit - max).exp();
                delta_rows[class * batch + example] = shifted;
                exp_sum += shifted;
            }
            loss_sum += f64::from(exp_sum).ln() + f64::from(max) - f64::from(row_logits[label]);
            let normalizer = scale / exp_sum;
            for class in 0..classes {
                delta_rows[class * batch + example] *= normalizer;
            }
            delta_rows[label * batch + example] -= scale;
            for class in 0..classes {
                let error = &mut delta_rows[class * batch + example];
                *error = flushed(*error);
            }
        }

        // The largest |Δ| of the error a layer sent back, where its kernel noted it.
        let mut largest_sent_back = None;
        for index in (0..=last).rev() {
            let layer = self.layers[index];
            let largest_delta = largest_sent_back.take();
            // Δᵀ: fan_out × batch.
            let delta_view =
                MatrixView::row_major(&delta[..layer.fan_out * batch], layer.fan_out, batch);
            // The error is sent back through the weights before the sink may change them.
            if index > 0 && layer.fan_out <= thin::FEW_OUTPUTS {
                largest_sent_back = Some(thin::send_back_through_few_outputs(
                    &sink.parameters()[layer.weight_range()],
                    &delta[..layer.fan_out * batch],
                    &activations[index - 1][..layer.fan_in * batch],
                    batch,
                    self.activation,
                    &mut delta_previous[..layer.fan_in * batch],
                    self.threads,
                ));
            } else if index > 0 {
                let sent = &mut sent_back[..batch * layer.fan_in];
                multiply(
                    sent,
                    delta_view.transposed(),
                    layer.weights(sink.parameters()),
                    false,
                    self.threads,
                );
                transpose_times_activation_derivative(
                    sent,
                    &activations[index - 1][..layer.fan_in * batch],
                    &mut delta_previous[..layer.fan_in * batch],
                    batch,
                    self.activation,
                );
            }
            // X: batch × fan_in.
            let input = if index == 0 {
                MatrixView::row_major(&inputs[..batch * layer.fan_in], batch, layer.fan_in)
            } else {
                MatrixView::row_major(
                    &activations[index - 1][..layer.fan_in * batch],
                    layer.fan_in,
                    batch,
                )
                .transposed()
            };
            let input_values = if index == 0 {
                &inputs[..batch * layer.fan_in]
            } else {
                &activations[index - 1][..layer.fan_in * batch]
            };
            let largest_input = (index == 1).then_some(*largest_first_output).flatten();
            sink.bound_change(
                &layer,
                (&delta[..layer.fan_out * batch], largest_delta),
                (input_values, largest_input),
                batch,
            );
            let (target, combine) = sink.weights(&layer);
            if index == 0 && layer.fan_in <= thin::FEW_INPUTS {
                thin::weight_gradient_of_few_inputs(
                    target,
                    combine,
                    &delta[..layer.fan_out * batch],
                    input_values,
                    layer.fan_in,
                    batch,
                    self.threads,
                );
            } else if index > 0
                && thin::takes_gradient_to_few_outputs(layer.fan_out, layer.fan_in, batch)
            {
                thin::weight_gradient_to_few_outputs(
                    target,
                    combine,
                    &delta[..layer.fan_out * batch],
                    input_values,
                    batch,
                );
            } else {
                multiply_combining(target, delta_view, input, combine, self.threads);
            }
            if let Some(range) = layer.bias_range() {
                let sums = &mut bias_gradient[..layer.fan_out];
                row_sums_in_lanes(&delta[..layer.fan_out * batch], batch, sums);
                sink.fold_biases(range, sums);
            }
            if index > 0 {
                std::mem::swap(delta, delta_previous);
            }
        }
        loss_sum / batch as f64
    }
}

/// Where a backward pass puts each layer's gradient as soon as it is formed.
enum GradientSink<'a> {
    /// `gradient = g`
    Store {
        parameters: &'a [f32],
        gradient: &'a mut [f32],
    },
    /// `target = keep · target + g`
    Fold {
        parameters: &'a [f32],
        target: &'a mut [f32],
        keep: f32,
    },
    /// `parameters = parameters − η g`
    Descend {
        parameters: &'a mut [f32],
        learning_rate: f32,
        /// Summed over layers: a bound on the largest |η g| of the layer's weights and biases.
        largest_change: &'a mut f64,
    },
}

/// What one step of [`Mlp::loss_and_descent`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Descent {
    /// Mean softmax cross-entropy over the batch, before the step.
    pub loss: f64,
    /// No parameter moved by more than this; NaN or infinite where an error or an input was.
    /// It lets the optimizer know the parameters stayed finite without reading all of them.
    pub largest_change: f64,
}

impl GradientSink<'_> {
    fn parameters(&self) -> &[f32] {
        match self {
            Self::Store { parameters, .. } | Self::Fold { parameters, .. } => parameters,
            Self::Descend { parameters, .. } => parameters,
        }
    }

    /// The slice a layer's weight gradient goes to, and how it is combined there.
    fn weights(&mut self, layer: &LayerShape) -> (&mut [f32], Combine) {
        let range = layer.weight_range();
        match self {
            Self::Store { gradient, .. } => (&mut gradient[range], Combine::Replace),
            Self::Fold { target, keep, .. } => (
                &mut target[range],
                Combine::Fold {
                    keep: *keep,
                    scale: 1.0,
                },
            ),
            Self::Descend {
                parameters,
                learning_rate,
                ..
            } => (
                &mut parameters[range],
                Combine::Fold {
                    keep: 1.0,
                    scale: -*learning_rate,
                },
            ),
        }
    }

    /// For a descent, adds a bound on how far the layer's gradient moves any of its parameters:
    /// a weight's gradient Σ_b Δ_b X_b is at most batch · max|Δ| · max|X| in magnitude, a bias's
    /// at most batch · max|Δ|. Sums keep a NaN that a maximum would drop. `delta` and `input` come
    /// with their largest magnitudes where a kernel noted them as it wrote them.
    fn bound_change(
        &mut self,
        layer: &LayerShape,
        (delta, largest_delta): (&[f32], Option<f32>),
        (input, largest_input): (&[f32], Option<f32>),
        batch: usize,
    ) {
        let Self::Descend {
            learning_rate,
            largest_change,
            ..
        } = self
        else {
            return;
        };
        let (largest_delta, largest_input) = on_widest_simd(
            #[inline(always)]
            || {
                (
                    largest_delta.unwrap_or_else(|| largest_magnitude(delta)),
                    largest_input.unwrap_or_else(|| largest_magnitude(input)),
                )
            },
        );
        let bias = if layer.bias_range().is_some() {
            1.0
        } else {
            0.0
        };
        **largest_change += f64::from(learning_rate.abs())
            * batch as f64
            * f64::from(largest_delta)
            * (f64::from(largest_input) + bias);
    }

    fn fold_biases(&mut self, range: Range<usize>, gradient: &[f32]) {
        match self {
            Self::Store { gradient: all, .. } => all[range].copy_from_slice(gradient),
            Self::Fold { target, keep, .. } => {
                for (slot, value) in target[range].iter_mut().zip(gradient) {
                    *slot = *keep * *slot + value;
                }
            }
            Self::Descend {
                parameters,
                learning_rate,
                ..
            } => {
                for (slot, value) in parameters[range].iter_mut().zip(gradient) {
                    *slot -= *learning_rate * value;
                }
            }
        }
    }
}

/// The transpose works on square blocks of this side: a block's rows are read whole into a local
/// array, and its columns are written out whole, so that both passes over memory are contiguous.
const TRANSPOSE_BLOCK: usize = 16;

/// `output` (cols × rows, row-major) = `input` (rows × cols, row-major) transposed.
fn transpose(input: &[f32], output: &mut [f32], rows: usize, cols: usize) {
    assert!(input.len() >= rows * cols && output.len() >= rows * cols);
    on_widest_simd(
        #[inline(always)]
        || {
            for row_start in (0..rows).step_by(TRANSPOSE_BLOCK) {
                for col_start in (0..cols).step_by(TRANSPOSE_BLOCK) {
                    if row_start + TRANSPOSE_BLOCK <= rows && col_start + TRANSPOSE_BLOCK <= cols {
                        let mut block = [[0.0f32; TRANSPOSE_BLOCK]; TRANSPOSE_BLOCK];
                        for (row, block_row) in block.iter_mut().enumerate() {
                            let start = (row_start + row) * cols + col_start;
                            block_row.copy_from_slice(&input[start..start + TRANSPOSE_BLOCK]);
                        }
                        for col in 0..TRANSPOSE_BLOCK {
                            let start = (col_start + col) * rows + row_start;
                            let column = &mut output[start..start + TRANSPOSE_BLOCK];
                            for (value, block_row) in column.iter_mut().zip(&block) {
                                *value = block_row[col];
                            }
                        }
                    } else {
                        for row in row_start..(row_start + TRANSPOSE_BLOCK).min(rows) {
                            for col in col_start..(col_start + TRANSPOSE_BLOCK).min(cols) {
                                output[col * rows + row] = input[row * cols + col];
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `delta` (units × batch) = `sent_back` (batch × units) transposed, times σ'(z) expressed
/// through the activations a = σ(z) (units × batch).
fn transpose_times_activation_derivative(
    sent_back: &[f32],
    activated: &[f32],
    delta: &mut [f32],
    batch: usize,
    activation: Activation,
) {
    let units = delta.len() / batch.max(1);
    transpose(sent_back, delta, batch, units);
    match activation {
        Activation::Relu => on_widest_simd(
            #[inline(always)]
            || {
                for (value, &a) in delta.iter_mut().zip(activated) {
                    *value = if a <= 0.0 { 0.0 } else { *value };
                }
            },
        ),
        Activation::Tanh => on_widest_simd(
            #[inline(always)]
            || {
                for (value, &a) in delta.iter_mut().zip(activated) {
                    *value *= 1.0 - a * a;
                }
            },
        ),
    }
}

/// In place; a NaN stays NaN so that divergence is seen.
fn activate(values: &mut [f32], activation: Activation) {
    match activation {
        Activation::Relu => {
            // A select rather than a conditional store, so that the loop vectorises.
            on_widest_simd(
                #[inline(always)]
                || {
                    for value in values {
                        *value = if *value < 0.0 { 0.0 } else { *value };
                    }
                },
            )
        }
        Activation::Tanh => {
            for value in values {
                *value = value.tanh();
            }
        }
    }
}

/// Buffers for the forward and backward passes of batches of up to `capacity` examples,
/// allocated once so that a training step allocates nothing.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Output of every layer, unit by unit (fan_out × batch): after the activation for hidden
    /// layers, logits for the last.
    activations: Vec<Vec<f32>>,
    /// The logits example by example (batch × classes).
    logits: Vec<f32>,
    /// Back-propagated errors, unit by unit.
    delta: Vec<f32>,
    delta_previous: Vec<f32>,
    /// Errors sent back through a layer's weights, example by example (batch × fan_in).
    sent_back: Vec<f32>,
    /// One layer's bias gradient, summed over the batch.
    bias_gradient: Vec<f32>,
    /// The largest |output| of the first layer in the last forward pass, where its kernel noted
    /// it: the second layer's bound on its change reads it instead of the activations.
    largest_first_output: Option<f32>,
    capacity: usize,
    batch: usize,
}

impl Workspace {
    pub fn new(mlp: &Mlp, capacity: usize) -> Self {
        let widest = mlp.widest_layer();
        Self {
            activations: mlp
                .layers
                .iter()
                .map(|layer| vec![0.0; capacity * layer.fan_out])
                .collect(),
            logits: vec![0.0; capacity * mlp.classes()],
            delta: vec![0.0; capacity * widest],
            delta_previous: vec![0.0; capacity * widest],
            sent_back: vec![0.0; capacity * widest],
            bias_gradient: vec![0.0; widest],
            largest_first_output: None,
            capacity,
            batch: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The logits (batch × classes, row-major) of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        let classes = self.logits.len() / self.capacity.max(1);
        &self.logits[..self.batch * classes]
    }
}

/// The smallest output error (or, in the Hessian's products, class probability) kept: 2⁻⁶⁴.
///
/// Smaller ones come from probabilities exp rounds near the end of f32's range at a well-fitted
/// example. They cannot move a parameter by its last bit (η |δ| |a| is some 10⁻²⁰ of a weight), but
/// the subnormal numbers they breed in the products below are handled by microcode on Intel cores:
/// the kernels ran 30 to 70 times slower on them, and the default sweep's widest trials 8 times.
pub(crate) const SMALLEST_ERROR: f32 = 5.421_011e-20;

/// `value`, or 0 where its magnitude is below [`SMALLEST_ERROR`].
#[inline(always)]
pub(crate) fn flushed(value: f32) -> f32 {
    if value.abs() < SMALLEST_ERROR {
        0.0
    } else {
        value
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::{Stream, stream};

    #[test]
    fn errors_below_two_to_the_minus_64_are_flushed_to_zero_and_no_others() {
        assert_eq!(SMALLEST_ERROR, 2f32.powi(-64));
        for tiny in [1e-40f32, -1e-30, 5.4e-20, f32::MIN_POSITIVE] {
            assert_eq!(flushed(tiny), 0.0, "{tiny}");
        }
        for kept in [SMALLEST_ERROR, -SMALLEST_ERROR, 1e-19, -0.03125, 1.0] {
            assert_eq!(flushed(kept), kept);
        }
    }

    #[test]
    fn transposes_of_whole_and_partial_blocks_move_every_value() {
        for (rows, cols) in [(16, 16), (37, 50), (128, 33), (1, 7), (64, 1024)] {
            let input: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut output = vec![f32::NAN; rows * cols];
            transpose(&input, &mut output, rows, cols);
            for row in 0..rows {
                for col in 0..cols {
                    assert_eq!(
                        output[col * rows + row],
                        input[row * cols + col],
                        "{rows}×{cols}"
                    );
                }
            }
        }
    }

    /// An independent f64 implementation of the forward pass and the mean cross-entropy.
    pub(crate) fn reference_loss(
        mlp: &Mlp,
        parameters: &[f64],
        inputs: &[f64],
        labels: &[u32],
        activation: Activation,
    ) -> (f64, Vec<Vec<f64>>) {
        let mut total = 0.0;
        let mut all_logits = Vec::new();
        for (example, &label) in labels.iter().enumerate() {
            let mut values: Vec<f64> =
                inputs[example * mlp.input_dim()..(example + 1) * mlp.input_dim()].to_vec();
            for (index, layer) in mlp.layers().iter().enumerate() {
                let weights = &parameters[layer.weight_range()];
                let mut next = vec![0.0; layer.fan_out];
                for (out, slot) in next.iter_mut().enumerate() {
                    let mut sum = match layer.bias_range() {
                        Some(range) => parameters[range][out],
                        None => 0.0,
                    };
                    for (input_index, value) in values.iter().enumerate() {
                        sum += weights[out * layer.fan_in + input_index] * value;
                    }
                    *slot = if index + 1 < mlp.layers().len() {
                        match activation {
                            Activation::Relu => sum.max(0.0),
                            Activation::Tanh => sum.tanh(),
                        }
                    } else {
                        sum
                    };
                }
                values = next;
            }
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_sum: f64 = values.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
            total += log_sum - values[label as usize];
            all_logits.push(values);
        }
        (total / labels.len() as f64, all_logits)
    }

    fn assert_logits_match(got: &[f32], expected: &[Vec<f64>], tolerance: f64) {
        for (got, want) in got.iter().zip(expected.iter().flatten()) {
            assert!(
                (f64::from(*got) - want).abs() < tolerance,
                "logit {got} vs {want}"
            );
        }
    }

    /// Non-zero biases, so that their gradient path is exercised away from zero.
    /// `batch` standard normal inputs of `input_dim` and labels drawn uniformly from `classes`.
    pub(crate) fn random_batch(
        rng: &mut impl Rng,
        batch: usize,
        input_dim: usize,
        classes: usize,
    ) -> (Vec<f32>, Vec<u32>) {
        let inputs: Vec<f32> = (0..batch * input_dim)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let labels: Vec<u32> = (0..batch)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();
        (inputs, labels)
    }

    pub(crate) fn randomize_biases(mlp: &Mlp, parameters: &mut [f32], rng: &mut impl Rng) {
        for layer in mlp.layers() {
            if let Some(range) = layer.bias_range() {
                for value in &mut parameters[range] {
                    *value = rng.random_range(-0.5..0.5);
                }
            }
        }
    }

    fn check_gradient(depth: usize, activation: Activation, bias: bool) {
        let (input_dim, width, classes, batch) = (4, 5, 3, 6);
        let mlp = Mlp::new(input_dim, width, classes, depth, activation, bias);
        let mut rng = stream(11 + depth as u64, Stream::Init);
        let mut parameters = mlp.initialize(Init::He, &mut rng);
        randomize_biases(&mlp, &mut parameters, &mut rng);
        let (inputs, labels) = random_batch(&mut rng, batch, input_dim, classes);

        let mut workspace = Workspace::new(&mlp, batch);
        let mut gradient = vec![0.0f32; mlp.parameter_count()];
        let loss =
            mlp.loss_and_gradient(&parameters, &inputs, &labels, &mut workspace, &mut gradient);

        let parameters64: Vec<f64> = parameters.iter().map(|&v| f64::from(v)).collect();
        let inputs64: Vec<f64> = inputs.iter().map(|&v| f64::from(v)).collect();
        let (expected_loss, expected_logits) =
            reference_loss(&mlp, &parameters64, &inputs64, &labels, activation);
        assert!(
            (loss - expected_loss).abs() < 1e-5,
            "loss {loss} vs {expected_loss}"
        );
        mlp.forward(&parameters, &inputs, batch, &mut workspace);
        assert_logits_match(workspace.logits(), &expected_logits, 1e-5);

        assert_gradient_matches_central_differences(
            &mlp,
            &parameters64,
            &inputs64,
            &labels,
            activation,
            &gradient,
            1,
            &format!("depth {depth} {activation:?} bias {bias}"),
        );
    }

    /// Every `stride`-th parameter's gradient against a central difference of the f64
    /// reference loss.
    #[allow(clippy::too_many_arguments)]
    fn assert_gradient_matches_central_differences(
        mlp: &Mlp,
        parameters: &[f64],
        inputs: &[f64],
        labels: &[u32],
        activation: Activation,
        gradient: &[f32],
        stride: usize,
        context: &str,
    ) {
        let step = 1e-6;
        for index in (0..mlp.parameter_count()).step_by(stride) {
            let mut shifted = parameters.to_vec();
            shifted[index] += step;
            let (above, _) = reference_loss(mlp, &shifted, inputs, labels, activation);
            shifted[index] -= 2.0 * step;
            let (below, _) = reference_loss(mlp, &shifted, inputs, labels, activation);
            let numerical = (above - below) / (2.0 * step);
            let analytic = f64::from(gradient[index]);
            assert!(
                (analytic - numerical).abs() <= 1e-4 + 1e-3 * numerical.abs(),
                "{context}: parameter {index}: analytic {analytic} vs numerical {numerical}"
            );
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        for depth in [2, 3] {
            for activation in [Activation::Relu, Activation::Tanh] {
                for bias in [false, true] {
                    check_gradient(depth, activation, bias);
                }
            }
        }
    }

    /// A network whose products are cut into several bands along rows and along columns (see
    /// `matmul`), with 37 examples and 140 units, not multiples of the transposes' tile.
    fn banded_network(bias: bool) -> (Mlp, Vec<f32>, Vec<f32>, Vec<u32>) {
        let (input_dim, width, classes, batch) = (150, 140, 3, 37);
        let mlp = Mlp::new(input_dim, width, classes, 3, Activation::Tanh, bias);
        let mut rng = stream(5, Stream::Init);
        let mut parameters = mlp.initialize(Init::Lecun, &mut rng);
        randomize_biases(&mlp, &mut parameters, &mut rng);
        let inputs: Vec<f32> = (0..batch * input_dim)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let labels: Vec<u32> = (0..batch).map(|i| (i % classes) as u32).collect();
        (mlp, parameters, inputs, labels)
    }

    #[test]
    fn products_cut_into_bands_give_the_reference_logits_and_gradient() {
        for bias in [false, true] {
            let (mlp, parameters, inputs, labels) = banded_network(bias);
            let batch = labels.len();
            let mut workspace = Workspace::new(&mlp, batch);
            let mut gradient = vec![0.0f32; mlp.parameter_count()];
            mlp.loss_and_gradient(&parameters, &inputs, &labels, &mut workspace, &mut gradient);
            let parameters64: Vec<f64> = parameters.iter().map(|&v| f64::from(v)).collect();
            let inputs64: Vec<f64> = inputs.iter().map(|&v| f64::from(v)).collect();
            let (_, expected_logits) =
                reference_loss(&mlp, &parameters64, &inputs64, &labels, Activation::Tanh);
            assert_logits_match(workspace.logits(), &expected_logits, 1e-4);
            // Every 397th parameter: all layers, weights and biases, and every band.
            assert_gradient_matches_central_differences(
                &mlp,
                &parameters64,
                &inputs64,
                &labels,
                Activation::Tanh,
                &gradient,
                397,
                &format!("banded network, bias {bias}"),
            );
        }
    }

    #[test]
    fn descent_and_folding_apply_the_gradient_the_backward_pass_forms() {
        let (mlp, parameters, inputs, labels) = banded_network(true);
        let mut workspace = Workspace::new(&mlp, labels.len());
        let mut gradient = vec![0.0f32; mlp.parameter_count()];
        let loss =
            mlp.loss_and_gradient(&parameters, &inputs, &labels, &mut workspace, &mut gradient);

        let learning_rate = 0.3;
        let mut descended = parameters.clone();
        let descent = mlp.loss_and_descent(
            &mut descended,
            &inputs,
            &labels,
            &mut workspace,
            learning_rate,
        );
        assert_eq!(descent.loss, loss, "the loss is taken before the step");
        let largest_change = parameters
            .iter()
            .zip(&descended)
            .map(|(&before, &after)| (f64::from(after) - f64::from(before)).abs())
            .fold(0.0, f64::max);
        assert!(
            largest_change > 0.0 && largest_change <= descent.largest_change,
            "a parameter moved by {largest_change}, beyond the bound {}",
            descent.largest_change
        );
        let momentum = 0.9;
        let velocity: Vec<f32> = (0..mlp.parameter_count())
            .map(|i| (i as f32 * 0.013).sin())
            .collect();
        let mut folded = velocity.clone();
        mlp.loss_and_folded_gradient(
            &parameters,
            &inputs,
            &labels,
            &mut workspace,
            &mut folded,
            momentum,
        );
        for index in 0..mlp.parameter_count() {
            let want = f64::from(parameters[index]) - 0.3 * f64::from(gradient[index]);
            let got = f64::from(descended[index]);
            assert!(
                (got - want).abs() < 1e-6,
                "parameter {index}: {got} vs {want}"
            );
            let want = 0.9 * f64::from(velocity[index]) + f64::from(gradient[index]);
            let got = f64::from(folded[index]);
            assert!(
                (got - want).abs() < 1e-6,
                "velocity {index}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn the_layout_counts_weights_and_biases() {
        let mlp = Mlp::new(784, 256, 10, 3, Activation::Relu, true);
        assert_eq!(
            mlp.parameter_count(),
            784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
        );
        let shapes: Vec<(usize, usize)> =
            mlp.layers().iter().map(|l| (l.fan_in, l.fan_out)).collect();
        assert_eq!(shapes, vec![(784, 256), (256, 256), (256, 10)]);
        assert_eq!(
            Mlp::new(3, 4, 2, 2, Activation::Tanh, false).parameter_count(),
            3 * 4 + 4 * 2
        );
    }

    #[test]
    fn initialization_has_the_requested_variance() {
        let mlp = Mlp::new(200, 300, 2, 2, Activation::Relu, true);
        let parameters = mlp.initialize(Init::He, &mut stream(1, Stream::Init));
        let first = mlp.layers()[0];
        let weights = &parameters[first.weight_range()];
        let variance =
            weights.iter().map(|&w| f64::from(w).powi(2)).sum::<f64>() / weights.len() as f64;
        assert!(
            (variance - 2.0 / 200.0).abs() < 0.05 * 2.0 / 200.0,
            "variance {variance}"
        );
        let bias_range = first.bias_range().expect("the layer has a bias");
        assert!(parameters[bias_range].iter().all(|&b| b == 0.0));
    }
}
