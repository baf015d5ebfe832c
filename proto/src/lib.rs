//! The wire contract between the sweep coordinator and its workers.
//!
//! Two parts travel on the wire: the gRPC messages of `sweep.v1` (generated from
//! `proto/sweep/v1/sweep.proto`), and the fully resolved [`TrialConfig`] that a leased trial
//! carries as canonical JSON. Both sides of the connection depend on this crate so they agree on
//! both.

pub mod auth;
pub mod channel;

pub use vocabulary::trial_config;
pub use vocabulary::{
    Activation, BoundName, ConfigError, DataConfig, DataSet, Init, LandscapePlane, Loss,
    MAX_LANDSCAPE_GRID, MeasureConfig, ModelConfig, NoiseForm, ProbeConfig, ProbeStatisticName,
    RadiusUnit, TrainingConfig, TrialConfig,
};

/// Generated gRPC types and clients/servers for `sweep.v1`.
pub mod v1 {
    tonic::include_proto!("sweep.v1");
}
