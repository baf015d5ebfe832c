//! A dense network `input → width → … → width → classes` whose parameters live in one flat
//! vector, so distances and norms over the whole network are plain vector operations.
//!
//! Layer ℓ stores its weight matrix (fan_out × fan_in, row-major) followed by its bias.

use std::ops::Range;

use proto::{Activation, DataConfig, Init, ModelConfig};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::science::model::matmul::{MatrixView, multiply};

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
        for (index, layer) in self.layers.iter().enumerate() {
            let (earlier, current) = workspace.activations.split_at_mut(index);
            let input = if index == 0 {
                &inputs[..batch * layer.fan_in]
            } else {
                &earlier[index - 1][..batch * layer.fan_in]
            };
            let output = &mut current[0][..batch * layer.fan_out];
            let bias = layer.bias_range().map(|range| &parameters[range]);
            let weights = MatrixView::row_major(
                &parameters[layer.weight_range()],
                layer.fan_out,
                layer.fan_in,
            );
            let input = MatrixView::row_major(input, batch, layer.fan_in);
            if layer.fan_in >= TRANSPOSED_PRODUCT_MIN_FAN_IN {
                // gemm runs W · Xᵀ about twice as fast as X · Wᵀ when the batch is much smaller
                // than a wide layer, so the product is formed transposed (in the backward pass's
                // buffer, free until then) and turned around while the bias is added.
                let transposed = &mut workspace.delta[..batch * layer.fan_out];
                multiply(transposed, weights, input.transposed(), false, self.threads);
                transpose_adding_bias(transposed, output, batch, layer.fan_out, bias);
            } else {
                // A narrow input makes the product cheap; turning it around would cost more.
                if let Some(bias) = bias {
                    for row in output.chunks_exact_mut(layer.fan_out) {
                        row.copy_from_slice(bias);
                    }
                }
                multiply(
                    output,
                    input,
                    weights.transposed(),
                    bias.is_some(),
                    self.threads,
                );
            }
            if index < last {
                activate(output, self.activation);
            }
        }
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
        let batch = labels.len();
        self.forward(parameters, inputs, batch, workspace);
        let last = self.layers.len() - 1;
        let classes = self.classes();
        let Workspace {
            activations,
            delta,
            delta_previous,
            ..
        } = workspace;

        let scale = 1.0 / batch as f32;
        let mut loss_sum = 0.0f64;
        let logits = &activations[last][..batch * classes];
        for ((row_logits, row_delta), &label) in logits
            .chunks_exact(classes)
            .zip(delta[..batch * classes].chunks_exact_mut(classes))
            .zip(labels)
        {
            let label = label as usize;
            let max = row_logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut exp_sum = 0.0f32;
            for (slot, &logit) in row_delta.iter_mut().zip(row_logits) {
                let shifted = (logit - max).exp();
                *slot = shifted;
                exp_sum += shifted;
            }
            loss_sum += f64::from(exp_sum).ln() + f64::from(max) - f64::from(row_logits[label]);
            let normalizer = scale / exp_sum;
            for slot in row_delta.iter_mut() {
                *slot *= normalizer;
            }
            row_delta[label] -= scale;
        }

        for index in (0..=last).rev() {
            let layer = self.layers[index];
            let input = if index == 0 {
                &inputs[..batch * layer.fan_in]
            } else {
                &activations[index - 1][..batch * layer.fan_in]
            };
            let delta_view =
                MatrixView::row_major(&delta[..batch * layer.fan_out], batch, layer.fan_out);
            multiply(
                &mut gradient[layer.weight_range()],
                delta_view.transposed(),
                MatrixView::row_major(input, batch, layer.fan_in),
                false,
                self.threads,
            );
            if let Some(range) = layer.bias_range() {
                let bias_gradient = &mut gradient[range];
                bias_gradient.fill(0.0);
                for row in delta[..batch * layer.fan_out].chunks_exact(layer.fan_out) {
                    for (slot, value) in bias_gradient.iter_mut().zip(row) {
                        *slot += value;
                    }
                }
            }
            if index > 0 {
                let previous = &mut delta_previous[..batch * layer.fan_in];
                multiply(
                    previous,
                    delta_view,
                    MatrixView::row_major(
                        &parameters[layer.weight_range()],
                        layer.fan_out,
                        layer.fan_in,
                    ),
                    false,
                    self.threads,
                );
                multiply_by_activation_derivative(previous, input, self.activation);
                std::mem::swap(delta, delta_previous);
            }
        }
        loss_sum / batch as f64
    }
}

/// Fan-in from which a layer's forward product is formed as W · Xᵀ (see [`Mlp::forward`]).
const TRANSPOSED_PRODUCT_MIN_FAN_IN: usize = 128;

/// `output` (batch × units, row-major) = `transposed`ᵀ (units × batch) + bias, in tiles of units
/// so that the strided reads stay in cache.
fn transpose_adding_bias(
    transposed: &[f32],
    output: &mut [f32],
    batch: usize,
    units: usize,
    bias: Option<&[f32]>,
) {
    const TILE: usize = 32;
    for tile_start in (0..units).step_by(TILE) {
        let tile = tile_start..(tile_start + TILE).min(units);
        for (example, row) in output.chunks_exact_mut(units).enumerate() {
            for unit in tile.clone() {
                let shift = bias.map_or(0.0, |bias| bias[unit]);
                row[unit] = transposed[unit * batch + example] + shift;
            }
        }
    }
}

