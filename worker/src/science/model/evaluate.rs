//! Loss, error and margins of a network over a whole data set, in f64 accumulators.

use crate::science::data::Dataset;
use crate::science::measure::margins::margin;
use crate::science::model::mlp::{Mlp, Workspace};

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
