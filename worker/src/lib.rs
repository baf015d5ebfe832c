//! The sweep worker.
//!
//! [`science`] is a plain library (no gRPC): data sets, the network, training and the
//! measurements of one trial. [`client`] is the loop that leases trials from a coordinator, runs
//! them on their own threads, heartbeats while they run and reports their results.

pub mod client;
pub mod science;
pub mod shutdown;
