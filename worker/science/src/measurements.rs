//! What a trial reports: the scalars, per-layer norms and per-radius stagnation statistics.

use serde::Serialize;
use vocabulary::ProbeStatisticName;

pub use crate::measure::bound_suite::BoundMeasurement;

/// One of the probe statistics of the catalog, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeStatistic {
    pub name: ProbeStatisticName,
    pub value: f64,
}

/// How training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The full training loss reached the target.
    Converged,
    /// The step budget ran out first (always the case without a target).
    BudgetExhausted,
    /// A loss or a parameter became NaN or infinite (in training or in the probe).
    Diverged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::BudgetExhausted => "budget_exhausted",
            Outcome::Diverged => "diverged",
        }
    }
}

/// The parts of a trial, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Data,
    Training,
    Probe,
    Measure,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Data => "data",
            Phase::Training => "training",
            Phase::Probe => "probe",
            Phase::Measure => "measure",
        }
    }
}

/// Norms of one weight matrix (biases excluded) at the trained point and relative to its
/// initialisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerMeasurement {
    /// 1-based, from the input side.
    pub layer: u32,
    pub fan_in: u32,
    pub fan_out: u32,
    pub spectral_norm: f64,
    pub frobenius_norm: f64,
    pub distance_from_init_spectral: f64,
    pub distance_from_init_frobenius: f64,
    /// (2,1) norm of W − W₀: the sum of the ℓ2 norms of its rows.
    pub distance_from_init_two_one: f64,
    /// max_t ||W_t − Ŵ||_op over every step of every probe replicate (warm-started power
    /// iteration, see `measure::excursion`); NaN without a completed probe.
    pub probe_max_displacement_spectral: f64,
    /// max_t ||W_t − Ŵ||_F over the probe.
    pub probe_max_displacement_frobenius: f64,
    /// max_t ||W_t − Ŵ||_{2,1} over the probe.
    pub probe_max_displacement_two_one: f64,
}

/// Stagnation statistics of the probe for one ball around the trained point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RadiusMeasurement {
    /// The absolute radius, after scaling by ||Θ̂|| when the unit is relative.
    pub radius: f64,
    /// Share of replicates that never left the ball.
    pub stay_probability: f64,
    /// Mean over replicates of the first step outside the ball, censored at the probe length.
    pub mean_exit_step: f64,
    /// The Kaplan–Meier median of the exit step across replicates (censored ones included);
    /// NaN while the estimated survival stays above one half.
    pub median_exit_step: f64,
    /// Share of all probe steps (all replicates) spent inside the ball.
    pub occupancy: f64,
    /// Per replicate, the first step outside the ball; 0 when it stayed (censored).
    pub replicate_exit_steps: Vec<u64>,
    /// Mean over replicates of the steps that leave the ball (inside at t − 1, outside at t;
    /// every replicate starts inside, at Θ̂).
    pub mean_exits: f64,
    /// Mean over replicates of the steps that come back into the ball after leaving it.
    pub mean_reentries: f64,
    /// The linearised prediction of `stay_probability` (science.md §3.8): an estimate, not a
    /// bound (see `LinearizedProbe::stay_probability`); NaN without a Hessian to predict from.
    pub predicted_stay_probability: f64,
    /// A lower bound on `stay_probability` for the linearised probe (unresolved curvature at
    /// min(0, λ_min), the largest noise σ; see `StayProbabilityBound`); NaN without a Hessian or
    /// where the probe is linearly unstable (λ_max > 2/η_probe).
    pub stay_probability_bound: f64,
}

/// The probe's mean-squared displacement at one step, measured and predicted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MsdPoint {
    pub step: u64,
    /// Mean over replicates of d_t².
    pub msd: f64,
    /// The part of it inside the span of the top Hessian eigenvectors; NaN without them.
    pub msd_hessian_top: f64,
    /// Σ_i v_{i,t} of the linearised prediction; NaN without a Hessian.
    pub predicted_msd: f64,
}

