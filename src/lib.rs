//! statesim: a discrete-event simulator that compares where session state lives (server memory,
//! an external store, a signed token) under the same client workload.
//!
//! The flow: [`scenario`] parses and validates a file → [`run`] runs one [`model::World`] per
//! topology and replication on rayon → [`metrics`] aggregates → [`report`] writes the table and CSV.

pub mod budget;
pub mod check;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod fit;
pub mod metrics;
pub mod model;
pub mod output;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod stats;
pub mod text;
