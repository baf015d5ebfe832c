//! Loss, error and margins of a network over a whole data set, in f64 accumulators.

use crate::data::Dataset;
use crate::measure::margins::margin;
use crate::model::mlp::{Mlp, Workspace};
use crate::model::simd::on_widest_simd;

/// Examples per forward pass of an evaluation. A chunk's hidden activations (width × chunk f32)
/// then stay in a core's own cache up to width 4096 (1 MiB); chunks of 512 ran the forward pass
/// of a 20 → 4096 → 4 network at half the speed. [`evaluate`]'s numbers do not depend on the
/// chunk: each example is formed alone and the losses are summed in order.
pub const EVALUATION_CHUNK: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Share of examples whose margin is not positive (ties and NaN count as errors).
    pub error: f64,
}

/// Evaluates in chunks of the workspace capacity; when `margins` is given, it is filled with
/// the margin of every example in order.
pub fn evaluate(
    mlp: &Mlp,
    parameters: &[f32],
    dataset: &Dataset,
    workspace: &mut Workspace,
    mut margins: Option<&mut Vec<f64>>,
) -> Evaluation {
    let classes = mlp.classes();
    let chunk = workspace.capacity().max(1);
    if let Some(margins) = margins.as_deref_mut() {
        margins.clear();
    }
    let mut loss_sum = 0.0;
    let mut errors = 0usize;
    let mut start = 0;
    while start < dataset.len() {
        let end = (start + chunk).min(dataset.len());
        let batch = end - start;
        mlp.forward(parameters, dataset.inputs_of(start..end), batch, workspace);
        for (row, &label) in workspace
            .logits()
            .chunks_exact(classes)
            .zip(&dataset.labels[start..end])
        {
            let label = label as usize;
            let max = row
                .iter()
                .map(|&v| f64::from(v))
                .fold(f64::NEG_INFINITY, f64::max);
            let exp_sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            loss_sum += exp_sum.ln() + max - f64::from(row[label]);
            let example_margin = margin(row, label);
            if example_margin.is_nan() || example_margin <= 0.0 {
                errors += 1;
            }
            if let Some(margins) = margins.as_deref_mut() {
                margins.push(example_margin);
            }
        }
        start = end;
    }
    let count = dataset.len() as f64;
    Evaluation {
        loss: loss_sum / count,
        error: errors as f64 / count,
    }
}

/// Buffers for the full-data-set mean cross-entropy and its gradient, computed over chunks of
/// the workspace capacity with each chunk's share accumulated in f64.
#[derive(Debug, Clone)]
pub struct FullGradient {
    workspace: Workspace,
    chunk_gradient: Vec<f32>,
    accumulator: Vec<f64>,
    gradient: Vec<f32>,
}

impl FullGradient {
    pub fn new(mlp: &Mlp, chunk: usize) -> Self {
        let count = mlp.parameter_count();
        Self {
            workspace: Workspace::new(mlp, chunk.max(1)),
            chunk_gradient: vec![0.0; count],
            accumulator: vec![0.0; count],
            gradient: vec![0.0; count],
        }
    }

    /// The mean loss over `dataset`; its gradient is then in [`FullGradient::gradient`].
    pub fn compute(&mut self, mlp: &Mlp, parameters: &[f32], dataset: &Dataset) -> f64 {
        let chunk = self.workspace.capacity();
        self.accumulator.fill(0.0);
        let mut loss = 0.0;
        let mut start = 0;
        while start < dataset.len() {
            let end = (start + chunk).min(dataset.len());
            let weight = (end - start) as f64 / dataset.len() as f64;
            loss += weight
                * mlp.loss_and_gradient(
                    parameters,
                    dataset.inputs_of(start..end),
                    &dataset.labels[start..end],
                    &mut self.workspace,
                    &mut self.chunk_gradient,
                );
            let (accumulator, chunk_gradient) = (&mut self.accumulator, &self.chunk_gradient);
            on_widest_simd(
                #[inline(always)]
                || {
                    for (total, &part) in accumulator.iter_mut().zip(chunk_gradient) {
                        *total += weight * f64::from(part);
                    }
                },
            );
            start = end;
        }
        for (slot, &total) in self.gradient.iter_mut().zip(&self.accumulator) {
            *slot = total as f32;
        }
        loss
    }

    pub fn gradient(&self) -> &[f32] {
        &self.gradient
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};
    use rand::Rng;
    use rand_distr::StandardNormal;
    use vocabulary::{Activation, Init};

    #[test]
    fn the_full_gradient_matches_finite_differences_of_the_full_loss() {
        let mlp = Mlp::new(3, 5, 3, 2, Activation::Tanh, true);
        let mut rng = stream(5, Stream::TrainInputs);
        let examples = 7;
        let dataset = Dataset {
            inputs: (0..examples * 3)
                .map(|_| rng.sample(StandardNormal))
                .collect(),
            labels: (0..examples).map(|i| (i % 3) as u32).collect(),
            n: examples,
            dim: 3,
            classes: 3,
        };
        let parameters = mlp.initialize(Init::Lecun, &mut stream(5, Stream::Init));
        // Chunks of 3 examples: 3 + 3 + 1, so unequal chunk weights are exercised.
        let mut full = FullGradient::new(&mlp, 3);
        let loss = full.compute(&mlp, &parameters, &dataset);
        let gradient = full.gradient().to_vec();
        let count = mlp.parameter_count();
        let mut evaluation_workspace = Workspace::new(&mlp, examples);
        let mut loss_at = |parameters: &[f32]| {
            evaluate(&mlp, parameters, &dataset, &mut evaluation_workspace, None).loss
        };
        assert!((loss - loss_at(&parameters)).abs() < 1e-5);
        let step = 1e-2f32;
        for index in 0..count {
            let mut shifted = parameters.clone();
            shifted[index] += step;
            let up = loss_at(&shifted);
            shifted[index] -= 2.0 * step;
            let down = loss_at(&shifted);
            let numeric = (up - down) / (2.0 * f64::from(step));
            assert!(
                (numeric - f64::from(gradient[index])).abs() < 2e-3,
                "parameter {index}: {numeric} vs {}",
                gradient[index]
            );
        }
    }
}
