//! The Hessian of the training loss at the trained point: its top eigenvalues, an estimate of its
//! smallest, its trace and the stability margin of the learning rate.

use vocabulary::MeasureConfig;

use crate::data::Dataset;
use crate::measure::spectrum::{hutchinson_trace, lanczos, stability_margin};
use crate::model::hvp::HessianOperator;
use crate::model::mlp::Mlp;
use crate::rng::{Stream, stream};

/// Examples per pass of a Hessian-vector product.
const CHUNK: usize = 64;

/// Lanczos keeps every basis vector (D f64 each); beyond this much memory it takes fewer steps,
/// and skips the Hessian when too few remain to say anything.
const LANCZOS_MEMORY_BYTES: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq)]
pub struct HessianSummary {
    pub top_eigenvalues: Vec<f64>,
    /// Unit Ritz vectors (length D) of `top_eigenvalues`, for the probe's subspace statistics.
    pub top_vectors: Vec<Vec<f64>>,
    pub lambda_min: f64,
    pub trace: f64,
    pub stability_margin: f64,
}

/// None when the configuration asks for no Hessian, the network is too large for the memory
/// budget, or the eigen solver did not converge.
pub fn summarize_hessian(
    mlp: &Mlp,
    parameters: &[f32],
    train: &Dataset,
    measure: &MeasureConfig,
    learning_rate: f64,
    seed: u64,
) -> Option<HessianSummary> {
    let top_k = measure.hessian_top_k as usize;
    if top_k == 0 {
        return None;
    }
    let affordable_steps = LANCZOS_MEMORY_BYTES / (8 * parameters.len().max(1));
    let steps = (measure.lanczos_steps as usize).min(affordable_steps);
    if steps < top_k + 2 {
        return None;
    }
    let mut operator = HessianOperator::new(mlp, parameters, &train.inputs, &train.labels, CHUNK);
    let spectrum = lanczos(
        &mut operator,
        top_k,
        steps,
        &mut stream(seed, Stream::HessianLanczos),
    )
    .ok()?;
    let trace = if measure.hutchinson_probes > 0 {
        hutchinson_trace(
            &mut operator,
            measure.hutchinson_probes as usize,
            &mut stream(seed, Stream::HessianTrace),
        )
        .trace
    } else {
        f64::NAN
    };
    let lambda_max = spectrum.top.first().copied().unwrap_or(f64::NAN);
    Some(HessianSummary {
        stability_margin: stability_margin(learning_rate, lambda_max),
        top_eigenvalues: spectrum.top,
        top_vectors: spectrum.top_vectors,
        lambda_min: spectrum.smallest,
        trace,
    })
}