/// In place; a NaN stays NaN so that divergence is seen.
fn activate(values: &mut [f32], activation: Activation) {
    match activation {
        Activation::Relu => {
            for value in values {
                if *value < 0.0 {
                    *value = 0.0;
                }
            }
        }
        Activation::Tanh => {
            for value in values {
                *value = value.tanh();
            }
        }
    }
}

/// Multiplies back-propagated values by σ'(z), expressed through the activation a = σ(z).
fn multiply_by_activation_derivative(delta: &mut [f32], activated: &[f32], activation: Activation) {
    match activation {
        Activation::Relu => {
            for (slot, &value) in delta.iter_mut().zip(activated) {
                if value <= 0.0 {
                    *slot = 0.0;
                }
            }
        }
        Activation::Tanh => {
            for (slot, &value) in delta.iter_mut().zip(activated) {
                *slot *= 1.0 - value * value;
            }
        }
    }
}

/// Buffers for the forward and backward passes of batches of up to `capacity` examples,
/// allocated once so that a training step allocates nothing.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Output of every layer (after the activation for hidden layers; logits for the last).
    activations: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_previous: Vec<f32>,
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
            delta: vec![0.0; capacity * widest],
            delta_previous: vec![0.0; capacity * widest],
            capacity,
            batch: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The logits (batch × classes, row-major) of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        let last = &self.activations[self.activations.len() - 1];
        let classes = last.len() / self.capacity.max(1);
        &last[..self.batch * classes]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::rng::{Stream, stream};

    /// An independent f64 implementation of the forward pass and the mean cross-entropy.
    fn reference_loss(
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

    fn check_gradient(depth: usize, activation: Activation, bias: bool) {
        let (input_dim, width, classes, batch) = (4, 5, 3, 6);
        let mlp = Mlp::new(input_dim, width, classes, depth, activation, bias);
        let mut rng = stream(11 + depth as u64, Stream::Init);
        let mut parameters = mlp.initialize(Init::He, &mut rng);
        // Non-zero biases, so that their gradient path is exercised away from zero.
        for layer in mlp.layers() {
            if let Some(range) = layer.bias_range() {
                for value in &mut parameters[range] {
                    *value = rng.random_range(-0.5..0.5);
                }
            }
        }
        let inputs: Vec<f32> = (0..batch * input_dim)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let labels: Vec<u32> = (0..batch)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();

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
        for (got, want) in workspace
            .logits()
            .iter()
            .zip(expected_logits.iter().flatten())
        {
            assert!(
                (f64::from(*got) - want).abs() < 1e-5,
                "logit {got} vs {want}"
            );
        }

        let step = 1e-6;
        for index in 0..mlp.parameter_count() {
            let mut shifted = parameters64.clone();
            shifted[index] += step;
            let (above, _) = reference_loss(&mlp, &shifted, &inputs64, &labels, activation);
            shifted[index] -= 2.0 * step;
            let (below, _) = reference_loss(&mlp, &shifted, &inputs64, &labels, activation);
            let numerical = (above - below) / (2.0 * step);
            let analytic = f64::from(gradient[index]);
            assert!(
                (analytic - numerical).abs() <= 1e-4 + 1e-3 * numerical.abs(),
                "depth {depth} {activation:?} bias {bias}: parameter {index}: analytic {analytic} vs numerical {numerical}"
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

    #[test]
    fn wide_layers_formed_transposed_give_the_reference_logits() {
        // Fan-ins of 150 and 140 take the W · Xᵀ path; 37 examples and 140 units are not
        // multiples of the transpose's tile.
        let (input_dim, width, classes, batch) = (150, 140, 3, 37);
        for bias in [false, true] {
            let mlp = Mlp::new(input_dim, width, classes, 3, Activation::Tanh, bias);
            let mut rng = stream(5, Stream::Init);
            let mut parameters = mlp.initialize(Init::Lecun, &mut rng);
            for layer in mlp.layers() {
                if let Some(range) = layer.bias_range() {
                    for value in &mut parameters[range] {
                        *value = rng.random_range(-0.5..0.5);
                    }
                }
            }
            let inputs: Vec<f32> = (0..batch * input_dim)
                .map(|_| rng.sample(StandardNormal))
                .collect();
            let labels: Vec<u32> = (0..batch).map(|i| (i % classes) as u32).collect();
            let mut workspace = Workspace::new(&mlp, batch);
            mlp.forward(&parameters, &inputs, batch, &mut workspace);
            let parameters64: Vec<f64> = parameters.iter().map(|&v| f64::from(v)).collect();
            let inputs64: Vec<f64> = inputs.iter().map(|&v| f64::from(v)).collect();
            let (_, expected_logits) =
                reference_loss(&mlp, &parameters64, &inputs64, &labels, Activation::Tanh);
            for (got, want) in workspace
                .logits()
                .iter()
                .zip(expected_logits.iter().flatten())
            {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-4,
                    "logit {got} vs {want}"
                );
            }
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
