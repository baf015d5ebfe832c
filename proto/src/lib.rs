//! The wire contract between the sweep coordinator and its workers.
//!
//! Two parts travel on the wire: the gRPC messages of `sweep.v1` (generated from
//! `proto/sweep/v1/sweep.proto`), and the fully resolved [`TrialConfig`] that a leased trial
//! carries as canonical JSON. Both sides of the connection depend on this crate so they agree on
//! both.

pub mod auth;
pub mod channel;
pub mod trial_config;

pub use trial_config::{
    Activation, ConfigError, DataConfig, DataSet, Init, LandscapePlane, Loss, MAX_LANDSCAPE_GRID,
    MeasureConfig, ModelConfig, NoiseForm, ProbeConfig, RadiusUnit, TrainingConfig, TrialConfig,
};

/// The bounds of `science.md` §4 a trial reports beside the VC and spectral (BFT) capacities,
/// by the names the wire, the database and the reports use. Those ending in `_2layer` exist only
/// for networks with one hidden layer; `path_norm` is a ranking measure (Jiang et al. 2020), not
/// a calibrated bound. `pac_bayes_flatness` comes from the largest weight noise that costs 0.1
/// training accuracy; `stagnation_localized_spectral` is our heuristic diagnostic (science.md §4),
/// not a proven bound, and needs the probe.
pub const BOUND_NAMES: [&str; 9] = [
    "frobenius_2layer",
    "one_infinity_2layer",
    "spectral_2layer",
    "neyshabur_2019_2layer",
    "spectral_frobenius_pac_bayes",
    "golowich_rakhlin_shamir",
    "path_norm",
    "pac_bayes_flatness",
    "stagnation_localized_spectral",
];

/// The statistics of the stagnation probe (`science.md` §3) beyond the per-radius ones, by the
/// names the wire, the database and the reports use. A trial reports those its probe measured:
/// the snapshot statistics need `probe.snapshots > 0`, the basin ones `probe.basin_steps > 0`.
/// - distances over all steps and replicates: mean and RMS of d_t;
/// - `msd_diffusion`: D_eff of the fit MSD(t) ≈ a + 2 D_eff t on the late half of the steps;
/// - loss excursions R̂(Θ_t) − R̂(Θ̂) over the snapshots, max and mean, on train and test data;
/// - `final_rms_distance`: sqrt(MSD(T)) at the last step, beside `predicted_rms_distance`, the
///   linearised prediction sqrt(Σ_i v_{i,T}) from the Hessian (science.md §3.8);
/// - `msd_diffusion_hessian_top` and `_rest`: D_eff of the displacement's part inside the span of
///   the top Hessian eigenvectors and of the rest;
/// - the snapshot cloud per replicate (averaged): participation ratio, k_90, top-2 share, and the
///   share of its variance inside the top Hessian eigenvectors;
/// - local convexity μ̂ = min ⟨∇R̂(Θ_t), Θ_t − Θ̂⟩ / ||Θ_t − Θ̂||² over the snapshots, and the
///   share of positive inner products, on train and test data;
/// - the share of replicates that noise-free gradient descent brings back within the first radius
///   of Θ̂, and the mean linear-interpolation barrier between Θ̂ and each end point.
pub const PROBE_STATISTIC_NAMES: [&str; 21] = [
    "mean_distance",
    "rms_distance",
    "msd_diffusion",
    "final_rms_distance",
    "predicted_rms_distance",
    "msd_diffusion_hessian_top",
    "msd_diffusion_hessian_rest",
    "loss_excursion_max_train",
    "loss_excursion_mean_train",
    "loss_excursion_max_test",
    "loss_excursion_mean_test",
    "participation_ratio",
    "components_for_90_percent",
    "top_two_share",
    "hessian_aligned_share",
    "convexity_min_train",
    "convexity_min_test",
    "convexity_positive_share_train",
    "convexity_positive_share_test",
    "basin_return_share",
    "linear_barrier",
];

/// Generated gRPC types and clients/servers for `sweep.v1`.
pub mod v1 {
    tonic::include_proto!("sweep.v1");
}
