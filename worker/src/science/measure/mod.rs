//! Measurements at the trained point: norms, margins, capacity bounds and the stagnation probe.

pub mod bounds;
pub mod layers;
pub mod margins;
pub mod norms;
pub mod probe;
