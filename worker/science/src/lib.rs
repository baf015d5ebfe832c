//! The numeric engine of a trial: synthetic data, the network, noisy SGD, the stagnation probe
//! and the norms, margins and capacity bounds measured at the trained point.
//!
//! Everything here is synchronous: one trial runs on its calling thread, whose matrix products may
//! share their bands with helper threads started for the trial (`model/team.rs`), and a trial is
//! bit-identical given its configuration on the same machine, whatever the number of threads. The entry point is
//! [`run_trial`].

pub mod data;
pub mod measure;
pub mod measurements;
pub mod model;
pub mod observer;
pub mod rng;
pub mod saved_weights;
pub mod train;
pub mod trial;

pub use measurements::{LayerMeasurement, Outcome, Phase, RadiusMeasurement, TrialMeasurements};
pub use model::mlp::parameter_count;
pub use observer::{SilentObserver, TrialObserver};
pub use trial::{
    TrialError, TrialOptions, run_trial, run_trial_with_options, run_trial_with_threads,
};
