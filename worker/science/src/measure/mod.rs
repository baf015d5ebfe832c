//! Measurements at the trained point: norms, margins, capacity bounds, the stagnation probe, the
//! Hessian spectrum, the linearised-dynamics predictions, the iterate cloud and exit survival.

pub mod basin;
pub mod bound_suite;
pub mod bounds;
pub mod cloud;
pub mod displacement;
pub mod eigen;
pub mod excursion;
pub mod flatness;
pub mod hessian_summary;
pub mod landscape;
pub mod layers;
pub mod linearized;
pub mod margins;
pub mod network_norms;
pub mod norms;
pub mod probe;
pub mod snapshots;
pub mod spectrum;
pub mod step_displacement;
pub use vocabulary::survival;
