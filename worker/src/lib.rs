//! The sweep worker.
//!
//! [`science`] is the numeric library (its own crate, `worker/science/`, with no gRPC, database or
//! async runtime): data sets, the network, training and the measurements of one trial.
//! [`client`] is the loop that leases trials from a coordinator, runs them on their own threads,
//! heartbeats while they run and reports their results. [`process`] and [`shutdown`] are what a
//! binary installs around it (logging, runtime, signals); the coordinator's binary uses them too.

pub mod client;
pub mod process;
pub mod shutdown;

pub use science;
