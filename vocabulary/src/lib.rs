//! The trial's vocabulary, shared by every layer: the resolved configuration a trial runs with
//! ([`TrialConfig`] and its validation) and the catalog of what it measures ([`catalog`]).
//!
//! It depends on serde alone, so the numeric library, the wire crate and the coordinator's store
//! and reports all speak it without pulling in each other.

pub mod catalog;
pub mod trial_config;

pub use catalog::{BoundName, Kind, Measurement, ProbeStatisticName, Source, Unit, Uses};
pub use trial_config::{
    Activation, ConfigError, DataConfig, DataSet, Init, LandscapePlane, Loss, MAX_LANDSCAPE_GRID,
    MeasureConfig, ModelConfig, NoiseForm, ProbeConfig, RadiusUnit, TrainingConfig, TrialConfig,
};
