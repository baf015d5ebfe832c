//! The trial's vocabulary, shared by every layer: the resolved configuration a trial runs with
//! ([`TrialConfig`] and its validation), the catalog of what it measures ([`catalog`]), and the
//! few computations both the worker and the reports make: Kaplan–Meier survival ([`survival`])
//! and the landscape slice's grid ([`landscape`]).
//!
//! It depends on serde alone, so the numeric library, the wire crate and the coordinator's store
//! and reports all speak it without pulling in each other.

pub mod catalog;
pub mod landscape;
pub mod survival;
pub mod trial_config;

pub use catalog::{BoundName, Kind, Measurement, ProbeStatisticName, Source, Unit, Uses};
pub use trial_config::{
    Activation, ConfigError, DataConfig, DataSet, Init, LandscapePlane, Loss, MAX_LANDSCAPE_GRID,
    MeasureConfig, ModelConfig, NoiseForm, ProbeConfig, RadiusUnit, TrainingConfig, TrialConfig,
};