/// Everything one trial measured. Values that could not be measured (after a divergence, or
/// without a probe) are NaN, and lists are empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialMeasurements {
    pub outcome: Outcome,
    pub diverged_phase: Option<Phase>,
    pub train_loss: f64,
    pub test_loss: f64,
    /// 0-1 misclassification rate; an example whose margin is not positive counts as an error.
    pub train_error: f64,
    pub test_error: f64,
    pub steps: u64,
    pub reached_target: bool,
    pub parameter_count: u64,
    /// The configured percentile of the training margins.
    pub margin_gamma: f64,
    /// Parameter-count capacity (Harvey et al. VC dimension); gap ≈ sqrt(C / m).
    pub vc_capacity: f64,
    /// Bartlett–Foster–Telgarsky spectral capacity; infinite when γ ≤ 0.
    pub spectral_capacity: f64,
    pub mean_input_norm_squared: f64,
    pub train_size: u64,
    /// Test examples the test error is measured on.
    pub test_size: u64,
    /// The generator the gradient noise was drawn with (`train::noise::NOISE_STREAM_VERSION`).
    pub noise_stream: u32,
    /// Occupancy of the first listed probe radius.
    pub stay_fraction: f64,
    pub max_distance: f64,
    pub final_distance: f64,
    /// ||Θ̂||₂ over all parameters.
    pub minimum_norm: f64,
    pub train_seconds: f64,
    pub probe_seconds: f64,
    pub measure_seconds: f64,
    pub layers: Vec<LayerMeasurement>,
    pub radii: Vec<RadiusMeasurement>,
    /// The top Hessian eigenvalues of the training loss at Θ̂ (Lanczos), descending.
    pub hessian_top_eigenvalues: Vec<f64>,
    /// The smallest Lanczos Ritz value: an upper estimate of λ_min.
    pub hessian_lambda_min: f64,
    /// Hutchinson's estimate of the Hessian trace.
    pub hessian_trace: f64,
    /// 2/η − λ_max for the training learning rate η: positive when gradient descent is linearly
    /// stable at Θ̂.
    pub stability_margin: f64,
    /// 2/η_probe − λ_max for the probe's own learning rate (it runs without momentum): what
    /// the linearised prediction's stationarity depends on.
    pub probe_stability_margin: f64,
    /// 2(1 + μ)/η − λ_max for training's heavy-ball momentum μ: positive when training itself
    /// is linearly stable at Θ̂.
    pub training_stability_margin: f64,
    /// The other bounds of science.md §4 that apply to this network.
    pub bounds: Vec<BoundMeasurement>,
    /// The probe statistics beyond the per-radius ones, those the probe measured.
    pub probe_statistics: Vec<ProbeStatistic>,
    /// Full-batch gradient-descent steps of the polish (0 without one).
    pub polish_steps: u64,
    /// ||∇R̂_n|| over the training set at the trained point; NaN after a divergence.
    pub gradient_norm: f64,
    /// The probe's MSD curve at up to [`crate::measure::probe::MSD_CURVE_POINTS`]
    /// evenly spaced steps.
    pub msd_curve: Vec<MsdPoint>,
    /// The loss-landscape slice, when the sweep asked for one and the probe completed.
    pub landscape: Option<LandscapeSlice>,
}

/// The training loss on a grid × grid square of half-width `extent` in the plane through Θ̂
/// spanned by two orthonormal directions (science.md §3.11), and the probe's snapshots on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LandscapeSlice {
    /// "pca" or "random".
    pub plane: &'static str,
    pub grid: u32,
    pub extent: f64,
    /// Row-major, row j at the second coordinate −extent + 2·extent·j/(grid − 1).
    pub losses: Vec<f32>,
    pub trajectory: Vec<LandscapePoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LandscapePoint {
    pub replicate: u32,
    pub step: u64,
    pub a: f64,
    pub b: f64,
}
