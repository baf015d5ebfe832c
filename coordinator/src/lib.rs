//! The sweep coordinator: sweep files and grid expansion ([`sweep`]), the results database
//! ([`store`]), the gRPC API and its server ([`api`], [`server`]), reports ([`report`]), the
//! command-line interface ([`cli`]) and the one-machine orchestration of `coordinator run`
//! ([`local_run`]).

pub mod api;
pub mod cli;
pub mod dashboard;
pub mod group_commit;
pub mod local_run;
pub mod metrics;
pub mod progress;
pub mod report;
pub mod result_validation;
pub mod server;
pub mod store;
pub mod sweep;
