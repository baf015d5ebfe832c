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
    Activation, ConfigError, DataConfig, DataSet, Init, Loss, MeasureConfig, ModelConfig,
    NoiseForm, ProbeConfig, RadiusUnit, TrainingConfig, TrialConfig,
};

/// The bounds of `science.md` §4 a trial reports beside the VC and spectral (BFT) capacities,
/// by the names the wire, the database and the reports use. Those ending in `_2layer` exist only
/// for networks with one hidden layer; `path_norm` is a ranking measure (Jiang et al. 2020), not
/// a calibrated bound.
pub const BOUND_NAMES: [&str; 7] = [
    "frobenius_2layer",
    "one_infinity_2layer",
    "spectral_2layer",
    "neyshabur_2019_2layer",
    "spectral_frobenius_pac_bayes",
    "golowich_rakhlin_shamir",
    "path_norm",
];

/// Generated gRPC types and clients/servers for `sweep.v1`.
pub mod v1 {
    tonic::include_proto!("sweep.v1");
}
