//! The numeric engine of a trial: synthetic data, the network, noisy SGD, the stagnation probe
//! and the norms, margins and capacity bounds measured at the trained point.
//!
//! Everything here is synchronous and single-threaded: one trial runs on one thread, and a trial
//! is bit-identical given its configuration on the same machine. The entry point is
//! [`run_trial`].

pub mod data;
pub mod measure;
pub mod measurements;
pub mod model;
pub mod observer;
pub mod rng;
pub mod train;
pub mod trial;

pub use measurements::{LayerMeasurement, Outcome, Phase, RadiusMeasurement, TrialMeasurements};
pub use model::mlp::parameter_count;
pub use observer::{SilentObserver, TrialObserver};
pub use trial::{TrialError, run_trial};
